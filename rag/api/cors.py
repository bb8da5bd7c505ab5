"""Cross-origin calls to one knowledge base's chat (`/api/kbs/{kb}/chat`, `/api/kbs/{kb}/feedback`) from the sites in
that knowledge base's `allowed_origins` (its override of RAG_ALLOWED_ORIGINS), as plain ASGI middleware. Every other
route keeps the server-wide CORS policy (rag.api.app)."""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.core.errors import RagError

_KB_CHAT = re.compile(r"/api/kbs/([a-z0-9][a-z0-9_-]*)/(chat|feedback)")
_PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "POST",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Max-Age": "600",
}


class KnowledgeBaseCORS:
    """`origins_of(kb_id)` gives the origins one knowledge base allows (an empty list for an unknown one)."""

    def __init__(self, app: ASGIApp, origins_of: Callable[[Scope, str], list[str]]):
        self.app = app
        self.origins_of = origins_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _KB_CHAT.fullmatch(scope.get("path", "")) if scope["type"] == "http" else None
        origin = Headers(scope=scope).get("origin") if match else None
        if match is None or origin is None:
            await self.app(scope, receive, send)
            return
        try:
            allowed = origin in self.origins_of(scope, match.group(1))
        except RagError:  # unknown knowledge base: the route itself answers 404
            allowed = False
        if scope["method"] == "OPTIONS" and Headers(scope=scope).get("access-control-request-method"):
            if not allowed:
                await Response("Origin not allowed", status_code=400)(scope, receive, send)
                return
            headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin", **_PREFLIGHT_HEADERS}
            await Response(status_code=204, headers=headers)(scope, receive, send)
            return

        async def send_with_origin(message: Message) -> None:
            if message["type"] == "http.response.start" and allowed:
                headers = MutableHeaders(scope=message)
                headers["Access-Control-Allow-Origin"] = origin
                headers.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, send_with_origin)


def kb_origins(scope: Scope, kb_id: str) -> list[str]:
    """The origins the served knowledge base `kb_id` allows, from the running app's services."""
    services = scope["app"].state.services
    if services.kbs is None:
        return []
    return list(services.kbs.settings_for(kb_id).allowed_origins)
