"""The catalog in PostgreSQL (RAG_STORE_URL): which knowledge bases exist, their settings, uploaded files, ingest jobs,
API keys and console sessions, shared by every server, so that any replica behind a load balancer answers any
request. Nothing a server needs lives only on its own disk:

    rag_catalog_kbs      id, name, default language, setting overrides, created_at (kb.json in a folder set-up)
    rag_catalog_blobs    the bytes of every uploaded file, so that a job on any server can ingest it again
    files, jobs, keys, sessions   as in catalog.sqlite (rag.store.catalog_db)

Each server keeps a local copy of the uploaded files it reads (under its RAG_KB_ROOT, or beside RAG_KB_DIR), written
from the database when missing: ingest reads files from disk.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import sqlalchemy as sa

from rag.core.errors import Conflict, NotFound
from rag.store.catalog import FILES, KnowledgeBaseInfo, changed_info, check_kb_id, check_language, safe_file_name
from rag.store.catalog_db import CatalogDatabase, FileState, StoredFile
from rag.store.curated import SQLCuratedAnswers
from rag.store.knowledge_base import KnowledgeBase, Where
from rag.store.postgres import PostgresConnection, PostgresStore
from rag.store.sql import run_script

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rag_catalog_kbs (
    kb_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    language TEXT NOT NULL,
    settings JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS rag_catalog_blobs (
    kb_id TEXT NOT NULL,
    name TEXT NOT NULL,
    content BYTEA NOT NULL,
    PRIMARY KEY (kb_id, name)
)
"""


class PostgresCatalog:
    """`PostgresCatalog(store, cache)`: knowledge bases managed over the API (RAG_KB_ROOT); with `single_kb`, the one
    knowledge base of that id (RAG_KB_DIR's folder name), which cannot be created or deleted here."""

    def __init__(self, store: PostgresStore, cache: Path, *, single_kb: str | None = None):
        self.kb_store = store
        self.cache = Path(cache)
        self.single = single_kb is not None
        self._single_id = single_kb
        self._db = CatalogDatabase(PostgresConnection(store), shared=True)
        schema = PostgresConnection(store)  # its first transaction holds the schema lock: one server at a time
        with schema.transaction():
            run_script(schema, _SCHEMA)

    @property
    def db(self) -> CatalogDatabase:
        return self._db

    def close(self) -> None:
        self._db.close()
        self.kb_store.close()

    # ---- knowledge bases ------------------------------------------------------------------------------
    def list_kbs(self) -> list[KnowledgeBaseInfo]:
        if self._single_id is not None:
            exists = KnowledgeBase.exists(self.kb_store.backend(self._single_id))
            return [self.get_kb(self._single_id)] if exists else []
        with self.kb_store.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT {_INFO} FROM rag_catalog_kbs ORDER BY kb_id")).all()
        return [_info(r) for r in rows]

    def get_kb(self, kb_id: str) -> KnowledgeBaseInfo:
        if self._single_id is not None and kb_id != self._single_id:
            raise NotFound(f"No knowledge base {kb_id!r} - this server serves only {self._single_id!r}")
        with self.kb_store.connect() as conn:
            row = conn.execute(sa.text(f"SELECT {_INFO} FROM rag_catalog_kbs WHERE kb_id = :id"), {"id": kb_id}).first()
        if row is not None:
            return _info(row)
        if self._single_id is not None:  # the served knowledge base, before any setting was saved for it
            return KnowledgeBaseInfo(kb_id, kb_id, "auto", datetime.now(UTC))
        raise NotFound(
            f"No knowledge base {kb_id!r} - list them with GET /api/kbs or `rag kb list`, create one with "
            f"POST /api/kbs or `rag kb create`"
        )

    def create_kb(
        self, kb_id: str, name: str, language: str = "auto", settings: Mapping[str, Any] | None = None
    ) -> KnowledgeBaseInfo:
        if self.single:
            raise Conflict(
                "This server serves one knowledge base (--kb DIR) - set RAG_KB_ROOT to a folder to manage several"
            )
        check_kb_id(kb_id)
        check_language(language)
        info = KnowledgeBaseInfo(kb_id, name.strip() or kb_id, language, datetime.now(UTC), dict(settings or {}))
        with self.kb_store.begin() as conn:
            inserted = conn.execute(
                sa.text(
                    "INSERT INTO rag_catalog_kbs VALUES (:id, :name, :language, CAST(:settings AS jsonb), :at) "
                    "ON CONFLICT (kb_id) DO NOTHING RETURNING kb_id"
                ),
                _params(info),
            ).first()
        if inserted is None:
            raise Conflict(f"A knowledge base with id {kb_id!r} already exists - choose another id")
        return info

    def update_kb(
        self,
        kb_id: str,
        *,
        name: str | None = None,
        language: str | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> KnowledgeBaseInfo:
        info = changed_info(self.get_kb(kb_id), name, language, settings)
        with self.kb_store.begin() as conn:
            if self.single:  # the served knowledge base may have no row yet
                conn.execute(
                    sa.text(
                        "INSERT INTO rag_catalog_kbs VALUES (:id, :name, :language, CAST(:settings AS jsonb), :at) "
                        "ON CONFLICT (kb_id) DO NOTHING"
                    ),
                    _params(info),
                )
            changes = {"name": name, "language": language, "settings": settings}
            given = [field for field, value in changes.items() if value is not None]
            if given:  # only what this request changes: another server may be changing the rest
                sets = ", ".join(f"{f} = CAST(:settings AS jsonb)" if f == "settings" else f"{f} = :{f}" for f in given)
                updated = conn.execute(sa.text(f"UPDATE rag_catalog_kbs SET {sets} WHERE kb_id = :id"), _params(info))
                if updated.rowcount == 0:
                    raise NotFound(f"No knowledge base {kb_id!r} - it was deleted meanwhile")
        return info

    def delete_kb(self, kb_id: str) -> None:
        if self.single:
            raise Conflict("This server serves one knowledge base (--kb DIR); it cannot be deleted here")
        self.get_kb(kb_id)
        self.kb_store.drop(kb_id)  # first: refused (Conflict) while an ingest writes to it, and nothing is lost
        self._db.forget_kb(kb_id)  # then its keys: none may reach a new knowledge base of the same id
        with self.kb_store.begin() as conn:
            conn.execute(sa.text("DELETE FROM rag_catalog_blobs WHERE kb_id = :id"), {"id": kb_id})
            conn.execute(sa.text("DELETE FROM rag_catalog_kbs WHERE kb_id = :id"), {"id": kb_id})
        shutil.rmtree(self.cache / kb_id, ignore_errors=True)

    def kb_path(self, kb_id: str) -> Path:
        """This server's folder of the knowledge base's uploaded files (a copy of what the database holds)."""
        self.get_kb(kb_id)
        return self.cache / kb_id

    def kb_location(self, kb_id: str) -> Where:
        self.get_kb(kb_id)
        return self.kb_store.backend(kb_id)

    def curated(self, kb_id: str) -> SQLCuratedAnswers:
        self.get_kb(kb_id)
        return self.kb_store.curated(kb_id)

    # ---- uploaded files ----------------------------------------------------------------------------------
    def save_file(self, kb_id: str, name: str, content: BinaryIO) -> StoredFile:
        """Keep an uploaded file in the database (replacing one of the same name) and in this server's copy."""
        name = safe_file_name(name)
        data = content.read()
        with self.kb_store.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO rag_catalog_blobs VALUES (:id, :name, :content) "
                    "ON CONFLICT (kb_id, name) DO UPDATE SET content = excluded.content"
                ),
                {"id": kb_id, "name": name, "content": data},
            )
        self._write_copy(kb_id, name, data)
        stored = StoredFile(kb_id, name, len(data), datetime.now(UTC), "queued")
        self._db.put_file(stored)
        return stored

    def files(self, kb_id: str) -> list[StoredFile]:
        self.get_kb(kb_id)
        return self._db.files(kb_id)

    def file_path(self, kb_id: str, name: str) -> Path:
        """The file on this server's disk, copied from the database if another server received it."""
        name = safe_file_name(name)
        path = self.kb_path(kb_id) / FILES / name
        with self.kb_store.connect() as conn:
            row = conn.execute(
                sa.text("SELECT content FROM rag_catalog_blobs WHERE kb_id = :id AND name = :name"),
                {"id": kb_id, "name": name},
            ).first()
        if row is None:
            path.unlink(missing_ok=True)  # deleted through another server
        elif not path.is_file() or path.read_bytes() != bytes(row[0]):
            self._write_copy(kb_id, name, bytes(row[0]))
        return path

    def set_file_state(
        self, kb_id: str, name: str, state: FileState, error: str | None = None, job_id: str | None = None
    ) -> None:
        self._db.set_file_state(kb_id, name, state, error, job_id)

    def delete_file(self, kb_id: str, name: str) -> None:
        name = safe_file_name(name)
        with self.kb_store.begin() as conn:
            conn.execute(
                sa.text("DELETE FROM rag_catalog_blobs WHERE kb_id = :id AND name = :name"), {"id": kb_id, "name": name}
            )
        (self.cache / kb_id / FILES / name).unlink(missing_ok=True)
        self._db.delete_file(kb_id, name)

    def _write_copy(self, kb_id: str, name: str, data: bytes) -> None:
        folder = self.cache / kb_id / FILES
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".upload-{uuid.uuid4().hex}"
        try:
            tmp.write_bytes(data)
            os.replace(tmp, folder / name)
        finally:
            tmp.unlink(missing_ok=True)


_INFO = "kb_id, name, language, settings, created_at"


def _info(row: Any) -> KnowledgeBaseInfo:
    kb_id, name, language, settings, created_at = row
    return KnowledgeBaseInfo(kb_id, name, language, created_at, dict(settings or {}))


def _params(info: KnowledgeBaseInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.name,
        "language": info.language,
        "settings": json.dumps(info.settings, ensure_ascii=False),
        "at": info.created_at,
    }
