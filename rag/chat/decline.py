"""When to decline: how strongly the retrieved passages support an answer (pure functions).

Several kinds of evidence, each failing differently, are combined (`Evidence`):
- `dense`: the best cosine similarity among the top passages (0 for a language the embedding model does not
  cover: there it is high for any pair of texts);
- `coverage`: the share of the question's content terms (English stems, Chinese character bigrams) found in
  the top passages;
- `sentence`: the same share in the single best sentence (with its neighbour): on-topic passages that do not
  answer the question cover its words only scattered over different sentences;
- `title`: how much of the question the top passage's title or FAQ question covers (an FAQ row asked in other
  words still shares its key terms);
- `agreement`: whether dense and BM25 scoring both put the top passage first;
- `rare`: the share of the question's terms that occur in the passages *and* are rare among them - an
  off-topic question shares only common words.
`support_score` maps them through a logistic model per language, fitted by benchmarks/calibrate_decline.py on
the shared datasets and the customer-question set (weights below; re-run it after changing the features or the
embedding model), to a 0..1 confidence compared with `RAG_MIN_SCORE` / `RAG_MIN_SCORE_ZH`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields

from rag.core.types import Passage
from rag.text.lexical import coverage, terms
from rag.text.sentences import sentence_spans

SUPPORT_PASSAGES = 3


@dataclass(frozen=True)
class Evidence:
    dense: float
    coverage: float
    sentence: float
    title: float
    agreement: float
    rare: float

    def vector(self) -> tuple[float, ...]:
        return astuple(self)

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


# Logistic weights (bias first, then one per Evidence field) per language; "en" also serves other languages the
# embedding model covers. Fitted by benchmarks/calibrate_decline.py.
WEIGHTS: dict[str, tuple[float, ...]] = {
    "en": (-8.457, 15.642, 1.972, -0.882, -1.744, 0.504, 0.121),
    "zh": (-1.263, 0.000, 3.283, 5.452, 5.203, -2.801, 2.960),
}


def evidence(question: str, passages: Sequence[Passage], dense_covers_language: bool = True) -> Evidence:
    """The evidence that `passages` (best first) answer `question`."""
    if not passages:
        return Evidence(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    top = passages[:SUPPORT_PASSAGES]
    wanted = terms(question)
    texts = [p.chunk.embedding_text() for p in top]
    dense = max(p.dense_score if p.dense_score is not None else p.score for p in top) if dense_covers_language else 0
    return Evidence(
        dense=float(dense),
        coverage=coverage(question, texts),
        sentence=_best_sentence_share(wanted, [p.chunk.text for p in top]),
        title=_share(wanted, terms(" ".join([top[0].chunk.title, *top[0].chunk.heading_path]))),
        agreement=_agreement(passages),
        rare=_rare_share(wanted, [terms(p.chunk.text) for p in passages]),
    )


def support_score(question: str, passages: Sequence[Passage], dense_covers_language: bool = True) -> float:
    """0..1 confidence that the passages support an answer to the question."""
    if not passages:
        return 0.0
    found = evidence(question, passages, dense_covers_language)
    return confidence(found, "en" if dense_covers_language else "zh")


def confidence(found: Evidence, model: str) -> float:
    bias, *weights = WEIGHTS[model]
    z = bias + sum(w * x for w, x in zip(weights, found.vector(), strict=True))
    return 1 / (1 + math.exp(-max(-50.0, min(50.0, z))))


def _share(wanted: set[str], found: set[str]) -> float:
    return len(wanted & found) / len(wanted) if wanted else 0.0


def _best_sentence_share(wanted: set[str], texts: Sequence[str]) -> float:
    """The best share of `wanted` in one sentence joined with the next (facts often span two sentences)."""
    best = 0.0
    for text in texts:
        sentences = [terms(text[s.start : s.end]) for s in sentence_spans(text)]
        for i, words in enumerate(sentences):
            pair = words | (sentences[i + 1] if i + 1 < len(sentences) else set())
            best = max(best, _share(wanted, pair))
    return best


def _agreement(passages: Sequence[Passage]) -> float:
    """1 when the top passage has both the best dense and the best BM25 score of those retrieved, 0.5 for one."""
    top = passages[0]
    if top.dense_score is None or top.lexical_score is None:
        return 0.5
    best_dense = max(p.dense_score or 0.0 for p in passages)
    best_lexical = max(p.lexical_score or 0.0 for p in passages)
    return 0.5 * (top.dense_score >= best_dense) + 0.5 * (top.lexical_score >= best_lexical)


def _rare_share(wanted: set[str], passage_terms: Sequence[set[str]]) -> float:
    """The idf-weighted share of the question's terms found in the retrieved passages, idf over those passages
    plus one pseudo-passage holding every term (so a term found in all of them still weighs a little)."""
    if not wanted:
        return 0.0
    n = len(passage_terms) + 1
    weight = {t: math.log(1 + n / (1 + sum(t in p for p in passage_terms))) for t in wanted}
    found = sum(w for t, w in weight.items() if any(t in p for p in passage_terms))
    return found / sum(weight.values())


def faq_match(question: str, passage: Passage, min_score: float, exact_score: float = 0.85) -> bool:
    """Whether a curated FAQ row answers the question well enough to be returned verbatim.

    High similarity alone confuses "How much is express shipping?" with the "standard shipping" entry, so
    the entry must also contain every content word of the question - unless the wording is nearly identical.
    """
    if passage.chunk.row is None:
        return False
    similarity = passage.dense_score if passage.dense_score is not None else passage.score
    if similarity >= exact_score:
        return True
    return similarity >= min_score and coverage(question, [passage.chunk.embedding_text()]) == 1.0
