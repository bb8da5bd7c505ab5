"""Request and response bodies of the HTTP API (pydantic lives only at this boundary).

Request models are strict: `"top_k": "5"`, `"top_k": true` or `"stream": 0` are refused (422) rather than
silently coerced, so a client's type mistake shows up at once instead of as a puzzling answer.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from rag.api.validation import INTEGRAL, NO_NUL_PATTERN, Question, Text, text_problem
from rag.core.types import Answer

INT64 = (-(2**63), 2**63 - 1)  # what SQLite (the knowledge base's metadata) can compare
METADATA_KEY_CHARS = 128
METADATA_TEXT_CHARS = 1000
METADATA_FILTERS = 32
# a metadata key is looked up as a JSON path member, `$."key"`: a quote would end it, an empty key names nothing
METADATA_KEY_PATTERN = r'^[^"\u0000]+$'

_METADATA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "maxProperties": METADATA_FILTERS,
    "propertyNames": {"minLength": 1, "maxLength": METADATA_KEY_CHARS, "pattern": METADATA_KEY_PATTERN},
    "additionalProperties": {
        "anyOf": [
            {"type": "string", "maxLength": METADATA_TEXT_CHARS, "pattern": NO_NUL_PATTERN},
            {"type": "number", "minimum": INT64[0], "maximum": INT64[1]},
            {"type": "boolean"},
        ]
    },
    "description": "Exact metadata matches: key -> string, number (within the 64-bit integer range) or true/false.",
}


def _metadata_problem(key: str, value: Any) -> str | None:
    """Why one metadata filter cannot be matched, or None."""
    if not 0 < len(key) <= METADATA_KEY_CHARS or '"' in key or text_problem(key):
        return (
            f'key {key!r} must be 1-{METADATA_KEY_CHARS} characters with no double quote (") or NUL, and valid Unicode'
        )
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if math.isfinite(value) and INT64[0] <= value <= INT64[1]:
            return None
        return f"{key!r}: numbers must be finite and within -2^63..2^63-1 (64-bit integers)"
    if isinstance(value, str):
        if len(value) > METADATA_TEXT_CHARS:
            return f"{key!r}: text values are limited to {METADATA_TEXT_CHARS} characters"
        why = text_problem(value)
        return f"{key!r}: {why}" if why else None
    return f"{key!r}: values must be a string, an integer, a number or true/false"


def _check_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    if len(metadata) > METADATA_FILTERS:
        raise PydanticCustomError("metadata", f"at most {METADATA_FILTERS} metadata filters")
    for key, value in metadata.items():
        why = _metadata_problem(key, value)
        if why:
            raise PydanticCustomError("metadata", why)
    return metadata


class ChatFilters(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    source_prefix: Annotated[Text, Field(max_length=1000)] | None = Field(
        None, description="Only passages whose source path starts with this."
    )
    metadata: Annotated[dict[str, Any], AfterValidator(_check_metadata), WithJsonSchema(_METADATA_SCHEMA)] = Field(
        default_factory=dict
    )


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    question: Question = Field(
        ...,
        description="The customer's question (limit: RAG_MAX_QUESTION_CHARS).",
        examples=["How long does standard shipping take?"],
    )
    conversation_id: str | None = Field(None, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    customer_id: str | None = Field(
        None,
        max_length=128,
        pattern=r"^[A-Za-z0-9_.:@-]+$",
        description="Your own id for the customer, stored with the turn so that everything tied to one customer "
        "can be erased (DELETE /api/kbs/{kb}/customers/{customer_id}).",
    )
    top_k: Annotated[int, Field(ge=1), INTEGRAL] | None = Field(
        None, description="Passages to retrieve (default and limit from settings)."
    )
    filters: ChatFilters | None = None
    stream: bool = Field(False, description="Server-Sent Events: `delta` events, then one `done` event.")


class CitationOut(BaseModel):
    marker: int
    chunk_id: int | None
    source: str
    url: str | None = Field(description="http(s) or relative link to the source; other schemes are never given.")
    title: str
    heading: str
    page: int | None
    row: int | None
    snippet: str
    score: float


class RelatedOut(BaseModel):
    title: str
    source: str
    url: str | None = Field(description="http(s) or relative link to the document; other schemes are never given.")


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    estimated: bool


class ChatResponse(BaseModel):
    answer: str
    answered: bool
    handoff: bool
    citations: list[CitationOut]
    conversation_id: str
    message_id: str
    usage: UsageOut
    latency_ms: float
    generator: str
    language: str
    decline_reason: str | None = None
    rewritten_query: str | None = Field(
        None, description="The standalone question retrieval used, when a follow-up was rewritten with its context."
    )
    related: list[RelatedOut] = Field(
        default_factory=list,
        description="Up to three documents on the same topic that the answer did not cite (none when declining).",
    )
    mood: str = Field("calm", description="How upset the customer sounds: calm, annoyed or frustrated.")
    topic: str = Field("", description="The title of the document the answer drew on.")

    @classmethod
    def from_answer(cls, a: Answer) -> ChatResponse:
        return cls.model_validate(a.to_dict())  # fields the response does not declare are left out


class FieldProblem(BaseModel):
    field: str = Field(description="Where in the request, e.g. `filters.metadata` or `messages.0.content`.")
    problem: str
    type: str


class ErrorDetail(BaseModel):
    type: str = Field(description="Stable machine-readable kind, e.g. invalid_request, llm_timeout.")
    message: str = Field(description="What went wrong and how to fix it.")
    fields: list[FieldProblem] | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


_ERROR_DESCRIPTIONS = {
    400: "The body is not valid JSON",
    401: "Missing or wrong API key",
    403: "Disabled: no key is configured for these endpoints",
    404: "Not found",
    409: "Conflicts with what exists",
    415: "Unsupported file type",
    413: "Body too large (RAG_MAX_BODY_BYTES)",
    422: "Invalid request: the `fields` list names each problem",
    502: "The language model server is unreachable or failed",
    503: "The knowledge base or the conversation database is unavailable, or the feature is not configured",
    504: "The language model server timed out",
}


def error_responses(*statuses: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: each status it can answer with the JSON error body. `described` overrides
    the description of a status, keyed `s404="No such message"`."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        description = described.get(f"s{status}", _ERROR_DESCRIPTIONS[status])
        out[status] = {"model": ErrorResponse, "description": description}
    return out


def _json_data(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "string", "contentMediaType": "application/json", "contentSchema": schema}


def _event(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"properties": {"event": {"const": name}, "data": _json_data(data)}, "required": ["event", "data"]}


_REF = "#/components/schemas/"
# One Server-Sent Event of /chat (OpenAPI before 3.2: `schema` of text/event-stream describes each event)
CHAT_EVENT: dict[str, Any] = {
    "type": "object",
    "oneOf": [
        _event("delta", {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}),
        _event("done", {"$ref": _REF + "ChatResponse"}),
        _event("error", {"$ref": _REF + "ErrorResponse"}),
    ],
}
# One event of /v1/chat/completions: a `chat.completion.chunk` (or an error) as JSON, then the literal [DONE]
COMPLETION_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {
            "anyOf": [
                {"const": "[DONE]"},
                _json_data({"type": "object"}),
            ]
        }
    },
}


def event_stream_response(description: str, event: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """The 200 of a route that answers JSON (its response model) or, with `stream: true`, Server-Sent Events,
    each described by `event`."""
    return {200: {"description": description, "content": {"text/event-stream": {"schema": event}}}}
