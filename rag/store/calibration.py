"""Per-knowledge-base fusion calibration: how much to trust dense vs BM25 scores *on this content*.

Fixed fusion weights tuned on a few datasets fail on others (an FAQ of short entries asked short conversational
questions wants more dense weight than news passages asked factoid questions; Chinese content with an
English-only embedding model wants almost none). So at ingest the knowledge base measures both retrievers on
questions it can make from its own content, with known answers - the inverse cloze task (Lee et al., 2019):

- a chunk with its own title (FAQ rows, titled records): the title is the question, the chunk text the answer;
- otherwise: the chunk's first sentence is the question, the rest of the chunk the answer.

The question is removed from its answer, so neither retriever can match it verbatim. Dense (question and answer
embedded afresh) and BM25 (an index over the answers) each rank all the sampled answers for every question,
and the dense weight whose fused ranking has the best mean reciprocal rank is kept, shrunk toward a prior
(`FusionCalibrationSettings`, chosen by leave-one-dataset-out over the shared datasets: benchmarks/fusion_lodo.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from rag.core.types import Chunk
from rag.store.embedders import Embedder
from rag.store.lexical_index import BM25Index
from rag.text.lexical import bm25_tokens
from rag.text.sentences import sentence_spans

WEIGHT_GRID = tuple(round(w, 2) for w in np.arange(0, 1.0001, 0.05))
MIN_QUESTION_CHARS = 8
MIN_ANSWER_CHARS = 20


@dataclass(frozen=True)
class PseudoQuestion:
    question: str
    answer: str  # the chunk's text with the question taken out


@dataclass(frozen=True)
class FusionCalibration:
    """What the knowledge base measured on its own pseudo-questions, and the dense weight it chose."""

    dense_weight: float
    measured_weight: float  # the best weight on the pseudo-questions, before shrinking toward the prior
    dense_mrr: float
    lexical_mrr: float
    fused_mrr: float
    questions: int

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> FusionCalibration:
        return cls(**json.loads(text))

    def describe(self) -> str:
        return (
            f"dense weight {self.dense_weight:.2f} (best on {self.questions} pseudo-questions: "
            f"{self.measured_weight:.2f}; MRR dense {self.dense_mrr:.3f}, bm25 {self.lexical_mrr:.3f}, "
            f"fused {self.fused_mrr:.3f})"
        )


def pseudo_questions(chunks: Sequence[Chunk], limit: int) -> list[PseudoQuestion]:
    """Up to `limit` (question, answer) pairs, spread evenly over `chunks` (some chunks yield none)."""
    pairs = [p for p in (_pseudo_question(c) for c in chunks) if p is not None]
    if len(pairs) <= limit:
        return pairs
    return [pairs[i] for i in np.linspace(0, len(pairs) - 1, limit).round().astype(int)]


def _pseudo_question(chunk: Chunk) -> PseudoQuestion | None:
    title, text = chunk.title.strip(), chunk.text.strip()
    if title and not text.startswith(title):
        question, answer = title, text
    else:
        spans = sentence_spans(text)
        if len(spans) < 2:
            return None
        first = spans[0]
        question, answer = text[first.start : first.end], (text[: first.start] + " " + text[first.end :]).strip()
    if len(question) < MIN_QUESTION_CHARS or len(answer) < MIN_ANSWER_CHARS:
        return None
    return PseudoQuestion(question, answer)


def reciprocal_ranks(scores: np.ndarray) -> np.ndarray:
    """1/rank of each row's own item (the diagonal) among the row's scores; ties count as half below."""
    own = np.diag(scores)[:, None]
    rank = (scores > own).sum(axis=1) + 1 + 0.5 * ((scores == own).sum(axis=1) - 1)
    return 1.0 / rank


def min_max_rows(x: np.ndarray) -> np.ndarray:
    """Each row scaled to 0..1 (all zeros where a row is constant), as the hybrid retriever scales candidates."""
    low = x.min(axis=1, keepdims=True)
    span = x.max(axis=1, keepdims=True) - low
    return np.where(span > 1e-9, (x - low) / np.where(span > 1e-9, span, 1), 0.0)


def choose_weight(
    dense: np.ndarray, lexical: np.ndarray, prior: float, shrink: float, grid: Sequence[float] = WEIGHT_GRID
) -> tuple[float, float, float]:
    """(chosen dense weight, best weight measured, its fused MRR) for square question x answer score matrices.

    Among equally good weights the one nearest the prior wins; the result moves from the prior toward the
    measured best by `shrink` (0: always the prior, 1: the measurement alone)."""
    d, b = min_max_rows(dense), min_max_rows(lexical)
    mrr = np.array([reciprocal_ranks(w * d + (1 - w) * b).mean() for w in grid])
    best = max(range(len(grid)), key=lambda i: (round(float(mrr[i]), 6), -abs(grid[i] - prior)))
    measured = float(grid[best])
    return _on_grid(prior + shrink * (measured - prior), grid), measured, float(mrr[best])


def _on_grid(weight: float, grid: Sequence[float]) -> float:
    """The grid weight nearest `weight`: the weights were validated on the grid, not between its points."""
    return float(min(grid, key=lambda g: (abs(g - weight), g)))


def sample_ids(ids: Sequence[int], wanted: int) -> list[int]:
    """Up to `wanted` ids spread evenly over `ids` (in order)."""
    ordered = sorted(ids)
    return list(ordered[:: max(1, len(ordered) // max(1, wanted))][:wanted])


def score_pseudo_questions(pairs: Sequence[PseudoQuestion], embedder: Embedder) -> tuple[np.ndarray, np.ndarray]:
    """(dense, BM25) score matrices, question x answer: each question against every sampled answer."""
    questions = [p.question for p in pairs]
    answers = [p.answer for p in pairs]
    vectors = embedder.embed(questions + answers)
    dense = vectors[: len(pairs)] @ vectors[len(pairs) :].T
    index = BM25Index.build(range(len(answers)), [bm25_tokens(a) for a in answers])
    lexical = np.vstack([index.query_scores(bm25_tokens(q)) for q in questions])
    return dense, lexical


def calibrate(
    chunks: Sequence[Chunk], embedder: Embedder, *, limit: int, prior: float, shrink: float, min_questions: int
) -> FusionCalibration | None:
    """Measure dense vs BM25 on pseudo-questions from `chunks`; None when too few can be made."""
    pairs = pseudo_questions(chunks, limit)
    if len(pairs) < min_questions:
        return None
    dense, lexical = score_pseudo_questions(pairs, embedder)
    weight, measured, fused = choose_weight(dense, lexical, prior, shrink)
    return FusionCalibration(
        dense_weight=weight,
        measured_weight=measured,
        dense_mrr=round(float(reciprocal_ranks(dense).mean()), 4),
        lexical_mrr=round(float(reciprocal_ranks(lexical).mean()), 4),
        fused_mrr=round(fused, 4),
        questions=len(pairs),
    )
