"""Knowledge bases as a managed resource: which ones exist, their settings, the files uploaded into them, the
ingest jobs that change them and the API keys that reach them.

    <root>/
      catalog.sqlite        jobs, uploaded files and API keys of every knowledge base (rag.store.catalog_db)
      <kb id>/
        kb.json             id, name, default language, per-knowledge-base setting overrides
        chunks.sqlite ...   the knowledge base itself (rag.store.knowledge_base)
        files/              uploaded documents, ingested as `files/<name>`
        curated.sqlite      curated answers (rag.store.curated)

A single-knowledge-base set-up (`--kb DIR`) is the same with one knowledge base, `DIR` itself, whose id is its
folder's name: its catalog lives inside it, and knowledge bases cannot be created or deleted there.

Everything above the store layer goes through `Catalog`; only this module knows that a knowledge base is a
folder. With RAG_STORE_URL, `PostgresCatalog` (rag.store.postgres_catalog) stands in for it, keeping all of the
above in PostgreSQL so that several servers share it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from rag.core.errors import Conflict, KnowledgeBaseCorrupt, NotFound
from rag.store.catalog_db import ApiKey, CatalogDatabase, FileState, Job, JobFailure, JobKind, JobState, StoredFile
from rag.store.curated import SQLCuratedAnswers, SQLiteCuratedAnswers
from rag.store.knowledge_base import KnowledgeBase, Where

log = logging.getLogger("rag.store.catalog")
CATALOG_DB = "catalog.sqlite"
SETTINGS_FILE = "kb.json"
FILES = "files"
CURATED_DB = "curated.sqlite"
LANGUAGES = ("auto", "en", "zh")
_KB_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_RESERVED = {"files", "v1", "api", "admin"}


@dataclass
class KnowledgeBaseInfo:
    id: str
    name: str
    language: str  # "auto", "en" or "zh": the language of replies when a question's own is unclear
    created_at: datetime
    settings: dict[str, Any] = field(default_factory=dict)  # overrides of the server's settings (rag.core.settings)


class Catalog(Protocol):
    """What the API and the job layer may know about where knowledge bases are kept."""

    single: bool  # one fixed knowledge base (`--kb DIR`): none can be created or deleted

    def list_kbs(self) -> list[KnowledgeBaseInfo]: ...
    def get_kb(self, kb_id: str) -> KnowledgeBaseInfo: ...
    def create_kb(
        self, kb_id: str, name: str, language: str = "auto", settings: Mapping[str, Any] | None = None
    ) -> KnowledgeBaseInfo: ...
    def update_kb(
        self,
        kb_id: str,
        *,
        name: str | None = None,
        language: str | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> KnowledgeBaseInfo: ...
    def delete_kb(self, kb_id: str) -> None: ...
    def kb_path(self, kb_id: str) -> Path: ...
    def kb_location(self, kb_id: str) -> Where: ...
    def curated(self, kb_id: str) -> SQLCuratedAnswers: ...

    def save_file(self, kb_id: str, name: str, content: BinaryIO) -> StoredFile: ...
    def files(self, kb_id: str) -> list[StoredFile]: ...
    def file_path(self, kb_id: str, name: str) -> Path: ...
    def set_file_state(
        self, kb_id: str, name: str, state: FileState, error: str | None = None, job_id: str | None = None
    ) -> None: ...
    def delete_file(self, kb_id: str, name: str) -> None: ...

    @property
    def db(self) -> CatalogDatabase: ...

    def close(self) -> None: ...


def changed_info(
    info: KnowledgeBaseInfo, name: str | None, language: str | None, settings: Mapping[str, Any] | None
) -> KnowledgeBaseInfo:
    """`info` with the fields given changed (None: kept); a blank name becomes the id."""
    return KnowledgeBaseInfo(
        info.id,
        info.name if name is None else name.strip() or info.id,
        info.language if language is None else check_language(language),
        info.created_at,
        dict(info.settings if settings is None else settings),
    )


def check_kb_id(kb_id: str) -> str:
    """A knowledge base id: lowercase letters, digits, `-` and `_`, up to 63 characters, starting with a letter or
    digit (it names a folder and appears in URLs).

    >>> check_kb_id("support-en")
    'support-en'
    """
    if not _KB_ID.fullmatch(kb_id) or kb_id in _RESERVED:
        raise ValueError(
            f"id {kb_id!r} is not allowed - use 1 to 63 lowercase letters, digits, '-' or '_', starting with a letter "
            f"or digit (not {', '.join(sorted(_RESERVED))})"
        )
    return kb_id


def safe_file_name(name: str) -> str:
    """An uploaded file's name reduced to a plain name inside its folder: directories (either slash), control
    characters and leading dots dropped, so `../../x.md` is stored as `x.md` and never outside the folder.

    >>> safe_file_name("../../x.md"), safe_file_name("C:\\\\docs\\\\faq.csv"), safe_file_name("..\\x00.md")
    ('x.md', 'faq.csv', 'md')
    """
    base = re.split(r"[\\/]", unicodedata.normalize("NFC", name))[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip().lstrip(".").strip()
    if not base:
        raise ValueError(f"file name {name!r} has no usable name - give the file a name such as faq.csv")
    if len(base.encode()) > 200:
        stem, dot, ext = base.rpartition(".")
        base = stem.encode()[: 200 - len(ext) - 1].decode(errors="ignore") + dot + ext if dot else base[:100]
    return base


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


class FolderCatalog:
    """Knowledge bases as folders under one root (`FolderCatalog(root)`), or the one folder of a single-KB
    set-up (`FolderCatalog.single_kb(kb_dir)`)."""

    def __init__(self, root: Path, *, single_kb: Path | None = None):
        self.root = Path(root)
        self.single = single_kb is not None
        self._single_dir = Path(single_kb) if single_kb is not None else None
        home = self._single_dir if self._single_dir is not None else self.root
        home.mkdir(parents=True, exist_ok=True)
        self._db = CatalogDatabase(home / CATALOG_DB)
        self._lock = threading.Lock()  # one kb.json change at a time (read, change, write)
        if not self.single:
            for leftover in [*self.root.glob(".deleted-*"), *self.root.glob(".creating-*")]:
                shutil.rmtree(leftover, ignore_errors=True)  # a deletion or creation a crash cut short

    @classmethod
    def single_kb(cls, kb_dir: Path) -> FolderCatalog:
        return cls(Path(kb_dir).parent, single_kb=Path(kb_dir))

    @property
    def db(self) -> CatalogDatabase:
        return self._db

    def close(self) -> None:
        self._db.close()

    # ---- knowledge bases ------------------------------------------------------------------------------
    def list_kbs(self) -> list[KnowledgeBaseInfo]:
        if self._single_dir is not None:
            kb_id = self._single_id()
            return [self.get_kb(kb_id)] if KnowledgeBase.exists(self.kb_location(kb_id)) else []
        found = []
        for folder in sorted(self.root.iterdir()):
            if folder.is_dir() and (folder / SETTINGS_FILE).is_file() and _KB_ID.fullmatch(folder.name):
                try:
                    found.append(self._read_info(folder))
                except KnowledgeBaseCorrupt:  # one broken kb.json must not hide the others
                    log.exception("knowledge base %s is skipped", folder.name)
        return found

    def get_kb(self, kb_id: str) -> KnowledgeBaseInfo:
        folder = self._folder(kb_id)
        if self._single_dir is not None:
            info_file = folder / SETTINGS_FILE
            if info_file.is_file():
                return self._read_info(folder)
            created = datetime.fromtimestamp(folder.stat().st_mtime, UTC)
            return KnowledgeBaseInfo(kb_id, kb_id, "auto", created)
        if not (folder / SETTINGS_FILE).is_file():
            raise NotFound(
                f"No knowledge base {kb_id!r} - list them with GET /api/kbs or `rag kb list`, create one with "
                f"POST /api/kbs or `rag kb create`"
            )
        return self._read_info(folder)

    def create_kb(
        self, kb_id: str, name: str, language: str = "auto", settings: Mapping[str, Any] | None = None
    ) -> KnowledgeBaseInfo:
        if self.single:
            raise Conflict(
                "This server serves one knowledge base (--kb DIR) - set RAG_KB_ROOT to a folder to manage several"
            )
        check_kb_id(kb_id)
        check_language(language)
        folder = self.root / kb_id
        info = KnowledgeBaseInfo(kb_id, name.strip() or kb_id, language, datetime.now(UTC), dict(settings or {}))
        taken = Conflict(f"A knowledge base with id {kb_id!r} already exists - choose another id")
        if folder.exists():
            raise taken
        # built aside and renamed into place: a crash half-way leaves no half knowledge base under its id
        draft = self.root / f".creating-{kb_id}-{uuid.uuid4().hex[:8]}"
        (draft / FILES).mkdir(parents=True)
        self._write_info(draft, info)
        try:
            os.rename(draft, folder)
        except OSError:
            shutil.rmtree(draft, ignore_errors=True)
            raise taken from None
        return info

    def update_kb(
        self,
        kb_id: str,
        *,
        name: str | None = None,
        language: str | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> KnowledgeBaseInfo:
        with self._lock:
            info = changed_info(self.get_kb(kb_id), name, language, settings)
            self._write_info(self._folder(kb_id), info)
        return info

    def delete_kb(self, kb_id: str) -> None:
        if self.single:
            raise Conflict("This server serves one knowledge base (--kb DIR); delete its folder to remove it")
        folder = self._folder(kb_id)
        self.get_kb(kb_id)
        # its keys first (a crash after this leaves no key that could reach a new knowledge base of the same id),
        # then the folder, renamed (atomic) before it is removed; leftovers are removed at the next start
        self._db.forget_kb(kb_id)
        trash = self.root / f".deleted-{kb_id}-{uuid.uuid4().hex[:8]}"
        os.replace(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def kb_path(self, kb_id: str) -> Path:
        self.get_kb(kb_id)
        return self._folder(kb_id)

    def kb_location(self, kb_id: str) -> Where:
        """Where the knowledge base's documents, chunks and vectors are: its folder."""
        return self.kb_path(kb_id)

    def curated(self, kb_id: str) -> SQLCuratedAnswers:
        """The knowledge base's curated answers (created empty on first use), opened anew: the caller closes them."""
        return SQLiteCuratedAnswers(self.kb_path(kb_id) / CURATED_DB)

    # ---- uploaded files ----------------------------------------------------------------------------------
    def save_file(self, kb_id: str, name: str, content: BinaryIO) -> StoredFile:
        """Keep an uploaded file (replacing one of the same name), written whole before it is renamed into place."""
        name = safe_file_name(name)
        folder = self.kb_path(kb_id) / FILES
        folder.mkdir(exist_ok=True)
        final = folder / name
        if final.resolve().parent != folder.resolve():  # belt and braces: never outside the folder
            raise ValueError(f"file name {name!r} would leave the knowledge base's folder")
        tmp = folder / f".upload-{uuid.uuid4().hex}"
        size = 0
        try:
            with open(tmp, "wb") as out:
                while block := content.read(1 << 20):
                    out.write(block)
                    size += len(block)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        stored = StoredFile(kb_id, name, size, datetime.now(UTC), "queued")
        self._db.put_file(stored)
        return stored

    def files(self, kb_id: str) -> list[StoredFile]:
        self.get_kb(kb_id)
        return self._db.files(kb_id)

    def file_path(self, kb_id: str, name: str) -> Path:
        return self.kb_path(kb_id) / FILES / safe_file_name(name)

    def set_file_state(
        self, kb_id: str, name: str, state: FileState, error: str | None = None, job_id: str | None = None
    ) -> None:
        self._db.set_file_state(kb_id, name, state, error, job_id)

    def delete_file(self, kb_id: str, name: str) -> None:
        self.file_path(kb_id, name).unlink(missing_ok=True)
        self._db.delete_file(kb_id, name)

    # ---- helpers -------------------------------------------------------------------------------------------
    def _single_id(self) -> str:
        assert self._single_dir is not None
        return self._single_dir.resolve().name

    def _folder(self, kb_id: str) -> Path:
        if self._single_dir is not None:
            if kb_id != self._single_id():
                raise NotFound(f"No knowledge base {kb_id!r} - this server serves only {self._single_id()!r}")
            return self._single_dir
        if not _KB_ID.fullmatch(kb_id):
            raise NotFound(f"No knowledge base {kb_id!r} - GET /api/kbs lists them")
        return self.root / kb_id

    @staticmethod
    def _read_info(folder: Path) -> KnowledgeBaseInfo:
        """The knowledge base described by `folder/kb.json`; its id is always the folder's name."""
        try:
            data = json.loads((folder / SETTINGS_FILE).read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("settings", {}), dict):
                raise ValueError("not a JSON object with a `settings` object")
            return KnowledgeBaseInfo(
                id=folder.name,
                name=str(data.get("name") or folder.name),
                language=str(data.get("language") or "auto"),
                created_at=datetime.fromisoformat(data["created_at"]),
                settings=dict(data.get("settings") or {}),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KnowledgeBaseCorrupt(
                f"knowledge base {folder.name!r}: its {SETTINGS_FILE} cannot be read ({exc}) - fix the JSON "
                f"(name, language, created_at, settings)"
            ) from exc

    @staticmethod
    def _write_info(folder: Path, info: KnowledgeBaseInfo) -> None:
        data = {
            "id": info.id,
            "name": info.name,
            "language": info.language,
            "created_at": info.created_at.isoformat(),
            "settings": info.settings,
        }
        tmp = folder / f".{SETTINGS_FILE}.{uuid.uuid4().hex[:8]}.tmp"
        # only the server's user may read it: the settings may hold an LLM key
        handle = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(handle, "w", encoding="utf-8") as out:
            out.write(json.dumps(data, ensure_ascii=False, indent=2))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, folder / SETTINGS_FILE)


def check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")
    return language


__all__ = [
    "ApiKey",
    "Catalog",
    "FolderCatalog",
    "Job",
    "JobFailure",
    "JobKind",
    "JobState",
    "KnowledgeBaseInfo",
    "StoredFile",
    "check_kb_id",
    "new_id",
    "safe_file_name",
]
