"""Paragraph and sentence boundaries as character spans, English and Chinese alike (pure functions).

Shared by the chunker (ingest) and the extractive answerer (rag), so both cut text the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
# A sentence ends after Western punctuation followed by whitespace, after CJK punctuation (no space needed),
# or at a line break (list items, table rows).
_SENTENCE_END = re.compile(r"""(?:[.!?]+["'”’)\]]*(?=\s)|[。！？；!?;]+[”’」』）)]*|\n)""")


@dataclass(frozen=True)
class Span:
    start: int
    end: int


def paragraph_spans(text: str) -> list[Span]:
    """Spans of paragraphs (separated by blank lines), leading/trailing whitespace excluded."""
    spans, pos = [], 0
    for m in _PARAGRAPH_BREAK.finditer(text):
        spans.append(Span(pos, m.start()))
        pos = m.end()
    spans.append(Span(pos, len(text)))
    return [s for s in (strip_span(text, s) for s in spans) if s.end > s.start]


def sentence_spans(text: str, within: Span | None = None) -> list[Span]:
    """Spans of sentences inside `within` (default: the whole text).

    >>> [("Hi there. 你好。好的" )[s.start:s.end] for s in sentence_spans("Hi there. 你好。好的")]
    ['Hi there.', '你好。', '好的']
    """
    within = within or Span(0, len(text))
    spans, pos = [], within.start
    for m in _SENTENCE_END.finditer(text, within.start, within.end):
        spans.append(Span(pos, m.end()))
        pos = m.end()
    spans.append(Span(pos, within.end))
    return [s for s in (strip_span(text, s) for s in spans) if s.end > s.start]


def strip_span(text: str, span: Span) -> Span:
    start, end = span.start, span.end
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Span(start, end)
