"""Application factory: settings, services (built in lifespan, never at import), routers, error handlers."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from rag import __version__
from rag.api.errors import install_error_handlers
from rag.api.limits import BodySizeLimit
from rag.api.routes import admin, chat, feedback, health, openai_compat, web
from rag.core.settings import Settings, get_settings
from rag.wiring import Services, build_services


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> FastAPI:
    """The API; with `services`, those are served (and left open), else they are built from settings."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = services or build_services(settings)
        yield
        if services is None:
            app.state.services.close()

    app = FastAPI(
        title="RAG support bot",
        version=__version__,
        description="Grounded, cited answers from your company's documents - or an honest handoff to a person.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.allowed_origins:
        # the widget on the company's site calls this API cross-origin; other origins are refused by CORS
        app.add_middleware(CORSMiddleware, allow_origins=settings.allowed_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Content-Type", "Authorization"], max_age=600)
    install_error_handlers(app)
    for router in (health.router, chat.router, feedback.router, admin.router, openai_compat.router, web.router):
        app.include_router(router)
    return app
