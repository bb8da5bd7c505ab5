"""A real local HTTP receiver for webhook tests (loopback only)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self, fail_first: int = 0, status: int = 500, delay: float = 0.0):
        self.fail_first, self.status, self.delay = fail_first, status, delay
        self.attempts = 0
        self.received: list[dict] = []
        self.url = ""


@contextlib.contextmanager
def webhook_receiver(fail_first: int = 0, status: int = 500, delay: float = 0.0) -> Iterator[Receiver]:
    state = Receiver(fail_first, status, delay)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server naming)
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if state.delay:
                threading.Event().wait(state.delay)
            with lock:
                state.attempts += 1
                failing = state.attempts <= state.fail_first
                if not failing:
                    state.received.append(json.loads(body))
            self.send_response(state.status if failing else 200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/handoff"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
