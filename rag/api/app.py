"""Application factory: settings, chat service (loaded in lifespan, never at import), routers, error handlers."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from rag import __version__
from rag.api.errors import install_error_handlers
from rag.api.limits import BodySizeLimit
from rag.api.routes import admin, chat, feedback, health, openai_compat, web
from rag.chat import ChatService, build_chat_service
from rag.settings import Settings, get_settings


def create_app(settings: Settings | None = None, *, chat_service: ChatService | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.chat = chat_service or build_chat_service(settings)
        yield
        if chat_service is None:
            service = app.state.chat
            if getattr(service.on_handoff, "close", None):
                service.on_handoff.close()
            if service.store is not None:
                service.store.close()
            kb = getattr(service.retriever, "kb", None)
            if kb is not None:
                kb.close()

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
    app.include_router(health.router)
    app.include_router(chat.router)
    app.include_router(feedback.router)
    app.include_router(admin.router)
    app.include_router(openai_compat.router)
    app.include_router(web.router)
    return app
