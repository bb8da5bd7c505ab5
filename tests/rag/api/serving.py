"""The API as `rag serve` runs it (rag.api.server's uvicorn configuration: guarded protocol, timeouts, connection
cap), in a thread on a free loopback port, around services built by the test."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn

from rag.api import create_app
from rag.api.server import connection_limits, raise_open_files_limit, uvicorn_config
from rag.chat.service import ChatService
from rag.core.settings import Settings
from rag.generation.extractive import ExtractiveGenerator
from rag.store.embedders import CachedEmbedder, Embedder
from rag.store.knowledge_base import KnowledgeBase
from rag.text.tokenizer import get_encoding
from rag.wiring import Services, create_retriever
from tests.servers import free_port, wait_until_up


def extractive_services(settings: Settings, kb: KnowledgeBase, embedder: Embedder, **chat_options: Any) -> Services:
    """The bot the API tests serve: hybrid retrieval and the extractive generator over `kb`
    (`chat_options`: ChatService's store, on_handoff, ...)."""
    retriever = create_retriever("hybrid", kb, embedder, settings)
    sentences = CachedEmbedder(embedder)  # as the wiring gives it: the answer weighs sentences by meaning
    generator = ExtractiveGenerator(embedder=sentences)
    return Services(ChatService(settings, retriever, generator, get_encoding(), **chat_options), kb, embedder)


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
