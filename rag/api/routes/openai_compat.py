"""OpenAI-compatible API: the bot as a model, so the official SDKs and existing chat front ends can use it.

    GET  /v1/models              the knowledge base as a model
    POST /v1/chat/completions    messages in, the grounded answer out (stream: true for SSE chunks + [DONE])

Extra response fields (ignored by clients that don't know them): `citations` (the same objects /chat returns)
and `rag` ({answered, handoff, conversation_id, message_id, generator}); when streaming they ride on the
last chunk. Earlier user/assistant messages give follow-up questions their context; the `user` field, if
set, is used as the conversation id. With RAG_API_KEYS set, a Bearer token is required.
"""

from __future__ import annotations

import time
from typing import Any, Iterator, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from rag.api.auth import bearer_token, matches_any
from rag.api.dependencies import ChatDep, SettingsDep
from rag.api.schemas import ChatResponse
from rag.api.sse import error_payload, sse_event, sse_response
from rag.api.validation import question_problems, raise_if
from rag.chat.service import ChatEvent, final_answer
from rag.core.errors import RagError
from rag.core.types import Answer


def require_api_key(request: Request, settings: SettingsDep) -> None:
    if settings.api_keys and not matches_any(bearer_token(request), settings.api_keys):
        raise HTTPException(401, "Missing or invalid API key - send it as Authorization: Bearer <key>")


router = APIRouter(prefix="/v1", tags=["openai-compatible"], dependencies=[Depends(require_api_key)])


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool", "developer", "function"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: keep the text ones
            return " ".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class CompletionRequest(BaseModel):
    # OpenAI clients send many optional knobs (temperature, top_p, n, stream_options, ...): accepted, and the
    # ones that don't apply to a grounded answer are ignored.
    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[Message] = Field(..., min_length=1)
    stream: bool = False
    user: str | None = Field(None, max_length=128)


@router.get("/models", summary="The knowledge base, as a model")
def models(settings: SettingsDep) -> dict:
    return {"object": "list", "data": [{"id": settings.model_id(), "object": "model", "created": 0, "owned_by": "rag-support-bot"}]}


def _extras(answer: Answer) -> dict[str, Any]:
    response = ChatResponse.from_answer(answer)
    return {
        "citations": response.model_dump()["citations"],
        "rag": {"answered": answer.answered, "handoff": answer.handoff, "conversation_id": answer.conversation_id,
                "message_id": answer.message_id, "generator": answer.generator, "decline_reason": answer.decline_reason},
    }


@router.post("/chat/completions", summary="Chat completion answered from the knowledge base")
def chat_completions(body: CompletionRequest, chat: ChatDep, settings: SettingsDep):
    if body.model != settings.model_id():
        raise HTTPException(404, f"The model {body.model!r} does not exist - GET /v1/models lists {settings.model_id()!r}")
    users = [i for i, m in enumerate(body.messages) if m.role == "user"]
    if not users:
        raise HTTPException(422, "messages must end with a non-empty user message (the customer's question)")
    question = body.messages[users[-1]].text()
    raise_if(question_problems(question, settings, ("messages", users[-1], "content")))
    history, pending = [], None
    for m in body.messages[: users[-1]]:
        if m.role == "user":
            pending = m.text()
        elif m.role == "assistant" and pending is not None:
            history.append((pending, m.text()))
            pending = None
    events = chat.stream(question, conversation_id=body.user, history=history)
    created = int(time.time())
    if not body.stream:
        answer = final_answer(events)
        return {
            "id": f"chatcmpl-{answer.message_id}", "object": "chat.completion", "created": created, "model": body.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.answer}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": answer.usage.prompt_tokens, "completion_tokens": answer.usage.completion_tokens,
                      "total_tokens": answer.usage.total_tokens},
            **_extras(answer),
        }
    first = next(events)  # retrieval and the LLM connection fail here as a 502/504, before streaming starts
    return sse_response(_chunks(first, events, body.model, created))


def _chunks(first: ChatEvent, events: Iterator[ChatEvent], model: str, created: int) -> Iterator[bytes]:
    chunk_id = None

    def chunk(delta: dict, finish: str | None = None, **extra: Any) -> bytes:
        payload = {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return sse_event(payload)

    buffered: list[str] = []
    event: ChatEvent | None = first
    try:
        # the message id (the chunk id) is known only at the end; deltas carry a provisional id until then
        chunk_id = f"chatcmpl-{int(time.time() * 1000)}"
        yield chunk({"role": "assistant", "content": ""})
        while event is not None:
            if event[0] == "delta":
                buffered.append(event[1])
                yield chunk({"content": event[1]})
            else:
                answer = event[1]
                usage = {"prompt_tokens": answer.usage.prompt_tokens, "completion_tokens": answer.usage.completion_tokens,
                         "total_tokens": answer.usage.total_tokens}
                yield chunk({}, "stop", usage=usage, **_extras(answer))
            event = next(events, None)
    except RagError as exc:
        yield sse_event(error_payload(exc))
    yield sse_event("[DONE]")
