"""Error translation at the HTTP edge: every failure becomes a JSON body `{"error": {"type", "message"}}`."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.core.errors import GeneratorTimeout, GeneratorUnavailable, KnowledgeBaseError, MessageNotFound, RagError

log = logging.getLogger("rag.api")
_HTTP_TYPES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed", 413: "body_too_large", 415: "unsupported_media_type"}


def error_response(status: int, type_: str, message: str, fields: list | None = None) -> JSONResponse:
    body: dict = {"type": type_, "message": message}
    if fields:
        body["fields"] = fields
    return JSONResponse({"error": body}, status_code=status)


def _field_errors(exc: RequestValidationError) -> list[dict]:
    out = []
    for e in exc.errors():
        loc = [str(p) for p in e.get("loc", ()) if p != "body"]
        out.append({"field": ".".join(loc) or "body", "problem": e.get("msg", "invalid"), "type": e.get("type", "")})
    return out


# Starlette picks the handler of the closest class in the exception's MRO (ContextOverflow -> 502).
_RAG_ERRORS = [
    (GeneratorTimeout, 504, "llm_timeout"),
    (GeneratorUnavailable, 502, "llm_unavailable"),
    (MessageNotFound, 404, "message_not_found"),
    (KnowledgeBaseError, 503, "knowledge_base_error"),
]


def _fixed(status: int, type_: str):
    async def handler(_: Request, exc: Exception) -> JSONResponse:
        return error_response(status, type_, str(exc))

    return handler


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = _field_errors(exc)
        if any(f["type"] == "json_invalid" for f in fields):
            return error_response(400, "invalid_json", "The request body is not valid JSON - send a JSON object such as {\"question\": \"...\"}")
        summary = "; ".join(f"{f['field']}: {f['problem']}" for f in fields)
        return error_response(422, "invalid_request", f"Invalid request - {summary}", fields)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = _HTTP_TYPES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, type_, str(exc.detail))

    for error, status, type_ in _RAG_ERRORS:
        app.add_exception_handler(error, _fixed(status, type_))

    @app.exception_handler(RagError)
    async def rag_error(_: Request, exc: RagError) -> JSONResponse:
        log.exception("request failed")
        return error_response(500, "internal_error", str(exc))
