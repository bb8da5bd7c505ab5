"""What the operator console shows about one knowledge base's conversations: the dashboard (questions per day,
answered and handoff rates, feedback, latency, top topics; by language and date range) and the inbox of things to
fix (unanswered questions grouped by similarity, answers rated down, handoffs). Pure functions over stored turns."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from rag.conversations.analytics import QuestionGroup
from rag.conversations.store import AGENT_HANDLING, CUSTOMER_REQUEST, Feedback, StoredMessage

Grouper = Callable[[Sequence[str]], list[QuestionGroup]]


@dataclass
class Day:
    day: str  # YYYY-MM-DD, UTC
    questions: int = 0
    answered: int = 0
    handoffs: int = 0
    feedback_up: int = 0
    feedback_down: int = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None


@dataclass
class Dashboard:
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
    days: list[Day] = field(default_factory=list)


def topic_of(message: StoredMessage) -> str:
    """A turn's topic: as tagged when it was answered, or (turns stored before tags) the title of the first
    document it cited, else "" when it cited none."""
    if message.topic:
        return message.topic
    for citation in message.citations:
        title = str(citation.get("title") or citation.get("source") or "")
        if title:
            return title
    return ""


def in_range(
    messages: Sequence[StoredMessage],
    until: datetime | None = None,
    language: str | None = None,
    mood: str | None = None,
    topic: str | None = None,
) -> list[StoredMessage]:
    """The turns before `until`, in `language`, in `mood` and on `topic` (each when given)."""
    return [
        m
        for m in messages
        if (until is None or m.created_at < until)
        and (language is None or m.language == language)
        and (mood is None or m.mood == mood)
        and (topic is None or topic_of(m) == topic)
    ]


def dashboard(messages: Sequence[StoredMessage], feedback: Sequence[Feedback], top: int = 10) -> Dashboard:
    """The dashboard of these turns (those written to an agent who had the conversation left out) and the ratings
    given to them.

    >>> dashboard([], []).questions, dashboard([], []).answered_rate
    (0, None)
    """
    messages = [m for m in messages if m.decline_reason != AGENT_HANDLING]
    asked = {m.message_id: m for m in messages}
    ratings = [f for f in feedback if f.message_id in asked]
    days: dict[str, Day] = {}
    latencies: dict[str, list[float]] = {}
    for m in messages:
        key = m.created_at.date().isoformat()
        day = days.setdefault(key, Day(key))
        day.questions += 1
        day.answered += m.answered
        day.handoffs += m.handoff
        latencies.setdefault(key, []).append(m.latency_ms)
    for f in ratings:
        day = days[asked[f.message_id].created_at.date().isoformat()]
        day.feedback_up += f.rating == "up"
        day.feedback_down += f.rating == "down"
    for key, values in latencies.items():
        days[key].latency_p50_ms, days[key].latency_p95_ms = _percentile(values, 50), _percentile(values, 95)
    n = len(messages)
    topics = Counter(t for t in (topic_of(m) for m in messages) if t)
    return Dashboard(
        questions=n,
        conversations=len({(m.kb_id, m.conversation_id) for m in messages}),
        answered_rate=round(sum(m.answered for m in messages) / n, 4) if n else None,
        handoff_rate=round(sum(m.handoff for m in messages) / n, 4) if n else None,
        feedback_up=sum(f.rating == "up" for f in ratings),
        feedback_down=sum(f.rating == "down" for f in ratings),
        latency_p50_ms=_percentile([m.latency_ms for m in messages], 50),
        latency_p95_ms=_percentile([m.latency_ms for m in messages], 95),
        languages=dict(Counter(m.language for m in messages)),
        moods=dict(Counter(m.mood for m in messages if m.mood)),
        top_topics=topics.most_common(top),
        days=[days[k] for k in sorted(days)],
    )


def dashboard_csv(board: Dashboard) -> Iterator[str]:
    """One CSV row per day (header first).

    >>> board = Dashboard(1, 1, 1.0, 0.0, 0, 0, 5.0, 5.0, {"en": 1}, {}, [], [Day("2026-11-25", 1, 1)])
    >>> list(dashboard_csv(board))[1]
    '2026-11-25,1,1,0,0,0,,\\r\\n'
    """
    fields = ["day", "questions", "answered", "handoffs", "feedback_up", "feedback_down"]
    fields += ["latency_p50_ms", "latency_p95_ms"]
    for row in [fields, *([getattr(d, f) for f in fields] for d in board.days)]:
        out = io.StringIO()
        csv.writer(out).writerow(["" if v is None else v for v in row])
        yield out.getvalue()


@dataclass
class Gap:
    """Similar questions the bot could not answer, and how that group fares since."""

    question: str  # the most typical wording
    unanswered: int
    answered: int  # questions of the group it did answer
    examples: list[str]
    last_declined_at: datetime
    answered_since: int  # questions of the group answered after the last decline: the fix works
    message_ids: list[str]  # the declined turns, newest first


@dataclass
class Inbox:
    gaps: list[Gap]
    rated_down: list[tuple[StoredMessage, Feedback]]  # newest first
    handoffs: list[StoredMessage]  # newest first


def inbox(messages: Sequence[StoredMessage], feedback: Sequence[Feedback], group: Grouper, limit: int = 50) -> Inbox:
    """What to fix: questions the bot declined (not customers asking for a person) grouped with every similar
    question asked, the answers customers rated down, and the handoffs."""
    messages = [m for m in messages if m.decline_reason != AGENT_HANDLING]  # written to a person, not to the bot
    by_wording: dict[str, list[StoredMessage]] = {}
    for m in messages:
        by_wording.setdefault(m.question, []).append(m)
    gaps = []
    for g in group([m.question for m in messages]):
        turns = sorted((m for w in dict.fromkeys(g.wordings) for m in by_wording[w]), key=lambda m: m.created_at)
        misses = [m for m in turns if not m.answered and m.decline_reason != CUSTOMER_REQUEST]
        if not misses:
            continue
        last = misses[-1].created_at
        gaps.append(
            Gap(
                question=misses[-1].question if len(set(g.wordings)) == 1 else g.question,
                unanswered=len(misses),
                answered=sum(m.answered for m in turns),
                examples=sorted({m.question for m in misses})[:5],
                last_declined_at=last,
                answered_since=sum(m.answered and m.created_at > last for m in turns),
                message_ids=[m.message_id for m in reversed(misses)],
            )
        )
    gaps.sort(key=lambda g: (g.answered_since > 0, -g.unanswered, -g.last_declined_at.timestamp()))
    asked = {m.message_id: m for m in messages}
    down = [(asked[f.message_id], f) for f in feedback if f.rating == "down" and f.message_id in asked]
    down.sort(key=lambda pair: pair[1].created_at, reverse=True)
    handoffs = sorted((m for m in messages if m.handoff), key=lambda m: m.created_at, reverse=True)
    return Inbox(gaps=gaps[:limit], rated_down=down[:limit], handoffs=handoffs[:limit])


def _percentile(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None
