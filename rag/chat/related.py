"""Related reading: documents among the retrieved passages that the answer did not cite but that are about as
relevant as what it did (pure function).

One entry per document, not per chunk: a long page retrieved three times is suggested once. A row of a table
(a curated FAQ entry) counts as a document of its own - each row answers its own question under its own
title, so "How fast is express shipping?" is worth suggesting beside a cited "How much does standard shipping
cost?" row of the same file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath

from rag.core.types import Citation, Passage, Related
from rag.generation.citations import safe_url

# Relative to the best passage's score: retrieval scores have no fixed scale (fused 0..1, cosine, BM25), but a
# document scoring well below the best one is about something else.
RELEVANCE_FLOOR = 0.75


def _key(passage: Passage) -> tuple[str, int | None]:
    """What counts as one document: the document, or one row of a table."""
    return passage.chunk.doc_id, passage.chunk.row


def _cited(passages: Sequence[Passage], citations: Sequence[Citation]) -> set[tuple[str, int | None]]:
    """The documents the answer cites (by chunk id; by source and row for a citation without one)."""
    ids = {c.chunk_id for c in citations if c.chunk_id is not None}
    loose = {(c.source, c.row) for c in citations if c.chunk_id is None}
    return {_key(p) for p in passages if p.chunk.id in ids or (p.chunk.source, p.chunk.row) in loose}


def _related(passage: Passage) -> Related:
    c = passage.chunk
    return Related(title=c.title or PurePosixPath(c.source).name, source=c.source, url=safe_url(c.url))


def related_documents(
    passages: Sequence[Passage], citations: Sequence[Citation], limit: int = 3, floor: float = RELEVANCE_FLOOR
) -> list[Related]:
    """Up to `limit` uncited documents among `passages` scoring at least `floor` x the best passage, best first.

    >>> from rag.core.types import Chunk
    >>> def p(doc, score, title, url=None, id=None):
    ...     return Passage(Chunk(doc_id=doc, source=doc, text="...", position=0, title=title, url=url, id=id), score)
    >>> found = related_documents(
    ...     [p("ship.md", 0.9, "Shipping", id=1), p("track.md", 0.8, "Tracking", "javascript:x"),
    ...      p("track.md", 0.78, "Tracking"), p("privacy.md", 0.3, "Privacy")],
    ...     [Citation(1, 1, "ship.md", "Shipping", "", "...", 0.9)])
    >>> [(r.title, r.url) for r in found]
    [('Tracking', None)]
    """
    if limit <= 0 or not passages:
        return []
    best = max(p.score for p in passages)
    if best <= 0:
        return []
    seen = _cited(passages, citations)
    found: list[Related] = []
    for passage in sorted(passages, key=lambda p: -p.score):
        entry = _related(passage)
        if passage.score < floor * best or _key(passage) in seen or entry in found:
            continue
        seen.add(_key(passage))
        found.append(entry)
        if len(found) == limit:
            break
    return found
