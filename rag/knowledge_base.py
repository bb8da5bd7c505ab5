"""The knowledge base on disk: one directory holding

    chunks.sqlite          documents, chunks (text, metadata, vectors), and the manifest table
    index-<gen>.faiss      the vector index of generation <gen> (named in the manifest)
    bm25-<gen>.npz         the lexical (BM25) index of the same generation
    .lock                  held by the one process writing

Atomicity: a change is applied inside one SQLite transaction; the new index file is written and fsynced
under a new generation name *before* that transaction commits, and the old file is deleted only after.
A process killed at any moment leaves either the old manifest pointing at the old (intact) index files, or
the new manifest pointing at the new (complete) ones. Stray files of unfinished generations are removed on
the next write.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from rag.errors import (
    EmbeddingModelMismatch,
    KnowledgeBaseCorrupt,
    KnowledgeBaseError,
    KnowledgeBaseLocked,
    KnowledgeBaseNotFound,
)
from rag.lexical import bm25_tokens
from rag.lexical_index import BM25Index
from rag.types import Chunk, Document, Filters
from rag.vector_index import FaissVectorIndex, IndexType

DB_NAME = "chunks.sqlite"
SCHEMA_VERSION = "2"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS manifest (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    doc_key TEXT NOT NULL,
    title TEXT NOT NULL,
    url TEXT,
    metadata TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    chunk_count INTEGER NOT NULL,
    ingested_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_source ON documents(source);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    position INTEGER NOT NULL,
    title TEXT NOT NULL,
    heading_path TEXT NOT NULL,
    page INTEGER,
    row INTEGER,
    url TEXT,
    metadata TEXT NOT NULL,
    text TEXT NOT NULL,
    token_count INTEGER NOT NULL,
    text_hash TEXT NOT NULL,
    vector BLOB NOT NULL,
    lexical TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE INDEX IF NOT EXISTS chunks_source ON chunks(source);
"""


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


@dataclass(frozen=True)
class Manifest:
    embedding_model: str
    dimension: int
    index_type: str
    generation: int
    schema_version: str = SCHEMA_VERSION


class KnowledgeBase:
    """Open with `KnowledgeBase.open(path)` (read) or `KnowledgeBase.create(path, ...)` (new or existing, write)."""

    def __init__(self, path: Path, conn: sqlite3.Connection, manifest: Manifest, index: FaissVectorIndex,
                 lexical: BM25Index, *, ef_search: int = 128, nprobe: int = 16):
        self.path = path
        self._conn = conn
        self.manifest = manifest
        self.index = index
        self.lexical = lexical
        self._lock = threading.Lock()  # one sqlite connection shared by threads of a server
        self._ef_search, self._nprobe = ef_search, nprobe

    # ---- opening -------------------------------------------------------------------------------------
    @staticmethod
    def exists(path: Path | str) -> bool:
        return (Path(path) / DB_NAME).is_file()

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        embedding_model: str | None = None,
        ef_search: int = 128,
        nprobe: int = 16,
    ) -> "KnowledgeBase":
        """Open an existing knowledge base; with `embedding_model`, refuse one built with another model."""
        path = Path(path)
        if not cls.exists(path):
            raise KnowledgeBaseNotFound(path)
        conn = _connect(path)
        manifest = _read_manifest(conn, path)
        if embedding_model is not None and embedding_model != manifest.embedding_model:
            conn.close()
            raise EmbeddingModelMismatch(path, manifest.embedding_model, manifest.dimension, embedding_model)
        index = _load_index(conn, path, manifest, ef_search, nprobe)
        lexical = _load_lexical(conn, path, manifest)
        return cls(path, conn, manifest, index, lexical, ef_search=ef_search, nprobe=nprobe)

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
    ) -> "KnowledgeBase":
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
            return kb
        path.mkdir(parents=True, exist_ok=True)
        conn = _connect(path)
        manifest = Manifest(embedding_model, dimension, index_type, generation=0)
        index = FaissVectorIndex.build(index_type, dimension, np.zeros(0, np.int64), np.zeros((0, dimension), np.float32), ef_search=ef_search, nprobe=nprobe)
        lexical = BM25Index.build([], [])
        with conn:
            conn.executescript(_SCHEMA)
            _write_index_file(index, path, 0)
            _write_lexical_file(lexical, path, 0)
            _write_manifest(conn, manifest)
        return cls(path, conn, manifest, index, lexical, ef_search=ef_search, nprobe=nprobe)

    def refresh(self) -> bool:
        """Pick up a newer generation committed by another process (e.g. `rag ingest` while serving)."""
        with self._lock:
            row = self._conn.execute("SELECT value FROM manifest WHERE key = 'generation'").fetchone()
            if row is None or int(row[0]) == self.manifest.generation:
                return False
            manifest = _read_manifest(self._conn, self.path)
            self.index = _load_index(self._conn, self.path, manifest, self._ef_search, self._nprobe)
            self.lexical = _load_lexical(self._conn, self.path, manifest)
            self.manifest = manifest
            return True

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "KnowledgeBase":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- reading -------------------------------------------------------------------------------------
    def document_hashes(self) -> dict[str, tuple[str, str]]:
        """doc_id -> (source, content_hash) for every document."""
        with self._lock:
            rows = self._conn.execute("SELECT doc_id, source, content_hash FROM documents").fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def stored_vectors(self, doc_ids: list[str]) -> dict[tuple[str, str], np.ndarray]:
        """(doc_id, text_hash) -> vector for the chunks of these documents, to reuse on re-ingest."""
        out: dict[tuple[str, str], np.ndarray] = {}
        with self._lock:
            for batch in _batches(doc_ids, 500):
                marks = ",".join("?" * len(batch))
                for doc_id, text_hash, blob in self._conn.execute(
                    f"SELECT doc_id, text_hash, vector FROM chunks WHERE doc_id IN ({marks})", batch
                ):
                    out[(doc_id, text_hash)] = np.frombuffer(blob, dtype=np.float32)
        return out

    def chunks(self, ids: list[int]) -> dict[int, Chunk]:
        """Chunks by id (ids not found are absent)."""
        out: dict[int, Chunk] = {}
        with self._lock:
            for batch in _batches(ids, 500):
                marks = ",".join("?" * len(batch))
                for row in self._conn.execute(
                    "SELECT id, doc_id, source, position, title, heading_path, page, row, url, metadata, text, token_count "
                    f"FROM chunks WHERE id IN ({marks})",
                    batch,
                ):
                    out[row[0]] = _row_to_chunk(row)
        return out

    def all_chunks(self) -> list[Chunk]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, doc_id, source, position, title, heading_path, page, row, url, metadata, text, token_count "
                "FROM chunks ORDER BY doc_id, position"
            ).fetchall()
        return [_row_to_chunk(r) for r in rows]

    def allowed_ids(self, filters: Filters) -> np.ndarray:
        """Ids of chunks passing the filters (source prefix, exact metadata values)."""
        clauses, params = [], []
        if filters.source_prefix:
            clauses.append("substr(source, 1, ?) = ?")
            params += [len(filters.source_prefix), filters.source_prefix]
        for key, value in filters.metadata.items():
            clauses.append("json_extract(metadata, ?) = ?")
            params += [_json_path(key), value if isinstance(value, (int, float, str)) else json.dumps(value)]
        where = " AND ".join(clauses) or "1"
        with self._lock:
            rows = self._conn.execute(f"SELECT id FROM chunks WHERE {where}", params).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def stats(self) -> dict[str, Any]:
        with self._lock:
            docs = self._conn.execute("SELECT count(*), count(DISTINCT source) FROM documents").fetchone()
            chunks = self._conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        m = self.manifest
        return {
            "path": str(self.path),
            "embedding_model": m.embedding_model,
            "dimension": m.dimension,
            "index_type": m.index_type,
            "generation": m.generation,
            "documents": docs[0],
            "files": docs[1],
            "chunks": chunks,
            "indexed_vectors": self.index.size,
            "lexical_chunks": self.lexical.size,
        }

    def check(self) -> None:
        """Raise KnowledgeBaseCorrupt unless the index holds exactly the stored chunks."""
        with self._lock:
            ids = {r[0] for r in self._conn.execute("SELECT id FROM chunks")}
        if len(ids) != self.index.size or len(ids) != self.lexical.size:
            raise KnowledgeBaseCorrupt(
                f"{self.path}: indexes hold {self.index.size} vectors and {self.lexical.size} BM25 rows but "
                f"{len(ids)} chunks are stored - "
                "re-ingest into a new --kb directory"
            )

    def search(self, vectors: np.ndarray, k: int, filters: Filters | None = None) -> list[list[tuple[int, float]]]:
        """For each query vector, up to k (chunk id, score) pairs, best first."""
        allowed = None if filters is None or filters.is_empty() else self.allowed_ids(filters)
        scores, ids = self.index.search(vectors, k, allowed)
        return [[(int(i), float(s)) for s, i in zip(srow, irow) if i >= 0] for srow, irow in zip(scores, ids)]

    def lexical_search(self, query: str, k: int, filters: Filters | None = None) -> list[tuple[int, float]]:
        """Up to k (chunk id, BM25 score) pairs, best first."""
        allowed = None if filters is None or filters.is_empty() else self.allowed_ids(filters)
        return self.lexical.search(bm25_tokens(query), k, allowed)

    def vectors(self, ids: list[int]) -> np.ndarray:
        """Stored vectors of these chunk ids (rows in the same order; zeros for unknown ids)."""
        out = np.zeros((len(ids), self.manifest.dimension), np.float32)
        position = {cid: i for i, cid in enumerate(ids)}
        with self._lock:
            for batch in _batches(ids, 500):
                marks = ",".join("?" * len(batch))
                for cid, blob in self._conn.execute(f"SELECT id, vector FROM chunks WHERE id IN ({marks})", batch):
                    out[position[cid]] = np.frombuffer(blob, dtype=np.float32)
        return out

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
        conn = self._conn
        replaced = [u.document.doc_id for u in changes.upserts] + changes.deletions
        with self._lock:
            old_ids = _chunk_ids_of(conn, replaced)
            conn.execute("BEGIN IMMEDIATE")
            try:
                for batch in _batches(replaced, 500):
                    marks = ",".join("?" * len(batch))
                    conn.execute(f"DELETE FROM chunks WHERE doc_id IN ({marks})", batch)
                    conn.execute(f"DELETE FROM documents WHERE doc_id IN ({marks})", batch)
                next_id = (conn.execute("SELECT max(id) FROM chunks").fetchone()[0] or 0) + 1
                # ids are never reused while the old generation may still be read
                next_id = max(next_id, int(_manifest_value(conn, "next_chunk_id", "1")))
                new_ids: list[int] = []
                new_vectors: list[np.ndarray] = []
                now = time.time()
                for update in changes.upserts:
                    doc = update.document
                    conn.execute(
                        "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?)",
                        (doc.doc_id, doc.source, doc.key, doc.title, doc.url, json.dumps(doc.metadata, ensure_ascii=False, default=str),
                         update.content_hash, len(update.chunks), now),
                    )
                    rows = []
                    for chunk, vector in zip(update.chunks, update.vectors):
                        chunk.id = next_id
                        next_id += 1
                        new_ids.append(chunk.id)
                        new_vectors.append(vector)
                        rows.append(_chunk_to_row(chunk, vector))
                    conn.executemany("INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
                conn.execute("INSERT OR REPLACE INTO manifest VALUES ('next_chunk_id', ?)", (str(next_id),))
                generation = self.manifest.generation + 1
                if self.index.updatable:
                    index = self.index
                    index.remove(old_ids)
                    if new_ids:
                        index.add(np.asarray(new_ids, np.int64), np.vstack(new_vectors))
                else:
                    index = self._build_from_rows(self.manifest.index_type)
                _write_index_file(index, self.path, generation)
                lexical = _build_lexical(conn)
                _write_lexical_file(lexical, self.path, generation)
                manifest = Manifest(self.manifest.embedding_model, self.manifest.dimension, self.manifest.index_type, generation)
                _write_manifest(conn, manifest)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                # the in-memory exact index may hold half-applied changes: reload the committed one
                self.index = _load_index(conn, self.path, self.manifest, self._ef_search, self._nprobe)
                _remove_stale_index_files(self.path, keep=self.manifest.generation)
                raise
            self.index, self.lexical, self.manifest = index, lexical, manifest
        _remove_stale_index_files(self.path, keep=generation)

    def _build_from_rows(self, kind: str) -> FaissVectorIndex:
        rows = self._conn.execute("SELECT id, vector FROM chunks ORDER BY id").fetchall()
        dim = self.manifest.dimension
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim) if rows else np.zeros((0, dim), np.float32)
        return FaissVectorIndex.build(kind, dim, ids, vectors, ef_search=self._ef_search, nprobe=self._nprobe)  # type: ignore[arg-type]

    def _rebuild_index(self, kind: IndexType) -> None:
        """Switch index type (flat/hnsw/ivf): rebuilt from stored vectors, committed like any change."""
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                index = self._build_from_rows(kind)
                generation = self.manifest.generation + 1
                _write_index_file(index, self.path, generation)
                _write_lexical_file(self.lexical, self.path, generation)
                manifest = Manifest(self.manifest.embedding_model, self.manifest.dimension, kind, generation)
                _write_manifest(conn, manifest)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self.index, self.manifest = index, manifest
        _remove_stale_index_files(self.path, keep=generation)


# ---- helpers ---------------------------------------------------------------------------------------------
def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path / DB_NAME, check_same_thread=False, isolation_level=None, timeout=30)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def _manifest_value(conn: sqlite3.Connection, key: str, default: str | None = None) -> str:
    row = conn.execute("SELECT value FROM manifest WHERE key = ?", (key,)).fetchone()
    if row is None:
        if default is None:
            raise KeyError(key)
        return default
    return row[0]


def _read_manifest(conn: sqlite3.Connection, path: Path) -> Manifest:
    try:
        values = dict(conn.execute("SELECT key, value FROM manifest").fetchall())
        return Manifest(
            embedding_model=values["embedding_model"],
            dimension=int(values["dimension"]),
            index_type=values["index_type"],
            generation=int(values["generation"]),
            schema_version=values.get("schema_version", SCHEMA_VERSION),
        )
    except (sqlite3.DatabaseError, KeyError, ValueError) as exc:
        conn.close()
        raise KnowledgeBaseCorrupt(
            f"{path / DB_NAME} is not a readable knowledge base ({exc}) - re-ingest into a new --kb directory"
        ) from exc


def _write_manifest(conn: sqlite3.Connection, m: Manifest) -> None:
    for key, value in (
        ("embedding_model", m.embedding_model),
        ("dimension", str(m.dimension)),
        ("index_type", m.index_type),
        ("generation", str(m.generation)),
        ("schema_version", m.schema_version),
    ):
        conn.execute("INSERT OR REPLACE INTO manifest VALUES (?, ?)", (key, value))


def _index_file(path: Path, generation: int) -> Path:
    return path / f"index-{generation}.faiss"


def _load_index(conn: sqlite3.Connection, path: Path, manifest: Manifest, ef_search: int, nprobe: int) -> FaissVectorIndex:
    file = _index_file(path, manifest.generation)
    if not file.is_file():
        raise KnowledgeBaseCorrupt(f"{file} is missing - re-ingest into a new --kb directory")
    index = FaissVectorIndex.load(file, manifest.index_type, ef_search=ef_search, nprobe=nprobe)  # type: ignore[arg-type]
    if index.dimension != manifest.dimension:
        raise KnowledgeBaseCorrupt(f"{file} has dimension {index.dimension}, manifest says {manifest.dimension}")
    return index


def _write_index_file(index: FaissVectorIndex, path: Path, generation: int) -> None:
    final = _index_file(path, generation)
    tmp = final.with_suffix(".faiss.tmp")
    index.save(tmp)
    _fsync_and_place(tmp, final, path)


def _fsync_and_place(tmp: Path, final: Path, path: Path) -> None:
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, final)
    dir_fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _lexical_file(path: Path, generation: int) -> Path:
    return path / f"bm25-{generation}.npz"


def lexical_text(chunk: Chunk) -> str:
    """What BM25 indexes: an FAQ row's question counts twice (its own field, weighted), then headings and text."""
    title = f"{chunk.title}\n{chunk.title}" if chunk.row is not None else chunk.title
    return "\n".join(p for p in (title, *chunk.heading_path, chunk.text) if p)


def _build_lexical(conn: sqlite3.Connection) -> BM25Index:
    rows = conn.execute("SELECT id, lexical FROM chunks ORDER BY id").fetchall()
    return BM25Index.build((r[0] for r in rows), (r[1].split(" ") if r[1] else [] for r in rows))


def _load_lexical(conn: sqlite3.Connection, path: Path, manifest: Manifest) -> BM25Index:
    file = _lexical_file(path, manifest.generation)
    if not file.is_file():
        raise KnowledgeBaseCorrupt(f"{file} is missing - re-ingest into a new --kb directory")
    return BM25Index.load(file)


def _write_lexical_file(index: BM25Index, path: Path, generation: int) -> None:
    final = _lexical_file(path, generation)
    tmp = path / (final.name + ".tmp")
    index.save(tmp)
    _fsync_and_place(tmp, final, path)


def _remove_stale_index_files(path: Path, keep: int) -> None:
    current = {_index_file(path, keep).name, _lexical_file(path, keep).name}
    for file in [*path.glob("index-*.faiss*"), *path.glob("bm25-*.npz*")]:
        if file.name not in current:
            try:
                file.unlink()
            except OSError:
                pass


def _chunk_ids_of(conn: sqlite3.Connection, doc_ids: list[str]) -> list[int]:
    ids: list[int] = []
    for batch in _batches(doc_ids, 500):
        marks = ",".join("?" * len(batch))
        ids += [r[0] for r in conn.execute(f"SELECT id FROM chunks WHERE doc_id IN ({marks})", batch)]
    return ids


def _chunk_to_row(chunk: Chunk, vector: np.ndarray) -> tuple:
    return (
        chunk.id, chunk.doc_id, chunk.source, chunk.position, chunk.title,
        json.dumps(list(chunk.heading_path), ensure_ascii=False), chunk.page, chunk.row, chunk.url,
        json.dumps(chunk.metadata, ensure_ascii=False, default=str), chunk.text, chunk.token_count,
        chunk.text_hash(), np.asarray(vector, dtype=np.float32).tobytes(), " ".join(bm25_tokens(lexical_text(chunk))),
    )


def _row_to_chunk(row: tuple) -> Chunk:
    (id_, doc_id, source, position, title, heading, page, row_no, url, metadata, text, token_count) = row
    return Chunk(
        id=id_, doc_id=doc_id, source=source, position=position, title=title,
        heading_path=tuple(json.loads(heading)), page=page, row=row_no, url=url,
        metadata=json.loads(metadata), text=text, token_count=token_count,
    )


def _json_path(key: str) -> str:
    if not key or '"' in key:
        raise KnowledgeBaseError(f"invalid metadata filter key {key!r}")
    return f'$."{key}"'


def _batches(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
