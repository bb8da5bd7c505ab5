"""How alike two texts are, by the words they share (pure functions)."""

from __future__ import annotations

from collections.abc import Set as AbstractSet


def jaccard(a: AbstractSet[str], b: AbstractSet[str]) -> float:
    """Shared words over all words; 0 when either side is empty.

    >>> jaccard({"free", "shipping"}, {"free", "returns"})
    0.3333333333333333
    >>> jaccard(set(), {"x"})
    0.0
    """
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)
