"""/admin/*: the team's view. Requires RAG_ADMIN_API_KEY (X-API-Key header or Bearer token); without a
configured key these endpoints are disabled (403), never open."""

from __future__ import annotations

import hmac
from datetime import datetime, timezone

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from rag.analytics import compute_stats
from rag.api.dependencies import get_chat_service, get_settings
from rag.chat import ChatService
from rag.errors import ConfigurationError
from rag.settings import Settings


def require_admin(request: Request, settings: Settings = Depends(get_settings)) -> None:
    if settings.admin_api_key is None or not settings.admin_api_key.get_secret_value():
        raise HTTPException(403, "Admin endpoints are disabled - set RAG_ADMIN_API_KEY to enable them")
    given = request.headers.get("x-api-key", "")
    auth = request.headers.get("authorization", "")
    if not given and auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    # constant-time comparison: response timing must not reveal how much of the key matched
    if not given or not hmac.compare_digest(given.encode(), settings.admin_api_key.get_secret_value().encode()):
        raise HTTPException(401, "Missing or wrong admin API key - send it as X-API-Key or Authorization: Bearer")


router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])


@router.get("/stats", summary="Answered/handoff rates, feedback, latency, top unanswered questions")
def stats(since: str | None = Query(None, description="ISO date or datetime, e.g. 2026-11-01"),
          top: int = Query(10, ge=1, le=100), chat: ChatService = Depends(get_chat_service),
          settings: Settings = Depends(get_settings)) -> dict:
    if chat.store is None:
        raise ConfigurationError("statistics need a conversation store - set RAG_DATABASE_URL")
    start = None
    if since:
        try:
            start = datetime.fromisoformat(since)
        except ValueError:
            raise HTTPException(422, f"since must be an ISO date such as 2026-11-01, got {since!r}") from None
        if start.tzinfo is None:
            start = start.replace(tzinfo=timezone.utc)
    embedder = getattr(chat.retriever, "embedder", None)
    return compute_stats(chat.store, start, embedder, top, settings.dense_languages).to_dict()
