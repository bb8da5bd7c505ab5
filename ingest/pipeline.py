"""Incremental, atomic ingest: files -> documents -> chunks -> vectors -> knowledge base.

Only new or changed documents are embedded (and, inside a changed document, only chunks whose text
changed); documents whose files disappeared from the ingested folders are removed; files that fail to
load are reported and their previous version is kept. Everything is committed in one atomic step.

A file is recorded by the ingested folder's name and its path inside that folder (`data/faq_en.csv`), never by
where the folder lies, so citations show no server paths and a copy of the folder elsewhere matches the same
documents.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np

from ingest.chunking import chunk_document
from ingest.errors import LoaderError
from ingest.limits import FileLimits
from ingest.loaders import is_supported, load_file
from rag.core.errors import ConfigurationError
from rag.core.settings import Settings
from rag.core.types import Chunk, Document
from rag.store.calibration import FusionCalibration, calibrate, sample_ids
from rag.store.embedders import Embedder
from rag.store.knowledge_base import Changeset, DocumentUpdate, KnowledgeBase
from rag.text.tokenizer import get_encoding

# Embedding in large groups keeps sentence-transformers' length-sorted batching nearly as efficient
# as one call over everything, while the progress bar still moves.
EMBED_GROUP = 1024
PIPELINE_VERSION = "1"


@dataclass
class FileFailure:
    path: str
    reason: str


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: list[FileFailure] = field(default_factory=list)
    chunks_embedded: int = 0
    chunks_reused: int = 0
    chunks_total: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"added {self.added}, updated {self.updated}, unchanged {self.unchanged}, "
            f"removed {self.removed}, failed {len(self.failed)} "
            f"({self.chunks_embedded} chunks embedded, {self.chunks_reused} reused, {self.seconds:.1f}s)"
        )


@dataclass
class IngestProgress:
    """Where a running ingest is: files loaded of those found, chunks embedded of those to embed, failures."""

    files_total: int = 0
    files_done: int = 0
    chunks_to_embed: int = 0
    chunks_embedded: int = 0
    failed: list[FileFailure] = field(default_factory=list)


Loader = Callable[[Path, str], list[Document]]


@dataclass(frozen=True)
class SourceFile:
    """A file to ingest and the names it is recorded under, now and by earlier versions."""

    path: Path
    source: str  # the ingested folder's name, then the path inside it: "data/faq_en.csv"
    legacy: str  # relative to the working directory when inside it, else absolute (versions before this one)


@dataclass
class Discovery:
    files: list[SourceFile] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)  # what was ingested, as sources: unseen documents under it go
    legacy_scopes: list[str] = field(default_factory=list)  # the same as earlier versions named them, if different
    legacy_sources: set[str] = field(default_factory=set)  # the files' names as earlier versions recorded them
    failures: list[FileFailure] = field(default_factory=list)

    def covers(self, source: str) -> bool:
        """Whether a stored document's `source` belongs to what is ingested now, under today's name or the one
        earlier versions gave it: such a document not loaded again is gone (or renamed, as a file recorded by
        its absolute path now is by its folder-relative name).

        >>> found = Discovery(scopes=["data"], legacy_sources={"/srv/data/a.md"})
        >>> found.covers("data/old.md"), found.covers("/srv/data/a.md"), found.covers("other/a.md")
        (True, True, False)
        """
        return source in self.legacy_sources or in_scope(source, self.scopes) or in_scope(source, self.legacy_scopes)


def source_name(file: Path | str, folder: Path | str) -> str:
    """How `file`, found in the ingested `folder`, is recorded: the folder's name, then the path inside it,
    wherever the folder lies (a server path never reaches a citation).

    >>> source_name("/srv/app/data/faq_en.csv", "/srv/app/data"), source_name("data/zh/a.md", "data/")
    ('data/faq_en.csv', 'data/zh/a.md')
    """
    inside = Path(os.path.abspath(file)).relative_to(os.path.abspath(folder))
    return (Path(os.path.abspath(folder)).name / inside).as_posix()


def legacy_source_name(path: Path | str) -> str:
    """How versions before this one recorded a file: relative to the working directory when inside it,
    else absolute. Documents recorded that way are replaced when their files are ingested again."""
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return absolute.as_posix()


def discover(paths: Iterable[Path | str]) -> Discovery:
    """Files to load under `paths` (hidden files and folders skipped), the source scopes, and failures.

    A file given on its own is recorded as part of its folder (`data/faq_en.csv`), so ingesting it alone
    updates the same document that ingesting its folder made. Two different folders with the same name would
    record their files under the same sources: that raises `ConfigurationError`.
    """
    found = Discovery()
    roots: dict[str, str] = {}  # folder name -> the folder it stands for in this run
    seen: set[str] = set()  # absolute paths: a file inside two given folders is loaded once
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            folder, files = path, _walk(path)
        elif path.exists() or path.is_symlink():
            folder, files = path.parent, [path]
        else:
            found.failures.append(FileFailure(str(path), "no such file or directory"))
            continue
        _claim_name(roots, folder)
        scope = source_name(path, folder)
        found.scopes.append(scope)
        if legacy_source_name(path) not in (scope, "."):  # "." would cover every relative source
            found.legacy_scopes.append(legacy_source_name(path))
        for file in files:
            absolute = os.path.abspath(file)
            if absolute not in seen:
                seen.add(absolute)
                found.files.append(SourceFile(file, source_name(file, folder), legacy_source_name(file)))
                found.legacy_sources.add(found.files[-1].legacy)
    return found


def _walk(folder: Path) -> list[Path]:
    files: list[Path] = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files.extend(Path(root) / name for name in sorted(names) if not name.startswith((".", "~$")))
    return files


def _claim_name(roots: dict[str, str], folder: Path) -> None:
    """Record that `folder`'s name stands for it in this run; a different folder of the same name is an error."""
    absolute = os.path.abspath(folder)
    name = Path(absolute).name
    other = roots.setdefault(name, absolute)
    if other != absolute:
        raise ConfigurationError(
            f"Two different folders are named {name!r} ({other} and {absolute}); sources are recorded by "
            f"folder name, so their files would overwrite each other - rename one of them, or ingest them "
            f"into separate knowledge bases with --kb"
        )


def in_scope(source: str, scopes: Sequence[str]) -> bool:
    for scope in scopes:
        if scope == ".":
            if not source.startswith(("/", "../")):
                return True
        elif source == scope or source.startswith(scope.rstrip("/") + "/"):
            return True
    return False


def ingest(
    paths: Sequence[Path | str],
    kb_dir: Path | str,
    embedder: Embedder,
    settings: Settings,
    *,
    progress: bool = False,
    on_progress: Callable[[IngestProgress], None] | None = None,
    loader: Loader | None = None,
) -> IngestReport:
    """Bring the knowledge base at `kb_dir` in step with the files under `paths`.

    `on_progress` is called after each file is loaded and each group of chunks embedded; `loader` turns one
    file into documents (default: in this process, within the settings' size and element limits; a sandboxed one
    also bounds time and memory per file: ingest.sandbox)."""
    if loader is None:
        loader = functools.partial(load_file, limits=FileLimits.from_settings(settings))
    started = time.perf_counter()
    report = IngestReport()
    encoding = get_encoding(settings.tokenizer_encoding)
    parts = (
        PIPELINE_VERSION,
        settings.tokenizer_encoding,
        settings.chunk_tokens,
        settings.chunk_overlap,
        embedder.name,
    )
    salt = "/".join(str(p) for p in parts)
    found = discover(paths)  # before the knowledge base is created: a refused set of folders leaves nothing behind

    kb = KnowledgeBase.create(
        kb_dir,
        embedding_model=embedder.name,
        dimension=embedder.dimension,
        index_type=settings.index_type,
        ef_search=settings.hnsw_ef_search,
        nprobe=settings.ivf_nprobe,
    )
    status = IngestProgress(files_total=len(found.files), failed=report.failed)

    def tell() -> None:
        if on_progress is not None:
            on_progress(status)

    with kb, kb.write_lock():
        report.failed.extend(found.failures)
        known = kb.document_hashes()
        seen: set[str] = set()
        kept_sources: set[str] = set()  # sources whose file failed: their documents stay as they were
        pending: list[tuple[Document, str, list[Chunk]]] = []

        for entry in found.files:
            file, source = entry.path, entry.source
            status.files_done += 1
            if not is_supported(file) and file.suffix.lower() in {"", ".tmp", ".bak", ".swp", ".lock"}:
                continue  # editor and system leftovers are not documents
            try:
                documents = loader(file, source)
            except LoaderError as exc:
                report.failed.append(FileFailure(str(file), exc.reason))
                kept_sources.update((source, entry.legacy))
                tell()
                continue
            tell()
            changed: list[tuple[Document, str, list[Chunk], bool]] = []  # (document, hash, chunks, new)
            for doc in documents:
                if doc.doc_id in seen:
                    continue
                seen.add(doc.doc_id)
                content_hash = doc.content_hash(salt)
                previous = known.get(doc.doc_id)
                if previous is not None and previous[1] == content_hash:
                    report.unchanged += 1
                    continue
                chunks = chunk_document(doc, settings.chunk_tokens, settings.chunk_overlap, encoding)
                changed.append((doc, content_hash, chunks, previous is None))
            made = sum(len(chunks) for _, _, chunks, _ in changed)
            if made > settings.ingest_max_chunks:  # one file must not occupy the embedder for hours
                report.failed.append(
                    FileFailure(
                        str(file),
                        f"makes {made} chunks, more than RAG_INGEST_MAX_CHUNKS={settings.ingest_max_chunks} - split "
                        f"the file or raise the limit",
                    )
                )
                kept_sources.update((source, entry.legacy))
                seen.difference_update(doc.doc_id for doc, _, _, _ in changed)
                continue
            for doc, content_hash, chunks, new in changed:
                report.added += new
                report.updated += not new
                pending.append((doc, content_hash, chunks))

        deletions = [
            doc_id
            for doc_id, (source, _) in known.items()
            if doc_id not in seen and source not in kept_sources and found.covers(source)
        ]
        report.removed = len(deletions)

        updates = _embed(pending, kb, embedder, report, progress, status, tell)
        kb.apply(Changeset(upserts=updates, deletions=deletions))
        report.chunks_total = kb.index.size
        if _needs_calibration(kb, report, settings):
            kb.set_fusion_calibration(_calibrate(kb, embedder, settings))
    report.seconds = time.perf_counter() - started
    return report


def _needs_calibration(kb: KnowledgeBase, report: IngestReport, settings: Settings) -> bool:
    """Measure again when never measured or when a good share of the documents changed (it costs embedding
    a few hundred short texts, too much to repeat for every one-file update)."""
    if not settings.hybrid_adaptive:
        return False
    changed = report.added + report.updated + report.removed
    documents = changed + report.unchanged
    return changed > 0 and (kb.fusion_calibration() is None or changed >= settings.fusion_recalibrate_share * documents)


def _calibrate(kb: KnowledgeBase, embedder: Embedder, settings: Settings) -> FusionCalibration | None:
    """Pseudo-questions from chunks spread evenly over the knowledge base (twice as many chunks as questions
    wanted: some chunks yield none)."""
    sample = sample_ids(kb.store.chunk_ids(), 2 * settings.fusion_calibration_questions)
    chunks = kb.chunks(sample)
    return calibrate(
        [chunks[i] for i in sample if i in chunks],
        embedder,
        limit=settings.fusion_calibration_questions,
        prior=settings.hybrid_dense_weight,
        shrink=settings.fusion_calibration_shrink,
        min_questions=settings.fusion_calibration_min_questions,
    )


def _embed(
    pending: list[tuple[Document, str, list[Chunk]]],
    kb: KnowledgeBase,
    embedder: Embedder,
    report: IngestReport,
    progress: bool,
    status: IngestProgress,
    tell: Callable[[], None],
) -> list[DocumentUpdate]:
    reusable = kb.stored_vectors([doc.doc_id for doc, _, _ in pending])
    vectors: list[list[np.ndarray | None]] = []
    todo: list[tuple[int, int, str]] = []  # (document index, chunk index, text)
    for d, (doc, _, chunks) in enumerate(pending):
        row: list[np.ndarray | None] = []
        for c, chunk in enumerate(chunks):
            old = reusable.get((doc.doc_id, chunk.text_hash()))
            row.append(old)
            if old is None:
                todo.append((d, c, chunk.embedding_text()))
        vectors.append(row)
    report.chunks_reused = sum(len(c) for _, _, c in pending) - len(todo)
    report.chunks_embedded = len(todo)
    status.chunks_to_embed = len(todo)
    tell()

    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="chunk", desc="embedding", dynamic_ncols=True)
    try:
        for start in range(0, len(todo), EMBED_GROUP):
            group = todo[start : start + EMBED_GROUP]
            embedded = embedder.embed([text for _, _, text in group])
            for (d, c, _), vector in zip(group, embedded, strict=True):
                vectors[d][c] = vector
            status.chunks_embedded += len(group)
            tell()
            if bar is not None:
                bar.update(len(group))
    finally:
        if bar is not None:
            bar.close()

    dim = embedder.dimension
    return [
        DocumentUpdate(
            document=doc,
            content_hash=content_hash,
            chunks=chunks,
            # every slot is filled by now: reused above or just embedded
            vectors=np.vstack(cast(list[np.ndarray], vectors[d])) if chunks else np.zeros((0, dim), np.float32),
        )
        for d, (doc, content_hash, chunks) in enumerate(pending)
    ]
