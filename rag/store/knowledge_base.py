"""A knowledge base: documents, chunks, their vectors and BM25 tokens, and the indexes over them, changed
atomically one generation at a time. Where it is kept is its backend's business (rag.store.backend); in a
folder (the default) that is one directory holding

    chunks.sqlite          documents, chunks and the manifest (rag.store.chunk_store)
    index-<gen>.faiss      the vector index of the committed generation (rag.store.generations)
    bm25-<gen>.npz         the lexical index of the same generation
    .lock                  held by the one process writing

Atomicity: a change is applied inside one SQLite transaction; the new index files are written and fsynced
under a new generation name *before* that transaction commits, and the old files are deleted only after.
A process killed at any moment leaves either the old manifest pointing at the old (intact) index files, or
the new manifest pointing at the new (complete) ones. Stray files of unfinished generations are removed on
the next write. In PostgreSQL (rag.store.postgres) the rows, vectors and manifest change in one transaction and
each server rebuilds its BM25 index from the stored tokens when it sees a newer generation.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.core.errors import EmbeddingModelMismatch, KnowledgeBaseCorrupt, KnowledgeBaseLocked, KnowledgeBaseNotFound
from rag.core.types import Chunk, Document, Filters
from rag.store.backend import ChunkRows, FolderBackend, KnowledgeBaseBackend, SearchParams, lexical_from_rows
from rag.store.calibration import FusionCalibration
from rag.store.chunk_store import Manifest, SourceSummary
from rag.store.lexical_index import BM25Index, LexicalIndex
from rag.store.vector_index import IndexType, VectorIndex
from rag.text.lexical import LEXICAL_VERSION, bm25_tokens


@dataclass
class DocumentUpdate:
    """A new or changed document with its chunks and their vectors (same order)."""

    document: Document
    content_hash: str
    chunks: list[Chunk]
    vectors: np.ndarray


@dataclass
class Changeset:
    upserts: list[DocumentUpdate] = field(default_factory=list)
    deletions: list[str] = field(default_factory=list)  # doc ids

    def is_empty(self) -> bool:
        return not self.upserts and not self.deletions


_REFRESH_ATTEMPTS = 3
log = logging.getLogger("rag.store.knowledge_base")


class KnowledgeBase:
    """Open with `KnowledgeBase.open(where)` (read) or `KnowledgeBase.create(where, ...)` (new or existing, write);
    `where` is a folder or a backend (rag.store.backend)."""

    def __init__(
        self,
        backend: KnowledgeBaseBackend,
        store: ChunkRows,
        manifest: Manifest,
        index: VectorIndex,
        lexical: LexicalIndex,
        *,
        ef_search: int = 128,
        nprobe: int = 16,
    ):
        self.backend = backend
        self.store = store
        self.manifest = manifest
        self.index = index
        self.lexical = lexical
        self._swap = threading.Lock()  # one refresh or write replaces the indexes at a time
        self._unreadable: int | None = None  # a committed generation whose indexes could not be read
        self._search = SearchParams(ef_search, nprobe)

    @property
    def name(self) -> str:
        """The knowledge base's id (its folder's name, or its key in the database)."""
        return self.backend.name

    @property
    def location(self) -> str:
        """Where it is kept, for messages."""
        return self.backend.location

    # ---- opening -------------------------------------------------------------------------------------
    @staticmethod
    def exists(where: Where) -> bool:
        return as_backend(where).exists()

    @classmethod
    def counts_at(cls, where: Where) -> dict[str, int]:
        """Documents, files and chunks of the knowledge base at `where` (zeros before anything was ingested),
        read without loading its indexes."""
        backend = as_backend(where)
        if not backend.exists():
            return {"documents": 0, "files": 0, "chunks": 0}
        store = backend.connect()
        try:
            return store.counts()
        finally:
            store.close()

    @classmethod
    def open(
        cls, where: Where, *, embedding_model: str | None = None, ef_search: int = 128, nprobe: int = 16
    ) -> KnowledgeBase:
        """Open an existing knowledge base; with `embedding_model`, refuse one built with another model."""
        backend = as_backend(where)
        if not backend.exists():
            raise KnowledgeBaseNotFound(backend.location)
        store = backend.connect()
        try:
            manifest = store.manifest()
            if embedding_model is not None and embedding_model != manifest.embedding_model:
                raise EmbeddingModelMismatch(
                    backend.location, manifest.embedding_model, manifest.dimension, embedding_model
                )
            index, lexical = backend.load(store, manifest, SearchParams(ef_search, nprobe))
        except BaseException:
            store.close()
            raise
        return cls(backend, store, manifest, index, lexical, ef_search=ef_search, nprobe=nprobe)

    @classmethod
    def create(
        cls,
        where: Where,
        *,
        embedding_model: str,
        dimension: int,
        index_type: IndexType = "flat",
        ef_search: int = 128,
        nprobe: int = 16,
    ) -> KnowledgeBase:
        """Open for writing, creating an empty knowledge base if none exists; the model must match."""
        backend = as_backend(where)
        kind = backend.index_type(index_type)
        if backend.exists():
            kb = cls.open(backend, ef_search=ef_search, nprobe=nprobe)
            m = kb.manifest
            if m.embedding_model != embedding_model or m.dimension != dimension:
                kb.close()
                raise EmbeddingModelMismatch(
                    backend.location, m.embedding_model, m.dimension, embedding_model, dimension
                )
            if m.index_type != kind:
                kb._rebuild_index(kind)
            if kb.store.lexical_version() != LEXICAL_VERSION:
                kb._retokenize()
            return kb
        store = backend.connect(create=True)
        manifest = Manifest(embedding_model, dimension, kind, generation=0)
        search = SearchParams(ef_search, nprobe)
        try:
            empty = np.zeros(0, np.int64), np.zeros((0, dimension), np.float32)
            index = backend.build_index(store, kind, dimension, *empty, search)
            lexical = BM25Index.build([], [])
            with store.transaction():
                backend.save(0, index, lexical)
                store.write_manifest(manifest)
                store.set_lexical_version()
        except BaseException:
            store.close()
            raise
        return cls(backend, store, manifest, index, lexical, ef_search=ef_search, nprobe=nprobe)

    def refresh(self) -> bool:
        """Pick up a newer generation committed by another process or thread (`rag ingest` or an ingest job while
        serving). A writer committing yet another generation meanwhile may delete what the one just named needs:
        then the newest is read again, and if that keeps failing the loaded generation goes on serving."""
        generation = self.store.generation()
        if generation is None or generation in (self.manifest.generation, self._unreadable):
            return False
        with self._swap:
            if self.manifest.generation == generation:  # another thread loaded it while this one waited
                return False
            for attempt in range(_REFRESH_ATTEMPTS):
                manifest = self.store.manifest()
                try:
                    index, lexical = self.backend.load(self.store, manifest, self._search)
                except (KnowledgeBaseCorrupt, OSError, RuntimeError):  # faiss reports a vanished file as RuntimeError
                    if attempt + 1 == _REFRESH_ATTEMPTS:
                        self._unreadable = generation  # not tried again until another one commits
                        log.warning(
                            "%s: generation %s could not be loaded; serving %s",
                            self.location,
                            manifest.generation,
                            self.manifest.generation,
                            exc_info=True,
                        )
                        return False
                    continue
                self.index, self.lexical, self.manifest = index, lexical, manifest
                return True
        return False

    def close(self) -> None:
        self.store.close()
        self.backend.close()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- reading -------------------------------------------------------------------------------------
    def snapshot(self) -> AbstractContextManager[None]:
        """Reads on this thread see one committed version until the block ends (a retrieval: refresh, search,
        chunks)."""
        return self.store.snapshot()

    def document_hashes(self) -> dict[str, tuple[str, str]]:
        """doc_id -> (source, content_hash) for every document."""
        return self.store.document_hashes()

    def stored_vectors(self, doc_ids: list[str]) -> dict[tuple[str, str], np.ndarray]:
        """(doc_id, text_hash) -> vector for the chunks of these documents, to reuse on re-ingest."""
        return self.store.stored_vectors(doc_ids)

    def chunks(self, ids: list[int]) -> dict[int, Chunk]:
        """Chunks by id (ids not found are absent)."""
        return self.store.chunks(ids)

    def all_chunks(self) -> list[Chunk]:
        return self.store.all_chunks()

    def vectors(self, ids: list[int]) -> np.ndarray:
        """Stored vectors of these chunk ids (rows in the same order; zeros for unknown ids)."""
        return self.store.vectors(ids, self.manifest.dimension)

    def allowed_ids(self, filters: Filters) -> np.ndarray:
        """Ids of chunks passing the filters (source prefix, exact metadata values)."""
        return self.store.allowed_ids(filters)

    def sources(self) -> list[SourceSummary]:
        """Every ingested file: title, documents, chunks and when it was last ingested."""
        return self.store.sources()

    def source_chunks(self, source: str) -> list[Chunk]:
        return self.store.source_chunks(source)

    def stats(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "path": self.location,
            "embedding_model": m.embedding_model,
            "dimension": m.dimension,
            "index_type": m.index_type,
            "generation": m.generation,
            **self.store.counts(),
            "indexed_vectors": self.index.size,
            "lexical_chunks": self.lexical.size,
        }

    def check(self) -> None:
        """Raise KnowledgeBaseCorrupt unless the index holds exactly the stored chunks."""
        stored = len(self.store.chunk_ids())
        if stored != self.index.size or stored != self.lexical.size:
            raise KnowledgeBaseCorrupt(
                f"{self.location}: indexes hold {self.index.size} vectors and {self.lexical.size} BM25 rows but "
                f"{stored} chunks are stored - re-ingest into a new knowledge base"
            )

    def search(self, vectors: np.ndarray, k: int, filters: Filters | None = None) -> list[list[tuple[int, float]]]:
        """For each query vector, up to k (chunk id, score) pairs, best first."""
        scores, ids = self.index.search(vectors, k, self._allowed(filters))
        return [
            [(int(i), float(s)) for s, i in zip(srow, irow, strict=True) if i >= 0]
            for srow, irow in zip(scores, ids, strict=True)
        ]

    def lexical_search(self, query: str, k: int, filters: Filters | None = None) -> list[tuple[int, float]]:
        """Up to k (chunk id, BM25 score) pairs, best first."""
        return self.lexical.search(bm25_tokens(query), k, self._allowed(filters))

    def fusion_calibration(self) -> FusionCalibration | None:
        """How this knowledge base weighs dense against BM25 scores, measured on its own content at ingest.

        Read on every call (a one-row query) so a server picks up a calibration written after a new generation."""
        return self.store.fusion_calibration()

    def _allowed(self, filters: Filters | None) -> np.ndarray | None:
        return None if filters is None or filters.is_empty() else self.allowed_ids(filters)

    # ---- writing -------------------------------------------------------------------------------------
    @contextmanager
    def write_lock(self, wait: float = 0.0) -> Iterator[None]:
        """Exclusive writer lock. A second writer fails at once with a clear message, or after waiting up to `wait`
        seconds for the first (ingest jobs of servers sharing a database). Once held, the newest version is loaded:
        a writer that committed meanwhile is built upon, not overwritten."""
        deadline = time.monotonic() + wait
        with ExitStack() as held:
            while True:
                try:
                    held.enter_context(self.backend.write_lock())
                    break
                except KnowledgeBaseLocked:
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
            self.refresh()
            yield

    def apply(self, changes: Changeset) -> None:
        """Apply deletions and upserts atomically (see module docstring)."""
        if changes.is_empty():
            return
        store = self.store
        replaced = [u.document.doc_id for u in changes.upserts] + changes.deletions
        with self._swap:
            old_ids = store.chunk_ids(replaced)
            try:
                with store.transaction():
                    store.delete_documents(replaced)
                    new_ids, new_vectors = self._insert(changes.upserts)
                    if self.index.updatable:
                        index = self.index
                        index.remove(old_ids)
                        if new_ids:
                            index.add(np.asarray(new_ids, np.int64), np.vstack(new_vectors))
                    else:
                        index = self._build_from_rows(self.manifest.index_type)
                    lexical = lexical_from_rows(store)
                    manifest = self._commit_generation(index, lexical, self.manifest.index_type)
            except BaseException:
                # the in-memory exact index may hold half-applied changes: reload the committed version
                self._reload_committed()
                raise
            self.index, self.lexical, self.manifest = index, lexical, manifest
        self.backend.cleanup(keep=manifest.generation)

    def _reload_committed(self) -> None:
        """The indexes of the version committed now (after a change that failed half-way). If even that cannot be
        read, the loaded ones stay and the change's own error is the one reported."""
        try:
            manifest = self.store.manifest()
            self.index, self.lexical = self.backend.load(self.store, manifest, self._search)
        except Exception:
            log.warning("%s: the committed version could not be reloaded", self.location, exc_info=True)
            return
        self.manifest = manifest
        self.backend.cleanup(keep=manifest.generation)

    def remove_sources(self, sources: list[str]) -> int:
        """Delete every document ingested from these files, atomically; how many documents went."""
        doc_ids = [doc_id for source in sources for doc_id in self.store.source_doc_ids(source)]
        self.apply(Changeset(deletions=doc_ids))
        return len(doc_ids)

    def set_fusion_calibration(self, calibration: FusionCalibration | None) -> None:
        """Record the calibration measured on the current content (rag.store.calibration)."""
        with self.store.transaction():
            self.store.set_fusion_calibration(calibration)

    def _insert(self, upserts: list[DocumentUpdate]) -> tuple[list[int], list[np.ndarray]]:
        """Store the documents, giving their chunks fresh ids; the ids and vectors, in order."""
        next_id = self.store.next_chunk_id()
        new_ids: list[int] = []
        new_vectors: list[np.ndarray] = []
        for update in upserts:
            for chunk, vector in zip(update.chunks, update.vectors, strict=True):
                chunk.id = next_id
                next_id += 1
                new_ids.append(chunk.id)
                new_vectors.append(vector)
            self.store.insert_document(update.document, update.content_hash, update.chunks, update.vectors)
        self.store.set_next_chunk_id(next_id)
        return new_ids, new_vectors

    def _commit_generation(self, index: VectorIndex, lexical: LexicalIndex, kind: str) -> Manifest:
        """Make the next generation durable, then name it in the manifest (inside the open transaction)."""
        m = self.manifest
        if self.store.generation() != m.generation:
            raise KnowledgeBaseLocked(
                f"{self.location} was changed by another writer since it was loaded - nothing was committed; run "
                f"this again (writers hold `write_lock()`, which loads the newest version)"
            )
        manifest = Manifest(m.embedding_model, m.dimension, kind, m.generation + 1)
        self.backend.save(manifest.generation, index, lexical)
        self.store.write_manifest(manifest)
        return manifest

    def _build_from_rows(self, kind: str) -> VectorIndex:
        ids, vectors = self.store.all_vectors(self.manifest.dimension)
        return self.backend.build_index(self.store, kind, self.manifest.dimension, ids, vectors, self._search)

    def _rebuild_index(self, kind: str) -> None:
        """Switch index type (flat/hnsw/ivf): rebuilt from stored vectors, committed like any change."""
        with self._swap:
            with self.store.transaction():
                index = self._build_from_rows(kind)
                manifest = self._commit_generation(index, self.lexical, kind)
            self.index, self.manifest = index, manifest
        self.backend.cleanup(keep=manifest.generation)

    def _retokenize(self) -> None:
        """Re-derive the BM25 tokens of every stored chunk after the tokenizer changed, committed like any change."""
        with self._swap:
            with self.store.transaction():
                self.store.retokenize()
                lexical = lexical_from_rows(self.store)
                manifest = self._commit_generation(self.index, lexical, self.manifest.index_type)
            self.lexical, self.manifest = lexical, manifest
        self.backend.cleanup(keep=manifest.generation)


Where = Path | str | KnowledgeBaseBackend


def as_backend(where: Where) -> KnowledgeBaseBackend:
    """A folder (path) as its backend; a backend as itself."""
    return FolderBackend(where) if isinstance(where, (str, Path)) else where
