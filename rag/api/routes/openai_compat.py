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
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag
from pydantic_core import PydanticCustomError

from rag.api.auth import matches_any
from rag.api.dependencies import ServicesDep, SettingsDep
from rag.api.schemas import COMPLETION_EVENT, ChatResponse, error_responses, event_stream_response
from rag.api.sse import error_payload, sse_event, sse_response
from rag.api.validation import Question, Text, question_problems, raise_if
from rag.chat.service import ChatEvent, final_answer
from rag.core.errors import NotFound, RagError
from rag.core.settings import Settings
from rag.core.types import Answer
from rag.wiring import Services

# declared in the OpenAPI document only where RAG_API_KEYS is set (rag.api.openapi)
BEARER = HTTPBearer(scheme_name="ApiKey", auto_error=False, description="One of RAG_API_KEYS")


def require_api_key(
    request: Request,
    settings: SettingsDep,
    services: ServicesDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
) -> None:
    """One of RAG_API_KEYS (every knowledge base), or a knowledge base's key with the chat scope (that one only);
    without RAG_API_KEYS, a request with no key is served too - from the default knowledge base only, as /chat."""
    given = bearer.credentials.strip() if bearer else ""
    key = services.kbs.catalog.db.verify_key(given) if given and services.kbs is not None else None
    request.state.kb_key = key
    request.state.every_kb = bool(settings.api_keys) and key is None and matches_any(given, settings.api_keys)
    if key is not None:
        if "chat" not in key.scopes:
            raise HTTPException(403, f"This key may not ask questions of knowledge base {key.kb_id!r} (chat scope)")
        return
    if settings.api_keys and not matches_any(given, settings.api_keys):
        raise HTTPException(
            401,
            "Missing or invalid API key - send it as Authorization: Bearer <key>",
            headers={"WWW-Authenticate": "Bearer"},
        )


def model_ids(request: Request, services: Services, settings: Settings) -> list[str]:
    """The models this caller may use: the knowledge bases (RAG_KB_ROOT), or the one knowledge base served."""
    key = getattr(request.state, "kb_key", None)
    if services.kbs is None or settings.kb_root is None:
        return [settings.model_id()]
    if key is not None:
        return [key.kb_id]
    if getattr(request.state, "every_kb", False):
        return [info.id for info in services.kbs.list()]
    try:
        return [services.kbs.default_id()]  # an open /v1 reaches what the open /chat reaches
    except NotFound:
        return []


router = APIRouter(
    prefix="/v1",
    tags=["openai-compatible"],
    dependencies=[Depends(require_api_key)],
    responses=error_responses(401, 403),
)


class ContentPart(BaseModel):
    """One part of a `content` list; only text parts carry meaning here."""

    model_config = ConfigDict(extra="allow", strict=True)

    type: Annotated[Text, Field(max_length=64)]
    text: Text | None = None


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    type: Literal["text"]
    text: Question


def _content_kind(value: Any) -> str:
    return "(parts)" if isinstance(value, list) else "(text)"


def _message_kind(value: Any) -> str:
    role = value.get("role") if isinstance(value, dict) else getattr(value, "role", None)
    return "(user)" if role == "user" else "(other)"


# Unions tagged "(...)": only the branch that fits is validated, and rag.api.errors leaves the tag out of the
# field it names (`messages.0.content`, not every branch's errors under pydantic's branch labels).
UserContent = Annotated[
    Annotated[Question, Tag("(text)")] | Annotated[list[TextPart], Field(min_length=1, max_length=1), Tag("(parts)")],
    Discriminator(_content_kind),
]
OtherContent = Annotated[
    Annotated[Text, Tag("(text)")] | Annotated[list[ContentPart], Tag("(parts)")], Discriminator(_content_kind)
]


class UserMessage(BaseModel):
    """A customer's message: its text is a question, so it must have some (the limit is RAG_MAX_QUESTION_CHARS).
    As a list, one text part: this bot reads text only, and an image or file would be silently lost."""

    model_config = ConfigDict(extra="allow", strict=True)

    role: Literal["user"]
    content: UserContent

    def text(self) -> str:
        return self.content[0].text if isinstance(self.content, list) else self.content


class OtherMessage(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    role: Literal["system", "assistant", "tool", "developer", "function"]
    content: OtherContent | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: keep the text ones
            return " ".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


def _has_user_message(messages: list[UserMessage | OtherMessage]) -> list[UserMessage | OtherMessage]:
    if not any(m.role == "user" for m in messages):
        raise PydanticCustomError("no_user_message", "must include a non-empty user message (the customer's question)")
    return messages


_USER_PRESENT = {"contains": {"type": "object", "properties": {"role": {"const": "user"}}, "required": ["role"]}}


class CompletionRequest(BaseModel):
    # OpenAI clients send many optional knobs (temperature, top_p, n, stream_options, ...): accepted, and the
    # ones that don't apply to a grounded answer are ignored.
    model_config = ConfigDict(extra="allow", strict=True)

    model: Annotated[Text, Field(max_length=256)] = Field(..., description="The id GET /v1/models lists.")
    messages: Annotated[
        list[
            Annotated[
                Annotated[UserMessage, Tag("(user)")] | Annotated[OtherMessage, Tag("(other)")],
                Discriminator(_message_kind),
            ]
        ],
        Field(min_length=1, json_schema_extra=_USER_PRESENT),
        AfterValidator(_has_user_message),
    ]
    stream: bool = False
    user: Annotated[Text, Field(max_length=128)] | None = Field(None, description="Used as the conversation id.")


@router.get("/models", summary="The knowledge bases, as models")
def models(request: Request, settings: SettingsDep, services: ServicesDep) -> dict:
    return {
        "object": "list",
        "data": [
            {"id": kb_id, "object": "model", "created": 0, "owned_by": "rag-support-bot"}
            for kb_id in model_ids(request, services, settings)
        ],
    }


def _usage(answer: Answer) -> dict[str, int]:
    usage = answer.usage
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def _extras(answer: Answer) -> dict[str, Any]:
    response = ChatResponse.from_answer(answer).model_dump()
    return {
        "citations": response["citations"],
        "related": response["related"],
        "rag": {
            "answered": answer.answered,
            "handoff": answer.handoff,
            "conversation_id": answer.conversation_id,
            "message_id": answer.message_id,
            "generator": answer.generator,
            "decline_reason": answer.decline_reason,
        },
    }


@router.post(
    "/chat/completions",
    summary="Chat completion answered from the knowledge base",
    responses=event_stream_response(
        "The completion; with `stream: true`, chunks as Server-Sent Events", COMPLETION_EVENT
    )
    | error_responses(400, 403, 404, 413, 422, 502, 503, 504, s404="No such model"),
)
def chat_completions(request: Request, body: CompletionRequest, services: ServicesDep, settings: SettingsDep):
    known = model_ids(request, services, settings)
    if body.model not in known:
        listed = ", ".join(repr(k) for k in known) or "none"
        raise HTTPException(404, f"The model {body.model!r} does not exist - GET /v1/models lists {listed}")
    chat = services.chat_for(body.model if settings.kb_root is not None else None)
    users = [i for i, m in enumerate(body.messages) if m.role == "user"]
    # the last user message is the question; earlier ones are held to the same limit, as the schema says
    problems = []
    for i in users:
        problems += question_problems(body.messages[i].text(), settings, ("messages", i, "content"))
    raise_if(problems)
    question = body.messages[users[-1]].text()
    history, pending = [], None
    for m in body.messages[: users[-1]]:
        if m.role == "user":
            pending = m.text()
        elif m.role == "assistant" and pending is not None:
            history.append((pending, m.text()))
            pending = None
    events = chat.stream(question, conversation_id=body.user, history=history, channel="api")
    created = int(time.time())
    if not body.stream:
        answer = final_answer(events)
        return {
            "id": f"chatcmpl-{answer.message_id}",
            "object": "chat.completion",
            "created": created,
            "model": body.model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": answer.answer}, "finish_reason": "stop"}
            ],
            "usage": _usage(answer),
            **_extras(answer),
        }
    first = next(events)  # retrieval and the LLM connection fail here as a 502/504, before streaming starts
    return sse_response(_chunks(first, events, body.model, created))


def _chunks(first: ChatEvent, events: Iterator[ChatEvent], model: str, created: int) -> Iterator[bytes]:
    chunk_id = None

    def chunk(delta: dict, finish: str | None = None, **extra: Any) -> bytes:
        payload = {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
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
                yield chunk({}, "stop", usage=_usage(answer), **_extras(answer))
            event = next(events, None)
    except RagError as exc:
        yield sse_event(error_payload(exc))
    yield sse_event("[DONE]")
