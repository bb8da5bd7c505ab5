"""/api/kbs/{kb}/stats and /api/kbs/{kb}/inbox: the console's dashboard and its inbox of things to fix (scope
`conversations`), over a date range (default: the last 30 days) and optionally one language."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from rag.api.access import scoped
from rag.api.dependencies import KnowledgeBasesDep
from rag.api.schemas import error_responses
from rag.api.validation import DATE_SCHEMA, date_param
from rag.conversations.analytics import group_questions
from rag.conversations.insights import Dashboard, dashboard, dashboard_csv, in_range, inbox
from rag.conversations.store import StoredMessage
from rag.core.errors import ConfigurationError
from rag.wiring import KnowledgeBases

router = APIRouter(
    prefix="/api",
    tags=["insights"],
    dependencies=[scoped("conversations")],
    responses=error_responses(401, 403, 404, 422, 503),
)
DEFAULT_DAYS = 30
MAX_DAYS = 366


class Window(BaseModel):
    since: datetime
    until: datetime | None
    language: str | None
    mood: str | None
    topic: str | None


def _window(
    since: str | None = Query(
        None,
        description="From this date or date-time (default: 30 days ago; at most a year back)",
        json_schema_extra=DATE_SCHEMA,
    ),
    until: str | None = Query(None, description="Before this date or date-time", json_schema_extra=DATE_SCHEMA),
    language: Literal["en", "zh"] | None = Query(None),
    mood: Literal["calm", "annoyed", "frustrated"] | None = Query(None),
    topic: str | None = Query(None, max_length=500, description="A topic as top_topics names it"),
) -> Window:
    earliest = datetime.now(UTC) - timedelta(days=MAX_DAYS)  # bounds the turns one request reads
    start = max(date_param(since, "since") or datetime.now(UTC) - timedelta(days=DEFAULT_DAYS), earliest)
    return Window(since=start, until=date_param(until, "until"), language=language, mood=mood, topic=topic)


WindowDep = Annotated[Window, Depends(_window)]


def _turns(kbs: KnowledgeBases, kb: str, window: Window) -> tuple[list[StoredMessage], list[Any]]:
    kbs.info(kb)
    if kbs.store is None:
        raise ConfigurationError("the dashboard needs a conversation store - set RAG_DATABASE_URL")
    messages = in_range(
        kbs.store.messages(window.since, kb_id=kb), window.until, window.language, window.mood, window.topic
    )
    return messages, kbs.store.feedback(window.since, kb_id=kb)


class DayOut(BaseModel):
    day: str
    questions: int
    answered: int
    handoffs: int
    feedback_up: int
    feedback_down: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None


class DashboardOut(BaseModel):
    since: datetime
    until: datetime | None
    language: str | None
    questions: int
    conversations: int
    answered_rate: float | None
    handoff_rate: float | None
    feedback_up: int
    feedback_down: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    languages: dict[str, int]
    moods: dict[str, int]
    top_topics: list[tuple[str, int]]
    days: list[DayOut]

    @classmethod
    def of(cls, board: Dashboard, window: Window) -> DashboardOut:
        days = [DayOut(**vars(d)) for d in board.days]
        return cls(**window.model_dump(), **{k: v for k, v in vars(board).items() if k != "days"}, days=days)


@router.get(
    "/kbs/{kb}/stats", response_model=DashboardOut, summary="Questions per day, rates, feedback, latency, topics"
)
def stats(kb: str, kbs: KnowledgeBasesDep, window: WindowDep) -> DashboardOut:
    return DashboardOut.of(dashboard(*_turns(kbs, kb, window)), window)


@router.get(
    "/kbs/{kb}/stats.csv",
    summary="The dashboard's days as CSV",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "One row per day"}},
)
def stats_csv(kb: str, kbs: KnowledgeBasesDep, window: WindowDep) -> StreamingResponse:
    rows = dashboard_csv(dashboard(*_turns(kbs, kb, window)))
    return StreamingResponse(
        (row.encode("utf-8") for row in rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{kb}-stats.csv"'},
    )


class GapOut(BaseModel):
    question: str
    unanswered: int
    answered: int
    examples: list[str]
    last_declined_at: datetime
    answered_since: int
    message_ids: list[str]


class TurnRef(BaseModel):
    conversation_id: str
    message_id: str
    created_at: datetime
    question: str
    answer: str
    language: str
    decline_reason: str | None
    comment: str | None = None


class InboxOut(BaseModel):
    gaps: list[GapOut]
    rated_down: list[TurnRef]
    handoffs: list[TurnRef]


def _ref(m: StoredMessage, comment: str | None = None) -> TurnRef:
    return TurnRef(
        conversation_id=m.conversation_id,
        message_id=m.message_id,
        created_at=m.created_at,
        question=m.question,
        answer=m.answer,
        language=m.language,
        decline_reason=m.decline_reason,
        comment=comment,
    )


@router.get(
    "/kbs/{kb}/inbox",
    response_model=InboxOut,
    summary="Things to fix: unanswered questions grouped by similarity, answers rated down, handoffs",
)
def get_inbox(kb: str, kbs: KnowledgeBasesDep, window: WindowDep) -> InboxOut:
    messages, feedback = _turns(kbs, kb, window)
    settings = kbs.settings_for(kb)
    group = functools.partial(group_questions, embedder=kbs.embedder, dense_languages=settings.dense_languages)
    found = inbox(messages, feedback, group)
    return InboxOut(
        gaps=[GapOut(**vars(g)) for g in found.gaps],
        rated_down=[_ref(m, f.comment) for m, f in found.rated_down],
        handoffs=[_ref(m) for m in found.handoffs],
    )
