"""Serving the API: uvicorn, hardened against idle and slow clients. `rag serve` calls `serve(settings)`.

Left alone, uvicorn keeps a connection that never sends a request open forever, and accepts connections until
the process runs out of file descriptors: 1,100 idle sockets against a 1,024 open-files limit made /health
time out for as long as they were held, while asyncio logged "Too many open files" once per backlog slot
(257 MB of log in 45 s). Here:

- a connection must send complete request headers within RAG_HTTP_HEADER_TIMEOUT seconds of opening (or of
  starting its next request), and its body within RAG_HTTP_BODY_TIMEOUT; idle keep-alive connections close
  after RAG_HTTP_KEEP_ALIVE_TIMEOUT;
- open connections are capped below the open-files limit (whose soft value is first raised to the hard one):
  when full, the connection idle longest is closed to admit the new one, so a flood of idle sockets cannot
  lock out real clients; requests in progress are never cut;
- messages that a flood repeats (asyncio's accept errors, uvicorn's invalid-request warnings) are logged at
  most once per LOG_REPEAT_SECONDS, with a count of those left out.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from rag.api.app import create_app
from rag.core.settings import Settings

log = logging.getLogger("rag.api.server")
FD_RESERVE = 64  # descriptors kept for the knowledge base, databases, model files and logs
LOG_REPEAT_SECONDS = 10.0
_REPEATED = {
    "asyncio": ("socket.accept() out of system resource",),
    "uvicorn.error": (
        "Invalid HTTP request received.",
        "Exceeded concurrency limit.",
        "Unsupported upgrade request.",
        "No supported WebSocket library detected.",
    ),
    "rag.api.server": ("Connection limit reached",),
}
_BUSY_BODY = b'{"error": {"type": "server_busy", "message": "Too many open connections - retry in a few seconds"}}'
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b"Retry-After: 5\r\nContent-Length: %d\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY)
)


@dataclass
class ConnectionLimits:
    header_timeout: float
    body_timeout: float
    max_connections: int
    backlog: int
    # connections with no request in progress, the one idle longest first: the first to close when full
    idle: OrderedDict[GuardedH11Protocol, None] = field(default_factory=OrderedDict)


def raise_open_files_limit() -> int:
    """The soft RLIMIT_NOFILE raised to the hard limit where the system allows it; the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-files limit from %d to %d: %s", soft, target, exc)
    return soft


def connection_limits(settings: Settings, open_files: int) -> ConnectionLimits:
    """Caps that keep descriptors below `open_files`: asyncio accepts up to `backlog` connections at a time
    before the protocol can close any, so those come off too."""
    backlog = max(16, min(2048, (open_files - FD_RESERVE) // 8))
    room = open_files - FD_RESERVE - backlog
    cap = max(8, min(settings.http_max_connections, room))
    if settings.http_max_connections > room:
        log.warning(
            "serving at most %d connections: the open-files limit is %d (raise it with `ulimit -n`)", cap, open_files
        )
    return ConnectionLimits(settings.http_header_timeout, settings.http_body_timeout, cap, backlog)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with header and body deadlines and a connection cap (see the module docstring)."""

    limits: ClassVar[ConnectionLimits]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._seen_cycle: object | None = None

    # ---- asyncio.Protocol ----------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn's
        super().connection_made(transport)
        if not self._make_room():
            return
        self._become_idle()
        self._header_timer = self.loop.call_later(self.limits.header_timeout, self._headers_too_slow)

    def data_received(self, data: bytes) -> None:
        if not self._in_request() and self._header_timer is None:  # the first bytes of the next request
            self._header_timer = self.loop.call_later(self.limits.header_timeout, self._headers_too_slow)
        super().data_received(data)
        self._track_request()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._cancel_timers()
        self.limits.idle.pop(self, None)

    # ---- uvicorn -------------------------------------------------------------------------------------------
    def on_response_complete(self) -> None:
        super().on_response_complete()  # may start the next pipelined request
        self._track_request()
        if not self._in_request() and not self.transport.is_closing():
            self._become_idle()

    # ---- the guard -----------------------------------------------------------------------------------------
    def _in_request(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _track_request(self) -> None:
        """After h11 parsed what arrived: a new request stops the header deadline and may start the body one."""
        if self.cycle is not None and self.cycle is not self._seen_cycle:
            self._seen_cycle = self.cycle
            self.limits.idle.pop(self, None)
            self._cancel(self._header_timer)
            self._header_timer = None
            if self.cycle.more_body:
                self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_too_slow)
        if self.cycle is not None and not self.cycle.more_body:
            self._cancel(self._body_timer)
            self._body_timer = None

    def _become_idle(self) -> None:
        self.limits.idle[self] = None
        self.limits.idle.move_to_end(self)

    def _make_room(self) -> bool:
        """Below the cap, or made so by closing the connection idle longest; False (answered 503) when every
        connection is busy with a request."""
        if len(self.connections) <= self.limits.max_connections:
            return True
        live = sum(1 for c in self.connections if not c.transport.is_closing())
        if live <= self.limits.max_connections:
            return True
        if self.limits.idle:
            oldest, _ = self.limits.idle.popitem(last=False)
            oldest.transport.close()
            log.warning(
                "Connection limit reached (%d): closed the connection idle longest", self.limits.max_connections
            )
            return True
        log.warning(
            "Connection limit reached (%d) with every connection busy: refused one", self.limits.max_connections
        )
        self.transport.write(_BUSY)
        self.transport.close()
        return False

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self._in_request() and not self.transport.is_closing():
            self.transport.close()

    def _body_too_slow(self) -> None:
        self._body_timer = None
        if self.cycle is not None and self.cycle.more_body and not self.transport.is_closing():
            self.transport.close()  # the application sees the client disconnect

    def _cancel_timers(self) -> None:
        self._cancel(self._header_timer)
        self._cancel(self._body_timer)
        self._header_timer = self._body_timer = None

    @staticmethod
    def _cancel(timer: asyncio.TimerHandle | None) -> None:
        if timer is not None:
            timer.cancel()


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedH11Protocol]:
    """The protocol class uvicorn instantiates per connection, bound to this server's limits."""

    class Guarded(GuardedH11Protocol):
        pass

    Guarded.limits = limits
    return Guarded


class RepeatThrottle(logging.Filter):
    """Lets each of `prefixes` through once per `interval` seconds; the next one let through says how many were
    left out. A record let through loses its traceback after the first: the same one, every time."""

    def __init__(self, prefixes: tuple[str, ...], interval: float = LOG_REPEAT_SECONDS):
        super().__init__()
        self.prefixes = prefixes
        self.interval = interval
        self.last: dict[str, tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        prefix = next((p for p in self.prefixes if message.startswith(p)), None)
        if prefix is None:
            return True
        now = time.monotonic()
        seen = self.last.get(prefix)
        if seen is not None and now - seen[0] < self.interval:
            self.last[prefix] = (seen[0], seen[1] + 1)
            return False
        self.last[prefix] = (now, 0)
        if seen is not None:
            record.msg, record.args, record.exc_info, record.exc_text = (
                f"{message} (and {seen[1]} more like it in the last {now - seen[0]:.0f} s)",
                None,
                None,
                None,
            )
        return True


def throttle_repeated_logs() -> None:
    for name, prefixes in _REPEATED.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatThrottle) for f in logger.filters):
            logger.addFilter(RepeatThrottle(prefixes))


def uvicorn_config(settings: Settings, app: Any, limits: ConnectionLimits, log_level: str = "info") -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        lifespan="on",
        ws="none",
        http=guarded_protocol(limits),
        backlog=limits.backlog,
        timeout_keep_alive=settings.http_keep_alive_timeout,
    )


def serve(settings: Settings) -> None:
    """Serve the API on settings.host:port until interrupted."""
    limits = connection_limits(settings, raise_open_files_limit())
    config = uvicorn_config(settings, create_app(settings), limits)
    throttle_repeated_logs()  # after uvicorn has configured its loggers
    uvicorn.Server(config).run()
