"""Follow-ups: which questions lean on earlier turns, and how they are made standalone (flat, never nested)."""

from __future__ import annotations

import csv
from itertools import groupby

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.chat.followups import PastQuestion, context_questions, needs_context, rewrite_heuristic
from rag.chat.intents import asks_for_human
from rag.chat.service import ChatService
from rag.core.settings import Settings
from rag.core.types import Chunk, Passage
from rag.generation.rewriting import rewrite_messages
from rag.text.tokenizer import get_encoding
from tests.paths import ROOT

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "question",
    [
        # a lead that continues the last turn, or a fragment
        "What about express?",
        "and express?",
        "what about Canada?",
        "how about for gift cards",
        "same for returns?",
        "Is it the same for Canada?",
        "and in Chinese stores?",
        "And for Canada?",
        "For Canada?",
        "And how long until I get my money back?",
        # a pronoun or demonstrative with nothing in the question to stand for
        "How much is it?",
        "Does it come in blue?",
        "Can I return it?",
        "What's the warranty on it?",
        "Does it fit in the trunk?",
        "Can I return it if it's broken?",
        "How long does it take?",
        "How long does it take for it to arrive?",  # the second "it" stands for something
        "How long is that link valid?",
        "Does that include tax?",
        "Do you have a cheaper one?",
        "this one",
        "How much is it there?",
        "Do you ship there?",
        # nothing of its own to search for
        "How much?",
        "Why?",
        # Chinese
        "那退货呢？",
        "那换货呢？",
        "顺丰呢？",
        "寄到加拿大呢？",
        "还有呢",
        "那个多少钱",
        "这个能退吗",
        "它防水吗？",
        "还有别的颜色吗",
        "退货也一样吗？",
        "多少钱？",
    ],
)
def test_follow_ups_are_recognised(question):
    assert needs_context(question)


@pytest.mark.parametrize(
    "question",
    [
        # short, but with words of their own
        "Do gift cards expire?",
        "restocking fee?",
        "Express?",
        "Backpack warranty?",
        "能开发票吗？",
        "背包保修几年？",
        # "there", "it", "that", "one", "same" that point at nothing earlier
        "Is there a restocking fee?",
        "Are there any fees?",
        "Is it free to return?",
        "Is it possible to change my address?",
        "How long does it take to get a refund?",
        "How much does it cost to ship to Hawaii?",
        "Is it true that you price match?",
        "Can I return an item that I bought on sale?",
        "Can I use more than one coupon?",
        "Do you offer same day delivery?",
        "Do you have a sale this weekend?",
        # an "it" whose thing the question names itself
        "Can I return it if I opened the box?",
        "If my order is damaged, can I return it?",
        "My tent arrived torn, can I return it?",
        "Can I get an invoice with my company name on it?",
        # full questions
        "What if my package is lost?",
        "In which countries do you sell?",
        "At checkout, can I use two coupons?",
        "How long does standard shipping take to Canada?",
        "Can I return a tent I set up once at home?",
        "Which payment methods do you accept for orders?",
        "退货政策是什么？我想了解一下流程",
        "为什么还没发货呢？",
        "这个月有活动吗",
    ],
)
def test_standalone_questions_are_left_alone(question):
    assert not needs_context(question)
    assert rewrite_heuristic(question, [PastQuestion("How long does shipping take?")]) == question


def test_the_scripted_conversations_follow_ups():
    """tests/fixtures/scripted_conversations.tsv: only the questions that show it lean on the turn before.
    ("How long is the link valid?" reads as standalone: the service tries the conversation's context only
    if retrieval alone does not support it.)"""
    with open(ROOT / "tests" / "fixtures" / "scripted_conversations.tsv", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    leaning = {q for _, q in rows if needs_context(q)}
    assert leaning == {"What about express?", "And how long until I get my money back?", "那顺丰呢？", "那换货呢？"}
    for _, turns in groupby(rows, key=lambda row: row[0]):
        assert not needs_context(next(turns)[1])  # a conversation opens with a standalone question


def test_heuristic_carries_the_latest_standalone_question():
    assert (
        rewrite_heuristic(
            "What about express?",
            [PastQuestion("Do you ship to Canada?"), PastQuestion("How long does shipping take?")],
        )
        == "What about express? (How long does shipping take?)"
    )
    assert rewrite_heuristic("那换货呢？", [PastQuestion("退货运费谁出？")]) == "那换货呢？ (退货运费谁出？)"
    assert rewrite_heuristic("What about express?", []) == "What about express?"
    assert rewrite_heuristic("How long is the link valid?", [PastQuestion("How do I reset my password?")]) == (
        "How long is the link valid?"
    )
    assert rewrite_heuristic("How long is the link valid?", [PastQuestion("How do I reset my password?")], True) == (
        "How long is the link valid? (How do I reset my password?)"
    )


def test_a_follow_up_of_a_follow_up_gets_both_but_no_more():
    past = [
        PastQuestion("Do gift cards expire?"),
        PastQuestion("How long does shipping take?"),
        PastQuestion("What about express?", follow_up=True),
    ]
    assert rewrite_heuristic("And to Canada?", past) == (
        "And to Canada? (How long does shipping take? What about express?)"
    )
    # the standalone question is older than the turns at hand: the last question alone
    assert context_questions([PastQuestion("And to Canada?", True)]) == ["And to Canada?"]


def test_context_is_bounded():
    past = [PastQuestion("shipping " * 200)]
    assert len(rewrite_heuristic("What about express?", past)) < len("What about express?") + 210


# ---- the chat service: the conversation from the issue, end to end with a stored conversation ---------------
class EchoRetriever:
    """Finds one passage that is the query itself (so every query is supported) and records the queries."""

    def __init__(self):
        self.queries: list[str] = []

    def retrieve(self, question, k=5, filters=None):
        self.queries.append(question)
        chunk = Chunk(doc_id="d", source="d.md", text=question, position=0, title=question, id=1)
        return [Passage(chunk, 0.95, dense_score=0.95, lexical_score=10.0)]


class OneLiner:
    name = "one-liner"
    needs_prompt = False

    def stream(self, request):
        yield "Here is the answer [1]."


@pytest.fixture
def chat(tmp_path):
    from rag.conversations import SQLAlchemyConversationStore

    store = SQLAlchemyConversationStore(f"sqlite:///{tmp_path / 'c.sqlite'}")
    # every retrieval supports an answer: what is tested here is only which query retrieval gets
    config = Settings(_env_file=None, min_score=0.0, min_score_zh=0.0)
    yield ChatService(config, EchoRetriever(), OneLiner(), get_encoding(), store=store)
    store.close()


def test_new_topics_start_fresh_in_one_conversation(chat):
    questions = [
        "Do gift cards expire?",
        "Is there a restocking fee?",
        "能开发票吗？",
        "Can I return it if I opened the box?",
    ]
    answers = [chat.answer(q, conversation_id="c") for q in questions]
    assert [a.rewritten_query for a in answers] == [None, None, None, None]
    assert all("gift" not in query for query in chat.retriever.queries[1:])


def test_classic_follow_ups_are_still_rewritten(chat):
    chat.answer("How long does shipping take?", conversation_id="c")
    assert chat.answer("What about express?", conversation_id="c").rewritten_query == (
        "What about express? (How long does shipping take?)"
    )
    assert chat.answer("And to Canada?", conversation_id="c").rewritten_query == (
        "And to Canada? (How long does shipping take? What about express?)"
    )
    chat.answer("退货运费谁出？", conversation_id="c")
    assert chat.answer("那换货呢？", conversation_id="c").rewritten_query == "那换货呢？ (退货运费谁出？)"
    # a stateless client's history is read the same way
    history = [("How long does shipping take?", "3-5 days."), ("What about express?", "1-2 days.")]
    assert chat.answer("And to Canada?", history=history).rewritten_query == (
        "And to Canada? (How long does shipping take? What about express?)"
    )


def test_the_model_rewriter_is_asked_only_for_follow_ups(chat):
    asked = []

    class Rewriter:
        def rewrite(self, question, turns):
            asked.append(question)
            return f"{question} [rewritten]"

    chat.rewriter = Rewriter()
    chat.answer("Do gift cards expire?", conversation_id="c")
    chat.answer("Is there a restocking fee?", conversation_id="c")
    assert chat.answer("What about for exchanges?", conversation_id="c").rewritten_query == (
        "What about for exchanges? [rewritten]"
    )
    assert asked == ["What about for exchanges?"]


_STANDALONE = ["Do gift cards expire?", "Is there a restocking fee?", "能开发票吗？", "How do I reset my password?"]
_FOLLOW_UPS = ["What about express?", "And for Canada?", "那换货呢？", "Does it come in blue?", "How much is that?"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(_STANDALONE + _FOLLOW_UPS), min_size=1, max_size=30))
def test_rewrites_never_nest(conversation):
    """Played as the service plays it (a rewritten turn was a follow-up): every rewrite is the question followed
    by at most two earlier questions verbatim, however long the conversation."""
    past: list[PastQuestion] = []
    for question in conversation:
        query = rewrite_heuristic(question, past[-6:])
        if query != question:
            context = query.removeprefix(question + " (").removesuffix(")")
            earlier = {p.text for p in past}
            assert context in earlier or any(context == f"{a} {b}" for a in earlier for b in earlier), query
            assert len(query) <= len(question) + 2 * 200 + 4
        past.append(PastQuestion(question, follow_up=query != question))


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
