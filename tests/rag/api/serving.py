"""The API as `rag serve` runs it (rag.api.server's uvicorn configuration: guarded protocol, timeouts, connection
cap), in a thread on a free loopback port, around services built by the test."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import uvicorn

from rag.api import create_app
from rag.api.server import connection_limits, raise_open_files_limit, uvicorn_config
from rag.core.settings import Settings
from rag.wiring import Services
from tests.servers import free_port, wait_until_up


@contextlib.contextmanager
def guarded_server(settings: Settings, services: Services) -> Iterator[str]:
    """Yields the base URL of `create_app(settings, services=services)` served as in production."""
    settings = settings.model_copy(update={"host": "127.0.0.1", "port": free_port()})
    limits = connection_limits(settings, raise_open_files_limit())
    config = uvicorn_config(settings, create_app(settings, services=services), limits, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until_up(f"http://127.0.0.1:{settings.port}/health", 60)
        yield f"http://127.0.0.1:{settings.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
