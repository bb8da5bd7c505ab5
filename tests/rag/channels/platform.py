"""A stand-in for a messaging platform's HTTP API, on loopback: it records every call and answers with what the
test scripted (default: 200 and `{"ok": true}`), e.g. a 429 with Retry-After first, then success.

    with platform_api() as api:
        api.script("/chat.postMessage", Scripted(429, {"ok": False}, {"Retry-After": "1"}))
        ...                                         # point the channel's *_api_url at api.url
        call = api.wait_for("/chat.postMessage")    # the first call whose path ends so
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-case
    body: bytes
    at: float  # time.monotonic() when it arrived
    status: int = 200  # what it was answered

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Scripted:
    status: int = 200
    body: Any = None  # JSON-encoded; None: {"ok": true}
    headers: dict[str, str] = field(default_factory=dict)


class PlatformAPI:
    def __init__(self) -> None:
        self.url = ""
        self.calls: list[Call] = []
        self._scripts: list[tuple[str, Scripted]] = []  # (path suffix, response), each used once, in order
        self._defaults: dict[str, Any] = {}  # path suffix -> JSON body of the default 200
        self._lock = threading.Condition()

    def script(self, suffix: str, *responses: Scripted) -> None:
        """The next calls to a path ending in `suffix` get these responses, one each, before the default."""
        with self._lock:
            self._scripts.extend((suffix, r) for r in responses)

    def default(self, suffix: str, body: Any) -> None:
        """The JSON body every unscripted 200 to a path ending in `suffix` carries."""
        with self._lock:
            self._defaults[suffix] = body

    def calls_to(self, suffix: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.path.endswith(suffix)]

    def wait_for(self, suffix: str, count: int = 1, timeout: float = 60.0) -> list[Call]:
        """The first `count` calls to a path ending in `suffix`, once that many arrived (AssertionError after
        `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [c for c in self.calls if c.path.endswith(suffix)]
                if len(found) >= count:
                    return found[:count]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{count} call(s) to *{suffix} expected, got {len(found)}: {self.calls}")
                self._lock.wait(left)

    def _respond(self, call: Call) -> Scripted:
        with self._lock:
            n = next((n for n, (suffix, _) in enumerate(self._scripts) if call.path.endswith(suffix)), None)
            if n is not None:
                scripted = self._scripts.pop(n)[1]
            else:
                body = next((b for s, b in self._defaults.items() if call.path.endswith(s)), {"ok": True})
                scripted = Scripted(200, body)
            call.status = scripted.status
            self.calls.append(call)
            self._lock.notify_all()
        return scripted


@contextlib.contextmanager
def platform_api() -> Iterator[PlatformAPI]:
    api = PlatformAPI()

    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            parts = urlsplit(self.path)
            call = Call(
                self.command,
                parts.path,
                dict(parse_qsl(parts.query)),
                {k.lower(): v for k, v in self.headers.items()},
                body,
                time.monotonic(),
            )
            scripted = api._respond(call)
            payload = json.dumps({"ok": True} if scripted.body is None else scripted.body).encode()
            self.send_response(scripted.status)
            for name, value in scripted.headers.items():
                self.send_header(name, value)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = _any  # noqa: N815 (http.server naming)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
