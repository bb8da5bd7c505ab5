"""The extractive generator weighing sentences by meaning, with the real bundled embedding model."""

from __future__ import annotations

import pytest

from rag.generation.extractive import ExtractiveGenerator
from rag.store.embedders import CachedEmbedder
from tests.rag.test_extractive import p

pytestmark = pytest.mark.integration


class CountingEmbedder:
    """The real model, counting the texts it is asked to embed."""

    def __init__(self, model):
        self.model = model
        self.name = model.name
        self.dimension = model.dimension
        self.embedded: list[str] = []

    def embed(self, texts):
        self.embedded.extend(texts)
        return self.model.embed(texts)


SHIPPING = p(
    "Standard shipping costs $5.95 and arrives in 3-5 business days. "
    "It is free on orders of $50 or more, counted before sales tax."
)
BILLING = p("We charge your payment method only when the order ships. Your cart is saved for 30 days.", score=0.6)


def test_sentences_are_weighed_by_meaning_when_words_do_not_match(embedder):
    """The customer's words ("cart", "30", "charge") match the wrong sentence; the meaning matches the price."""
    question = "My cart is only about $30, how much will you charge me to ship it the normal way?"
    by_words = "".join(ExtractiveGenerator(max_sentences=1).compose(question, [SHIPPING, BILLING], "en"))
    by_meaning = "".join(
        ExtractiveGenerator(max_sentences=1, embedder=embedder).compose(question, [SHIPPING, BILLING], "en")
    )
    assert by_words == "Your cart is saved for 30 days. [2]"
    assert by_meaning == "Standard shipping costs $5.95 and arrives in 3-5 business days. [1]"


def test_sentence_vectors_are_kept_between_questions_and_other_languages_use_words_only(embedder):
    counting = CountingEmbedder(embedder)
    generator = ExtractiveGenerator(embedder=CachedEmbedder(counting))
    generator.compose("When is my card charged?", [SHIPPING, BILLING], "en")
    first = len(counting.embedded)
    assert first == 5  # the question and the four sentences
    generator.compose("When is my card charged?", [BILLING, SHIPPING], "en")
    assert len(counting.embedded) == first  # all known
    zh = p("订单发货时才会扣款。退款在检验后5至7个工作日内到账。")
    assert "发货时" in "".join(generator.compose("什么时候扣款？", [zh], "zh"))
    assert len(counting.embedded) == first  # the model does not cover Chinese: not asked


def test_a_follow_up_is_weighed_on_the_customers_own_words_and_on_its_rewrite(embedder):
    counting = CountingEmbedder(embedder)
    own = "and to ship it the normal way?"
    rewrite = f"{own} (My cart is only about $30, how much will you charge me?)"
    ExtractiveGenerator(embedder=counting).compose(rewrite, [SHIPPING, BILLING], "en", own)
    assert counting.embedded[:2] == [rewrite, own]
    counting.embedded.clear()
    ExtractiveGenerator(embedder=counting).compose(own, [SHIPPING, BILLING], "en", own)
    assert counting.embedded.count(own) == 1  # not rewritten: one wording


def test_a_server_embeds_a_question_once_for_curated_matching_retrieval_and_the_answer(embedder, tmp_path):
    from ingest.pipeline import ingest
    from rag.core.settings import Settings
    from rag.wiring import build_services

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "shipping.md").write_text(
        "# Shipping\n\nStandard shipping costs $5.95 and arrives in 3-5 business days. "
        "It is free on orders of $50 or more.\n",
        encoding="utf-8",
    )
    settings = Settings(_env_file=None, kb_dir=tmp_path / "kb")
    ingest([tmp_path / "docs"], settings.kb_dir, embedder, settings)
    counting = CountingEmbedder(embedder)
    services = build_services(settings, with_store=False, embedder=counting)
    try:
        question = "How much is standard shipping?"
        answer = services.chat.answer(question)
        assert answer.answered and "$5.95" in answer.answer
        assert counting.embedded.count(question) == 1
        sentences = len(counting.embedded)
        services.chat.answer(question)
        assert len(counting.embedded) == sentences  # asked again: every vector known
    finally:
        services.close()


def test_the_cache_size_is_a_setting_and_zero_keeps_nothing(embedder, tmp_path):
    from ingest.pipeline import ingest
    from rag.core.settings import Settings
    from rag.wiring import build_services

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "gift-cards.md").write_text("# Gift cards\n\nGift cards never expire.\n", encoding="utf-8")
    settings = Settings(_env_file=None, kb_dir=tmp_path / "kb", embedding_cache_size=0)
    ingest([tmp_path / "docs"], settings.kb_dir, embedder, settings)
    counting = CountingEmbedder(embedder)
    services = build_services(settings, with_store=False, embedder=counting)
    try:
        question = "Do gift cards expire?"
        services.chat.answer(question)
        once = counting.embedded.count(question)
        services.chat.answer(question)
        assert once >= 1 and counting.embedded.count(question) == 2 * once  # nothing kept between asks
    finally:
        services.close()
