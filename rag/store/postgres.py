"""Knowledge bases in PostgreSQL with pgvector, so that several servers share them (`RAG_STORE_URL`).

    rag_kbs                  one row per knowledge base: its id and the number naming its tables
    rag_kb_manifest          (kb_id, key) -> value: model, dimension, generation, next chunk id, calibration
    rag_documents_<n>        the documents of knowledge base n
    rag_chunks_<n>           its chunks: text, metadata, BM25 tokens and the vector (pgvector, HNSW index)
    rag_curated_<n>, rag_curated_meta_<n>   its curated answers (rag.store.curated)
    files, jobs, keys, sessions             the catalog of every knowledge base (rag.store.catalog_db)

A change (deletions, inserts, the manifest's new generation) is one transaction, so a reader sees the old version
or the new one. Dense search runs in the database; the BM25 index is built by each server from the stored tokens
when it first opens the knowledge base and again when it sees a newer generation (`KnowledgeBase.refresh`).
The writer lock is a PostgreSQL advisory lock, released by the server if the writer's connection dies.

Every database error is translated here: an unreachable server is `DatabaseUnavailable` (503), anything else a
`KnowledgeBaseError` naming the knowledge base.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, NoSuchModuleError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from rag.core.errors import (
    ConfigurationError,
    Conflict,
    DatabaseUnavailable,
    KnowledgeBaseCorrupt,
    KnowledgeBaseError,
    KnowledgeBaseLocked,
)
from rag.core.types import Chunk, Document, Filters
from rag.store.backend import ChunkRows, SearchParams, lexical_from_rows
from rag.store.chunk_store import Manifest, ManifestValues, SourceSummary, chunk_lexical_tokens, row_to_chunk
from rag.store.curated import SQLCuratedAnswers
from rag.store.lexical_index import LexicalIndex
from rag.store.sql import Rows
from rag.store.vector_index import IndexType, VectorIndex

log = logging.getLogger("rag.store.postgres")
_LOCK_NAMESPACE = 0x7261_6701  # advisory locks of this module: (namespace, kb number); 0 guards the schema
_MAX_EF_SEARCH = 1000  # pgvector's upper bound for hnsw.ef_search
_BATCH = 1000
_CHUNK_COLUMNS = "id, doc_id, source, position, title, heading_path, page, row, url, metadata, text, token_count"
URL_EXAMPLE = "postgresql+psycopg://user:password@host:5432/dbname"

_SCHEMA = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE IF NOT EXISTS rag_kbs (
    kb_id TEXT PRIMARY KEY,
    number BIGSERIAL UNIQUE NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS rag_kb_manifest (
    kb_id TEXT NOT NULL REFERENCES rag_kbs(kb_id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (kb_id, key)
);
"""

_KB_TABLES = """
CREATE TABLE IF NOT EXISTS {documents} (
    doc_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    doc_key TEXT NOT NULL,
    title TEXT NOT NULL,
    url TEXT,
    metadata JSONB NOT NULL,
    content_hash TEXT NOT NULL,
    chunk_count INTEGER NOT NULL,
    ingested_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS {documents}_source ON {documents}(source);
CREATE TABLE IF NOT EXISTS {chunks} (
    id BIGINT PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES {documents}(doc_id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    position INTEGER NOT NULL,
    title TEXT NOT NULL,
    heading_path TEXT NOT NULL,
    page INTEGER,
    row INTEGER,
    url TEXT,
    metadata JSONB NOT NULL,
    text TEXT NOT NULL,
    token_count INTEGER NOT NULL,
    text_hash TEXT NOT NULL,
    embedding vector({dimension}) NOT NULL,
    lexical TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS {chunks}_doc ON {chunks}(doc_id);
CREATE INDEX IF NOT EXISTS {chunks}_source ON {chunks}(source);
CREATE INDEX IF NOT EXISTS {chunks}_hnsw ON {chunks} USING hnsw (embedding vector_ip_ops)
    WITH (m = {hnsw_m}, ef_construction = {ef_construction});
"""


def connect_args(connect_timeout: int = 5) -> dict[str, int]:
    """psycopg connection options for a server that must answer 503 quickly rather than hang: a bounded connect, and
    TCP keepalives so that a network partition without a reset does not hold a request (or a pooled connection) for
    the kernel's many minutes of retransmissions."""
    return {
        "connect_timeout": connect_timeout,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        "tcp_user_timeout": 30_000,
    }


# ---- the database -----------------------------------------------------------------------------------------
class PostgresStore:
    """One PostgreSQL database holding any number of knowledge bases: `PostgresStore(url)`, then
    `backend(kb_id)` for each. One connection pool per process, shared by all of them."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 5,
        max_overflow: int = 10,
        pool_timeout: float = 10.0,
        connect_timeout: int = 5,
        hnsw_m: int = 16,
        ef_construction: int = 64,
    ):
        self.url = _checked_url(url)
        self.hnsw_m, self.ef_construction = hnsw_m, ef_construction
        self.engine: Engine = sa.create_engine(
            self.url,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=pool_timeout,
            pool_pre_ping=True,  # a connection broken by a database restart is replaced, not handed out
            connect_args=connect_args(connect_timeout),
        )
        self.where = self.url.render_as_string(hide_password=True)
        try:
            with self.begin() as conn:
                self.lock_schema(conn)
                for statement in _statements(_SCHEMA):
                    conn.execute(sa.text(statement))
        except KnowledgeBaseError as exc:
            self.engine.dispose()
            if 'extension "vector"' in str(exc) or 'type "vector"' in str(exc):
                raise ConfigurationError(
                    f"PostgreSQL at {self.where} cannot use the pgvector extension ({exc.__cause__}) - install "
                    f"pgvector 0.8 or later on the database server, and run `CREATE EXTENSION vector` there once as "
                    f"a superuser if RAG_STORE_URL's user may not"
                ) from exc
            raise
        except BaseException:
            self.engine.dispose()
            raise

    @staticmethod
    def lock_schema(conn: Connection) -> None:
        """Hold the schema lock until `conn`'s transaction ends: tables are created by one server at a time."""
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:ns, 0)"), {"ns": _LOCK_NAMESPACE})

    def backend(self, kb_id: str) -> PostgresBackend:
        return PostgresBackend(self, kb_id)

    def curated(self, kb_id: str) -> SQLCuratedAnswers:
        """The knowledge base's curated answers (tables created on first use)."""
        with self.begin() as conn:
            number = _register(conn, kb_id)
        return SQLCuratedAnswers(
            PostgresConnection(self), answers=f"rag_curated_{number}", meta=f"rag_curated_meta_{number}"
        )

    def kb_ids(self) -> list[str]:
        """Every knowledge base something was stored in, by id."""
        with self.connect() as conn:
            return [r[0] for r in conn.execute(sa.text("SELECT kb_id FROM rag_kbs ORDER BY kb_id"))]

    def drop(self, kb_id: str) -> None:
        """A knowledge base's rows and tables, for good (nothing happens for an unknown id)."""
        with self.begin() as conn:
            number = _kb_number(conn, kb_id)
            if number is None:
                return
            locked = conn.execute(
                sa.text("SELECT pg_try_advisory_xact_lock(:ns, :n)"), {"ns": _LOCK_NAMESPACE, "n": number}
            ).scalar()
            if not locked:
                raise Conflict(f"Knowledge base {kb_id!r} is being written to (an ingest) - delete it once that ends")
            conn.execute(
                sa.text(
                    f"DROP TABLE IF EXISTS rag_chunks_{number}, rag_documents_{number}, rag_curated_{number}, "
                    f"rag_curated_meta_{number}"
                )
            )
            conn.execute(sa.text("DELETE FROM rag_kbs WHERE kb_id = :id"), {"id": kb_id})

    def close(self) -> None:
        self.engine.dispose()

    # ---- connections, with every error translated ------------------------------------------------------
    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A pooled connection for reads (its implicit transaction is rolled back when it goes back)."""
        with self.translated(), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A pooled connection in a transaction, committed when the block ends without error."""
        with self.translated(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def translated(self) -> Iterator[None]:
        try:
            yield
        except (OperationalError, InterfaceError, PoolTimeout) as exc:
            log.warning("knowledge-base database %s unavailable: %s", self.where, exc)
            raise DatabaseUnavailable(
                f"The knowledge-base database cannot be reached or is busy ({error_reason(exc)}) - check that "
                f"PostgreSQL is running and RAG_STORE_URL is right (or raise RAG_STORE_POOL_SIZE); requests are "
                f"answered again once it is back"
            ) from exc
        except DBAPIError as exc:
            raise KnowledgeBaseError(f"The knowledge-base database refused a query: {error_reason(exc)}") from exc


# ---- one knowledge base ------------------------------------------------------------------------------------
class PostgresBackend:
    """One knowledge base's place in a `PostgresStore` (see rag.store.backend.KnowledgeBaseBackend)."""

    def __init__(self, db: PostgresStore, kb_id: str):
        self.db = db
        self.kb_id = kb_id

    @property
    def name(self) -> str:
        return self.kb_id

    @property
    def location(self) -> str:
        return f"{self.db.where} (knowledge base {self.kb_id!r})"

    def exists(self) -> bool:
        with self.db.connect() as conn:
            row = conn.execute(
                sa.text("SELECT 1 FROM rag_kb_manifest WHERE kb_id = :id AND key = 'generation'"), {"id": self.kb_id}
            ).first()
        return row is not None

    def connect(self, *, create: bool = False) -> ChunkRows:
        with self.db.begin() as conn:
            number = _register(conn, self.kb_id) if create else _kb_number(conn, self.kb_id)
        if number is None:
            raise KnowledgeBaseError(f"{self.location} does not exist - ingest documents into it first")
        return PostgresChunkRows(self.db, self.kb_id, number, self.location)

    def index_type(self, requested: IndexType) -> str:
        return "hnsw"  # pgvector's HNSW whatever was asked: the database keeps it up to date on every change

    def build_index(
        self, rows: ChunkRows, kind: str, dimension: int, ids: np.ndarray, vectors: np.ndarray, search: SearchParams
    ) -> VectorIndex:
        return PgVectorIndex(_rows(rows), dimension, search.ef_search)

    def load(self, rows: ChunkRows, manifest: Manifest, search: SearchParams) -> tuple[VectorIndex, LexicalIndex]:
        if manifest.index_type != "hnsw":
            raise KnowledgeBaseCorrupt(f"{self.location}: unknown index type {manifest.index_type!r} in its manifest")
        index = PgVectorIndex(_rows(rows), manifest.dimension, search.ef_search)
        return index, lexical_from_rows(rows)

    def save(self, generation: int, index: VectorIndex, lexical: LexicalIndex) -> None:
        """Nothing to write: the vectors are rows of the same transaction, and BM25 is rebuilt by each server."""

    def cleanup(self, keep: int) -> None:
        """Nothing is left behind: old rows went in the transaction that replaced them."""

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        """An advisory lock on a connection held for the writer's whole run (freed if it dies)."""
        with self.db.connect() as conn:
            number = _kb_number(conn, self.kb_id)
            fallback = zlib.crc32(self.kb_id.encode()) & 0x7FFFFFFF  # an int4, as pg_try_advisory_lock(int, int) takes
            key = {"ns": _LOCK_NAMESPACE, "n": number if number is not None else fallback}
            conn.commit()
            if not conn.execute(sa.text("SELECT pg_try_advisory_lock(:ns, :n)"), key).scalar():
                raise KnowledgeBaseLocked(
                    f"Another process is writing to the knowledge base {self.location} - wait for it to finish"
                )
            conn.commit()
            try:
                yield
            finally:
                try:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:ns, :n)"), key)
                    conn.commit()
                except DBAPIError:
                    conn.invalidate()  # the lock went with the connection

    def close(self) -> None:
        """Nothing of its own to close: the connections are the PostgresStore's pool, closed with it."""


class PostgresChunkRows(ManifestValues):
    """The rows of one knowledge base (the same contract as rag.store.chunk_store.ChunkStore). A transaction
    is bound to the thread that opened it; reads on other threads see the last committed state."""

    def __init__(self, db: PostgresStore, kb_id: str, number: int, location: str):
        self.db, self.kb_id, self.location = db, kb_id, location
        self.documents_table, self.chunks_table = f"rag_documents_{number}", f"rag_chunks_{number}"
        self._local = threading.local()

    def close(self) -> None:
        """Nothing of its own to close: the connections are the PostgresStore's pool, closed with it."""

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if getattr(self._local, "conn", None) is not None:
            raise KnowledgeBaseError(f"{self.location}: a transaction is already open on this thread")
        with self.db.begin() as conn, self._bound(conn):
            yield

    @contextmanager
    def _bound(self, conn: Connection) -> Iterator[None]:
        """`conn` serves every read and write of this thread until the block ends."""
        self._local.conn = conn
        try:
            yield
        finally:
            self._local.conn = None

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Every read on this thread, until the block ends, sees one committed version (REPEATABLE READ): a
        search, its chunks and the BM25 rebuilt for a newer version all agree, whatever commits meanwhile."""
        if getattr(self._local, "conn", None) is not None:  # inside a transaction or a snapshot already
            yield
            return
        with self.db.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with self.db.translated(), conn.begin(), self._bound(conn):
                yield

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """This thread's transaction or snapshot, else a pooled connection."""
        open_transaction = getattr(self._local, "conn", None)
        if open_transaction is not None:
            yield open_transaction
        else:
            with self.db.connect() as conn:
                yield conn

    def _all(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        """The rows of `sql`, whose {d} and {c} name this knowledge base's documents and chunks tables."""
        with self.reading() as conn:
            result = conn.execute(sa.text(sql.format(d=self.documents_table, c=self.chunks_table)), params or {})
            return list(result) if result.returns_rows else []

    # ---- manifest ------------------------------------------------------------------------------------
    def manifest(self) -> Manifest:
        values = dict(self._all("SELECT key, value FROM rag_kb_manifest WHERE kb_id = :id", {"id": self.kb_id}))
        try:
            return Manifest(
                embedding_model=values["embedding_model"],
                dimension=int(values["dimension"]),
                index_type=values["index_type"],
                generation=int(values["generation"]),
                schema_version=values.get("schema_version", "2"),
            )
        except (KeyError, ValueError) as exc:
            raise KnowledgeBaseCorrupt(
                f"{self.location} has no readable manifest ({exc}) - ingest into it again"
            ) from exc

    def generation(self) -> int | None:
        value = self._get("generation")
        return None if value is None else int(value)

    def write_manifest(self, m: Manifest) -> None:
        with self.reading() as conn:
            if conn.execute(sa.text("SELECT to_regclass(:t)"), {"t": self.chunks_table}).scalar() is None:
                self._create_tables(conn, m.dimension)
        self.write_manifest_values(m)

    def _create_tables(self, conn: Connection, dimension: int) -> None:
        number = int(self.chunks_table.rsplit("_", 1)[1])
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:ns, :n)"), {"ns": _LOCK_NAMESPACE, "n": number})
        for statement in _statements(
            _KB_TABLES.format(
                documents=self.documents_table,
                chunks=self.chunks_table,
                dimension=int(dimension),
                hnsw_m=int(self.db.hnsw_m),
                ef_construction=int(self.db.ef_construction),
            )
        ):
            conn.execute(sa.text(statement))

    def _get(self, key: str) -> str | None:
        rows = self._all(
            "SELECT value FROM rag_kb_manifest WHERE kb_id = :id AND key = :key", {"id": self.kb_id, "key": key}
        )
        return None if not rows else str(rows[0][0])

    def _set(self, key: str, value: str) -> None:
        self._all(
            "INSERT INTO rag_kb_manifest VALUES (:id, :key, :value) "
            "ON CONFLICT (kb_id, key) DO UPDATE SET value = excluded.value",
            {"id": self.kb_id, "key": key, "value": value},
        )

    def _unset(self, key: str) -> None:
        self._all("DELETE FROM rag_kb_manifest WHERE kb_id = :id AND key = :key", {"id": self.kb_id, "key": key})

    # ---- reading -------------------------------------------------------------------------------------
    def document_hashes(self) -> dict[str, tuple[str, str]]:
        return {r[0]: (r[1], r[2]) for r in self._all("SELECT doc_id, source, content_hash FROM {d}")}

    def stored_vectors(self, doc_ids: list[str]) -> dict[tuple[str, str], np.ndarray]:
        out: dict[tuple[str, str], np.ndarray] = {}
        for batch in _batches(doc_ids):
            rows = self._all(
                "SELECT doc_id, text_hash, embedding::real[] FROM {c} WHERE doc_id = ANY(:ids)", {"ids": list(batch)}
            )
            out.update({(r[0], r[1]): np.asarray(r[2], np.float32) for r in rows})
        return out

    def chunks(self, ids: list[int]) -> dict[int, Chunk]:
        out: dict[int, Chunk] = {}
        for batch in _batches([int(i) for i in ids]):
            rows = self._all(f"SELECT {_CHUNK_COLUMNS} FROM {{c}} WHERE id = ANY(:ids)", {"ids": list(batch)})
            out.update({r[0]: row_to_chunk(_json_columns(r)) for r in rows})
        return out

    def all_chunks(self) -> list[Chunk]:
        rows = self._all(f"SELECT {_CHUNK_COLUMNS} FROM {{c}} ORDER BY doc_id, position")
        return [row_to_chunk(_json_columns(r)) for r in rows]

    def vectors(self, ids: list[int], dimension: int) -> np.ndarray:
        out = np.zeros((len(ids), dimension), np.float32)
        position = {cid: i for i, cid in enumerate(ids)}
        for batch in _batches([int(i) for i in ids]):
            rows = self._all("SELECT id, embedding::real[] FROM {c} WHERE id = ANY(:ids)", {"ids": list(batch)})
            for cid, vector in rows:
                out[position[cid]] = np.asarray(vector, np.float32)
        return out

    def all_vectors(self, dimension: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self._all("SELECT id, embedding::real[] FROM {c} ORDER BY id")
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        if not rows:
            return ids, np.zeros((0, dimension), np.float32)
        return ids, np.asarray([r[1] for r in rows], np.float32)

    def all_lexical_tokens(self) -> tuple[list[int], list[list[str]]]:
        rows = self._all("SELECT id, lexical FROM {c} ORDER BY id")
        return [r[0] for r in rows], [r[1].split(" ") if r[1] else [] for r in rows]

    def retokenize(self) -> None:
        rows = [{"lexical": " ".join(chunk_lexical_tokens(c)), "id": c.id} for c in self.all_chunks()]
        with self.reading() as conn:
            if rows:
                conn.execute(sa.text(f"UPDATE {self.chunks_table} SET lexical = :lexical WHERE id = :id"), rows)
        self.set_lexical_version()

    def chunk_ids(self, doc_ids: Sequence[str] | None = None) -> list[int]:
        if doc_ids is None:
            return [r[0] for r in self._all("SELECT id FROM {c} ORDER BY id")]
        ids: list[int] = []
        for batch in _batches(list(doc_ids)):
            ids += [r[0] for r in self._all("SELECT id FROM {c} WHERE doc_id = ANY(:ids)", {"ids": list(batch)})]
        return sorted(ids)

    def allowed_ids(self, filters: Filters) -> np.ndarray:
        clauses, params = allowed_where(filters)
        rows = self._all(f"SELECT id FROM {{c}} WHERE {' AND '.join(clauses) or 'true'}", params)
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def sources(self) -> list[SourceSummary]:
        rows = self._all(
            "SELECT source, min(title), count(*), sum(chunk_count), max(ingested_at) FROM {d} "
            "GROUP BY source ORDER BY source"
        )
        return [SourceSummary(r[0], r[1], r[2], int(r[3] or 0), r[4]) for r in rows]

    def source_doc_ids(self, source: str) -> list[str]:
        return [r[0] for r in self._all("SELECT doc_id FROM {d} WHERE source = :s", {"s": source})]

    def source_chunks(self, source: str) -> list[Chunk]:
        rows = self._all(
            f"SELECT {_CHUNK_COLUMNS} FROM {{c}} WHERE source = :s ORDER BY doc_id, position", {"s": source}
        )
        return [row_to_chunk(_json_columns(r)) for r in rows]

    def counts(self) -> dict[str, int]:
        docs = self._all("SELECT count(*), count(DISTINCT source) FROM {d}")[0]
        chunks = self._all("SELECT count(*) FROM {c}")[0][0]
        return {"documents": docs[0], "files": docs[1], "chunks": chunks}

    # ---- writing (inside `transaction()`) --------------------------------------------------------------
    def delete_documents(self, doc_ids: Sequence[str]) -> None:
        for batch in _batches(list(doc_ids)):
            self._all("DELETE FROM {c} WHERE doc_id = ANY(:ids)", {"ids": list(batch)})
            self._all("DELETE FROM {d} WHERE doc_id = ANY(:ids)", {"ids": list(batch)})

    def next_chunk_id(self) -> int:
        top = self._all("SELECT coalesce(max(id), 0) FROM {c}")[0][0]
        stored = self._get("next_chunk_id")
        return max(int(top) + 1, int(stored) if stored else 1)

    def insert_document(self, doc: Document, content_hash: str, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        with self.reading() as conn:
            conn.execute(
                sa.text(
                    f"INSERT INTO {self.documents_table} VALUES (:doc_id, :source, :key, :title, :url, "
                    f"CAST(:metadata AS jsonb), :hash, :count, :at)"
                ),
                {
                    k: without_nul(v)
                    for k, v in {
                        "doc_id": doc.doc_id,
                        "source": doc.source,
                        "key": doc.key,
                        "title": doc.title,
                        "url": doc.url,
                        "metadata": json.dumps(doc.metadata, ensure_ascii=False, default=str),
                        "hash": content_hash,
                        "count": len(chunks),
                        "at": time.time(),
                    }.items()
                },
            )
            rows = [_chunk_params(chunk, vector) for chunk, vector in zip(chunks, vectors, strict=True)]
            if rows:
                conn.execute(
                    sa.text(
                        f"INSERT INTO {self.chunks_table} VALUES (:id, :doc_id, :source, :position, :title, "
                        f":heading_path, :page, :row, :url, CAST(:metadata AS jsonb), :text, :token_count, "
                        f":text_hash, CAST(:embedding AS vector), :lexical)"
                    ),
                    rows,
                )

    def set_next_chunk_id(self, value: int) -> None:
        self._set("next_chunk_id", str(value))


class PgVectorIndex:
    """Inner-product search in pgvector's HNSW index (the vectors are L2-normalized, so it is cosine)."""

    kind = "hnsw"
    updatable = True  # the rows are the index: adding and removing happen with them

    def __init__(self, rows: PostgresChunkRows, dimension: int, ef_search: int = 128):
        self.rows, self.table, self.dimension, self.ef_search = rows, rows.chunks_table, dimension, ef_search

    @property
    def size(self) -> int:
        with self.rows.reading() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {self.table}")).scalar() or 0)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Nothing to do: the chunk rows carrying these vectors were inserted in the same transaction."""

    def remove(self, ids: Any) -> None:
        """Nothing to do: the chunk rows carrying these vectors were deleted in the same transaction."""

    def search(
        self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        queries = np.atleast_2d(np.asarray(queries, np.float32))
        k = max(1, k)
        scores = np.full((len(queries), k), -np.inf, np.float32)
        ids = np.full((len(queries), k), -1, np.int64)
        if allowed_ids is not None and len(allowed_ids) == 0:
            return scores[:, :0], ids[:, :0]
        where, params = "", {}
        if allowed_ids is not None:
            where, params = "WHERE id = ANY(:allowed)", {"allowed": [int(i) for i in allowed_ids]}
        sql = sa.text(
            f"SELECT id, -(embedding <#> CAST(:q AS vector)) FROM {self.table} {where} "
            f"ORDER BY embedding <#> CAST(:q AS vector) LIMIT :k"
        )
        with self.rows.reading() as conn:  # in the reader's snapshot when it has one
            ef = min(max(self.ef_search, k), _MAX_EF_SEARCH)
            conn.execute(sa.text(f"SET LOCAL hnsw.ef_search = {int(ef)}"))
            if allowed_ids is not None:  # keep scanning the graph until k allowed rows are found
                conn.execute(sa.text("SET LOCAL hnsw.iterative_scan = strict_order"))
            for row, query in enumerate(queries):
                found = conn.execute(sql, {"q": vector_literal(query), "k": k, **params}).all()
                for col, (cid, score) in enumerate(found):
                    ids[row, col], scores[row, col] = cid, score
        width = int((ids >= 0).sum(axis=1).max()) if len(ids) else 0
        return scores[:, :width], ids[:, :width]


class PostgresConnection:
    """SQL written for rag.store.sql (`?` placeholders) on the store's pool: the catalog (API keys, console sessions,
    uploaded files' states, ingest jobs) and the curated answers, shared by every server."""

    def __init__(self, db: PostgresStore):
        self.db = db
        self._local = threading.local()
        self._schema_locked = False

    @contextmanager
    def transaction(self) -> Iterator[PostgresConnection]:
        with self.db.begin() as conn:
            if not self._schema_locked:  # the first transaction creates the tables: one server at a time
                self.db.lock_schema(conn)
                self._schema_locked = True
            self._local.conn = conn
            try:
                yield self
            finally:
                self._local.conn = None

    def execute(self, sql: str, params: Sequence[object] = ()) -> Rows:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return _run(conn, sql, params)
        with self.db.begin() as own:
            return _run(own, sql, params)

    def close(self) -> None:
        """Nothing of its own to close: the connections are the PostgresStore's pool, closed with it."""


def _run(conn: Connection, sql: str, params: Sequence[object]) -> Rows:
    # psycopg's placeholders are %s, so a literal % must be doubled; the SQL written for rag.store.sql holds no `?`
    # inside a string literal
    result = conn.exec_driver_sql(sql.replace("%", "%%").replace("?", "%s"), tuple(params))
    return Rows(result.fetchall() if result.returns_rows else [], result.rowcount)


# ---- helpers ---------------------------------------------------------------------------------------------
def vector_literal(vector: np.ndarray) -> str:
    """pgvector's text form of a vector; 9 significant digits give back the same float32."""
    return "[" + ",".join(f"{x:.9g}" for x in np.asarray(vector, np.float32).tolist()) + "]"


def allowed_where(filters: Filters) -> tuple[list[str], dict[str, Any]]:
    """SQL conditions (and their parameters) for chunks passing the filters: a source prefix, and metadata values
    equal as JSON (so 3 matches 3.0, and "3" does not)."""
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if filters.source_prefix:
        clauses.append("left(source, :prefix_len) = :prefix")
        params.update(prefix_len=len(filters.source_prefix), prefix=filters.source_prefix)
    for i, (key, value) in enumerate(filters.metadata.items()):
        if not key:
            raise KnowledgeBaseError(f"invalid metadata filter key {key!r}")
        clauses.append(f"metadata -> :key{i} = CAST(:value{i} AS jsonb)")
        params[f"key{i}"], params[f"value{i}"] = key, json.dumps(value, ensure_ascii=False)
    return clauses, params


def without_nul(value: Any) -> Any:
    """Text as PostgreSQL can store it: NUL (which no text column or JSON value there may hold) becomes U+FFFD,
    in strings and in the strings of JSON text alike."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd").replace("\\u0000", "\\ufffd")
    return value


def _chunk_params(chunk: Chunk, vector: np.ndarray) -> dict[str, Any]:
    return {k: without_nul(v) for k, v in _chunk_values(chunk, vector).items()}


def _chunk_values(chunk: Chunk, vector: np.ndarray) -> dict[str, Any]:
    return {
        "id": chunk.id,
        "doc_id": chunk.doc_id,
        "source": chunk.source,
        "position": chunk.position,
        "title": chunk.title,
        "heading_path": json.dumps(list(chunk.heading_path), ensure_ascii=False),
        "page": chunk.page,
        "row": chunk.row,
        "url": chunk.url,
        "metadata": json.dumps(chunk.metadata, ensure_ascii=False, default=str),
        "text": chunk.text,
        "token_count": chunk.token_count,
        "text_hash": chunk.text_hash(),
        "embedding": vector_literal(vector),
        "lexical": " ".join(chunk_lexical_tokens(chunk)),
    }


def _json_columns(row: Sequence[Any]) -> tuple:
    """A chunk row as the SQLite store returns it (metadata as JSON text: psycopg decodes jsonb)."""
    values = list(row)
    values[9] = json.dumps(values[9], ensure_ascii=False)
    return tuple(values)


def _kb_number(conn: Connection, kb_id: str) -> int | None:
    row = conn.execute(sa.text("SELECT number FROM rag_kbs WHERE kb_id = :id"), {"id": kb_id}).first()
    return None if row is None else int(row[0])


def _register(conn: Connection, kb_id: str) -> int:
    """The number of a knowledge base's tables, given on first use."""
    conn.execute(sa.text("INSERT INTO rag_kbs (kb_id) VALUES (:id) ON CONFLICT (kb_id) DO NOTHING"), {"id": kb_id})
    number = _kb_number(conn, kb_id)
    assert number is not None  # inserted just now, or there already
    return number


def _rows(rows: ChunkRows) -> PostgresChunkRows:
    if not isinstance(rows, PostgresChunkRows):
        raise TypeError(f"a PostgreSQL knowledge base needs its own rows, not {type(rows).__name__}")
    return rows


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _batches(items: Sequence[Any], size: int = _BATCH) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _checked_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        shown = url.split("@", 1)[1] if "@" in url else url  # never a user or password in a message
        shown = f"...@{shown}" if "@" in url else shown
        raise ConfigurationError(f"RAG_STORE_URL {shown!r} is not a database URL - e.g. {URL_EXAMPLE}") from None
    if parsed.get_backend_name() != "postgresql":
        raise ConfigurationError(
            f"RAG_STORE_URL must name a PostgreSQL database (with the pgvector extension), not "
            f"{parsed.get_backend_name()!r} - e.g. {URL_EXAMPLE}"
        )
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        parsed.get_dialect()
    except NoSuchModuleError as exc:
        raise ConfigurationError(
            f"RAG_STORE_URL names a driver that is not installed ({exc}) - use {URL_EXAMPLE}"
        ) from exc
    return parsed


def error_reason(exc: Exception) -> str:
    """The first line of a database error, without SQLAlchemy's decoration."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
