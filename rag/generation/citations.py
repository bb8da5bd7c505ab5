"""Citation markers: `[n]` in an answer -> structured citations of the passages it used (pure functions).

Accepted forms: [1], [1, 2], [1][2], 【1】, [1-3]. Markers pointing at passages that do not exist are removed
from the text; only cited passages become citations, in order of first mention.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.core.types import Citation, Passage
from rag.text.readable import cut_at_word, flat_text, heading_trail

_MARKER = re.compile(r"\s?[\[【]\s*(\d{1,3}(?:\s*(?:[,，、;]|-|–)\s*\d{1,3})*)\s*[\]】]")
_SNIPPET_CHARS = 240
_URL_IGNORED = re.compile(r"[\t\n\r]")  # removed anywhere by URL parsers (WHATWG URL standard)
_URL_TRIMMED = "".join(map(chr, range(0x21)))  # C0 controls and space, trimmed from both ends by URL parsers
_URL_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")


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
    """The start of a passage as a customer reads it, on one line: table rows as sentences, no Markdown,
    cut at a word boundary.

    >>> snippet("| Method | Cost |\\n|---|---|\\n| Express | **$12.95** |\\n\\n- Ships in 1-2 days")
    'Express — Cost: $12.95. Ships in 1-2 days.'
    >>> snippet("Returns are free within thirty days of delivery.", limit=30)
    'Returns are free within…'
    """
    return cut_at_word(flat_text(text), limit)


def safe_url(url: str | None) -> str | None:
    """`url` if it is an http(s) or relative link, else None: a document's `javascript:` or `data:` URL must
    never become a clickable citation. Read as a browser reads it (tabs and line breaks inside are ignored,
    control characters and spaces around it trimmed), so `java\\tscript:` is caught too.

    >>> safe_url("https://example.com/a"), safe_url("/help/returns"), safe_url("faq.html#gift-cards")
    ('https://example.com/a', '/help/returns', 'faq.html#gift-cards')
    >>> safe_url("javascript:alert(1)"), safe_url(" JaVa\\tScRiPt:alert(1)"), safe_url("data:text/html,x")
    (None, None, None)
    """
    if not url:
        return None
    cleaned = _URL_IGNORED.sub("", url).strip(_URL_TRIMMED)
    scheme = _URL_SCHEME.match(cleaned)
    if scheme and scheme.group(1).lower() not in ("http", "https"):
        return None
    return cleaned or None


def make_citation(marker: int, passage: Passage) -> Citation:
    c = passage.chunk
    return Citation(
        marker=marker,
        chunk_id=c.id,
        source=c.source,
        title=c.title,
        heading=heading_trail(c.title, c.heading_path),
        snippet=snippet(c.text),
        score=round(passage.score, 6),
        url=safe_url(c.url),
        page=c.page,
        row=c.row,
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
