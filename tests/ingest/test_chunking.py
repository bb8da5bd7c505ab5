from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ingest.chunking import chunk_document, chunk_spans, paragraph_spans, sentence_spans
from rag.core.types import Document, Section
from rag.text.tokenizer import get_encoding

pytestmark = pytest.mark.unit
ENC = get_encoding()


def tokens(text: str) -> int:
    return len(ENC.encode(text, disallowed_special=()))


def covered(text: str, spans) -> bool:
    mask = [False] * len(text)
    for s in spans:
        for i in range(s.start, s.end):
            mask[i] = True
    return all(mask[i] for i, ch in enumerate(text) if not ch.isspace())


words = st.sampled_from(
    [
        "shipping",
        "refund",
        "the",
        "order",
        "arrives",
        "in",
        "3-5",
        "days",
        "$12.95",
        "e.g.",
        "warranty",
        "退货",
        "发货",
        "订单",
        "三到五个工作日",
        "保修",
        "账户",
        "密码",
        "。",
        "！",
        "？",
        "；",
        ".",
        "!",
        "?",
        ",",
        "，",
        "\n",
        "\n\n",
        "supercalifragilisticexpialidocious",
        "长长长长长长长长长长长长长长长长长长长长长长长长",
    ]
)
texts = st.lists(words, min_size=0, max_size=400).map(lambda ws: " ".join(ws))
mixed_texts = st.one_of(texts, st.text(min_size=0, max_size=2000))


@hsettings(max_examples=150, deadline=None)
@given(text=mixed_texts, max_tokens=st.integers(17, 120), overlap=st.integers(0, 8))
def test_no_chunk_exceeds_limit_and_no_text_is_lost(text, max_tokens, overlap):
    spans = chunk_spans(text, max_tokens, overlap, ENC)
    for s in spans:
        assert 0 <= s.start < s.end <= len(text)
        assert tokens(text[s.start : s.end]) <= max_tokens
    assert covered(text, spans)
    starts = [s.start for s in spans]
    assert starts == sorted(starts)


@hsettings(max_examples=60, deadline=None)
@given(text=texts, max_tokens=st.integers(17, 80))
def test_chunks_of_a_document_respect_the_limit(text, max_tokens):
    doc = Document(source="a.md", title="T", sections=[Section(text=text, heading_path=("A", "B"))])
    for chunk in chunk_document(doc, max_tokens, 5, ENC):
        assert chunk.token_count == tokens(chunk.text) <= max_tokens
        assert chunk.heading_path == ("A", "B")


def test_sentences_english_and_chinese_alike():
    text = "First sentence. Second one! 第一句。第二句！第三句？第四句；last one"
    got = [text[s.start : s.end] for s in sentence_spans(text)]
    assert got == ["First sentence.", "Second one!", "第一句。", "第二句！", "第三句？", "第四句；", "last one"]


def test_abbreviation_like_dots_inside_words_do_not_split():
    text = "Prices are $12.95 each. Version 2.0 is out."
    assert [text[s.start : s.end] for s in sentence_spans(text)] == ["Prices are $12.95 each.", "Version 2.0 is out."]


def test_paragraphs_that_fit_stay_whole():
    paras = [f"Paragraph {i} says something useful about orders. It has two sentences." for i in range(12)]
    text = "\n\n".join(paras)
    spans = chunk_spans(text, 60, 0, ENC)
    assert len(spans) > 1
    for s in spans:
        piece = text[s.start : s.end]
        # every chunk is made of whole paragraphs
        assert all(p in paras for p in re.split(r"\n\n", piece))


def test_long_paragraph_splits_between_sentences_only():
    sentences = [f"订单{i}会在三到五个工作日内送达。" for i in range(60)]
    text = "".join(sentences)
    spans = chunk_spans(text, 50, 0, ENC)
    assert len(spans) > 1
    for s in spans:
        piece = text[s.start : s.end]
        assert piece.endswith("。")
        assert tokens(piece) <= 50


def test_a_sentence_longer_than_the_limit_is_split_without_losing_characters():
    text = "长" * 500  # one sentence, no punctuation
    spans = chunk_spans(text, 40, 0, ENC)
    assert "".join(text[s.start : s.end] for s in spans) == text
    assert all(tokens(text[s.start : s.end]) <= 40 for s in spans)


def test_overlap_repeats_whole_trailing_sentences():
    text = " ".join(f"Sentence number {i} is here." for i in range(40))
    spans = chunk_spans(text, 40, 12, ENC)
    assert len(spans) > 2
    for prev, cur in zip(spans, spans[1:], strict=False):
        assert cur.start < prev.end  # overlaps
        overlap = text[cur.start : prev.end]
        assert overlap.startswith("Sentence") and overlap.endswith(".")
        assert tokens(overlap) <= 12


def test_faq_row_is_one_chunk_with_the_question_as_title():
    doc = Document(
        source="faq.csv",
        title="faq",
        sections=[
            Section(
                text="Three to five business days.",
                title="How long is shipping?",
                row=2,
                atomic=True,
                metadata={"category": "shipping"},
            )
        ],
    )
    [chunk] = chunk_document(doc, 300, 30, ENC)
    assert chunk.title == "How long is shipping?"
    assert chunk.row == 2
    assert chunk.metadata == {"category": "shipping"}
    assert chunk.embedding_text() == "How long is shipping?\nThree to five business days."


def test_paragraph_spans_skip_blank_runs():
    text = "\n\n  one  \n\n\n two\nstill two \n\n"
    assert [text[s.start : s.end] for s in paragraph_spans(text)] == ["one", "two\nstill two"]
