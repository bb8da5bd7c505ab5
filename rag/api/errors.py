"""Error translation at the HTTP edge: every failure becomes a JSON body `{"error": {"type", "message"}}`."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from rag.channels.base import ChannelRequestInvalid, ChannelUnauthorized
from rag.core.errors import (
    ConfigurationError,
    Conflict,
    DatabaseUnavailable,
    GeneratorTimeout,
    GeneratorUnavailable,
    KnowledgeBaseError,
    MessageNotFound,
    NotFound,
    QueueFull,
    RagError,
    UnsupportedUpload,
)

log = logging.getLogger("rag.api")
_HTTP_TYPES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
}


def _printable(text: str) -> str:
    """`text` with anything UTF-8 cannot encode (a lone surrogate echoed from the request) escaped, so that
    writing the error body can never fail in turn."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def error_response(
    status: int,
    type_: str,
    message: str,
    fields: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"type": type_, "message": _printable(message)}
    if fields:
        body["fields"] = [{k: _printable(v) for k, v in f.items()} for f in fields]
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _is_union_tag(part: object) -> bool:
    """A union branch tag of the request models, "(user)" or "(text)": not part of the field's path."""
    return isinstance(part, str) and part.startswith("(") and part.endswith(")")


def _field_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    out = []
    for e in exc.errors():
        loc = [str(p) for p in e.get("loc", ()) if p != "body" and not _is_union_tag(p)]
        out.append({"field": ".".join(loc) or "body", "problem": e.get("msg", "invalid"), "type": e.get("type", "")})
    return out


# The one table of project errors -> HTTP status. Starlette picks the handler of the closest class in the
# exception's MRO (ContextOverflow -> 502); anything else the project raises is a 500 (logged).
_RAG_ERRORS: list[tuple[type[RagError], int, str]] = [
    (GeneratorTimeout, 504, "llm_timeout"),
    (GeneratorUnavailable, 502, "llm_unavailable"),
    (ChannelUnauthorized, 401, "unauthorized"),
    (ChannelRequestInvalid, 400, "invalid_request"),
    (MessageNotFound, 404, "message_not_found"),
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (UnsupportedUpload, 415, "unsupported_media_type"),
    (QueueFull, 503, "queue_full"),
    (KnowledgeBaseError, 503, "knowledge_base_error"),
    (DatabaseUnavailable, 503, "database_unavailable"),
    # at request time: a feature the server was not configured for (feedback or admin without a conversation
    # store); the message says which setting to set
    (ConfigurationError, 503, "not_configured"),
]


def error_kind(exc: RagError) -> tuple[int, str]:
    """(status, type) of a project error by the table above - the closest class in its MRO - for errors that
    happen after a streamed answer has started, when only an `error` event can still tell the client."""
    kinds = {error: (status, type_) for error, status, type_ in _RAG_ERRORS}
    return next((kinds[cls] for cls in type(exc).__mro__ if cls in kinds), (500, "internal_error"))


def _fixed(status: int, type_: str) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handler(_: Request, exc: Exception) -> Response:
        if status >= 500:
            log.warning("%s: %s", type_, exc)
        headers = {"Retry-After": "30"} if status == 503 else None
        return error_response(status, type_, str(exc), headers=headers)

    return handler


def allowed_methods(openapi: dict[str, Any], path: str) -> list[str]:
    """The methods the OpenAPI document lists for every path template matching `path`.

    >>> allowed_methods({"paths": {"/api/kbs/{kb}": {"get": {}, "patch": {}}, "/api/kbs": {"post": {}}}}, "/api/kbs/a")
    ['GET', 'PATCH']
    """
    methods: set[str] = set()
    for template, operations in openapi.get("paths", {}).items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            methods.update(method.upper() for method in operations)
    return sorted(methods)


_INVALID_JSON = 'The request body is not valid JSON - send a JSON object such as {"question": "..."}'


def _declares_json(content_type: str | None) -> bool:
    """Whether a Content-Type header says JSON (application/json, application/*+json); none says nothing."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return not media or media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = _field_errors(exc)
        if any(f["type"] == "json_invalid" for f in fields):
            return error_response(400, "invalid_json", _INVALID_JSON)
        content_type = request.headers.get("content-type")
        if any(f["field"] == "body" for f in fields) and not _declares_json(content_type):
            # FastAPI hands a body of another declared type to the model as raw bytes: "not a dictionary" would
            # blame a JSON object that was only labelled wrong (curl -d sends form encoding)
            return error_response(
                415,
                "unsupported_media_type",
                f"The request body is sent as {content_type!r} - send JSON with the header "
                "'Content-Type: application/json'",
            )
        summary = "; ".join(f"{f['field']}: {f['problem']}" for f in fields)
        return error_response(422, "invalid_request", f"Invalid request - {summary}", fields)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # exc.headers carries `Allow` on a 405 (RFC 9110 requires it), naming the methods of the one route that
        # matched the path; every route of that path counts (GET and POST /api/kbs are two routes)
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
            # FastAPI's "error parsing the body": a body declared JSON that is not even text (invalid UTF-8)
            return error_response(400, "invalid_json", _INVALID_JSON)
        type_ = _HTTP_TYPES.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            methods = allowed_methods(request.app.openapi(), request.url.path)
            if methods:
                headers["Allow"] = ", ".join(methods)
        return error_response(exc.status_code, type_, str(exc.detail), headers=headers or None)

    for error, status, type_ in _RAG_ERRORS:
        app.add_exception_handler(error, _fixed(status, type_))

    @app.exception_handler(RagError)
    async def rag_error(_: Request, exc: RagError) -> JSONResponse:
        log.exception("request failed")
        return error_response(500, "internal_error", str(exc))
