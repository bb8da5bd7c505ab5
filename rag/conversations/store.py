"""What the conversation store keeps, and the protocol every store implements.

StoredMessage        one answered question: what was asked, retrieved and answered, and how, in which knowledge
                     base (kb_id) and for which customer (customer_id, when the caller knows one)
Feedback             a customer's rating of one message
ConversationQuery    which conversations an operator wants to see (filters and a page)
ConversationSummary  one conversation in such a list
ConversationPage     one page of summaries, with the number of all that match
ChannelThread        a messaging platform's user or thread, the conversation it is, and where replies go
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from rag.core.types import Answer

Rating = Literal["up", "down"]
RATINGS: tuple[str, ...] = ("up", "down")
FeedbackFilter = Literal["up", "down", "any", "none"]
FEEDBACK_FILTERS: tuple[str, ...] = ("up", "down", "any", "none")
AGENT_HANDLING = "agent_handling"  # the decline_reason of a turn written while an agent had the conversation
CUSTOMER_REQUEST = "customer_request"  # the decline_reason of a customer asking for a person: not a gap in the KB


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
    # Last and defaulted, so turns built before knowledge bases existed still construct: "" is the default KB.
    kb_id: str = ""
    customer_id: str | None = None  # the customer's id in the caller's own systems, for erasure requests
    mood: str = ""  # calm, annoyed or frustrated ("" before tags existed)
    topic: str = ""  # the title of the document the answer drew on
    channel: str = ""  # where the customer asked: web, api, slack, telegram, feishu, wecom, matrix, email

    @classmethod
    def from_answer(
        cls,
        answer: Answer,
        created_at: datetime,
        *,
        kb_id: str = "",
        customer_id: str | None = None,
        channel: str = "",
    ) -> StoredMessage:
        """The turn to store for an answer given at `created_at` (timezone-aware) from knowledge base `kb_id`."""
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
            kb_id=kb_id,
            customer_id=customer_id,
            mood=answer.mood,
            topic=answer.topic,
            channel=channel,
        )


@dataclass
class Feedback:
    message_id: str
    rating: Rating
    comment: str | None
    created_at: datetime  # timezone-aware, UTC


@dataclass
class ConversationQuery:
    """Which conversations to list. Every filter left at None matches everything; a conversation matches when
    all the given filters do. "Some turn" filters keep the whole conversation (every turn is counted)."""

    kb_id: str | None = None
    answered: bool | None = None  # True: some turn answered; False: no turn answered
    declined: bool | None = None  # True: some turn declined by the bot (not answered, not a customer_request)
    handed_off: bool | None = None  # True: some turn handed off to a person; False: none did
    feedback: FeedbackFilter | None = None  # "up"/"down": some turn rated so; "any": some rating; "none": no rating
    language: str | None = None  # some turn in this language
    mood: str | None = None  # some turn in this mood (calm, annoyed, frustrated)
    since: datetime | None = None  # last turn at or after
    until: datetime | None = None  # first turn before
    text: str | None = None  # case-insensitive substring of any question or answer (% and _ match themselves)
    customer_id: str | None = None  # some turn by this customer
    channel: str | None = None  # some turn asked on this channel (web, api, slack, telegram, ..., email)
    limit: int = 50
    offset: int = 0

    def __post_init__(self) -> None:
        if self.limit < 0:
            raise ValueError(f"limit must be 0 or more, got {self.limit}")
        if self.offset < 0:
            raise ValueError(f"offset must be 0 or more, got {self.offset}")
        if self.feedback is not None and self.feedback not in FEEDBACK_FILTERS:
            raise ValueError(f"feedback must be one of {', '.join(FEEDBACK_FILTERS)} (or None), not {self.feedback!r}")


@dataclass
class ConversationSummary:
    """One conversation in an operator's list: enough to pick which to open."""

    conversation_id: str
    kb_id: str
    customer_id: str | None  # of any turn that has one
    started_at: datetime  # first turn, timezone-aware UTC
    last_at: datetime  # last turn
    turns: int
    first_question: str
    answered_turns: int
    declined_turns: int  # declined by the bot: not answered, and not a customer asking for a person
    handed_off: bool
    language: str  # of the first turn
    feedback_up: int
    feedback_down: int
    channel: str = ""  # of the first turn


@dataclass
class ConversationPage:
    items: list[ConversationSummary]  # newest last turn first
    total: int  # conversations matching the query, before limit and offset


HANDOFF_STATES = ("open", "claimed", "resolved")


@dataclass
class Handoff:
    """A conversation handed to a person: waiting (open), taken by an agent (claimed), or done (resolved)."""

    kb_id: str
    conversation_id: str
    state: str
    agent: str | None
    reason: str | None
    opened_at: datetime
    updated_at: datetime


@dataclass
class AgentMessage:
    """A person's reply to the customer, written in the console."""

    id: int
    kb_id: str
    conversation_id: str
    agent: str
    text: str
    created_at: datetime


@dataclass
class ChannelThread:
    """A messaging platform's user or thread, and the conversation it is (rag.channels): `address` says where
    replies go on that platform (a chat id, a thread, a mail's ids); it holds no secret."""

    kb_id: str
    channel: str
    thread: str
    conversation_id: str
    address: dict
    updated_at: datetime
    customer_id: str | None = None  # "<channel>:<platform user>": erased with the customer even if no turn was stored


@runtime_checkable
class ConversationStore(Protocol):
    def add_message(self, message: StoredMessage) -> None: ...

    def history(self, conversation_id: str, limit: int = 20, kb_id: str | None = None) -> list[StoredMessage]:
        """The last `limit` messages of the conversation (in knowledge base `kb_id` when given), oldest first."""
        ...

    def get_message(self, message_id: str) -> StoredMessage | None: ...

    def add_feedback(self, message_id: str, rating: str, comment: str | None = None) -> Feedback:
        """Rate a message ("up" or "down"), replacing an earlier rating; MessageNotFound for an unknown id."""
        ...

    def messages(self, since: datetime | None = None, kb_id: str | None = None) -> list[StoredMessage]:
        """Messages created at or after `since` (in knowledge base `kb_id` when given), oldest first."""
        ...

    def feedback(self, since: datetime | None = None, kb_id: str | None = None) -> list[Feedback]:
        """Ratings given at or after `since` (of messages in knowledge base `kb_id` when given)."""
        ...

    def conversation_count(self, since: datetime | None = None, kb_id: str | None = None) -> int:
        """Conversations with at least one message at or after `since` (in knowledge base `kb_id` when given)."""
        ...

    def conversations(self, query: ConversationQuery) -> ConversationPage:
        """The conversations matching `query`, newest last turn first, one page of them."""
        ...

    def conversation(self, conversation_id: str, kb_id: str | None = None) -> list[StoredMessage]:
        """Every turn of the conversation, oldest first ([] when there is none)."""
        ...

    def feedback_for(self, message_ids: Iterable[str]) -> dict[str, Feedback]:
        """The rating of each of these messages that has one, by message id."""
        ...

    # Erasure is hard deletion: turns and their ratings leave the database; each returns the turns deleted.
    def delete_conversation(self, conversation_id: str, kb_id: str | None = None) -> int: ...

    def delete_customer(self, customer_id: str, kb_id: str | None = None) -> int:
        """Every conversation in which this customer took part (all its turns, even those without the id)."""
        ...

    def delete_older_than(self, cutoff: datetime, kb_id: str | None = None) -> int:
        """Retention: whole conversations whose last turn is before `cutoff`."""
        ...

    def delete_kb(self, kb_id: str) -> int: ...

    # ---- live handoff ----------------------------------------------------------------------------------------
    def open_handoff(self, kb_id: str, conversation_id: str, reason: str | None) -> Handoff:
        """Put the conversation in the agents' queue (again, if it was resolved); one already waiting or claimed
        stays as it is."""
        ...

    def handoff(self, kb_id: str, conversation_id: str) -> Handoff | None: ...

    def handoffs(self, kb_id: str, state: str | None = None, limit: int = 100) -> list[Handoff]:
        """The queue, oldest waiting first."""
        ...

    def set_handoff(self, kb_id: str, conversation_id: str, state: str, agent: str | None) -> Handoff:
        """Claim (state "claimed", by `agent`) or resolve a handoff; NotFound when there is none."""
        ...

    def add_agent_message(self, kb_id: str, conversation_id: str, agent: str, text: str) -> AgentMessage: ...

    def agent_messages(self, kb_id: str, conversation_id: str, after: datetime | None = None) -> list[AgentMessage]:
        """An agent's replies in the conversation, oldest first (after `after`, when given)."""
        ...

    # ---- messaging channels (rag.channels) ----------------------------------------------------------------
    def claim_event(self, kb_id: str, channel: str, event_id: str) -> bool:
        """True the first time a platform's event id is seen (answer it), False for a re-delivery."""
        ...

    def release_event(self, kb_id: str, channel: str, event_id: str) -> None:
        """Forget a claimed event that could not be taken on, so the platform's retry is answered."""
        ...

    def channel_thread(self, kb_id: str, channel: str, thread: str) -> ChannelThread | None: ...

    def channel_thread_of(self, kb_id: str, conversation_id: str) -> ChannelThread | None:
        """The platform thread a conversation is on (None for the widget and the APIs)."""
        ...

    def save_channel_thread(self, thread: ChannelThread) -> str:
        """Record the thread with `thread.conversation_id` when it is new, else update its address; the thread's
        conversation id either way (two deliveries racing on a new thread both get the first one's)."""
        ...

    def link_channel_message(
        self, kb_id: str, channel: str, platform_id: str, message_id: str, conversation_id: str
    ) -> None:
        """The platform's id of a reply posted for `message_id` (its ratings and mail replies find the turn)."""
        ...

    def channel_message(self, kb_id: str, channel: str, platform_id: str) -> tuple[str, str] | None:
        """(message_id, conversation_id) of the reply the platform knows as `platform_id`."""
        ...

    def close(self) -> None: ...
