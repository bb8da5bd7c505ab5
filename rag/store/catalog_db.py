"""What the catalog keeps in `catalog.sqlite` (or, with RAG_STORE_URL, in PostgreSQL, shared by every server):
uploaded files, ingest jobs and API keys of every knowledge base.

    files   one row per uploaded file: its state (queued, ingesting, ingested, failed) and failure reason
    jobs    one row per ingest job: state, progress, each file's failure, and which server runs it (`runner`,
            `seen_at`: a server refreshes the jobs it holds, so others can tell a dead server's from a live one's)
    keys    one row per API key: its knowledge base, scopes and the SHA-256 of its secret (never the secret)
    sessions  one row per console sign-in: the SHA-256 of its cookie, its key (or the admin key's hash), CSRF token

The same SQL runs on both (rag.store.sql): SQLite through one connection shared by a server's threads under a lock
(WAL, so the CLI and the server may both use it), PostgreSQL through the store's connection pool.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, cast

from rag.store.sql import Connection, SQLiteConnection, run_script

SCOPES = ("chat", "ingest", "conversations", "manage")
JobState = Literal["queued", "running", "succeeded", "failed"]
JobKind = Literal["ingest", "delete", "reingest"]
FileState = Literal["queued", "ingesting", "ingested", "failed"]
_KEY = re.compile(r"rk_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})")
_NO_KEY_HASH = hashlib.sha256(b"no such key").hexdigest()

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    kb_id TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    uploaded_at TEXT NOT NULL,
    state TEXT NOT NULL,
    error TEXT,
    job_id TEXT,
    PRIMARY KEY (kb_id, name)
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kb_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    files TEXT NOT NULL,
    files_done INTEGER NOT NULL DEFAULT 0,
    chunks_embedded INTEGER NOT NULL DEFAULT 0,
    chunks_total INTEGER NOT NULL DEFAULT 0,
    failures TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    runner TEXT,
    seen_at TEXT
);
CREATE INDEX IF NOT EXISTS jobs_kb ON jobs(kb_id, created_at);
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY,
    kb_id TEXT NOT NULL,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS keys_kb ON keys(kb_id);
CREATE TABLE IF NOT EXISTS sessions (
    token_sha256 TEXT PRIMARY KEY,
    key_id TEXT,
    admin_sha256 TEXT,
    csrf TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
"""


@dataclass
class StoredFile:
    """An uploaded document file kept inside its knowledge base, so it can be re-ingested and deleted."""

    kb_id: str
    name: str
    size: int
    uploaded_at: datetime
    state: FileState
    error: str | None = None
    job_id: str | None = None

    @property
    def source(self) -> str:
        """The name its documents are recorded under in the knowledge base (the folder `files`, then the name)."""
        return f"files/{self.name}"


@dataclass
class JobFailure:
    file: str
    reason: str


@dataclass
class Job:
    id: str
    kb_id: str
    kind: JobKind
    state: JobState
    created_at: datetime
    files: list[str] = field(default_factory=list)  # what the job works on: upload names, or sources to delete
    started_at: datetime | None = None
    finished_at: datetime | None = None
    files_done: int = 0
    chunks_embedded: int = 0
    chunks_total: int = 0
    failures: list[JobFailure] = field(default_factory=list)
    error: str | None = None

    @property
    def files_total(self) -> int:
        return len(self.files)

    @property
    def finished(self) -> bool:
        return self.state in ("succeeded", "failed")


@dataclass
class ApiKey:
    """A key for one knowledge base; the secret itself is never stored, only its hash."""

    id: str
    kb_id: str
    scopes: tuple[str, ...]
    name: str
    created_at: datetime


@dataclass
class Session:
    """A console sign-in: with a knowledge base's key (`key`) or the admin key (`admin_sha256`, the hash of the admin
    key it was opened with, so that changing the admin key ends it)."""

    key: ApiKey | None
    admin_sha256: str | None
    csrf: str
    expires_at: datetime


class CatalogDatabase:
    """`CatalogDatabase(path)` for a SQLite file, or `CatalogDatabase(connection, shared=True)` for a database
    several servers use at once (rag.store.postgres.PostgresConnection)."""

    def __init__(self, where: Path | Connection, *, shared: bool = False):
        self.shared = shared
        self._conn: Connection = SQLiteConnection(where) if isinstance(where, Path) else where
        self.runner = secrets.token_hex(8)  # this process, as the runner of the jobs it queues
        with self._conn.transaction() as conn:
            run_script(conn, _SCHEMA)
            _add_missing_columns(conn)

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        with self._conn.transaction() as conn:
            yield conn

    def _rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        return [tuple(r) for r in self._conn.execute(sql, params).fetchall()]

    def forget_kb(self, kb_id: str) -> None:
        """Every row of a deleted knowledge base: its files, jobs and keys."""
        with self._transaction() as conn:
            for table in ("files", "jobs", "keys"):
                conn.execute(f"DELETE FROM {table} WHERE kb_id = ?", (kb_id,))

    # ---- files -----------------------------------------------------------------------------------------
    def put_file(self, file: StoredFile) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kb_id, name) DO UPDATE SET "
                "size = excluded.size, uploaded_at = excluded.uploaded_at, state = excluded.state, "
                "error = excluded.error, job_id = excluded.job_id",
                (file.kb_id, file.name, file.size, file.uploaded_at.isoformat(), file.state, file.error, file.job_id),
            )

    def files(self, kb_id: str) -> list[StoredFile]:
        rows = self._rows(
            "SELECT kb_id, name, size, uploaded_at, state, error, job_id FROM files WHERE kb_id = ? ORDER BY name",
            (kb_id,),
        )
        return [StoredFile(r[0], r[1], r[2], datetime.fromisoformat(r[3]), r[4], r[5], r[6]) for r in rows]

    def set_file_state(
        self, kb_id: str, name: str, state: FileState, error: str | None = None, job_id: str | None = None
    ) -> None:
        with self._transaction() as conn:
            conn.execute(
                "UPDATE files SET state = ?, error = ?, job_id = coalesce(?, job_id) WHERE kb_id = ? AND name = ?",
                (state, error, job_id, kb_id, name),
            )

    def delete_file(self, kb_id: str, name: str) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM files WHERE kb_id = ? AND name = ?", (kb_id, name))

    # ---- jobs ------------------------------------------------------------------------------------------
    def save_job(self, job: Job) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in _JOB_COLUMNS[1:]),
                (
                    job.id,
                    job.kb_id,
                    job.kind,
                    job.state,
                    job.created_at.isoformat(),
                    _iso(job.started_at),
                    _iso(job.finished_at),
                    json.dumps(job.files, ensure_ascii=False),
                    job.files_done,
                    job.chunks_embedded,
                    job.chunks_total,
                    json.dumps([vars(f) for f in job.failures], ensure_ascii=False),
                    job.error,
                    self.runner,
                    datetime.now(UTC).isoformat(),
                ),
            )

    def job(self, job_id: str) -> Job | None:
        rows = self._rows(f"SELECT {_JOB_LIST} FROM jobs WHERE id = ?", (job_id,))
        return _job(rows[0]) if rows else None

    def jobs(self, kb_id: str, limit: int = 50) -> list[Job]:
        rows = self._rows(
            f"SELECT {_JOB_LIST} FROM jobs WHERE kb_id = ? ORDER BY created_at DESC LIMIT ?", (kb_id, limit)
        )
        return [_job(r) for r in rows]

    def unfinished_jobs(self) -> list[Job]:
        return [_job(r) for r in self._rows(f"SELECT {_JOB_LIST} FROM jobs WHERE state IN ('queued', 'running')")]

    def abandoned_jobs(self, stale_after: timedelta) -> list[Job]:
        """Unfinished jobs no live server holds. On a database of one server: every one this process did not queue
        (a stopped server's). On a shared one: those whose server has not refreshed them for `stale_after`."""
        if not self.shared:
            rows = self._rows(
                f"SELECT {_JOB_LIST} FROM jobs WHERE state IN ('queued', 'running') AND coalesce(runner, '') != ?",
                (self.runner,),
            )
        else:
            cutoff = (datetime.now(UTC) - stale_after).isoformat()
            rows = self._rows(
                f"SELECT {_JOB_LIST} FROM jobs WHERE state IN ('queued', 'running') AND coalesce(runner, '') != ? "
                f"AND coalesce(seen_at, '') < ?",
                (self.runner, cutoff),
            )
        return [_job(r) for r in rows]

    def fail_abandoned(self, job_id: str, reason: str, stale_after: timedelta) -> bool:
        """Mark a job failed if it is still abandoned (see `abandoned_jobs`), in one statement: a server that
        refreshes or finishes it at the same moment wins. Whether it was marked."""
        now = datetime.now(UTC)
        cutoff = (now - stale_after).isoformat() if self.shared else "9999"
        with self._transaction() as conn:
            marked = conn.execute(
                "UPDATE jobs SET state = 'failed', error = ?, finished_at = ?, runner = ?, seen_at = ? "
                "WHERE id = ? AND state IN ('queued', 'running') AND coalesce(runner, '') != ? "
                "AND coalesce(seen_at, '') < ?",
                (reason, now.isoformat(), self.runner, now.isoformat(), job_id, self.runner, cutoff),
            )
            return marked.rowcount > 0

    def touch_jobs(self) -> None:
        """Tell other servers that this one still holds its unfinished jobs."""
        with self._transaction() as conn:
            conn.execute(
                "UPDATE jobs SET seen_at = ? WHERE runner = ? AND state IN ('queued', 'running')",
                (datetime.now(UTC).isoformat(), self.runner),
            )

    # ---- keys ------------------------------------------------------------------------------------------
    def add_key(self, kb_id: str, scopes: Sequence[str], name: str = "") -> tuple[ApiKey, str]:
        """A new key for `kb_id`: the record, and the key itself (shown once; only its hash is kept)."""
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown:
            raise ValueError(f"unknown scope(s) {', '.join(unknown)} - use any of {', '.join(SCOPES)}")
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        record = ApiKey(key_id, kb_id, tuple(s for s in SCOPES if s in scopes), name, datetime.now(UTC))
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO keys VALUES (?, ?, ?, ?, ?, ?)",
                (key_id, kb_id, name, json.dumps(record.scopes), secret_hash(secret), record.created_at.isoformat()),
            )
        return record, f"rk_{key_id}_{secret}"

    def keys(self, kb_id: str) -> list[ApiKey]:
        rows = self._rows("SELECT id, kb_id, scopes, name, created_at FROM keys WHERE kb_id = ? ORDER BY 5", (kb_id,))
        return [_key(r) for r in rows]

    def revoke_key(self, kb_id: str, key_id: str) -> bool:
        with self._transaction() as conn:
            return conn.execute("DELETE FROM keys WHERE kb_id = ? AND id = ?", (kb_id, key_id)).rowcount > 0

    # ---- console sessions --------------------------------------------------------------------------------
    def add_session(self, key: ApiKey | None, admin_sha256: str | None, hours: float) -> tuple[str, Session]:
        """A new session (its cookie value, shown once, and the record), for `key` or for the admin key."""
        token, now = secrets.token_urlsafe(32), datetime.now(UTC)
        session = Session(key, admin_sha256, secrets.token_urlsafe(24), now + timedelta(hours=hours))
        with self._transaction() as conn:
            conn.execute("DELETE FROM sessions WHERE expires_at < ?", (now.isoformat(),))
            conn.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
                (
                    secret_hash(token),
                    key.id if key else None,
                    admin_sha256,
                    session.csrf,
                    session.expires_at.isoformat(),
                ),
            )
        return token, session

    def session(self, token: str) -> Session | None:
        """The live session of a cookie value; None when unknown, expired, or its key was revoked."""
        rows = self._rows(
            "SELECT s.key_id, s.admin_sha256, s.csrf, s.expires_at, k.id, k.kb_id, k.scopes, k.name, k.created_at "
            "FROM sessions s LEFT JOIN keys k ON k.id = s.key_id WHERE s.token_sha256 = ?",
            (secret_hash(token),),
        )
        if not rows:
            return None
        key_id, admin, csrf, expires, *key = rows[0]
        if datetime.fromisoformat(expires) < datetime.now(UTC) or (key_id is not None and key[0] is None):
            return None
        return Session(_key(tuple(key)) if key_id else None, admin, csrf, datetime.fromisoformat(expires))

    def end_session(self, token: str) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM sessions WHERE token_sha256 = ?", (secret_hash(token),))

    def verify_key(self, given: str) -> ApiKey | None:
        """The key record `given` is the secret of, or None. The secret's hash is compared in constant time,
        and an unknown id costs the same comparison, so timing tells nothing about which part was wrong."""
        match = _KEY.fullmatch(given)
        key_id, secret = match.groups() if match else ("", given)
        rows = self._rows("SELECT id, kb_id, scopes, name, created_at, secret_sha256 FROM keys WHERE id = ?", (key_id,))
        stored = rows[0][5] if rows else _NO_KEY_HASH
        if hmac.compare_digest(secret_hash(secret), stored) and rows and match:
            return _key(rows[0][:5])
        return None


_JOB_COLUMNS = (
    "id", "kb_id", "kind", "state", "created_at", "started_at", "finished_at", "files", "files_done",
    "chunks_embedded", "chunks_total", "failures", "error", "runner", "seen_at",
)  # fmt: skip
_JOB_LIST = ", ".join(_JOB_COLUMNS[:13])  # what `_job` reads


def _add_missing_columns(conn: Connection) -> None:
    """Columns added since a catalog was made (SQLite files of earlier versions)."""
    if not isinstance(conn, SQLiteConnection):
        return
    have = {row[1] for row in conn.execute("PRAGMA table_info(jobs)").fetchall()}
    for column in ("runner", "seen_at"):
        if column not in have:
            conn.execute(f"ALTER TABLE jobs ADD COLUMN {column} TEXT")


def secret_hash(secret: str) -> str:
    """The SHA-256 of a secret, as stored (keys, sessions)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _job(row: tuple) -> Job:
    return Job(
        id=row[0],
        kb_id=row[1],
        kind=cast(JobKind, row[2]),
        state=cast(JobState, row[3]),
        created_at=datetime.fromisoformat(row[4]),
        started_at=_time(row[5]),
        finished_at=_time(row[6]),
        files=json.loads(row[7]),
        files_done=row[8],
        chunks_embedded=row[9],
        chunks_total=row[10],
        failures=[JobFailure(**f) for f in json.loads(row[11])],
        error=row[12],
    )


def _key(row: tuple) -> ApiKey:
    return ApiKey(row[0], row[1], tuple(json.loads(row[2])), row[3], datetime.fromisoformat(row[4]))
