"""Structure-aware, token-bounded chunking. Pure functions: text in, character spans / chunks out.

Rules, in order of preference: a section (heading) never shares a chunk with another section; paragraphs
are kept whole; a paragraph too long for one chunk is split between sentences (English `.!?` and Chinese
`。！？；` alike); a sentence is split between tokens only if it alone exceeds the limit. A chunk is always
a contiguous slice of the section text, so nothing is rewritten and nothing is lost.
"""

from __future__ import annotations

import tiktoken

from rag.core.types import Chunk, Document
from rag.text.sentences import Span, paragraph_spans, sentence_spans, strip_span

__all__ = ["Span", "chunk_document", "chunk_spans", "paragraph_spans", "sentence_spans"]


class _Counter:
    def __init__(self, encoding: tiktoken.Encoding, text: str):
        self.encoding, self.text = encoding, text

    def __call__(self, start: int, end: int) -> int:
        return len(self.encoding.encode(self.text[start:end], disallowed_special=()))


def _split_by_tokens(
    text: str, span: Span, max_tokens: int, count: _Counter, encoding: tiktoken.Encoding
) -> list[Span]:
    """Cut one over-long sentence at token boundaries (character offsets, so CJK characters stay whole)."""
    tokens = encoding.encode(text[span.start : span.end], disallowed_special=())
    _, offsets = encoding.decode_with_offsets(tokens)
    pieces, i = [], 0
    start = span.start
    while start < span.end:
        while start < span.end and text[start].isspace():
            start += 1  # measure pieces as they will be stored: without leading whitespace
        if start >= span.end:
            break
        while i < len(tokens) and span.start + offsets[i] < start:
            i += 1
        i = min(i + max_tokens, len(tokens))
        end = span.start + offsets[i] if i < len(tokens) else span.end
        if end <= start:  # a single character wider than the budget cannot happen with max_tokens >= 16
            end = min(span.end, start + 1)
        # Re-tokenising a slice may differ slightly at its edges: shrink until it fits.
        while count(start, end) > max_tokens and end - start > 1:
            end = start + (end - start) * 9 // 10
        pieces.append(Span(start, end))
        start = end
    return [s for s in (strip_span(text, p) for p in pieces) if s.end > s.start]


def chunk_spans(
    text: str,
    max_tokens: int,
    overlap_tokens: int,
    encoding: tiktoken.Encoding,
) -> list[Span]:
    """Split `text` into contiguous spans of at most `max_tokens` tokens, preferring paragraph then sentence ends.

    Consecutive spans may overlap by up to `overlap_tokens` worth of whole trailing sentences.
    """
    count = _Counter(encoding, text)
    units: list[Span] = []  # paragraphs that fit, else their sentences, else token pieces
    for para in paragraph_spans(text):
        if count(para.start, para.end) <= max_tokens:
            units.append(para)
            continue
        for sent in sentence_spans(text, para):
            if count(sent.start, sent.end) <= max_tokens:
                units.append(sent)
            else:
                units.extend(_split_by_tokens(text, sent, max_tokens, count, encoding))

    chunks: list[Span] = []
    start: int | None = None
    end = 0
    for unit in units:
        if start is None:
            start, end = unit.start, unit.end
            continue
        if count(start, unit.end) <= max_tokens:
            end = unit.end
            continue
        chunks.append(Span(start, end))
        start = _overlap_start(text, chunks[-1], overlap_tokens, count)
        if start is None or count(start, unit.end) > max_tokens:
            start = unit.start
        end = unit.end
    if start is not None:
        chunks.append(Span(start, end))
    return chunks


def _overlap_start(text: str, previous: Span, overlap_tokens: int, count: _Counter) -> int | None:
    """Start of the trailing whole sentences of the previous chunk that fit in `overlap_tokens`, if any."""
    if not overlap_tokens:
        return None
    best = None
    for sent in reversed(sentence_spans(text, previous)):
        if sent.start == previous.start or count(sent.start, previous.end) > overlap_tokens:
            break  # never repeat a whole chunk
        best = sent.start
    return best


def chunk_document(
    document: Document,
    max_tokens: int,
    overlap_tokens: int,
    encoding: tiktoken.Encoding,
) -> list[Chunk]:
    """Chunks of one document, in order, each carrying the document's provenance."""
    chunks: list[Chunk] = []
    for section in document.sections:
        text = section.text
        if not text.strip():
            continue
        whole = strip_span(text, Span(0, len(text)))
        n = len(encoding.encode(text[whole.start : whole.end], disallowed_special=()))
        if section.atomic and n <= max_tokens:
            spans = [whole]
        else:
            spans = chunk_spans(text, max_tokens, overlap_tokens, encoding)
        for span in spans:
            piece = text[span.start : span.end]
            chunks.append(
                Chunk(
                    doc_id=document.doc_id,
                    source=document.source,
                    text=piece,
                    position=len(chunks),
                    title=section.title or document.title,
                    heading_path=section.heading_path,
                    page=section.page,
                    row=section.row,
                    url=document.url,
                    metadata={**document.metadata, **section.metadata},
                    token_count=n if span == whole else len(encoding.encode(piece, disallowed_special=())),
                )
            )
    return chunks
