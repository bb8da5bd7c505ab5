"""When to decline: the evidence that the retrieved passages support an answer (pure functions).

Support = best cosine similarity among the top passages + LEXICAL_WEIGHT x the share of the question's
content terms found in them. For a language the embedding model does not cover (Chinese with the bundled
English model) cosine similarity is high for any pair of texts, so only the lexical share counts. The semantic
score alone confuses "on topic" with "answers it" less often when the words the customer used actually appear;
the weight and the thresholds (`RAG_MIN_SCORE`, `RAG_MIN_SCORE_ZH`) are calibrated together by
benchmarks/calibrate_decline.py on the shared datasets.
"""

from __future__ import annotations

from collections.abc import Sequence

from rag.core.types import Passage
from rag.text.lexical import coverage

LEXICAL_WEIGHT = 0.2
SUPPORT_PASSAGES = 3


def support_score(question: str, passages: Sequence[Passage], dense_covers_language: bool = True) -> float:
    if not passages:
        return 0.0
    top = passages[:SUPPORT_PASSAGES]
    if not dense_covers_language:
        return coverage(question, [p.chunk.embedding_text() for p in top])
    similarity = max(p.dense_score if p.dense_score is not None else p.score for p in top)
    return similarity + LEXICAL_WEIGHT * coverage(question, [p.chunk.embedding_text() for p in top])


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
