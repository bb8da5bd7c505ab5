"""/api/kbs/{kb}/conversations: what customers asked and what the bot answered, for the support team (scope
`conversations`), and erasure (scope `manage`): one conversation, or everything tied to one customer id, deleted
for good with its feedback and any handoff notice still waiting to be sent."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from rag.api.access import scoped
from rag.api.dependencies import KnowledgeBasesDep
from rag.api.schemas import error_responses
from rag.api.validation import DATE_SCHEMA, date_param
from rag.conversations.export import EXCEL_BOM, turns_csv
from rag.conversations.store import ConversationQuery, ConversationStore, Feedback, StoredMessage
from rag.core.errors import ConfigurationError, NotFound
from rag.core.types import Chunk
from rag.wiring import KnowledgeBases

router = APIRouter(prefix="/api", tags=["conversations"], responses=error_responses(401, 403, 404, 422, 503))
EXPORT_LIMIT = 10_000  # conversations per CSV export


class ConversationOut(BaseModel):
    conversation_id: str
    kb: str
    customer_id: str | None
    started_at: datetime
    last_at: datetime
    turns: int
    first_question: str
    answered_turns: int
    declined_turns: int
    handed_off: bool
    language: str
    feedback_up: int
    feedback_down: int
    channel: str = Field(description="Where the first turn was asked (web, api, slack, ..., email).")


class ConversationList(BaseModel):
    data: list[ConversationOut]
    total: int = Field(description="Conversations matching the filters, before paging.")
    limit: int
    offset: int


class RetrievedOut(BaseModel):
    chunk_id: int
    score: float
    source: str | None = Field(description="None when the chunk is no longer in the knowledge base.")
    title: str | None
    text: str | None


class FeedbackOut(BaseModel):
    rating: str
    comment: str | None
    created_at: datetime


class TurnOut(BaseModel):
    message_id: str
    created_at: datetime
    question: str
    rewritten_query: str | None
    answer: str
    answered: bool
    handoff: bool
    decline_reason: str | None
    language: str
    channel: str = Field(
        description="Where the customer asked: web, api, cli, slack, telegram, feishu, wecom, matrix, "
        "email (empty: before channels were recorded)."
    )
    generator: str
    latency_ms: float
    citations: list[dict[str, Any]]
    retrieved: list[RetrievedOut] = Field(description="The passages retrieved for this turn, best first.")
    feedback: FeedbackOut | None


class ConversationDetail(BaseModel):
    conversation_id: str
    kb: str
    customer_id: str | None
    turns: list[TurnOut]


class Erased(BaseModel):
    conversations: int
    turns: int


def _store(kbs: KnowledgeBases) -> ConversationStore:
    if kbs.store is None:
        raise ConfigurationError("conversations need a conversation store - set RAG_DATABASE_URL")
    return kbs.store


def _query(
    kb: str,
    answered: bool | None = Query(None, description="true: some turn answered; false: none"),
    declined: bool | None = Query(None, description="true: the bot declined some turn"),
    handed_off: bool | None = Query(None, description="true: some turn went to a person"),
    feedback: Literal["up", "down", "any", "none"] | None = Query(None),
    language: Literal["en", "zh"] | None = Query(None),
    mood: Literal["calm", "annoyed", "frustrated"] | None = Query(None, description="Some turn in this mood"),
    since: str | None = Query(None, description="Last turn on or after", json_schema_extra=DATE_SCHEMA),
    until: str | None = Query(None, description="First turn before", json_schema_extra=DATE_SCHEMA),
    q: str | None = Query(None, max_length=200, description="Text in any question or answer"),
    customer_id: str | None = Query(None, max_length=128),
    channel: Literal["web", "api", "cli", "slack", "telegram", "feishu", "wecom", "matrix", "email"] | None = Query(
        None,
        description="Some turn asked here: the chat page or widget (web), /v1 (api), `rag ask` (cli), or a channel",
    ),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> ConversationQuery:
    return ConversationQuery(
        kb_id=kb,
        answered=answered,
        declined=declined,
        handed_off=handed_off,
        feedback=feedback,
        language=language,
        mood=mood,
        since=date_param(since, "since"),
        until=date_param(until, "until"),
        text=q or None,
        customer_id=customer_id,
        channel=channel,
        limit=limit,
        offset=offset,
    )


QueryDep = Annotated[ConversationQuery, Depends(_query)]


@router.get(
    "/kbs/{kb}/conversations",
    response_model=ConversationList,
    dependencies=[scoped("conversations")],
    summary="Conversations, newest first, with filters and paging",
)
def list_conversations(kb: str, kbs: KnowledgeBasesDep, query: QueryDep) -> ConversationList:
    kbs.info(kb)
    page = _store(kbs).conversations(query)
    items = [ConversationOut(kb=c.kb_id, **_without(vars(c), "kb_id")) for c in page.items]
    return ConversationList(data=items, total=page.total, limit=query.limit, offset=query.offset)


@router.get(
    "/kbs/{kb}/conversations.csv",
    dependencies=[scoped("conversations")],
    summary="Every turn of the matching conversations as CSV (the list's filters; up to 10,000 conversations)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "One row per turn"}},
)
def export_conversations(kb: str, kbs: KnowledgeBasesDep, query: QueryDep) -> StreamingResponse:
    kbs.info(kb)
    store = _store(kbs)
    query.limit, query.offset = EXPORT_LIMIT, 0
    ids = [c.conversation_id for c in store.conversations(query).items]
    turns = [turn for cid in ids for turn in store.conversation(cid, kb_id=kb)]
    rows = turns_csv(turns, store.feedback_for(t.message_id for t in turns))
    return StreamingResponse(
        (row.encode("utf-8") for row in itertools.chain([EXCEL_BOM], rows)),  # the BOM: Excel then reads UTF-8
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{kb}-conversations.csv"'},
    )


@router.get(
    "/kbs/{kb}/conversations/{conversation_id}",
    response_model=ConversationDetail,
    dependencies=[scoped("conversations")],
    summary="One conversation: every turn with its retrieved passages, scores, citations and feedback",
)
def get_conversation(kb: str, conversation_id: str, kbs: KnowledgeBasesDep) -> ConversationDetail:
    store = _store(kbs)
    turns = store.conversation(conversation_id, kb_id=kb)
    if not turns:
        raise NotFound(f"No conversation {conversation_id!r} in knowledge base {kb!r}")
    feedback = store.feedback_for(t.message_id for t in turns)
    chunk_ids = sorted({cid for t in turns for cid, _ in t.retrieved})
    chunks = kbs.kb(kb).chunks(chunk_ids)
    return ConversationDetail(
        conversation_id=conversation_id,
        kb=kb,
        customer_id=next((t.customer_id for t in turns if t.customer_id), None),
        turns=[_turn(t, chunks, feedback.get(t.message_id)) for t in turns],
    )


@router.delete(
    "/kbs/{kb}/conversations/{conversation_id}",
    status_code=204,
    dependencies=[scoped("manage")],
    summary="Erase one conversation for good: its turns, feedback and any handoff notice not yet sent",
)
def erase_conversation(kb: str, conversation_id: str, kbs: KnowledgeBasesDep) -> Response:
    if not _store(kbs).delete_conversation(conversation_id, kb_id=kb):
        raise NotFound(f"No conversation {conversation_id!r} in knowledge base {kb!r}")
    if kbs.notifier is not None:
        kbs.notifier.forget({conversation_id})
    return Response(status_code=204)


@router.delete(
    "/kbs/{kb}/customers/{customer_id}",
    response_model=Erased,
    dependencies=[scoped("manage")],
    summary="Erase everything tied to one customer id in this knowledge base, for good",
)
def erase_customer(kb: str, customer_id: str, kbs: KnowledgeBasesDep) -> Erased:
    kbs.info(kb)
    store = _store(kbs)
    found = store.conversations(ConversationQuery(kb_id=kb, customer_id=customer_id, limit=1_000_000))
    ids = {c.conversation_id for c in found.items}
    turns = store.delete_customer(customer_id, kb_id=kb)
    if kbs.notifier is not None and ids:
        kbs.notifier.forget(ids)
    return Erased(conversations=len(ids), turns=turns)


def _turn(turn: StoredMessage, chunks: dict[int, Chunk], feedback: Feedback | None) -> TurnOut:
    retrieved = []
    for chunk_id, score in turn.retrieved:
        chunk = chunks.get(chunk_id)
        retrieved.append(
            RetrievedOut(
                chunk_id=chunk_id,
                score=score,
                source=chunk.source if chunk else None,
                title=chunk.title if chunk else None,
                text=chunk.text if chunk else None,
            )
        )
    return TurnOut(
        message_id=turn.message_id,
        created_at=turn.created_at,
        question=turn.question,
        rewritten_query=turn.rewritten_query,
        answer=turn.answer,
        answered=turn.answered,
        handoff=turn.handoff,
        decline_reason=turn.decline_reason,
        language=turn.language,
        channel=turn.channel,
        generator=turn.generator,
        latency_ms=turn.latency_ms,
        citations=turn.citations,
        retrieved=retrieved,
        feedback=FeedbackOut(rating=feedback.rating, comment=feedback.comment, created_at=feedback.created_at)
        if feedback
        else None,
    )


def _without(values: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in names}
