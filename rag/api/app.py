"""Application factory: settings, services (built in lifespan, never at import), routers, error handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from rag import __version__
from rag.api.cors import KnowledgeBaseCORS, kb_origins
from rag.api.errors import install_error_handlers
from rag.api.headers import SecurityHeaders
from rag.api.limits import BodySizeLimit
from rag.api.openapi import complete_openapi
from rag.api.routes import (
    admin,
    answers,
    channels,
    chat,
    console,
    conversations,
    docs,
    documents,
    feedback,
    handoffs,
    health,
    insights,
    kbs,
    openai_compat,
    web,
)
from rag.api.routes.documents import UPLOAD_PATHS
from rag.core.settings import Settings, get_settings
from rag.wiring import Services, build_services


class _RagAPI(FastAPI):
    def openapi(self) -> dict[str, Any]:
        """FastAPI's document plus what depends on settings (limits, keys): rag.api.openapi."""
        return complete_openapi(super().openapi(), self.state.settings)


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> FastAPI:
    """The API; with `services`, those are served (and left open), else they are built from settings."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = services or build_services(settings, background=True)
        yield
        if services is None:
            app.state.services.close()

    app = _RagAPI(
        title="RAG support bot",
        version=__version__,
        description="Grounded, cited answers from your company's documents - or an honest handoff to a person.",
        lifespan=lifespan,
        docs_url=None,  # served from local assets by routes.docs: FastAPI's default pages load them from a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        upload_bytes=settings.max_upload_bytes,
        upload_paths=UPLOAD_PATHS,
    )
    if settings.allowed_origins:
        # the widget on the company's site calls this API cross-origin; other origins are refused by CORS
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.allowed_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "Authorization"],
            max_age=600,
        )
    app.add_middleware(KnowledgeBaseCORS, origins_of=kb_origins)  # per knowledge base: its `allowed_origins`
    app.add_middleware(SecurityHeaders)  # outermost: on every response, the 413s and CORS answers included
    install_error_handlers(app)
    for router in (
        health.router,
        chat.router,
        feedback.router,
        admin.router,
        kbs.router,
        documents.router,
        conversations.router,
        answers.router,
        console.router,
        insights.router,
        handoffs.router,
        handoffs.public,
        openai_compat.router,
        channels.router,
        web.router,
        docs.router,
    ):
        app.include_router(router)
    app.openapi()  # built now, so that a model renamed without updating rag.api.openapi fails at start
    return app
