"""The decline's `meaning` evidence (the best question-to-sentence similarity), with the real embedding model,
and the sentence-vector cache it shares with the extractive generator."""

from __future__ import annotations

import numpy as np
import pytest

from rag.chat.decline import WEIGHTS, Evidence, evidence, support_score
from rag.core.types import Chunk, Passage
from rag.store.embedders import CachedEmbedder


def passage(text: str, score: float = 0.6) -> Passage:
    return Passage(Chunk(doc_id="d", source="x.md", text=text, position=0), score, dense_score=score)


SHIPPING = passage(
    "Standard shipping costs $5.95 and arrives in 3-5 business days. Orders ship from our Reno warehouse. "
    "Express shipping costs $12.95."
)


@pytest.mark.integration
def test_meaning_is_the_best_sentence_similarity_in_covered_languages_only(embedder):
    asked = "How much does standard shipping cost?"
    found = evidence(asked, [SHIPPING], True, embedder)
    vectors = embedder.embed([asked, "Standard shipping costs $5.95 and arrives in 3-5 business days."])
    assert found.meaning == pytest.approx(float(vectors[1] @ vectors[0]), abs=1e-5)
    assert evidence(asked, [SHIPPING], True).meaning == 0.6  # no embedder: the passage's own similarity
    assert evidence(asked, [SHIPPING], False, embedder).meaning == 0.0  # a language the model does not cover
    assert len(WEIGHTS["en"]) == len(WEIGHTS["zh"]) == 1 + len(Evidence.names())


@pytest.mark.integration
def test_a_passage_on_the_topic_that_does_not_say_it_supports_less_than_one_that_does(embedder):
    weighs = "How much does the two-person tent weigh?"
    tents = passage(
        "Tents are covered by a 5-year warranty. Tents can be returned within 30 days if unused. "
        "Set up a tent indoors to check its size."
    )
    said = passage("The two-person tent weighs 2.1 kg with its poles and pegs.")
    assert evidence(weighs, [said], True, embedder).meaning > evidence(weighs, [tents], True, embedder).meaning
    assert support_score(weighs, [said], True, embedder) > support_score(weighs, [tents], True, embedder)


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
