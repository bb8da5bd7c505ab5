"""Who may do what on /api: `Authorization: Bearer KEY`, where KEY is RAG_ADMIN_API_KEY (everything) or a key of
one knowledge base with scopes (`chat`, `ingest`, `conversations`, `manage`; created with POST /api/kbs/{kb}/keys),
or the console's session cookie (rag.api.routes.console), whose writes must carry its CSRF token in `X-CSRF-Token`.

A knowledge base's key gets 403 on every route of another knowledge base, and on a route whose scope it lacks;
a missing or unknown key gets 401. Keys are stored hashed and compared in constant time (rag.store.catalog_db).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from rag.api.auth import matches_any
from rag.core.errors import ConfigurationError
from rag.store.catalog import ApiKey
from rag.store.catalog_db import secret_hash

BEARER = HTTPBearer(
    scheme_name="KnowledgeBaseKey",
    auto_error=False,
    description="RAG_ADMIN_API_KEY, or a knowledge base's key from POST /api/kbs/{kb}/keys",
)
SCOPE_DOING = {
    "chat": "ask questions of",
    "ingest": "manage the documents of",
    "conversations": "read the conversations of",
    "manage": "manage",
}


@dataclass(frozen=True)
class Caller:
    admin: bool
    key: ApiKey | None = None

    def may(self, kb_id: str, scope: str) -> bool:
        return self.admin or (self.key is not None and self.key.kb_id == kb_id and scope in self.key.scopes)

    def visible(self, kb_id: str) -> bool:
        """Whether the caller may know this knowledge base exists (any scope on it)."""
        return self.admin or (self.key is not None and self.key.kb_id == kb_id and bool(self.key.scopes))


SESSION_COOKIE = "rag_session"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def current_caller(
    request: Request, bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]
) -> Caller:
    token = bearer.credentials.strip() if bearer else ""
    if not token and request.cookies.get(SESSION_COOKIE):
        return session_caller(request)
    if not token:
        raise HTTPException(
            401,
            "Send an API key as Authorization: Bearer <key> (RAG_ADMIN_API_KEY or a knowledge base's key)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    admin_key = request.app.state.settings.admin_api_key
    if admin_key is not None and admin_key.get_secret_value() and matches_any(token, [admin_key]):
        return Caller(admin=True)
    kbs = request.app.state.services.kbs
    if kbs is None:
        raise ConfigurationError("knowledge-base management is not available in this server")
    key = kbs.catalog.db.verify_key(token)
    if key is None:
        raise HTTPException(401, "Unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    return Caller(admin=False, key=key)


def session_caller(request: Request) -> Caller:
    """The caller a console session cookie stands for; a write must also carry the session's CSRF token."""
    kbs = request.app.state.services.kbs
    cookie = request.cookies.get(SESSION_COOKIE, "")
    session = kbs.catalog.db.session(cookie) if kbs is not None and cookie else None
    admin_key = request.app.state.settings.admin_api_key
    if session is not None and session.key is None:  # an admin session lasts while the admin key is unchanged
        current = secret_hash(admin_key.get_secret_value()) if admin_key is not None else ""
        if not current or not hmac.compare_digest(session.admin_sha256 or "", current):
            session = None
    if session is None:
        raise HTTPException(
            401, "Your console session has ended - sign in again", headers={"WWW-Authenticate": "Bearer"}
        )
    if request.method not in _SAFE_METHODS:
        given = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(given.encode(), session.csrf.encode()):
            raise HTTPException(403, f"A change from the console must carry its {CSRF_HEADER} header")
    return Caller(admin=session.key is None, key=session.key)


CallerDep = Annotated[Caller, Depends(current_caller)]


def check(caller: Caller, kb_id: str, scope: str) -> None:
    if caller.may(kb_id, scope):
        return
    if caller.key is not None and caller.key.kb_id != kb_id:
        raise HTTPException(403, f"This key is for knowledge base {caller.key.kb_id!r}, not {kb_id!r}")
    raise HTTPException(
        403, f"This key may not {SCOPE_DOING[scope]} knowledge base {kb_id!r} (it lacks the {scope} scope)"
    )


def scoped(scope: str) -> Any:
    """A dependency for routes under /api/kbs/{kb}: the caller needs `scope` on `kb`."""

    def dependency(kb: str, caller: CallerDep) -> None:
        check(caller, kb, scope)

    return Depends(dependency)


def require_admin(caller: CallerDep) -> None:
    if not caller.admin:
        raise HTTPException(403, "Only RAG_ADMIN_API_KEY may create or delete knowledge bases")
