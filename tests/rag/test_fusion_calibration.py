"""The pure parts of adaptive fusion and of BM25: pseudo-questions, ranks, the weight choice, tokens, scores."""

from __future__ import annotations

import numpy as np
import pytest

from rag.core.types import Chunk
from rag.store.calibration import (
    FusionCalibration,
    choose_weight,
    min_max_rows,
    pseudo_questions,
    reciprocal_ranks,
    sample_ids,
)
from rag.store.lexical_index import BM25Index
from rag.text.lexical import bm25_tokens


def _chunk(text: str, title: str = "") -> Chunk:
    return Chunk(doc_id="d", source="s", text=text, position=0, title=title)


def test_a_titled_chunk_asks_its_title_and_an_untitled_one_its_first_sentence():
    faq = _chunk("Stay at home and rest, drink plenty of fluids.", title="What should I do if I have flu?")
    passage = _chunk("Kayaks can be rented from May. Bring a photo ID and a deposit of fifty dollars.")
    pairs = pseudo_questions([faq, passage, _chunk("One sentence only, nothing to answer it.")], limit=10)
    assert [(p.question, p.answer) for p in pairs] == [
        ("What should I do if I have flu?", "Stay at home and rest, drink plenty of fluids."),
        ("Kayaks can be rented from May.", "Bring a photo ID and a deposit of fifty dollars."),
    ]


def test_pseudo_questions_are_spread_over_the_chunks():
    chunks = [_chunk(f"Answer number {i} has enough words.", title=f"Question number {i}?") for i in range(10)]
    assert [p.question for p in pseudo_questions(chunks, 3)] == [
        "Question number 0?",
        "Question number 4?",
        "Question number 9?",
    ]
    assert sample_ids(range(100, 110), 5) == [100, 102, 104, 106, 108]


def test_reciprocal_rank_of_the_own_answer_counts_ties_as_half():
    scores = np.array([[3.0, 1.0, 2.0], [1.0, 0.5, 2.0], [0.0, 0.0, 0.0]])
    assert reciprocal_ranks(scores).tolist() == pytest.approx([1.0, 1 / 3, 1 / 2])
    assert min_max_rows(np.array([[2.0, 4.0], [1.0, 1.0]])).tolist() == [[0.0, 1.0], [0.0, 0.0]]


def test_the_weight_follows_the_retriever_that_finds_the_answers():
    n = 20
    rng = np.random.default_rng(0)
    good = np.eye(n) + 0.1 * rng.random((n, n))  # own answer always first
    noise = rng.random((n, n))
    weight, measured, mrr = choose_weight(good, noise, prior=0.5, shrink=1.0)
    assert weight == measured > 0.5 and mrr == 1.0  # the perfect weight nearest the prior
    weight, measured_down, mrr = choose_weight(noise, good, prior=0.5, shrink=1.0)
    assert weight == measured_down < 0.5 and mrr == 1.0
    halfway = choose_weight(good, noise, prior=0.5, shrink=0.5)[0]
    assert halfway == pytest.approx(0.5 + (measured - 0.5) / 2, abs=0.026)  # on the 0.05 grid
    # both perfect: every weight ranks alike, so the prior stands
    assert choose_weight(good, good, prior=0.7, shrink=1.0)[0] == 0.7


def test_calibration_round_trips_and_describes_itself():
    c = FusionCalibration(
        dense_weight=0.85, measured_weight=0.95, dense_mrr=0.8, lexical_mrr=0.6, fused_mrr=0.82, questions=60
    )
    assert FusionCalibration.from_json(c.to_json()) == c
    assert "0.85" in c.describe() and "60 pseudo-questions" in c.describe()


def test_bm25_tokens_keep_question_words_and_drop_only_lucene_stop_words():
    assert bm25_tokens("When should I get my flu vaccine?") == ["when", "should", "get", "my", "flu", "vaccin"]
    assert bm25_tokens("Do I need a mask") == ["do", "need", "mask"]  # one-letter words are not words
    assert bm25_tokens("symptoms of coronavirus reddit") == ["symptom", "coronavirus", "reddit"]
    assert bm25_tokens("COVID-19 退货运费")[:2] == ["covid", "19"]


def test_bm25_scores_equal_the_bm25s_library():
    bm25s = pytest.importorskip("bm25s")
    docs = [["flu", "vaccin", "free"], ["flu", "flu", "symptom", "fever"], ["mask", "help"], ["when", "flu", "vaccin"]]
    ours = BM25Index.build(range(len(docs)), docs)
    theirs = bm25s.BM25(k1=1.2, b=0.75)
    theirs.index(docs, show_progress=False)
    for query in (["flu"], ["when", "flu", "vaccin"], ["mask", "fever"]):
        assert ours.query_scores(query) == pytest.approx(theirs.get_scores(query), rel=1e-5)
