from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter

from rag.api.access import scoped
from rag.api.dependencies import ChatDep, ServicesDep, SettingsDep
from rag.api.schemas import CHAT_EVENT, ChatRequest, ChatResponse, error_responses, event_stream_response
from rag.api.sse import error_payload, sse_event, sse_response
from rag.api.validation import problem, question_problems, raise_if
from rag.chat.service import ChatEvent, ChatService, final_answer
from rag.core.errors import RagError
from rag.core.settings import Settings
from rag.core.types import Filters

router = APIRouter(tags=["chat"])

_RESPONSES = event_stream_response("The answer; with `stream: true`, Server-Sent Events", CHAT_EVENT) | error_responses(
    400, 413, 422, 502, 503, 504, s422="Invalid request (empty or over-long question, unknown field, ...)"
)


@router.post(
    "/chat",
    response_model=ChatResponse,
    responses=_RESPONSES,
    summary="Ask a question; get a grounded, cited answer (or a handoff)",
    description='With `stream: true` the reply is Server-Sent Events: `delta` events carrying `{"text"}`, '
    "then one `done` event carrying the full response (with citations), or an `error` event.",
)
def chat(body: ChatRequest, chat: ChatDep, settings: SettingsDep):
    return answer_request(body, chat, settings)


@router.post(
    "/api/kbs/{kb}/chat",
    response_model=ChatResponse,
    responses=_RESPONSES | error_responses(401, 403, 404, s404="No such knowledge base"),
    dependencies=[scoped("chat")],
    summary="Ask one knowledge base (a key with the chat scope); the body and answer of POST /chat",
)
def kb_chat(kb: str, body: ChatRequest, services: ServicesDep, settings: SettingsDep):
    return answer_request(body, services.chat_for(kb), settings)


def answer_request(body: ChatRequest, chat: ChatService, settings: Settings):
    """A /chat request answered by `chat`: JSON, or Server-Sent Events with `stream: true`."""
    problems = question_problems(body.question, settings, ("question",))
    if body.top_k is not None and body.top_k > settings.max_top_k:
        problems.append(problem(("top_k",), f"must be at most {settings.max_top_k}"))
    raise_if(problems)
    filters = Filters(body.filters.source_prefix, dict(body.filters.metadata)) if body.filters else None
    events = chat.stream(
        body.question,
        conversation_id=body.conversation_id,
        top_k=body.top_k,
        filters=filters,
        customer_id=body.customer_id,
        channel="web",
    )
    if not body.stream:
        return ChatResponse.from_answer(final_answer(events))
    # Pull the first event now: retrieval and the LLM connection fail here as a proper 502/504, not mid-stream.
    first = next(events)
    return sse_response(_sse_stream(first, events))


def _sse_stream(first: ChatEvent, rest: Iterator[ChatEvent]) -> Iterator[bytes]:
    event: ChatEvent | None = first
    try:
        while event is not None:
            if event[0] == "delta":
                yield sse_event({"text": event[1]}, "delta")
            else:
                yield sse_event(ChatResponse.from_answer(event[1]).model_dump(), "done")
            event = next(rest, None)
    except RagError as exc:
        yield sse_event(error_payload(exc), "error")
