from __future__ import annotations

import pytest

from rag.core.types import Chunk, Passage
from rag.generation.citations import parse_citations

pytestmark = pytest.mark.unit


def passages(n: int) -> list[Passage]:
    return [
        Passage(
            Chunk(
                doc_id=f"d{i}",
                source=f"docs/{i}.md",
                text=f"Text of passage {i}. " * 30,
                position=0,
                title=f"T{i}",
                heading_path=("H", f"S{i}"),
                id=100 + i,
            ),
            0.9 - i / 10,
        )
        for i in range(1, n + 1)
    ]


def test_markers_become_citations_in_order_of_first_use():
    text, cites = parse_citations("Shipping is free [2]. Returns take 30 days [1][2].", passages(3))
    assert text == "Shipping is free [2]. Returns take 30 days [1][2]."
    assert [c.marker for c in cites] == [2, 1]
    first = cites[0]
    assert (first.chunk_id, first.source, first.title, first.heading) == (102, "docs/2.md", "T2", "H > S2")
    assert first.snippet.startswith("Text of passage 2.") and len(first.snippet) <= 240


def test_markers_pointing_nowhere_are_dropped():
    text, cites = parse_citations("Free shipping [7]. Thirty days [0][1]. Also [1, 9].", passages(2))
    assert text == "Free shipping. Thirty days [1]. Also [1]."
    assert [c.marker for c in cites] == [1]


def test_grouped_ranges_and_fullwidth_markers():
    text, cites = parse_citations("包邮【2】。三十天[1-3]。Both [1，2].", passages(3))
    assert text == "包邮[2]。三十天[1][2][3]。Both [1][2]."
    assert sorted(c.marker for c in cites) == [1, 2, 3]


def test_no_markers_no_citations():
    assert parse_citations("I don't know.", passages(2)) == ("I don't know.", [])
