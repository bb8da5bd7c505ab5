"""/admin/*: the team's view. Requires RAG_ADMIN_API_KEY (X-API-Key header or Bearer token); without a
configured key these endpoints are disabled (403), never open."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from rag.api.auth import bearer_token, matches_any
from rag.api.dependencies import ServicesDep, SettingsDep
from rag.conversations.analytics import compute_stats, parse_since
from rag.core.errors import ConfigurationError


def require_admin(request: Request, settings: SettingsDep) -> None:
    key = settings.admin_api_key
    if key is None or not key.get_secret_value():
        raise HTTPException(403, "Admin endpoints are disabled - set RAG_ADMIN_API_KEY to enable them")
    given = request.headers.get("x-api-key", "") or bearer_token(request)
    if not matches_any(given, [key]):
        raise HTTPException(401, "Missing or wrong admin API key - send it as X-API-Key or Authorization: Bearer")


router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])


@router.get("/stats", summary="Answered/handoff rates, feedback, latency, top unanswered questions")
def stats(services: ServicesDep, settings: SettingsDep,
          since: str | None = Query(None, description="ISO date or datetime, e.g. 2026-11-01"),
          top: int = Query(10, ge=1, le=100)) -> dict:
    if services.store is None:
        raise ConfigurationError("statistics need a conversation store - set RAG_DATABASE_URL")
    try:
        start = parse_since(since) if since else None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return compute_stats(services.store, start, services.embedder, top, settings.dense_languages).to_dict()
