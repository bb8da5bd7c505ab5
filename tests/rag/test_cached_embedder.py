"""The sentence-vector cache the chat path's extractive generator uses (pure logic: a counting fake embedder)."""

from __future__ import annotations

import numpy as np
import pytest

from rag.store.embedders import CachedEmbedder


class Counting:
    name = "counting"
    dimension = 2

    def __init__(self):
        self.asked: list[list[str]] = []

    def embed(self, texts):
        self.asked.append(list(texts))
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)


@pytest.mark.unit
def test_the_cache_embeds_each_text_once_keeps_order_and_forgets_the_least_recently_used():
    inner = Counting()
    cached = CachedEmbedder(inner, size=2)
    assert cached.embed(["a", "bb", "a"]).tolist() == [[1, 1], [2, 1], [1, 1]]
    assert inner.asked == [["a", "bb"]]
    cached.embed(["a"])  # "a" used last: "bb" is now the oldest
    cached.embed(["ccc"])
    cached.embed(["a", "bb"])
    assert inner.asked[1:] == [["ccc"], ["bb"]]
    assert cached.embed([]).shape == (0, 2)
    with pytest.raises(ValueError, match="size must be 0 or more"):
        CachedEmbedder(inner, size=-1)
