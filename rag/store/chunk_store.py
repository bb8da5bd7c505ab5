"""The SQL half of a knowledge base: `chunks.sqlite` holds documents, chunks (text, metadata, vectors,
BM25 tokens) and the manifest table. One connection, shared by a server's threads under a lock; writes
happen inside `transaction()`, which the knowledge base holds open while it writes the index files.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.core.errors import KnowledgeBaseCorrupt, KnowledgeBaseError
from rag.core.types import Chunk, Document, Filters
from rag.store.calibration import FusionCalibration
from rag.text.lexical import LEXICAL_VERSION, bm25_tokens

DB_NAME = "chunks.sqlite"
SCHEMA_VERSION = "2"
# SQLite allows 999 host parameters per statement in older builds; stay well below.
_BATCH = 500
_CHUNK_COLUMNS = "id, doc_id, source, position, title, heading_path, page, row, url, metadata, text, token_count"

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


@dataclass(frozen=True)
class Manifest:
    embedding_model: str
    dimension: int
    index_type: str
    generation: int
    schema_version: str = SCHEMA_VERSION


@dataclass(frozen=True)
class SourceSummary:
    source: str
    title: str
    documents: int
    chunks: int
    ingested_at: float  # seconds since the epoch


class ManifestValues(ABC):
    """The manifest's optional values, over a store's `_get`, `_set` and `_unset` of one key."""

    @abstractmethod
    def _get(self, key: str) -> str | None: ...

    @abstractmethod
    def _set(self, key: str, value: str) -> None: ...

    @abstractmethod
    def _unset(self, key: str) -> None: ...

    def lexical_version(self) -> str:
        """Version of `bm25_tokens` the stored tokens were made with ("1" before it was recorded)."""
        return self._get("lexical_version") or "1"

    def set_lexical_version(self, version: str = LEXICAL_VERSION) -> None:
        self._set("lexical_version", version)

    def fusion_calibration(self) -> FusionCalibration | None:
        """The calibration measured on the current content (None if never measured or unreadable)."""
        raw = self._get("fusion_calibration")
        try:
            return FusionCalibration.from_json(raw) if raw else None
        except (ValueError, TypeError):
            return None

    def set_fusion_calibration(self, calibration: FusionCalibration | None) -> None:
        if calibration is None:
            self._unset("fusion_calibration")
        else:
            self._set("fusion_calibration", calibration.to_json())

    def write_manifest_values(self, m: Manifest) -> None:
        for key, value in (
            ("embedding_model", m.embedding_model),
            ("dimension", str(m.dimension)),
            ("index_type", m.index_type),
            ("generation", str(m.generation)),
            ("schema_version", m.schema_version),
        ):
            self._set(key, value)


class ChunkStore(ManifestValues):
    """`ChunkStore.connect(folder)`; `create=True` also creates the tables."""

    def __init__(self, path: Path, conn: sqlite3.Connection):
        self.path = path
        self._conn = conn
        self._lock = threading.RLock()

    @classmethod
    def connect(cls, folder: Path, *, create: bool = False) -> ChunkStore:
        conn = sqlite3.connect(folder / DB_NAME, check_same_thread=False, isolation_level=None, timeout=30)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = FULL")
        if create:
            conn.executescript(_SCHEMA)
        return cls(folder / DB_NAME, conn)

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction; other threads' reads wait until it commits or rolls back."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Nothing to hold: the indexes a reader searches are the loaded generation's, swapped whole, and chunk ids
        are never reused, so a chunk a newer version removed is only missing from the results."""
        yield

    # ---- manifest ------------------------------------------------------------------------------------
    def manifest(self) -> Manifest:
        try:
            with self._lock:
                values = dict(self._conn.execute("SELECT key, value FROM manifest").fetchall())
            return Manifest(
                embedding_model=values["embedding_model"],
                dimension=int(values["dimension"]),
                index_type=values["index_type"],
                generation=int(values["generation"]),
                schema_version=values.get("schema_version", SCHEMA_VERSION),
            )
        except (sqlite3.DatabaseError, KeyError, ValueError) as exc:
            raise KnowledgeBaseCorrupt(
                f"{self.path} is not a readable knowledge base ({exc}) - re-ingest into a new --kb directory"
            ) from exc

    def generation(self) -> int | None:
        """The committed generation, read cheaply (None for an empty manifest)."""
        with self._lock:
            row = self._conn.execute("SELECT value FROM manifest WHERE key = 'generation'").fetchone()
        return None if row is None else int(row[0])

    def write_manifest(self, m: Manifest) -> None:
        self.write_manifest_values(m)

    def _get(self, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM manifest WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set(self, key: str, value: str) -> None:
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO manifest VALUES (?, ?)", (key, value))

    def _unset(self, key: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM manifest WHERE key = ?", (key,))

    # ---- reading -------------------------------------------------------------------------------------
    def document_hashes(self) -> dict[str, tuple[str, str]]:
        """doc_id -> (source, content_hash) for every document."""
        with self._lock:
            rows = self._conn.execute("SELECT doc_id, source, content_hash FROM documents").fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def stored_vectors(self, doc_ids: list[str]) -> dict[tuple[str, str], np.ndarray]:
        """(doc_id, text_hash) -> vector for the chunks of these documents, to reuse on re-ingest."""
        rows = self._where_in("SELECT doc_id, text_hash, vector FROM chunks WHERE doc_id IN ({})", doc_ids)
        return {(doc_id, text_hash): np.frombuffer(blob, dtype=np.float32) for doc_id, text_hash, blob in rows}

    def chunks(self, ids: list[int]) -> dict[int, Chunk]:
        """Chunks by id (ids not found are absent)."""
        rows = self._where_in(f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE id IN ({{}})", ids)
        return {row[0]: row_to_chunk(row) for row in rows}

    def all_chunks(self) -> list[Chunk]:
        with self._lock:
            rows = self._conn.execute(f"SELECT {_CHUNK_COLUMNS} FROM chunks ORDER BY doc_id, position").fetchall()
        return [row_to_chunk(r) for r in rows]

    def vectors(self, ids: list[int], dimension: int) -> np.ndarray:
        """Stored vectors of these chunk ids (rows in the same order; zeros for unknown ids)."""
        out = np.zeros((len(ids), dimension), np.float32)
        position = {cid: i for i, cid in enumerate(ids)}
        for cid, blob in self._where_in("SELECT id, vector FROM chunks WHERE id IN ({})", ids):
            out[position[cid]] = np.frombuffer(blob, dtype=np.float32)
        return out

    def all_vectors(self, dimension: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of every chunk, by id."""
        with self._lock:
            rows = self._conn.execute("SELECT id, vector FROM chunks ORDER BY id").fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        if not rows:
            return ids, np.zeros((0, dimension), np.float32)
        return ids, np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dimension)

    def all_lexical_tokens(self) -> tuple[list[int], list[list[str]]]:
        """(ids, BM25 tokens) of every chunk, by id."""
        with self._lock:
            rows = self._conn.execute("SELECT id, lexical FROM chunks ORDER BY id").fetchall()
        return [r[0] for r in rows], [r[1].split(" ") if r[1] else [] for r in rows]

    def retokenize(self) -> None:
        """Re-derive every chunk's BM25 tokens from its stored text (after `bm25_tokens` changed)."""
        rows = [(" ".join(chunk_lexical_tokens(c)), c.id) for c in self.all_chunks()]
        with self._lock:
            self._conn.executemany("UPDATE chunks SET lexical = ? WHERE id = ?", rows)
        self.set_lexical_version()

    def chunk_ids(self, doc_ids: Sequence[str] | None = None) -> list[int]:
        """Ids of the chunks of these documents (of all documents when None)."""
        if doc_ids is None:
            with self._lock:
                return [r[0] for r in self._conn.execute("SELECT id FROM chunks ORDER BY id")]
        return sorted(r[0] for r in self._where_in("SELECT id FROM chunks WHERE doc_id IN ({})", doc_ids))

    def allowed_ids(self, filters: Filters) -> np.ndarray:
        """Ids of chunks passing the filters (source prefix, exact metadata values)."""
        clauses: list[str] = []
        params: list[Any] = []
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

    def sources(self) -> list[SourceSummary]:
        """Every ingested file (source): its first document's title, documents, chunks and when last ingested."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT source, min(title), count(*), sum(chunk_count), max(ingested_at) FROM documents "
                "GROUP BY source ORDER BY source"
            ).fetchall()
        return [SourceSummary(r[0], r[1], r[2], r[3] or 0, r[4]) for r in rows]

    def source_doc_ids(self, source: str) -> list[str]:
        """The documents ingested from one file."""
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT doc_id FROM documents WHERE source = ?", (source,))]

    def source_chunks(self, source: str) -> list[Chunk]:
        """The chunks of one file as retrieval sees them, in document order."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE source = ? ORDER BY doc_id, position", (source,)
            ).fetchall()
        return [row_to_chunk(r) for r in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            docs = self._conn.execute("SELECT count(*), count(DISTINCT source) FROM documents").fetchone()
            chunks = self._conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        return {"documents": docs[0], "files": docs[1], "chunks": chunks}

    # ---- writing (inside `transaction()`) --------------------------------------------------------------
    def delete_documents(self, doc_ids: Sequence[str]) -> None:
        for batch in _batches(doc_ids):
            marks = ",".join("?" * len(batch))
            with self._lock:
                self._conn.execute(f"DELETE FROM chunks WHERE doc_id IN ({marks})", batch)
                self._conn.execute(f"DELETE FROM documents WHERE doc_id IN ({marks})", batch)

    def next_chunk_id(self) -> int:
        """The first id a new chunk may take: ids are never reused while an older generation may be read."""
        with self._lock:
            top = self._conn.execute("SELECT max(id) FROM chunks").fetchone()[0] or 0
            row = self._conn.execute("SELECT value FROM manifest WHERE key = 'next_chunk_id'").fetchone()
        return max(top + 1, int(row[0]) if row else 1)

    def insert_document(self, doc: Document, content_hash: str, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Store a document and its chunks, whose ids are already assigned."""
        metadata = json.dumps(doc.metadata, ensure_ascii=False, default=str)
        with self._lock:
            self._conn.execute(
                "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?)",
                (doc.doc_id, doc.source, doc.key, doc.title, doc.url, metadata, content_hash, len(chunks), time.time()),
            )
            rows = [_chunk_to_row(chunk, vector) for chunk, vector in zip(chunks, vectors, strict=True)]
            self._conn.executemany("INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)

    def set_next_chunk_id(self, value: int) -> None:
        self._set("next_chunk_id", str(value))

    def _where_in(self, sql: str, values: Sequence[Any]) -> list[tuple]:
        """Rows of `sql` (its `{}` standing for the placeholders) for every value, in batches."""
        rows: list[tuple] = []
        with self._lock:
            for batch in _batches(values):
                rows += self._conn.execute(sql.format(",".join("?" * len(batch))), list(batch)).fetchall()
        return rows


def lexical_text(chunk: Chunk) -> str:
    """What BM25 indexes: an FAQ row's question counts twice (its own field, weighted), then headings and text."""
    title = f"{chunk.title}\n{chunk.title}" if chunk.row is not None else chunk.title
    return "\n".join(p for p in (title, *chunk.heading_path, chunk.text) if p)


def chunk_lexical_tokens(chunk: Chunk) -> list[str]:
    """The BM25 tokens stored beside a chunk."""
    return bm25_tokens(lexical_text(chunk))


def _chunk_to_row(chunk: Chunk, vector: np.ndarray) -> tuple:
    return (
        chunk.id, chunk.doc_id, chunk.source, chunk.position, chunk.title,
        json.dumps(list(chunk.heading_path), ensure_ascii=False), chunk.page, chunk.row, chunk.url,
        json.dumps(chunk.metadata, ensure_ascii=False, default=str), chunk.text, chunk.token_count,
        chunk.text_hash(), np.asarray(vector, dtype=np.float32).tobytes(), " ".join(chunk_lexical_tokens(chunk)),
    )  # fmt: skip


def row_to_chunk(row: tuple) -> Chunk:
    (id_, doc_id, source, position, title, heading, page, row_no, url, metadata, text, token_count) = row
    return Chunk(
        id=id_, doc_id=doc_id, source=source, position=position, title=title,
        heading_path=tuple(json.loads(heading)), page=page, row=row_no, url=url,
        metadata=json.loads(metadata), text=text, token_count=token_count,
    )  # fmt: skip


def _json_path(key: str) -> str:
    if not key or '"' in key:
        raise KnowledgeBaseError(f"invalid metadata filter key {key!r}")
    return f'$."{key}"'


def _batches(items: Sequence[Any], size: int = _BATCH) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
