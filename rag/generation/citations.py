"""Citation markers: `[n]` in an answer -> structured citations of the passages it used (pure functions).

Accepted forms: [1], [1, 2], [1][2], 【1】, [1-3]. Markers pointing at passages that do not exist are removed
from the text; only cited passages become citations, in order of first mention.
"""

from __future__ import annotations

import re
from typing import Sequence

from rag.core.types import Citation, Passage

_MARKER = re.compile(r"\s?[\[【]\s*(\d{1,3}(?:\s*(?:[,，、;]|-|–)\s*\d{1,3})*)\s*[\]】]")
_SNIPPET_CHARS = 240


def _numbers(group: str) -> list[int]:
    numbers: list[int] = []
    for part in re.split(r"\s*[,，、;]\s*", group.strip()):
        bounds = re.split(r"\s*[-–]\s*", part)
        if len(bounds) == 2 and bounds[0].isdigit() and bounds[1].isdigit():
            lo, hi = int(bounds[0]), int(bounds[1])
            numbers.extend(range(lo, hi + 1) if 0 < hi - lo < 20 else [lo, hi])
        elif part.isdigit():
            numbers.append(int(part))
    return numbers


def snippet(text: str, limit: int = _SNIPPET_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def make_citation(marker: int, passage: Passage) -> Citation:
    c = passage.chunk
    return Citation(
        marker=marker, chunk_id=c.id, source=c.source, title=c.title, heading=" > ".join(c.heading_path),
        snippet=snippet(c.text), score=round(passage.score, 6), url=c.url, page=c.page, row=c.row,
    )


def parse_citations(answer: str, passages: Sequence[Passage]) -> tuple[str, list[Citation]]:
    """(answer with invalid markers removed and valid ones normalised to [n], citations in order of first use)."""
    cited: dict[int, None] = {}

    def replace(match: re.Match) -> str:
        valid = [n for n in _numbers(match.group(1)) if 1 <= n <= len(passages)]
        for n in valid:
            cited.setdefault(n, None)
        lead = " " if match.group(0)[0].isspace() else ""
        return (lead + "".join(f"[{n}]" for n in dict.fromkeys(valid))) if valid else ""

    text = _MARKER.sub(replace, answer)
    # a dropped marker may have taken the space before a kept one: "days [0][1]" -> "days [1]"
    text = re.sub(r"(?<=[A-Za-z0-9%)])\[(\d+)\]", r" [\1]", text)
    text = re.sub(r"[ \t]+([.,;:!?。，；：！？])", r"\1", text).strip()
    return text, [make_citation(n, passages[n - 1]) for n in cited]
