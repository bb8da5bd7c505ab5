"""An answer as a chat message or a mail: the answer's text (its [n] markers kept), then the sources it cites,
numbered the same, with a page, row or link where the passage has one. Plain text: every platform shows it.
A text longer than a platform takes is split into several messages (`split_message`)."""

from __future__ import annotations

from collections.abc import Callable

from rag.core.types import Answer, Citation

_SOURCES = {"en": "Sources:", "zh": "参考来源："}


def source_line(citation: Citation) -> str:
    """One cited source: "[1] Returns policy - Refunds (returns.md, page 2) https://..."

    >>> from rag.core.types import Citation
    >>> source_line(Citation(1, 7, "faq.csv", "FAQ", "FAQ", "", 0.9, row=12))
    '[1] FAQ (faq.csv, row 12)'
    """
    where = citation.source
    if citation.page is not None:
        where += f", page {citation.page}"
    elif citation.row is not None:
        where += f", row {citation.row}"
    line = f"[{citation.marker}] {citation.heading or citation.title} ({where})"
    return f"{line} {citation.url}" if citation.url else line


def reply_text(answer: Answer) -> str:
    """The message for `answer`: its text, and (when it cites any) a list of the sources.

        >>> from collections.abc import Callable

    from rag.core.types import Answer, Citation
        >>> cited = Answer("q", "Returns are free within 30 days [1].", True, False,
        ...                [Citation(1, 3, "returns.md", "Returns", "Returns", "", 0.8)], [], "extractive", "en")
        >>> print(reply_text(cited))
        Returns are free within 30 days [1].
        <BLANKLINE>
        Sources:
        [1] Returns (returns.md)
    """
    if not answer.citations:
        return answer.answer
    heading = _SOURCES.get(answer.language, _SOURCES["en"])
    return "\n".join([answer.answer, "", heading, *(source_line(c) for c in answer.citations)])


def utf16_len(text: str) -> int:
    """The length Telegram counts: UTF-16 code units (an emoji outside the BMP is two).

    >>> utf16_len("ok 👍")
    5
    """
    return len(text.encode("utf-16-le")) // 2


def split_message(text: str, limit: int, measure: Callable[[str], int] = len) -> list[str]:
    """`text` in parts of at most `limit` (as `measure` counts), cut at a line break or else a space where one
    is in the second half of a part, so a long answer arrives as several readable messages.

    >>> split_message("one two three", 8)
    ['one two', 'three']
    >>> split_message("", 10)
    ['']
    """
    parts: list[str] = []
    rest = text
    while measure(rest) > limit:
        cut = _longest_fit(rest, limit, measure)
        for separator in ("\n", " "):
            at = rest.rfind(separator, 0, cut)
            if at > cut // 2:
                cut = at
                break
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return [*parts, rest] if rest or not parts else parts


def _longest_fit(text: str, limit: int, measure: Callable[[str], int]) -> int:
    """The most leading characters of `text` that `measure` within `limit` (at least one)."""
    low, high = 1, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if measure(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return low
