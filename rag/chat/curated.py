"""Which curated answer, if any, a customer's question asks for (rag.store.curated holds them).

A question is compared with every enabled answer's question and other phrasings:
- in a language the embedding model covers, by cosine similarity (one embedding of the question per call;
  the curated texts' embeddings are cached, recomputed only for entries whose `updated_at` changed);
- in Chinese (which the default English model does not cover), lexically: the Dice overlap of content terms
  (character bigrams) with the closest text, averaged with the share of the question's terms the entry
  (question, phrasings and answer) holds.
Similarity alone confuses "How much is express shipping?" with the "standard shipping" entry (cosine 0.77), so
a content-word check lowers the score: by KNOWN_PENALTY times the share of the question's terms the entry never
mentions but another entry's question does ("express": the question is about that other entry), and by
UNKNOWN_PENALTY times the share no entry mentions (a paraphrase's own words, a weak sign). The score is compared
with `min_score` (`min_score_zh` for Chinese), calibrated by benchmarks/calibrate_curated.py.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np

from rag.core.types import Answer, Citation, Usage
from rag.generation.citations import snippet
from rag.generation.extractive import question_parts
from rag.store.curated import CuratedAnswer
from rag.store.embedders import Embedder
from rag.text.lexical import terms

log = logging.getLogger("rag.chat.curated")

# Chosen with benchmarks/calibrate_curated.py (it prints cosine alone as the baseline beside these).
KNOWN_PENALTY = 0.4
UNKNOWN_PENALTY = 0.1
# Words that say what kind of answer is wanted, not what it is about ("how much" asks what "cost" does): left
# out of the content-word check, or "How much is express shipping?" would lean to "How much is standard shipping?".
ASKING_WORDS = frozenset({"much", "many", "多少", "多久", "多长", "怎样", "哪些", "哪里"})
# Entries (best cosine first) whose content words are checked: the check only lowers scores.
_DENSE_CANDIDATES = 10


@dataclass
class CuratedMatch:
    answer: CuratedAnswer
    score: float
    matched: str  # the question or phrasing closest to the customer's question


@dataclass(frozen=True)
class _Entry:
    answer: CuratedAnswer
    texts: list[str]
    text_terms: list[frozenset[str]]
    all_terms: frozenset[str]  # question, phrasings and answer


@dataclass(frozen=True)
class _Snapshot:
    version: int
    entries: list[_Entry]
    vectors: np.ndarray  # one row per text of the embedded entries, in order
    owners: np.ndarray  # the entry index of each row
    asked: frozenset[str]  # every term of every entry's question and phrasings


class AnswerSource(Protocol):
    """What matching reads of a store of curated answers."""

    def list(self, enabled_only: bool = False) -> list[CuratedAnswer]: ...

    def version(self) -> int: ...


@dataclass
class WithDraft:
    """The curated answers with one draft among them, in place of the answer it edits (the console's "try it"
    before publishing)."""

    answers: AnswerSource
    draft: CuratedAnswer

    def list(self, enabled_only: bool = False) -> list[CuratedAnswer]:
        return [a for a in self.answers.list(enabled_only) if a.id != self.draft.id] + [self.draft]

    def version(self) -> int:
        return self.answers.version()


class CuratedMatcher:
    """`match(question, language)`: the curated answer the question asks for, or None.

    Reloads the answers whenever `answers.version()` changes (an edit in another thread or process), so an
    added, edited or disabled answer takes effect on the next question.
    """

    def __init__(
        self,
        answers: AnswerSource,
        embedder: Embedder | None,
        *,
        min_score: float,
        min_score_zh: float | None = None,
        dense_languages: Sequence[str] = ("en",),
        known_penalty: float = KNOWN_PENALTY,
        unknown_penalty: float = UNKNOWN_PENALTY,
    ):
        for name, value in (("min_score", min_score), ("min_score_zh", min_score_zh)):
            if value is not None and not -1.0 <= value <= 1.01:
                raise ValueError(f"{name} must be between -1 and 1.01. Currently, the {name} is {value}")
        self.answers = answers
        self.embedder = embedder
        self.min_score = min_score
        self.min_score_zh = min_score_zh
        self.dense_languages = tuple(dense_languages)
        self.known_penalty = known_penalty
        self.unknown_penalty = unknown_penalty
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None
        self._vectors: dict[str, tuple[datetime, np.ndarray]] = {}

    def match(self, question: str, language: str) -> CuratedMatch | None:
        """The best curated answer for the question if its score reaches the language's threshold."""
        best = self.best(question, language)
        return best if best is not None and best.score >= self.threshold(language) else None

    def threshold(self, language: str) -> float:
        return self.min_score_zh if language == "zh" and self.min_score_zh is not None else self.min_score

    def best(self, question: str, language: str) -> CuratedMatch | None:
        """The best-scoring enabled answer in the question's language (or in any language), whatever its score.

        A question in several parts ("Can I pay with PayPal? And can I get a VAT invoice?") scores what its
        weakest part scores against that answer: a curated answer to one part must not stand for the whole.
        """
        snapshot = self._current()
        allowed = [i for i, e in enumerate(snapshot.entries) if e.answer.language in (language, "")]
        if not allowed or not question.strip():
            return None
        parts = question_parts(question)
        parts = parts if len(parts) > 1 else []
        vectors = self.embedder.embed([question, *parts]) if self._dense(language) and self.embedder else None
        asked = content_terms(question)
        if vectors is not None:
            scored = self._dense_scores(vectors[0], asked, snapshot, allowed)
        else:
            scored = [(*self._lexical_score(asked, snapshot, i), i) for i in allowed]
        score, text, index = max(scored, key=lambda s: s[0])
        for k, part in enumerate(parts, start=1):
            vector = vectors[k] if vectors is not None else None
            score = min(score, self._score(content_terms(part), vector, snapshot, index)[0])
        return CuratedMatch(snapshot.entries[index].answer, score, text)

    # ---- scoring -----------------------------------------------------------------------------------------
    def _dense(self, language: str) -> bool:
        return self.embedder is not None and language in self.dense_languages

    def _dense_scores(
        self, vector: np.ndarray, asked: frozenset[str], snapshot: _Snapshot, allowed: list[int]
    ) -> list[tuple[float, str, int]]:
        """(score, closest text, entry) of the entries most similar to the question (by cosine)."""
        similarity = snapshot.vectors @ vector
        best: dict[int, tuple[float, int]] = {}  # entry -> (cosine, row)
        for row, owner in enumerate(snapshot.owners.tolist()):
            if owner not in best or similarity[row] > best[owner][0]:
                best[owner] = (float(similarity[row]), row)
        ranked = sorted((i for i in allowed if i in best), key=lambda i: best[i][0], reverse=True)
        out = []
        for i in ranked[:_DENSE_CANDIDATES]:
            cosine, row = best[i]
            text = snapshot.entries[i].texts[row - int(np.searchsorted(snapshot.owners, i))]
            out.append((cosine - self._penalty(asked, snapshot, i), text, i))
        return out or [(-1.0, snapshot.entries[allowed[0]].texts[0], allowed[0])]

    def _score(
        self, asked: frozenset[str], vector: np.ndarray | None, snapshot: _Snapshot, i: int
    ) -> tuple[float, str]:
        """(score, closest text) of one entry: by cosine when `vector` (the question's embedding) is given."""
        if vector is None:
            return self._lexical_score(asked, snapshot, i)
        rows = np.flatnonzero(snapshot.owners == i)
        if not len(rows):
            return -1.0, snapshot.entries[i].texts[0]
        similarity = snapshot.vectors[rows] @ vector
        k = int(np.argmax(similarity))
        return float(similarity[k]) - self._penalty(asked, snapshot, i), snapshot.entries[i].texts[k]

    def _lexical_score(self, asked: frozenset[str], snapshot: _Snapshot, i: int) -> tuple[float, str]:
        entry = snapshot.entries[i]
        dice, text = max(((_dice(asked, t), text) for t, text in zip(entry.text_terms, entry.texts, strict=True)))
        held = len(asked & entry.all_terms) / len(asked) if asked else 0.0
        return 0.5 * dice + 0.5 * held - self._penalty(asked, snapshot, i), text

    def _penalty(self, asked: frozenset[str], snapshot: _Snapshot, i: int) -> float:
        """The content-word check: question terms the entry never mentions, weighed by whether another curated
        question mentions them."""
        if not asked:
            return 0.0
        missing = asked - snapshot.entries[i].all_terms
        known = len(missing & snapshot.asked)
        return (self.known_penalty * known + self.unknown_penalty * (len(missing) - known)) / len(asked)

    # ---- loading -------------------------------------------------------------------------------------------
    def _current(self) -> _Snapshot:
        try:
            version = self.answers.version()
        except Exception:  # an unreadable store must not break the reply: the last answers known go on
            log.exception("curated answers unavailable; matching the last ones loaded")
            return self._snapshot or _Snapshot(
                -1, [], np.zeros((0, 0), dtype=np.float32), np.zeros(0, np.int64), frozenset()
            )
        snapshot = self._snapshot
        if snapshot is not None and snapshot.version == version:
            return snapshot
        with self._lock:
            if self._snapshot is None or self._snapshot.version != version:
                self._snapshot = self._load(version)
            return self._snapshot

    def _load(self, version: int) -> _Snapshot:
        answers = self.answers.list(enabled_only=True)
        entries = [_entry(a) for a in answers]
        embedded = [i for i, e in enumerate(entries) if self._embeds(e.answer.language)]
        vectors = self._embeddings([entries[i].answer for i in embedded])
        owners = [i for i in embedded for _ in entries[i].texts]
        asked = frozenset().union(*(t for e in entries for t in e.text_terms))
        dimension = self.embedder.dimension if self.embedder is not None else 0
        matrix = np.vstack(vectors) if vectors else np.zeros((0, dimension), dtype=np.float32)
        return _Snapshot(version, entries, matrix, np.asarray(owners, dtype=np.int64), asked)

    def _embeds(self, language: str) -> bool:
        return self.embedder is not None and (language == "" or language in self.dense_languages)

    def _embeddings(self, answers: Iterable[CuratedAnswer]) -> list[np.ndarray]:
        """Each answer's text vectors, embedding (in one batch) only those new or changed since last time."""
        answers = list(answers)
        stale = [a for a in answers if a.id not in self._vectors or self._vectors[a.id][0] != a.updated_at]
        if stale and self.embedder is not None:
            texts = [t for a in stale for t in a.texts()]
            vectors = self.embedder.embed(texts)
            start = 0
            for a in stale:
                count = len(a.texts())
                self._vectors[a.id] = (a.updated_at, vectors[start : start + count])
                start += count
        live = {a.id for a in answers}
        for gone in [k for k in self._vectors if k not in live]:
            del self._vectors[gone]
        return [self._vectors[a.id][1] for a in answers]


def curated_answer(
    match: CuratedMatch, question: str, language: str, latency_ms: float, *, conversation_id: str, message_id: str
) -> Answer:
    """The bot's reply for a curated match: the answer verbatim and whole, citing the curated answer
    (source "curated/<id>", titled by its question), no passages and no model call."""
    entry = match.answer
    citation = Citation(
        marker=1,
        chunk_id=None,
        source=f"curated/{entry.id}",
        title=entry.question,
        heading=entry.question,
        snippet=snippet(entry.answer),
        score=round(match.score, 6),
    )
    return Answer(
        question=question,
        answer=entry.answer,
        answered=True,
        handoff=False,
        citations=[citation],
        passages=[],
        generator="curated",
        language=language,
        usage=Usage(),
        latency_ms=latency_ms,
        conversation_id=conversation_id,
        message_id=message_id,
    )


def _entry(answer: CuratedAnswer) -> _Entry:
    texts = answer.texts()
    text_terms = [content_terms(t) for t in texts]
    return _Entry(answer, texts, text_terms, frozenset().union(*text_terms, content_terms(answer.answer)))


def content_terms(text: str) -> frozenset[str]:
    """The terms (rag.text.lexical) the content-word check compares: without the asking words.

    >>> sorted(content_terms("How much is express shipping?"))
    ['expres', 'shipp']
    """
    return frozenset(terms(text) - ASKING_WORDS)


def _dice(a: frozenset[str], b: frozenset[str]) -> float:
    """2|a∩b| / (|a|+|b|): how much two texts' content terms overlap, 0..1.

    >>> _dice({"退货", "运费"}, {"退货", "期限"})
    0.5
    """
    return 2 * len(a & b) / (len(a) + len(b)) if a or b else 0.0
