"""/admin/*: the team's view. Requires RAG_ADMIN_API_KEY (X-API-Key header or Bearer token); without a
configured key these endpoints are disabled (403), never open."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from rag.api.auth import matches_any
from rag.api.dependencies import ServicesDep, SettingsDep
from rag.api.schemas import error_responses
from rag.api.validation import DATE_SCHEMA, date_param
from rag.conversations.analytics import compute_stats
from rag.core.errors import ConfigurationError

_KEY_HEADER = APIKeyHeader(name="X-API-Key", scheme_name="AdminKey", auto_error=False, description="RAG_ADMIN_API_KEY")
_KEY_BEARER = HTTPBearer(
    scheme_name="AdminBearer", auto_error=False, description="RAG_ADMIN_API_KEY as `Authorization: Bearer <key>`"
)


def require_admin(
    settings: SettingsDep,
    header: Annotated[str | None, Security(_KEY_HEADER)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_KEY_BEARER)],
) -> None:
    key = settings.admin_api_key
    if key is None or not key.get_secret_value():
        raise HTTPException(403, "Admin endpoints are disabled - set RAG_ADMIN_API_KEY to enable them")
    given = header or (bearer.credentials if bearer else "")
    if not matches_any(given, [key]):
        raise HTTPException(401, "Missing or wrong admin API key - send it as X-API-Key or Authorization: Bearer")


router = APIRouter(
    prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)], responses=error_responses(401, 403)
)


@router.get(
    "/stats",
    summary="Answered/handoff rates, feedback, latency, top unanswered questions",
    responses=error_responses(
        422,
        503,
        s422="`since` or `top` is invalid",
        s503="No conversation store is configured, or its database is unreachable",
    ),
)
def stats(
    services: ServicesDep,
    settings: SettingsDep,
    since: str | None = Query(
        None, description="Only from this date (2026-11-01) or RFC 3339 date-time on", json_schema_extra=DATE_SCHEMA
    ),
    top: int = Query(10, ge=1, le=100),
) -> dict:
    if services.store is None:
        raise ConfigurationError("statistics need a conversation store - set RAG_DATABASE_URL")
    start = date_param(since)
    return compute_stats(services.store, start, services.embedder, top, settings.dense_languages).to_dict()
