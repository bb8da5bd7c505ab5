"""Request and response bodies of the HTTP API (pydantic lives only at this boundary)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rag.core.types import Answer


class ChatFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source_prefix: str | None = Field(None, max_length=1000, description="Only passages whose source path starts with this.")
    metadata: dict[str, str | int | float | bool] = Field(default_factory=dict, description="Exact metadata matches.")


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(..., description="The customer's question.", examples=["How long does standard shipping take?"])
    conversation_id: str | None = Field(None, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    top_k: int | None = Field(None, ge=1, description="Passages to retrieve (default from settings).")
    filters: ChatFilters | None = None
    stream: bool = Field(False, description="Server-Sent Events: `delta` events, then one `done` event.")


class CitationOut(BaseModel):
    marker: int
    chunk_id: int | None
    source: str
    url: str | None
    title: str
    heading: str
    page: int | None
    row: int | None
    snippet: str
    score: float


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

    @classmethod
    def from_answer(cls, a: Answer) -> "ChatResponse":
        return cls.model_validate(a.to_dict())  # fields the response does not declare are left out


class ErrorDetail(BaseModel):
    type: str
    message: str
    fields: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail
