"""The HTTP edge (FastAPI). `create_app()` wires routers, error handlers and the chat service."""

from rag.api.app import create_app

__all__ = ["create_app"]
