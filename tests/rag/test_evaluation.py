from __future__ import annotations

import json
import math

import pytest

from rag.core.errors import DatasetError
from rag.core.types import Chunk, Passage
from rag.evaluation.metrics import load_dataset, mrr_at_k, ndcg_at_k, ranked_records, recall_at_k, score_rankings

pytestmark = pytest.mark.unit


def test_ndcg_perfect_and_graded():
    assert ndcg_at_k(["a", "b"], {"a": 1}, 10) == 1.0
    assert ndcg_at_k(["x", "a"], {"a": 1}, 10) == pytest.approx(1 / math.log2(3))
    # graded: putting the grade-2 document second loses against the ideal order
    assert ndcg_at_k(["b", "a"], {"a": 2, "b": 1}, 10) == pytest.approx((1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3)))
    assert ndcg_at_k(["x"] * 10 + ["a"], {"a": 1}, 10) == 0.0


def test_recall_and_mrr():
    assert recall_at_k(["a", "x", "b"], {"a": 1, "b": 1, "c": 1}, 10) == pytest.approx(2 / 3)
    assert recall_at_k(["a", "x", "b"], {"a": 1, "b": 1}, 2) == 0.5
    assert mrr_at_k(["x", "y", "a"], {"a": 1}, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["x", "y", "a"], {"a": 1}, 2) == 0.0


def test_unjudged_queries_are_left_out():
    metrics = score_rankings({"q1": ["a"], "q2": ["b"]}, {"q1": {"a": 1}}, 10)
    assert metrics["queries"] == 1 and metrics["ndcg@10"] == 1.0


def test_ranked_records_count_a_document_once():
    def p(doc_id, source="c.jsonl"):
        return Passage(Chunk(doc_id=doc_id, source=source, text="t", position=0), 0.5)

    assert ranked_records([p("c.jsonl#a"), p("c.jsonl#a"), p("c.jsonl#b"), p("x.md", "x.md")]) == ["a", "b", "x.md"]


def test_load_dataset_with_header_and_answers(tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "text": "x"}\n')
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "what"}\n{"_id": "q2", "text": "other"}\n')
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    (tmp_path / "answers.jsonl").write_text(json.dumps({"_id": "q2", "answers": []}) + "\n")
    data = load_dataset(tmp_path)
    assert data.qrels == {"q1": {"d1": 1}} and data.judged_queries == ["q1"] and data.answers == {"q2": []}


def test_missing_files_say_what_a_beir_folder_needs(tmp_path):
    with pytest.raises(DatasetError, match="needs corpus.jsonl, queries.jsonl and qrels/test.tsv"):
        load_dataset(tmp_path)
