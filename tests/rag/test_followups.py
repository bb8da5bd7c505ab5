from __future__ import annotations

import pytest

from rag.chat.followups import needs_context, rewrite_heuristic
from rag.chat.intents import asks_for_human
from rag.generation.rewriting import rewrite_messages

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "question",
    [
        "What about express?",
        "And for Canada?",
        "How much is it?",
        "那退货呢？",
        "那个多少钱",
        "还有别的颜色吗",
        "Does it come in blue?",
    ],
)
def test_follow_ups_are_recognised(question):
    assert needs_context(question)


@pytest.mark.parametrize(
    "question",
    [
        "How long does standard shipping take to Canada?",
        "Can I return a tent I set up once at home?",
        "退货政策是什么？我想了解一下流程",
        "Which payment methods do you accept for orders?",
    ],
)
def test_standalone_questions_are_left_alone(question):
    assert not needs_context(question)
    assert rewrite_heuristic(question, ["How long does shipping take?"]) == question


def test_heuristic_carries_the_previous_standalone_question():
    assert (
        rewrite_heuristic("What about express?", ["Do you ship to Canada?", "How long does shipping take?"])
        == "What about express? (How long does shipping take?)"
    )
    assert rewrite_heuristic("那退货呢？", ["运费怎么算？"]) == "那退货呢？ (运费怎么算？)"
    assert rewrite_heuristic("What about express?", []) == "What about express?"


def test_llm_rewrite_prompt_carries_the_last_turns():
    messages = rewrite_messages("What about express?", [(f"q{i}", f"a{i}") for i in range(6)])
    assert messages[0]["role"] == "system" and "standalone" in messages[0]["content"]
    user = messages[1]["content"]
    assert "Customer: q5" in user and "Customer: q1" not in user and user.endswith("Standalone question:")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Can I talk to a human?", True),
        ("I want to speak with a real person", True),
        ("agent", True),
        ("Please transfer me to a representative", True),
        ("转人工", True),
        ("我要人工客服", True),
        ("找真人客服", True),
        ("Is the tent waterproof?", False),
        ("What does a human-powered lantern cost?", False),
        ("人工费怎么算", False),
    ],
)
def test_requests_for_a_person(text, expected):
    assert asks_for_human(text) is expected


def test_unanswered_questions_group_by_meaning_in_english_and_by_words_in_chinese():
    from rag.conversations.analytics import group_questions

    class WordEmbedder:  # stands in for the model: questions sharing "fish" are alike
        name, dimension = "fake", 2

        def embed(self, texts):
            import numpy as np

            return np.array([[1.0, 0.0] if "fish" in t.lower() else [0.0, 1.0] for t in texts], dtype=np.float32)

    groups = group_questions(
        [
            "Do you sell fishing licenses?",
            "Can I buy a fishing license?",
            "Who won in 1998?",
            "你们卖钓鱼证吗？",
            "你们卖钓鱼证吗",
            "你们有实体店吗？",
        ],
        WordEmbedder(),
    )
    assert [g.count for g in groups] == [2, 2, 1, 1]
    assert "fishing" in groups[0].question and groups[1].question == "你们卖钓鱼证吗？"
    assert {g.question for g in groups[2:]} == {"Who won in 1998?", "你们有实体店吗？"}
