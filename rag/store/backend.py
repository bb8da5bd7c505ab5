"""Where one knowledge base's rows and indexes live: the seam between `KnowledgeBase` (what a knowledge base does:
atomic changes, generations, search) and its storage.

    FolderBackend(path)              a folder: chunks.sqlite and one FAISS + BM25 file pair per generation
    PostgresBackend (rag.store.postgres)   tables in PostgreSQL, vectors in pgvector, BM25 rebuilt per replica

A backend gives the row store (`ChunkRows`, the same contract on both), builds and loads the indexes of a
generation, makes a generation durable before the manifest naming it commits, and holds the writer lock.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, cast

import numpy as np

from rag.core.errors import KnowledgeBaseCorrupt, KnowledgeBaseLocked
from rag.core.types import Chunk, Document, Filters
from rag.store.calibration import FusionCalibration
from rag.store.chunk_store import DB_NAME, ChunkStore, Manifest, SourceSummary
from rag.store.generations import load_generation, remove_other_generations, write_generation
from rag.store.lexical_index import BM25Index, LexicalIndex
from rag.store.vector_index import FaissVectorIndex, IndexType, VectorIndex


@dataclass(frozen=True)
class SearchParams:
    """How hard an approximate vector index searches: HNSW's candidate list, IVF's probed lists."""

    ef_search: int = 128
    nprobe: int = 16


class ChunkRows(Protocol):
    """Documents, chunks (text, metadata, vector, BM25 tokens) and the manifest of one knowledge base. Writes happen
    inside `transaction()`; readers outside it see the last committed state."""

    def close(self) -> None: ...
    def transaction(self) -> AbstractContextManager[None]: ...
    def snapshot(self) -> AbstractContextManager[None]:
        """Reads on this thread see one committed version until the block ends (where the store can promise it)."""
        ...

    def manifest(self) -> Manifest: ...
    def generation(self) -> int | None: ...
    def write_manifest(self, m: Manifest) -> None: ...
    def lexical_version(self) -> str: ...
    def set_lexical_version(self, version: str = ...) -> None: ...
    def fusion_calibration(self) -> FusionCalibration | None: ...
    def set_fusion_calibration(self, calibration: FusionCalibration | None) -> None: ...
    def document_hashes(self) -> dict[str, tuple[str, str]]: ...
    def stored_vectors(self, doc_ids: list[str]) -> dict[tuple[str, str], np.ndarray]: ...
    def chunks(self, ids: list[int]) -> dict[int, Chunk]: ...
    def all_chunks(self) -> list[Chunk]: ...
    def vectors(self, ids: list[int], dimension: int) -> np.ndarray: ...
    def all_vectors(self, dimension: int) -> tuple[np.ndarray, np.ndarray]: ...
    def all_lexical_tokens(self) -> tuple[list[int], list[list[str]]]: ...
    def retokenize(self) -> None: ...
    def chunk_ids(self, doc_ids: Sequence[str] | None = None) -> list[int]: ...
    def allowed_ids(self, filters: Filters) -> np.ndarray: ...
    def sources(self) -> list[SourceSummary]: ...
    def source_doc_ids(self, source: str) -> list[str]: ...
    def source_chunks(self, source: str) -> list[Chunk]: ...
    def counts(self) -> dict[str, int]: ...
    def delete_documents(self, doc_ids: Sequence[str]) -> None: ...
    def next_chunk_id(self) -> int: ...
    def insert_document(
        self, doc: Document, content_hash: str, chunks: Sequence[Chunk], vectors: np.ndarray
    ) -> None: ...
    def set_next_chunk_id(self, value: int) -> None: ...


class KnowledgeBaseBackend(Protocol):
    @property
    def name(self) -> str:
        """The knowledge base's id (a folder's name, a row's key)."""
        ...

    @property
    def location(self) -> str:
        """Where it is, for messages (a folder, or a database and id; never a password)."""
        ...

    def exists(self) -> bool: ...
    def connect(self, *, create: bool = False) -> ChunkRows: ...
    def index_type(self, requested: IndexType) -> str:
        """The index type a knowledge base asked for `requested` gets here (recorded in its manifest)."""
        ...

    def build_index(
        self, rows: ChunkRows, kind: str, dimension: int, ids: np.ndarray, vectors: np.ndarray, search: SearchParams
    ) -> VectorIndex: ...
    def load(self, rows: ChunkRows, manifest: Manifest, search: SearchParams) -> tuple[VectorIndex, LexicalIndex]:
        """Both indexes of the committed generation named by `manifest`; KnowledgeBaseCorrupt if unreadable."""
        ...

    def save(self, generation: int, index: VectorIndex, lexical: LexicalIndex) -> None:
        """Make a generation's indexes durable (inside the transaction that names it)."""
        ...

    def cleanup(self, keep: int) -> None:
        """Remove what generations other than `keep` left behind."""
        ...

    def write_lock(self) -> AbstractContextManager[None]: ...
    def close(self) -> None: ...


class FolderBackend:
    """A knowledge base in one folder (see rag.store.knowledge_base)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    @property
    def name(self) -> str:
        return self.path.resolve().name

    @property
    def location(self) -> str:
        return str(self.path)

    def exists(self) -> bool:
        return (self.path / DB_NAME).is_file()

    def connect(self, *, create: bool = False) -> ChunkRows:
        if create:
            self.path.mkdir(parents=True, exist_ok=True)
        return ChunkStore.connect(self.path, create=create)

    def index_type(self, requested: IndexType) -> str:
        return requested

    def build_index(
        self, rows: ChunkRows, kind: str, dimension: int, ids: np.ndarray, vectors: np.ndarray, search: SearchParams
    ) -> VectorIndex:
        return FaissVectorIndex.build(
            faiss_index_type(kind), dimension, ids, vectors, ef_search=search.ef_search, nprobe=search.nprobe
        )

    def load(self, rows: ChunkRows, manifest: Manifest, search: SearchParams) -> tuple[VectorIndex, LexicalIndex]:
        return load_generation(
            self.path,
            manifest.generation,
            faiss_index_type(manifest.index_type),
            manifest.dimension,
            ef_search=search.ef_search,
            nprobe=search.nprobe,
        )

    def save(self, generation: int, index: VectorIndex, lexical: LexicalIndex) -> None:
        if not isinstance(index, FaissVectorIndex):
            raise TypeError(f"a knowledge base in a folder keeps FAISS indexes, not {type(index).__name__}")
        write_generation(self.path, generation, index, lexical)

    def cleanup(self, keep: int) -> None:
        remove_other_generations(self.path, keep=keep)

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

    def close(self) -> None:
        """Nothing to close: a folder holds no connection (its rows' store is closed by the knowledge base)."""


def lexical_from_rows(rows: ChunkRows) -> BM25Index:
    """The BM25 index of every stored chunk, from the tokens kept beside each."""
    return BM25Index.build(*rows.all_lexical_tokens())


def faiss_index_type(kind: str) -> IndexType:
    if kind not in ("flat", "hnsw", "ivf", "ivfpq"):
        raise KnowledgeBaseCorrupt(f"unknown index type {kind!r} in the manifest - re-ingest into a new --kb directory")
    return cast(IndexType, kind)
