"""Load files in a worker process bounded in time and memory: uploads may be hostile.

    with SandboxedLoader(FileLimits.from_settings(settings)) as loader:
        documents = loader.load(path, source)      # LoadTimeout, LoadOutOfMemory, or the loader's LoaderError

The loaders' own checks (`ingest.limits`) refuse the files they can recognise as too big; this catches
the rest, which may be stuck inside a C parser where no Python code can stop them:

- time: the worker gets `timeout_s` of wall time per file, then it is killed (and a fresh one started for
  the next file);
- memory: the worker's address space is capped (RLIMIT_AS) at what it uses once started plus `memory_mb`,
  so a runaway allocation fails inside the worker instead of pushing the server out of memory.

The worker is a fresh interpreter, never a fork: the server has threads (and may have torch loaded), which a fork would
copy in whatever state they were. One worker serves file after file (starting one costs about a second)
and is replaced only after a failure that may have left it unusable.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported at run time inside functions only: see _import_rag_first
    from ingest.errors import LoaderError
    from ingest.limits import FileLimits
    from rag.core.types import Document

    FileLoader = Callable[[Path, str, FileLimits], list[Document]]

log = logging.getLogger("ingest.sandbox")

_MIB = 1024 * 1024
_START_TIMEOUT_S = 60.0  # importing the parsers in a fresh interpreter; not counted in a file's timeout_s


class SandboxedLoader:
    """Loads each file in a worker process capped at `limits.memory_mb` and `limits.timeout_s`.

    Safe to share between threads: they take turns on the one worker (make one SandboxedLoader per thread
    to load in parallel). `loader` replaces `ingest.loaders.load_file` in the worker; it must be importable
    there (a module-level function).
    """

    def __init__(self, limits: FileLimits, loader: FileLoader | None = None):
        self.limits = limits
        # Pickled here, unpickled in the worker only once it has imported rag: see _import_rag_first.
        self._payload = pickle.dumps((loader, limits))
        self._lock = threading.Lock()
        self._worker: _Worker | None = None
        self._closed = False

    def load(self, path: Path, source: str) -> list[Document]:
        """Documents of one file, as `load_file(path, source, limits)` would return them; raises its
        `LoaderError`, or `LoadTimeout` / `LoadOutOfMemory` when the file is over the limits."""
        with self._lock:
            if self._closed:
                raise RuntimeError("SandboxedLoader is closed - create a new one to load more files")
            worker = self._ready_worker(path)
            reply = self._call(worker, path, source)
            if reply[-1]:  # the worker asks to be replaced (ran out of memory, or kept too much)
                self._discard()
        kind, body = reply[0], reply[1]
        if kind == "error":
            raise _rebuild_error(*body)
        return body

    def close(self) -> None:
        """Stop the worker; idempotent."""
        with self._lock:
            self._closed = True
            self._discard()

    def __enter__(self) -> SandboxedLoader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ready_worker(self, path: Path) -> _Worker:
        if self._worker is None or not self._worker.alive():
            self._discard()
            self._worker = _Worker.start(self._payload, path)
        return self._worker

    def _call(self, worker: _Worker, path: Path, source: str) -> tuple[Any, ...]:
        try:
            worker.conn.send((path, source))
        except OSError:  # died since its last file (killed from outside): this file was not tried yet
            self._discard()
            worker = self._worker = _Worker.start(self._payload, path)
            worker.conn.send((path, source))
        if not worker.conn.poll(self.limits.timeout_s):
            self._discard()
            raise _timeout(path, self.limits)
        try:
            return worker.conn.recv()
        except (EOFError, OSError):
            exitcode = self._discard()
            raise _died(path, exitcode, self.limits) from None

    def _discard(self) -> int | None:
        """Kill the worker, if any; returns its exit code."""
        worker, self._worker = self._worker, None
        return worker.stop() if worker is not None else None


class _Worker:
    """A fresh interpreter (`python -c`) talking over a socket pair. Not multiprocessing's "spawn": that
    re-runs the parent's main module in the child, which starts the server again where a script lacks an
    `if __name__ == "__main__"` guard, and imports whatever that module imports."""

    def __init__(self, process: subprocess.Popen, conn: Connection):
        self.process = process
        self.conn = conn

    @classmethod
    def start(cls, payload: bytes, path: Path) -> _Worker:
        ours, theirs = socket.socketpair()
        code = "import sys; sys.path[:] = __import__('json').loads(sys.argv[1]); import ingest.sandbox as s; s._main()"
        with theirs:
            process = subprocess.Popen(
                [sys.executable, "-c", code, json.dumps(sys.path), str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # a chatty parser must not write into the CLI's output
                env=_worker_environment(),
            )
        worker = cls(process, Connection(ours.detach()))
        try:
            worker.conn.send_bytes(payload)
            ready = worker.conn.poll(_START_TIMEOUT_S) and worker.conn.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            exitcode = worker.stop()
            raise _loader_error()(
                path, f"its loader process did not start (exit code {exitcode}) - see the server log for why"
            )
        return worker

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> int | None:
        self.process.kill()  # nothing in the worker needs cleaning up, and it may be stuck in C code
        self.process.wait()
        self.conn.close()
        return self.process.returncode


def _main() -> None:
    """Entry point of the worker process: argv[2] is its end of the socket pair."""
    with Connection(int(sys.argv[2])) as conn:
        _serve(conn, conn.recv_bytes())


def _serve(conn: Connection, payload: bytes) -> None:
    """The worker's loop: load the files the parent sends, one at a time, until it goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal is for the parent, which kills us
    _import_rag_first()
    from ingest.loaders import import_parsers, load_file

    loader, limits = pickle.loads(payload)
    loader = loader or load_file
    import_parsers()  # before measuring: the parsers' code is not what a file costs
    baseline = _cap_address_space(limits.memory_mb)
    conn.send("ready")
    while True:
        try:
            path, source = conn.recv()
        except EOFError:
            return  # the parent closed us or died
        reply = _load_one(loader, Path(path), source, limits, baseline)
        try:
            conn.send(reply)
        except MemoryError:  # the documents alone were too many to pickle under the cap
            conn.send(("error", _memory_error_args(path, limits), True))
        if reply[-1]:
            return


def _load_one(loader: FileLoader, path: Path, source: str, limits: FileLimits, baseline: int) -> tuple[Any, ...]:
    """("ok", documents, retire) or ("error", (error class, path, reason), retire)."""
    from ingest.errors import LoaderError, LoadOutOfMemory

    _cap_cpu_time(limits.timeout_s)
    try:
        documents = loader(path, source, limits)
    except MemoryError:
        return "error", _memory_error_args(path, limits), True
    except LoadOutOfMemory:
        return "error", _memory_error_args(path, limits), True
    except LoaderError as exc:
        return "error", (type(exc), exc.path, exc.reason), False
    except Exception as exc:  # a loader's bug must not end the worker loop
        return "error", (LoaderError, str(path), f"could not be loaded: {type(exc).__name__}: {exc}"), False
    # Memory Python keeps after a big file counts against the next one: start afresh past half the cap.
    retire = _address_space() > baseline + limits.memory_mb * _MIB // 2
    return "ok", documents, retire


def _import_rag_first() -> None:
    """ingest builds on rag (ingest.errors on rag.core.errors), and importing rag first is the order every
    other entry point (CLI, server, tests) uses; an ingest module imported first can meet rag importing it
    back while only half initialised."""
    importlib.import_module("rag.core.errors")


def _address_space() -> int:
    """This process's virtual memory size in bytes (what RLIMIT_AS limits); 0 where /proc is missing."""
    import resource

    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0


def _cap_address_space(memory_mb: int) -> int:
    """Cap the address space at its size now plus `memory_mb`; returns the size now.

    Relative, not absolute: the interpreter and its parsers already map a few hundred MiB of address space,
    none of it the file's doing.
    """
    import resource

    baseline = _address_space()
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = baseline + memory_mb * _MIB
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ValueError, OSError):  # platforms that do not support it (macOS): only the timeout applies
        log.warning("could not cap the loader process's memory; RAG_INGEST_FILE_MEMORY_MB is not enforced")
    return baseline


def _cap_cpu_time(timeout_s: float) -> None:
    """Let the kernel end this file's work if the parent cannot (it died, or hangs): CPU time past twice the
    wall-time limit gets SIGXCPU. The parent's timeout normally comes first."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    cap = int(usage.ru_utime + usage.ru_stime + 2 * timeout_s + 5)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    try:
        resource.setrlimit(resource.RLIMIT_CPU, (cap, hard))
    except (ValueError, OSError):
        pass


# ---- errors, built in the parent ------------------------------------------------------------------------
def _loader_error() -> type[LoaderError]:
    from ingest.errors import LoaderError

    return LoaderError


def _memory_reason(limits: FileLimits) -> str:
    return (
        f"needed more than {limits.memory_mb} MiB of memory to load (RAG_INGEST_FILE_MEMORY_MB="
        f"{limits.memory_mb}) - split the file or raise the limit"
    )


def _memory_error_args(path: Path | str, limits: FileLimits) -> tuple[type[LoaderError], str, str]:
    from ingest.errors import LoadOutOfMemory

    return LoadOutOfMemory, str(path), _memory_reason(limits)


def _timeout(path: Path, limits: FileLimits) -> LoaderError:
    from ingest.errors import LoadTimeout

    return LoadTimeout(
        path,
        f"took longer than {limits.timeout_s:g} s to load (RAG_INGEST_FILE_TIMEOUT={limits.timeout_s:g}) - "
        "split the file or raise the limit",
    )


def _died(path: Path, exitcode: int | None, limits: FileLimits) -> LoaderError:
    """The error for a worker that died while loading `path`: killed by a signal is most likely the kernel
    out of memory (SIGKILL) or an allocation failing inside C code (SIGSEGV, SIGABRT)."""
    from ingest.errors import LoadOutOfMemory

    if exitcode is not None and exitcode < 0:
        number = -exitcode
        if number == signal.SIGXCPU:
            return _timeout(path, limits)
        name = signal.Signals(number).name if number in signal.valid_signals() else f"signal {number}"
        return LoadOutOfMemory(path, f"its loader process was killed ({name}); it most likely {_memory_reason(limits)}")
    return _loader_error()(path, f"its loader process exited unexpectedly (exit code {exitcode})")


def _rebuild_error(cls: type[LoaderError], path: str, reason: str) -> LoaderError:
    """The worker's LoaderError, raised again here: exceptions with extra __init__ arguments do not unpickle."""
    try:
        return cls(path, reason)
    except TypeError:  # a subclass with another signature
        return _loader_error()(path, reason)


__all__ = ["SandboxedLoader"]


def _worker_environment() -> dict[str, str]:
    """The server's environment without its settings: a parser exploited by a hostile file finds no API key,
    LLM key or database password in the worker."""
    return {name: value for name, value in os.environ.items() if not name.startswith("RAG_")}
