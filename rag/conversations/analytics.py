"""How the bot is doing, from the stored conversations: volumes, answered and handoff rates, feedback,
latency, and the questions it could not answer, grouped by similarity so the team sees which FAQ entries
to write first."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from rag.conversations.store import ConversationStore, Feedback, StoredMessage
from rag.store.embedders import Embedder
from rag.text.language import detect_language
from rag.text.lexical import terms
from rag.text.similarity import jaccard

GROUP_SIMILARITY = 0.75


@dataclass
class QuestionGroup:
    question: str  # the most typical wording
    count: int
    examples: list[str] = field(default_factory=list)
    wordings: list[str] = field(default_factory=list, repr=False)  # every question of the group, as asked


@dataclass
class Stats:
    since: str | None
    conversations: int
    questions: int
    answered: int
    handoffs: int
    answered_rate: float | None
    handoff_rate: float | None
    feedback_up: int
    feedback_down: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    by_generator: dict[str, int]
    top_unanswered: list[QuestionGroup]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for group in out["top_unanswered"]:
            group.pop("wordings")
        return out


def parse_since(value: str) -> datetime:
    """An ISO date or datetime as an aware datetime (UTC when no zone is given); ValueError says what to send.

    >>> parse_since("2026-11-01")
    datetime.datetime(2026, 11, 1, 0, 0, tzinfo=datetime.timezone.utc)
    """
    try:
        start = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"since must be an ISO date such as 2026-11-01, got {value!r}") from None
    return start if start.tzinfo else start.replace(tzinfo=UTC)


def format_percent(x: float | None) -> str:
    """
    >>> format_percent(0.1234), format_percent(None)
    ('12.3%', '-')
    """
    return "-" if x is None else f"{100 * x:.1f}%"


def compute_stats(
    store: ConversationStore,
    since: datetime | None = None,
    embedder: Embedder | None = None,
    top: int = 10,
    dense_languages: Sequence[str] = ("en",),
) -> Stats:
    messages = store.messages(since=since)
    return summarize(
        messages,
        store.feedback(since=since),
        store.conversation_count(since=since),
        since,
        embedder,
        top,
        dense_languages,
    )


def summarize(
    messages: Sequence[StoredMessage],
    feedback: Sequence[Feedback],
    conversations: int,
    since: datetime | None = None,
    embedder: Embedder | None = None,
    top: int = 10,
    dense_languages: Sequence[str] = ("en",),
) -> Stats:
    n = len(messages)
    answered = sum(m.answered for m in messages)
    handoffs = sum(m.handoff for m in messages)
    latencies = [m.latency_ms for m in messages]
    generators: dict[str, int] = {}
    for m in messages:
        generators[m.generator] = generators.get(m.generator, 0) + 1
    # a person asked for explicitly is not a gap in the documents
    unanswered = [m.question for m in messages if not m.answered and m.decline_reason != "customer_request"]
    return Stats(
        since=since.isoformat() if since else None,
        conversations=conversations,
        questions=n,
        answered=answered,
        handoffs=handoffs,
        answered_rate=round(answered / n, 4) if n else None,
        handoff_rate=round(handoffs / n, 4) if n else None,
        feedback_up=sum(f.rating == "up" for f in feedback),
        feedback_down=sum(f.rating == "down" for f in feedback),
        latency_p50_ms=round(float(np.percentile(latencies, 50)), 2) if latencies else None,
        latency_p95_ms=round(float(np.percentile(latencies, 95)), 2) if latencies else None,
        by_generator=generators,
        top_unanswered=group_questions(unanswered, embedder, dense_languages=dense_languages)[:top],
    )


def _normal(text: str) -> str:
    return re.sub(r"[\W_]+", " ", text.casefold()).strip()


def group_questions(
    questions: Sequence[str],
    embedder: Embedder | None = None,
    threshold: float = GROUP_SIMILARITY,
    dense_languages: Sequence[str] = ("en",),
) -> list[QuestionGroup]:
    """Similar questions grouped, biggest group first, each named by its member closest to the group's centre.

    Similarity is the cosine of embeddings for languages the embedding model covers; for the others (it
    finds any two Chinese questions alike) it is the overlap of their words."""
    by_language: dict[bool, list[str]] = {}
    for q in questions:
        by_language.setdefault(detect_language(q) in dense_languages, []).append(q)
    groups = _group(by_language.get(True, []), embedder, threshold)
    groups += _group(by_language.get(False, []), None, threshold)
    return sorted(groups, key=lambda g: (-g.count, g.question))


def _group(questions: Sequence[str], embedder: Embedder | None, threshold: float) -> list[QuestionGroup]:
    if not questions:
        return []
    distinct: dict[str, list[str]] = {}
    for q in questions:
        distinct.setdefault(_normal(q), []).append(q)
    keys = list(distinct)
    if embedder is None:
        groups = _group_by_words(keys)
        vectors = None
    else:
        vectors = embedder.embed([distinct[k][0] for k in keys])
        groups = []
        centres: list[np.ndarray] = []
        for i in sorted(range(len(keys)), key=lambda i: -len(distinct[keys[i]])):
            if centres:
                sims = np.asarray(centres) @ vectors[i]
                best = int(np.argmax(sims))
                if sims[best] >= threshold:
                    groups[best].append(keys[i])
                    rows = [keys.index(k) for k in groups[best]]
                    centre = vectors[rows].mean(axis=0)
                    centres[best] = centre / (np.linalg.norm(centre) or 1)
                    continue
            groups.append([keys[i]])
            centres.append(vectors[i])
    out = []
    for members in groups:
        wordings = [q for k in members for q in distinct[k]]
        if vectors is not None and len(members) > 1:
            idx = [keys.index(k) for k in members]
            centre = vectors[idx].mean(axis=0)
            name = distinct[members[int(np.argmax(vectors[idx] @ centre))]][0]
        else:
            name = max(members, key=lambda k: len(distinct[k]))
            name = distinct[name][0]
        out.append(
            QuestionGroup(question=name, count=len(wordings), examples=sorted(set(wordings))[:5], wordings=wordings)
        )
    return out


def _group_by_words(keys: list[str], threshold: float = 0.5) -> list[list[str]]:
    groups: list[list[str]] = []
    words: list[set[str]] = []
    for key in keys:
        mine = terms(key)
        for i, other in enumerate(words):
            if jaccard(mine, other) >= threshold:
                groups[i].append(key)
                other |= mine
                break
        else:
            groups.append([key])
            words.append(set(mine))
    return groups
