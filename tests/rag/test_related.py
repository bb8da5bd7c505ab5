"""Related reading: uncited documents about as relevant as the cited ones, one per document, links only if safe."""

from __future__ import annotations

import pytest

from rag.chat.related import related_documents
from rag.core.types import Answer, Chunk, Passage, Related
from rag.generation.citations import make_citation

pytestmark = pytest.mark.unit


def passage(doc: str, score: float, *, id: int | None, title: str = "", url: str | None = None, row: int | None = None):
    chunk = Chunk(doc_id=doc, source=doc.split("#")[0], text="text", position=0, title=title, url=url, row=row, id=id)
    return Passage(chunk, score)


def test_uncited_documents_above_the_floor_best_first():
    passages = [
        passage("shipping.md", 0.95, id=1, title="Shipping"),
        passage("tracking.md", 0.90, id=2, title="Tracking", url="https://help.example.com/tracking"),
        passage("shipping.md", 0.88, id=3, title="Shipping"),  # the cited document, another chunk
        passage("customs.md", 0.80, id=4, title="Customs"),
        passage("privacy.md", 0.40, id=5, title="Privacy"),  # off topic: far below the best
    ]
    found = related_documents(passages, [make_citation(1, passages[0])])
    assert found == [
        Related("Tracking", "tracking.md", "https://help.example.com/tracking"),
        Related("Customs", "customs.md", None),
    ]


def test_one_entry_per_document_and_at_most_the_limit():
    passages = [passage("cited.md", 1.0, id=0, title="Cited")] + [
        passage(f"doc{i // 2}.md", 0.99 - i / 100, id=i + 1, title=f"Doc {i // 2}") for i in range(10)
    ]
    found = related_documents(passages, [make_citation(1, passages[0])])
    assert [r.title for r in found] == ["Doc 0", "Doc 1", "Doc 2"]
    assert [r.title for r in related_documents(passages, [make_citation(1, passages[0])], limit=1)] == ["Doc 0"]
    assert related_documents(passages, [], limit=0) == []


def test_faq_rows_are_documents_of_their_own():
    standard = passage("faq.csv", 0.98, id=1, title="How much does standard shipping cost?", row=3)
    express = passage("faq.csv", 0.90, id=2, title="How fast is express shipping?", row=4)
    assert related_documents([standard, express], [make_citation(1, standard)]) == [
        Related("How fast is express shipping?", "faq.csv", None)
    ]


def test_records_of_one_file_are_separate_documents_and_titles_fall_back_to_the_file_name():
    passages = [
        passage("extras.jsonl#lockers", 0.9, id=1, title="Parcel lockers"),
        passage("extras.jsonl#credit", 0.85, id=2, title="Store credit"),
        passage("guides/gift-wrap.md", 0.8, id=3),
    ]
    found = related_documents(passages, [make_citation(1, passages[0])])
    assert [(r.title, r.source) for r in found] == [
        ("Store credit", "extras.jsonl"),
        ("gift-wrap.md", "guides/gift-wrap.md"),
    ]


def test_unsafe_links_are_dropped_but_the_document_is_still_suggested():
    passages = [
        passage("a.md", 0.9, id=1, title="A"),
        passage("b.md", 0.9, id=2, title="B", url=" JaVa\tScRiPt:alert(1)"),
        passage("c.md", 0.9, id=3, title="C", url="data:text/html,<b>x</b>"),
        passage("d.md", 0.9, id=4, title="D", url="/help/d"),
    ]
    found = related_documents(passages, [make_citation(1, passages[0])])
    assert [(r.title, r.url) for r in found] == [("B", None), ("C", None), ("D", "/help/d")]


def test_nothing_when_everything_retrieved_was_cited_or_scores_are_not_positive():
    passages = [passage("a.md", 0.9, id=1), passage("b.md", 0.85, id=2)]
    assert related_documents(passages, [make_citation(1, passages[0]), make_citation(2, passages[1])]) == []
    assert related_documents([passage("a.md", 0.0, id=1), passage("b.md", 0.0, id=2)], []) == []
    assert related_documents([], []) == []


def test_a_citation_without_a_chunk_id_is_matched_by_source_and_row():
    passages = [passage("a.md", 0.9, id=None), passage("b.md", 0.85, id=None, title="B")]
    assert related_documents(passages, [make_citation(1, passages[0])]) == [Related("B", "b.md", None)]


def test_the_answer_carries_them_in_its_json():
    answer = Answer("q", "a", True, False, [], [], "extractive", "en", related=[Related("T", "t.md", "/t")])
    assert answer.to_dict()["related"] == [{"title": "T", "source": "t.md", "url": "/t"}]
    assert Answer("q", "a", True, False, [], [], "extractive", "en").to_dict()["related"] == []
