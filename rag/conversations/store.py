"""What the conversation store keeps, and the protocol every store implements.

StoredMessage   one answered question: what was asked, retrieved and answered, and how
Feedback        a customer's rating of one message
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from rag.core.types import Answer

Rating = Literal["up", "down"]
RATINGS: tuple[str, ...] = ("up", "down")


@dataclass
class StoredMessage:
    """One turn: the customer's question and the bot's reply, with what it was built from."""

    message_id: str
    conversation_id: str
    created_at: datetime  # timezone-aware, UTC
    question: str
    rewritten_query: str | None  # the standalone question retrieval used, when it differs
    retrieved: list[tuple[int, float]]  # (chunk id, score), best first
    answer: str
    citations: list[dict]
    answered: bool
    handoff: bool
    generator: str
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int
    language: str
    decline_reason: str | None

    @classmethod
    def from_answer(cls, answer: Answer, created_at: datetime) -> StoredMessage:
        """The turn to store for an answer given at `created_at` (timezone-aware)."""
        data = answer.to_dict()
        return cls(
            message_id=answer.message_id,
            conversation_id=answer.conversation_id,
            created_at=created_at,
            question=answer.question,
            rewritten_query=answer.rewritten_query,
            retrieved=[(p.chunk.id, round(p.score, 6)) for p in answer.passages if p.chunk.id is not None],
            answer=answer.answer,
            citations=data["citations"],
            answered=answer.answered,
            handoff=answer.handoff,
            generator=answer.generator,
            latency_ms=data["latency_ms"],
            prompt_tokens=answer.usage.prompt_tokens,
            completion_tokens=answer.usage.completion_tokens,
            language=answer.language,
            decline_reason=answer.decline_reason,
        )


@dataclass
class Feedback:
    message_id: str
    rating: Rating
    comment: str | None
    created_at: datetime  # timezone-aware, UTC


@runtime_checkable
class ConversationStore(Protocol):
    def add_message(self, message: StoredMessage) -> None: ...

    def history(self, conversation_id: str, limit: int = 20) -> list[StoredMessage]:
        """The last `limit` messages of the conversation, oldest first."""
        ...

    def get_message(self, message_id: str) -> StoredMessage | None: ...

    def add_feedback(self, message_id: str, rating: str, comment: str | None = None) -> Feedback:
        """Rate a message ("up" or "down"), replacing an earlier rating; MessageNotFound for an unknown id."""
        ...

    def messages(self, since: datetime | None = None) -> list[StoredMessage]:
        """Messages created at or after `since`, oldest first."""
        ...

    def feedback(self, since: datetime | None = None) -> list[Feedback]: ...

    def conversation_count(self, since: datetime | None = None) -> int:
        """Conversations with at least one message at or after `since`."""
        ...

    def close(self) -> None: ...
