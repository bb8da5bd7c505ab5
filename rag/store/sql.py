"""The one SQL seam of the catalog and the curated answers: they write their SQL once, with SQLite's `?`
placeholders and `INSERT ... ON CONFLICT`, and it runs on a SQLite file (`SQLiteConnection`, here) or on
PostgreSQL (`rag.store.postgres.PostgresConnection`), where several servers share it."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


class Cursor(Protocol):
    rowcount: int

    def fetchall(self) -> Sequence[Any]: ...


class Connection(Protocol):
    """Where SQL runs: `execute` takes `?` placeholders on every database."""

    def transaction(self) -> AbstractContextManager[Any]:
        """One write transaction, whose `execute` calls (on this thread) commit together."""
        ...

    def execute(self, sql: str, params: Sequence[object] = ()) -> Cursor: ...
    def close(self) -> None: ...


@dataclass
class Rows:
    """What a statement returned, read whole."""

    rows: Sequence[Any]
    rowcount: int

    def fetchall(self) -> Sequence[Any]:
        return self.rows


class SQLiteConnection:
    """One connection shared by a server's threads under a lock; WAL, so readers in other processes never wait for
    a writer; BEGIN IMMEDIATE, so writers queue for up to `timeout` seconds."""

    def __init__(self, path: Path, *, timeout: float = 30.0):
        if timeout <= 0:
            raise ValueError(f"timeout must be greater than 0. Currently, the timeout is {timeout}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=timeout)
        self._lock = threading.RLock()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")

    @contextmanager
    def transaction(self) -> Iterator[SQLiteConnection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def execute(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        with self._lock:
            cursor = self._conn.execute(sql, params)
            return Rows(cursor.fetchall(), cursor.rowcount)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def run_script(conn: Connection, script: str) -> None:
    """Each `;`-separated statement of `script` (no `;` inside one)."""
    for statement in (s.strip() for s in script.split(";")):
        if statement:
            conn.execute(statement)
