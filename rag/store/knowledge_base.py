"""The knowledge base on disk: one directory holding

    chunks.sqlite          documents, chunks and the manifest (rag.store.chunk_store)
    index-<gen>.faiss      the vector index of the committed generation (rag.store.generations)
    bm25-<gen>.npz         the lexical index of the same generation
    .lock                  held by the one process writing

Atomicity: a change is applied inside one SQLite transaction; the new index files are written and fsynced
under a new generation name *before* that transaction commits, and the old files are deleted only after.
A process killed at any moment leaves either the old manifest pointing at the old (intact) index files, or
the new manifest pointing at the new (complete) ones. Stray files of unfinished generations are removed on
the next write.
"""

from __future__ import annotations

import fcntl
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from rag.core.errors import EmbeddingModelMismatch, KnowledgeBaseCorrupt, KnowledgeBaseLocked, KnowledgeBaseNotFound
from rag.core.types import Chunk, Document, Filters
from rag.store.calibration import FusionCalibration
from rag.store.chunk_store import DB_NAME, ChunkStore, Manifest, SourceSummary
from rag.store.generations import load_generation, remove_other_generations, write_generation
from rag.store.lexical_index import BM25Index, LexicalIndex
from rag.store.vector_index import FaissVectorIndex, IndexType, VectorIndex
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
    """Open with `KnowledgeBase.open(path)` (read) or `KnowledgeBase.create(path, ...)` (new or existing, write)."""

    def __init__(
        self,
        path: Path,
        store: ChunkStore,
        manifest: Manifest,
        index: VectorIndex,
        lexical: LexicalIndex,
        *,
        ef_search: int = 128,
        nprobe: int = 16,
    ):
        self.path = path
        self.store = store
        self.manifest = manifest
        self.index = index
        self.lexical = lexical
        self._swap = threading.Lock()  # one refresh or write replaces the indexes at a time
        self._unreadable: int | None = None  # a committed generation whose files could not be read
        self._ef_search, self._nprobe = ef_search, nprobe

    # ---- opening -------------------------------------------------------------------------------------
    @staticmethod
    def exists(path: Path | str) -> bool:
        return (Path(path) / DB_NAME).is_file()

    @classmethod
    def counts_at(cls, path: Path | str) -> dict[str, int]:
        """Documents, files and chunks of the knowledge base at `path` (zeros before anything was ingested),
        read without loading its indexes."""
        if not cls.exists(path):
            return {"documents": 0, "files": 0, "chunks": 0}
        store = ChunkStore.connect(Path(path))
        try:
            return store.counts()
        finally:
            store.close()

    @classmethod
    def open(
        cls, path: Path | str, *, embedding_model: str | None = None, ef_search: int = 128, nprobe: int = 16
    ) -> KnowledgeBase:
        """Open an existing knowledge base; with `embedding_model`, refuse one built with another model."""
        path = Path(path)
        if not cls.exists(path):
            raise KnowledgeBaseNotFound(path)
        store = ChunkStore.connect(path)
        try:
            manifest = store.manifest()
            if embedding_model is not None and embedding_model != manifest.embedding_model:
                raise EmbeddingModelMismatch(path, manifest.embedding_model, manifest.dimension, embedding_model)
            index, lexical = cls._load(path, manifest, ef_search, nprobe)
        except BaseException:
            store.close()
            raise
        return cls(path, store, manifest, index, lexical, ef_search=ef_search, nprobe=nprobe)

    @classmethod
    def create(
        cls,
        path: Path | str,
        *,
        embedding_model: str,
        dimension: int,
        index_type: IndexType = "flat",
        ef_search: int = 128,
        nprobe: int = 16,
    ) -> KnowledgeBase:
        """Open for writing, creating an empty knowledge base if none exists; the model must match."""
        path = Path(path)
        if cls.exists(path):
            kb = cls.open(path, ef_search=ef_search, nprobe=nprobe)
            m = kb.manifest
            if m.embedding_model != embedding_model or m.dimension != dimension:
                kb.close()
                raise EmbeddingModelMismatch(path, m.embedding_model, m.dimension, embedding_model, dimension)
            if m.index_type != index_type:
                kb._rebuild_index(index_type)
            if kb.store.lexical_version() != LEXICAL_VERSION:
                kb._retokenize()
            return kb
        path.mkdir(parents=True, exist_ok=True)
        store = ChunkStore.connect(path, create=True)
        manifest = Manifest(embedding_model, dimension, index_type, generation=0)
        empty = np.zeros(0, np.int64), np.zeros((0, dimension), np.float32)
        index = FaissVectorIndex.build(index_type, dimension, *empty, ef_search=ef_search, nprobe=nprobe)
        lexical = BM25Index.build([], [])
        with store.transaction():
            write_generation(path, 0, index, lexical)
            store.write_manifest(manifest)
            store.set_lexical_version()
        return cls(path, store, manifest, index, lexical, ef_search=ef_search, nprobe=nprobe)

    def refresh(self) -> bool:
        """Pick up a newer generation committed by another process or thread (`rag ingest` or an ingest job while
        serving). A writer committing yet another generation meanwhile deletes the files of the one just named:
        then the newest is read again, and if that keeps failing the loaded generation goes on serving."""
        generation = self.store.generation()
        if generation is None or generation in (self.manifest.generation, self._unreadable):
            return False
        with self._swap:
            for attempt in range(_REFRESH_ATTEMPTS):
                manifest = self.store.manifest()
                try:
                    index, lexical = self._load(self.path, manifest, self._ef_search, self._nprobe)
                except (KnowledgeBaseCorrupt, OSError, RuntimeError):  # faiss reports a vanished file as RuntimeError
                    if attempt + 1 == _REFRESH_ATTEMPTS:
                        self._unreadable = generation  # not tried again until another one commits
                        log.warning(
                            "%s: generation %s could not be loaded; serving %s",
                            self.path,
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

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- reading -------------------------------------------------------------------------------------
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
            "path": str(self.path),
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
                f"{self.path}: indexes hold {self.index.size} vectors and {self.lexical.size} BM25 rows but "
                f"{stored} chunks are stored - re-ingest into a new --kb directory"
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
    def write_lock(self) -> Iterator[None]:
        """Exclusive writer lock; a second ingest into the same directory fails fast with a clear message."""
        handle = open(self.path / ".lock", "w")
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise KnowledgeBaseLocked(
                    f"Another process is writing to the knowledge base at {self.path} - wait for it to finish"
                ) from None
            yield
        finally:
            handle.close()

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
                    lexical = BM25Index.build(*store.all_lexical_tokens())
                    manifest = self._commit_generation(index, lexical, self.manifest.index_type)
            except BaseException:
                # the in-memory exact index may hold half-applied changes: reload the committed one
                self.index, self.lexical = self._load(self.path, self.manifest, self._ef_search, self._nprobe)
                remove_other_generations(self.path, keep=self.manifest.generation)
                raise
            self.index, self.lexical, self.manifest = index, lexical, manifest
        remove_other_generations(self.path, keep=manifest.generation)

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
        """Write the next generation's files, then name it in the manifest (inside the open transaction)."""
        m = self.manifest
        manifest = Manifest(m.embedding_model, m.dimension, kind, m.generation + 1)
        write_generation(self.path, manifest.generation, index, lexical)
        self.store.write_manifest(manifest)
        return manifest

    def _build_from_rows(self, kind: str) -> VectorIndex:
        ids, vectors = self.store.all_vectors(self.manifest.dimension)
        return FaissVectorIndex.build(
            _index_type(kind), self.manifest.dimension, ids, vectors, ef_search=self._ef_search, nprobe=self._nprobe
        )

    def _rebuild_index(self, kind: IndexType) -> None:
        """Switch index type (flat/hnsw/ivf): rebuilt from stored vectors, committed like any change."""
        with self._swap:
            with self.store.transaction():
                index = self._build_from_rows(kind)
                manifest = self._commit_generation(index, self.lexical, kind)
            self.index, self.manifest = index, manifest
        remove_other_generations(self.path, keep=manifest.generation)

    def _retokenize(self) -> None:
        """Re-derive the BM25 tokens of every stored chunk after the tokenizer changed, committed like any change."""
        with self._swap:
            with self.store.transaction():
                self.store.retokenize()
                lexical = BM25Index.build(*self.store.all_lexical_tokens())
                manifest = self._commit_generation(self.index, lexical, self.manifest.index_type)
            self.lexical, self.manifest = lexical, manifest
        remove_other_generations(self.path, keep=manifest.generation)

    @staticmethod
    def _load(path: Path, manifest: Manifest, ef_search: int, nprobe: int) -> tuple[VectorIndex, LexicalIndex]:
        return load_generation(
            path,
            manifest.generation,
            _index_type(manifest.index_type),
            manifest.dimension,
            ef_search=ef_search,
            nprobe=nprobe,
        )


def _index_type(kind: str) -> IndexType:
    if kind not in ("flat", "hnsw", "ivf"):
        raise KnowledgeBaseCorrupt(f"unknown index type {kind!r} in the manifest - re-ingest into a new --kb directory")
    return cast(IndexType, kind)
