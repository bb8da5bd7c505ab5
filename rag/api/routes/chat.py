from __future__ import annotations

import json
from typing import Iterator

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from rag.api.dependencies import get_chat_service, get_settings
from rag.api.schemas import ChatRequest, ChatResponse, ErrorResponse
from rag.chat import ChatEvent, ChatService
from rag.errors import GeneratorTimeout, RagError
from rag.settings import Settings
from rag.types import Filters

router = APIRouter(tags=["chat"])

_ERRORS = {
    400: {"model": ErrorResponse, "description": "Malformed JSON"},
    413: {"model": ErrorResponse, "description": "Body too large"},
    422: {"model": ErrorResponse, "description": "Invalid request (empty or over-long question, unknown field, ...)"},
    502: {"model": ErrorResponse, "description": "The language model server is unreachable or failed"},
    504: {"model": ErrorResponse, "description": "The language model server timed out"},
}


def _validate(body: ChatRequest, settings: Settings) -> None:
    from fastapi.exceptions import RequestValidationError

    problems = []
    if not body.question.strip():
        problems.append({"loc": ("body", "question"), "msg": "must not be empty", "type": "value_error"})
    elif len(body.question) > settings.max_question_chars:
        problems.append({"loc": ("body", "question"), "type": "value_error",
                         "msg": f"is {len(body.question)} characters; the limit is {settings.max_question_chars}"})
    if body.top_k is not None and body.top_k > settings.max_top_k:
        problems.append({"loc": ("body", "top_k"), "msg": f"must be at most {settings.max_top_k}", "type": "value_error"})
    if problems:
        raise RequestValidationError(problems)


def _sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode("utf-8")


@router.post(
    "/chat",
    response_model=ChatResponse,
    responses=_ERRORS,
    summary="Ask a question; get a grounded, cited answer (or a handoff)",
    description="With `stream: true` the reply is Server-Sent Events: `delta` events carrying `{\"text\"}`, "
    "then one `done` event carrying the full response (with citations), or an `error` event.",
)
def chat(body: ChatRequest, chat: ChatService = Depends(get_chat_service), settings: Settings = Depends(get_settings)):
    _validate(body, settings)
    filters = Filters(body.filters.source_prefix, dict(body.filters.metadata)) if body.filters else None
    events = chat.stream(body.question, conversation_id=body.conversation_id, top_k=body.top_k, filters=filters)
    if not body.stream:
        for kind, payload in events:
            if kind == "answer":
                return ChatResponse.from_answer(payload)  # type: ignore[arg-type]
    # Pull the first event now: retrieval and the LLM connection fail here as a proper 502/504, not mid-stream.
    first = next(events)
    return StreamingResponse(_sse_stream(first, events), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _sse_stream(first: ChatEvent, rest: Iterator[ChatEvent]) -> Iterator[bytes]:
    event: ChatEvent | None = first
    try:
        while event is not None:
            kind, payload = event
            if kind == "delta":
                yield _sse("delta", {"text": payload})
            else:
                yield _sse("done", ChatResponse.from_answer(payload).model_dump())  # type: ignore[arg-type]
            event = next(rest, None)
    except RagError as exc:
        kind = "llm_timeout" if isinstance(exc, GeneratorTimeout) else "llm_unavailable"
        yield _sse("error", {"error": {"type": kind, "message": str(exc)}})
