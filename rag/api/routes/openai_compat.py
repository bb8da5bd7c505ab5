"""OpenAI-compatible API: the bot as a model, so the official SDKs and existing chat front ends can use it.

    GET  /v1/models              the knowledge base as a model
    POST /v1/chat/completions    messages in, the grounded answer out (stream: true for SSE chunks + [DONE])

Extra response fields (ignored by clients that don't know them): `citations` (the same objects /chat returns)
and `rag` ({answered, handoff, conversation_id, message_id, generator}); when streaming they ride on the
last chunk. Earlier user/assistant messages give follow-up questions their context; the `user` field, if
set, is used as the conversation id. With RAG_API_KEYS set, a Bearer token is required.
"""

from __future__ import annotations

import hmac
import json
import time
from typing import Any, Iterator, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from rag.api.dependencies import get_chat_service, get_settings
from rag.api.schemas import ChatResponse
from rag.chat import ChatService
from rag.errors import GeneratorTimeout, RagError
from rag.settings import Settings
from rag.types import Answer


def require_api_key(request: Request, settings: Settings = Depends(get_settings)) -> None:
    if not settings.api_keys:
        return
    auth = request.headers.get("authorization", "")
    given = auth[7:].strip().encode() if auth.lower().startswith("bearer ") else b""
    # check every key in constant time, so timing reveals neither which key nor how much of it matched
    matched = False
    for key in settings.api_keys:
        matched |= hmac.compare_digest(given, key.get_secret_value().encode())
    if not given or not matched:
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
def models(settings: Settings = Depends(get_settings)) -> dict:
    return {"object": "list", "data": [{"id": settings.model_id(), "object": "model", "created": 0, "owned_by": "rag-support-bot"}]}


def _extras(answer: Answer) -> dict[str, Any]:
    response = ChatResponse.from_answer(answer)
    return {
        "citations": [c.model_dump() for c in response.citations],
        "rag": {"answered": answer.answered, "handoff": answer.handoff, "conversation_id": answer.conversation_id,
                "message_id": answer.message_id, "generator": answer.generator, "decline_reason": answer.decline_reason},
    }


@router.post("/chat/completions", summary="Chat completion answered from the knowledge base")
def chat_completions(body: CompletionRequest, chat: ChatService = Depends(get_chat_service),
                     settings: Settings = Depends(get_settings)):
    if body.model != settings.model_id():
        raise HTTPException(404, f"The model {body.model!r} does not exist - GET /v1/models lists {settings.model_id()!r}")
    users = [i for i, m in enumerate(body.messages) if m.role == "user"]
    if not users or not body.messages[users[-1]].text().strip():
        raise HTTPException(422, "messages must end with a non-empty user message (the customer's question)")
    question = body.messages[users[-1]].text()
    if len(question) > settings.max_question_chars:
        raise HTTPException(422, f"the user message is {len(question)} characters; the limit is {settings.max_question_chars}")
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
        answer = next(p for kind, p in events if kind == "answer")
        return {
            "id": f"chatcmpl-{answer.message_id}", "object": "chat.completion", "created": created, "model": body.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.answer}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": answer.usage.prompt_tokens, "completion_tokens": answer.usage.completion_tokens,
                      "total_tokens": answer.usage.total_tokens},
            **_extras(answer),  # type: ignore[arg-type]
        }
    first = next(events)  # retrieval and the LLM connection fail here as a 502/504, before streaming starts
    return StreamingResponse(_chunks(first, events, body.model, created), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _chunks(first, events: Iterator, model: str, created: int) -> Iterator[bytes]:
    chunk_id = None

    def chunk(delta: dict, finish: str | None = None, **extra: Any) -> bytes:
        payload = {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()

    buffered: list[str] = []
    event = first
    try:
        # the message id (the chunk id) is known only at the end; deltas carry a provisional id until then
        chunk_id = f"chatcmpl-{int(time.time() * 1000)}"
        yield chunk({"role": "assistant", "content": ""})
        while event is not None:
            kind, payload = event
            if kind == "delta":
                buffered.append(payload)
                yield chunk({"content": payload})
            else:
                answer: Answer = payload
                usage = {"prompt_tokens": answer.usage.prompt_tokens, "completion_tokens": answer.usage.completion_tokens,
                         "total_tokens": answer.usage.total_tokens}
                yield chunk({}, "stop", usage=usage, **_extras(answer))
            event = next(events, None)
    except RagError as exc:
        kind = "llm_timeout" if isinstance(exc, GeneratorTimeout) else "llm_unavailable"
        yield f"data: {json.dumps({'error': {'type': kind, 'message': str(exc)}})}\n\n".encode()
    yield b"data: [DONE]\n\n"
