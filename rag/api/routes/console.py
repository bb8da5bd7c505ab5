"""The operator console: the page at /console (static files, no build step) and its session. Signing in exchanges
a key (RAG_ADMIN_API_KEY or a knowledge base's key) for a session cookie - HttpOnly, SameSite=Strict, Secure over
HTTPS - so the page never holds the key; every change it makes carries the session's CSRF token (rag.api.access).
What the page shows follows the key's scopes."""

from __future__ import annotations

from datetime import datetime
from importlib import resources

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from rag.api.access import CSRF_HEADER, SESSION_COOKIE, Caller, session_caller
from rag.api.auth import matches_any
from rag.api.dependencies import KnowledgeBasesDep, SettingsDep
from rag.api.schemas import error_responses
from rag.api.validation import Text
from rag.store.catalog_db import Session, secret_hash

router = APIRouter(prefix="/console", tags=["console"])
SESSION_HOURS = 12
_ASSETS = {"console.js": "application/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8"}


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    key: Text = Field(..., min_length=1, max_length=200)


class SessionOut(BaseModel):
    admin: bool
    kb: str | None = Field(description="The knowledge base of a knowledge base's key (none for the admin key).")
    scopes: list[str]
    csrf_token: str = Field(description=f"Send it as {CSRF_HEADER} with every change.")
    expires_at: datetime

    @classmethod
    def of(cls, session: Session) -> SessionOut:
        key = session.key
        return cls(
            admin=key is None,
            kb=key.kb_id if key else None,
            scopes=list(key.scopes) if key else ["chat", "ingest", "conversations", "manage"],
            csrf_token=session.csrf,
            expires_at=session.expires_at,
        )


def _asset(name: str) -> str:
    return resources.files("rag.api").joinpath("static", name).read_text(encoding="utf-8")


@router.get("", response_class=HTMLResponse, include_in_schema=False)
def page() -> HTMLResponse:
    return HTMLResponse(_asset("console.html"), headers={"Cache-Control": "no-cache"})


@router.get("/console.js", include_in_schema=False)
def script() -> Response:
    return Response(_asset("console.js"), media_type=_ASSETS["console.js"], headers={"Cache-Control": "no-cache"})


@router.get("/console.css", include_in_schema=False)
def style() -> Response:
    return Response(_asset("console.css"), media_type=_ASSETS["console.css"], headers={"Cache-Control": "no-cache"})


@router.post(
    "/session",
    response_model=SessionOut,
    summary="Sign in to the console with a key; answers with a session cookie and its CSRF token",
    responses=error_responses(400, 401, 413, 422, 503),
)
def sign_in(body: SignIn, request: Request, kbs: KnowledgeBasesDep, settings: SettingsDep) -> JSONResponse:
    admin_key = settings.admin_api_key
    if admin_key is not None and admin_key.get_secret_value() and matches_any(body.key, [admin_key]):
        token, session = kbs.catalog.db.add_session(None, secret_hash(body.key), SESSION_HOURS)
    else:
        key = kbs.catalog.db.verify_key(body.key)
        if key is None:
            raise HTTPException(401, "This key is not valid - use RAG_ADMIN_API_KEY or a knowledge base's key")
        token, session = kbs.catalog.db.add_session(key, None, SESSION_HOURS)
    response = JSONResponse(SessionOut.of(session).model_dump(mode="json"))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_HOURS * 3600,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.get(
    "/session", response_model=SessionOut, summary="The current console session", responses=error_responses(401, 503)
)
def current_session(request: Request, kbs: KnowledgeBasesDep) -> SessionOut:
    session_caller(request)  # 401 unless signed in
    session = kbs.catalog.db.session(request.cookies.get(SESSION_COOKIE, ""))
    assert session is not None  # just checked
    return SessionOut.of(session)


@router.delete(
    "/session",
    status_code=204,
    summary="Sign out (with the session's CSRF token)",
    responses=error_responses(401, 403, 503),
)
def sign_out(request: Request, kbs: KnowledgeBasesDep) -> Response:
    caller: Caller = session_caller(request)
    del caller  # signed in, and the CSRF token matched
    kbs.catalog.db.end_session(request.cookies.get(SESSION_COOKIE, ""))
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
