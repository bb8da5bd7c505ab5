"""Customer-service features end to end over HTTP on a real uvicorn server, on SQLite and on a real
PostgreSQL: conversations and follow-ups, curated FAQ answers, handoff with its webhook, feedback, admin stats,
and the `rag report` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from rag.api import create_app
from rag.chat.handoff import WebhookNotifier
from rag.conversations import SQLAlchemyConversationStore
from rag.core.settings import Settings
from rag.store.knowledge_base import KnowledgeBase
from tests.postgres import create_database
from tests.rag.api.serving import extractive_services
from tests.receivers import webhook_receiver
from tests.servers import uvicorn_in_thread

pytestmark = pytest.mark.integration
ADMIN_KEY = "s3cret-admin-key"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'conversations.sqlite'}"
    return create_database(request.getfixturevalue("postgres_server"))


@pytest.fixture
def bot(database_url, demo_kb, embedder):
    """(base URL, store, webhook receiver) of a bot with a conversation store and a handoff webhook."""
    settings = Settings(kb_dir=demo_kb, _env_file=None, database_url=database_url, admin_api_key=ADMIN_KEY)
    store = SQLAlchemyConversationStore(database_url)
    with webhook_receiver(fail_first=1) as receiver, KnowledgeBase.open(demo_kb) as kb:
        notifier = WebhookNotifier(receiver.url, store, retries=3, backoff=0.05)
        services = extractive_services(settings, kb, embedder, store=store, on_handoff=notifier)
        with uvicorn_in_thread(create_app(settings, services=services)) as base:
            yield base, store, receiver, notifier
        notifier.close()
    store.close()


def ask(base: str, question: str, conversation_id: str | None = None) -> dict:
    payload = {"question": question} | ({"conversation_id": conversation_id} if conversation_id else {})
    r = httpx.post(f"{base}/chat", json=payload, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


SCRIPT = [  # (question, something the answer must contain or None)
    ("How long does standard shipping take in the US?", "3-5 business days"),
    ("What about express?", "1-2 business days"),
    ("Do you ship to Canada?", None),
    ("How much is it there?", None),
    ("Can I return an item after 30 days?", None),
    ("And what if it is defective?", None),
    ("How do I reset my password?", None),
    ("How long is that link valid?", None),
    ("What payment methods do you accept?", None),
    ("Do gift cards expire?", None),
    ("寄到中国的运费是多少？", None),
    ("那顺丰呢？", None),
    ("退货运费谁承担？", None),
    ("那换货呢？", None),
    ("我可以注销账户吗？", None),
    ("注销后数据保存多久？", None),
    ("How long is the warranty on electronics?", None),
    ("And on backpacks?", None),
    ("Who won the world cup in 1998?", None),
    ("Can I talk to a human?", None),
]


def test_twenty_turn_conversation_keeps_context_and_stores_every_turn(bot):
    base, store, receiver, notifier = bot
    conversation = None
    replies = []
    for question, expected in SCRIPT:
        body = ask(base, question, conversation)
        conversation = conversation or body["conversation_id"]
        assert body["conversation_id"] == conversation
        if expected:
            assert expected in body["answer"], (question, body["answer"])
        replies.append(body)
    turns = store.history(conversation, limit=50)
    assert [t.question for t in turns] == [q for q, _ in SCRIPT]
    assert [t.message_id for t in turns] == [r["message_id"] for r in replies]
    by_question = {t.question: t for t in turns}
    # follow-ups were made standalone before retrieval, standalone questions were left alone
    assert "standard shipping" in by_question["What about express?"].rewritten_query
    assert "运费" in by_question["那顺丰呢？"].rewritten_query
    assert by_question["How do I reset my password?"].rewritten_query is None
    # the reply says so too
    assert [r["rewritten_query"] for r in replies] == [t.rewritten_query for t in turns]
    assert all(t.retrieved for t in turns if t.decline_reason != "customer_request")
    assert by_question["Can I talk to a human?"].handoff and by_question["Who won the world cup in 1998?"].handoff
    # both handoffs reached the webhook (the first attempt failed and was retried), with the transcript so far
    assert notifier.wait(20)
    reasons = [p["reason"] for p in receiver.received]
    assert reasons == ["low_retrieval_score", "customer_request"]
    last = receiver.received[-1]
    assert last["conversation_id"] == conversation and len(last["transcript"]) == 20
    assert last["transcript"][0]["question"] == SCRIPT[0][0]


def test_curated_faq_entry_is_returned_verbatim(bot):
    base, *_ = bot
    body = ask(base, "Can I pick up my order from your warehouse?")
    assert body["generator"] == "faq"
    assert body["answer"].startswith("No. Pinecrest Supply Co. is an online-only store")
    assert [(c["source"], c["row"]) for c in body["citations"]] == [("data/faq_en.csv", 5)]


def test_feedback_is_stored_and_unknown_messages_are_404(bot):
    base, store, *_ = bot
    body = ask(base, "Do gift cards expire?")
    r = httpx.post(
        f"{base}/feedback", json={"message_id": body["message_id"], "rating": "up", "comment": "great"}, timeout=30
    )
    assert r.status_code == 200 and r.json()["rating"] == "up"
    r = httpx.post(f"{base}/feedback", json={"message_id": body["message_id"], "rating": "down"}, timeout=30)
    assert r.status_code == 200
    assert [(f.message_id, f.rating) for f in store.feedback()] == [(body["message_id"], "down")]
    r = httpx.post(f"{base}/feedback", json={"message_id": "nope", "rating": "up"}, timeout=30)
    assert r.status_code == 404 and r.json()["error"]["type"] == "message_not_found"
    r = httpx.post(f"{base}/feedback", json={"message_id": body["message_id"], "rating": "meh"}, timeout=30)
    assert r.status_code == 422 and "rating" in r.json()["error"]["message"]


def test_admin_stats_need_the_key_and_group_unanswered_questions(bot):
    base, *_ = bot
    for q in (
        "Do you sell fishing licenses?",
        "Can I buy a fishing license from you?",
        "Do you sell fishing licences?",
        "Do gift cards expire?",
        "Who is the president of France?",
    ):
        ask(base, q)
    assert httpx.get(f"{base}/admin/stats", timeout=30).status_code == 401
    assert httpx.get(f"{base}/admin/stats", headers={"X-API-Key": "wrong"}, timeout=30).status_code == 401
    r = httpx.get(f"{base}/admin/stats", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=60)
    assert r.status_code == 200, r.text
    stats = r.json()
    assert stats["questions"] == 5 and stats["conversations"] == 5
    assert stats["answered_rate"] == pytest.approx(0.2) and stats["handoff_rate"] == pytest.approx(0.8)
    assert stats["latency_p50_ms"] > 0
    top = stats["top_unanswered"][0]
    assert top["count"] == 3 and "fishing" in top["question"].lower()
    r = httpx.get(f"{base}/admin/stats", params={"since": "not-a-date"}, headers={"X-API-Key": ADMIN_KEY}, timeout=30)
    assert r.status_code == 422


def test_admin_is_disabled_without_a_key(demo_kb, embedder, tmp_path):
    settings = Settings(kb_dir=demo_kb, _env_file=None, database_url=f"sqlite:///{tmp_path / 'c.sqlite'}")
    with KnowledgeBase.open(demo_kb) as kb:
        services = extractive_services(settings, kb, embedder)
        with uvicorn_in_thread(create_app(settings, services=services)) as base:
            r = httpx.get(f"{base}/admin/stats", headers={"X-API-Key": "anything"}, timeout=30)
    assert r.status_code == 403 and "RAG_ADMIN_API_KEY" in r.json()["error"]["message"]


def test_rag_report_writes_an_offline_html_report(tmp_path, demo_kb):
    database = f"sqlite:///{tmp_path / 'conversations.sqlite'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")} | {
        "RAG_DATABASE_URL": database,
        "RAG_KB_DIR": str(demo_kb),
    }
    rag = str(Path(sys.executable).with_name("rag"))
    for q in ("Do you sell fishing licenses?", "Can I buy a fishing license here?", "Do gift cards expire?"):
        assert subprocess.run([rag, "ask", q], env=env, capture_output=True, timeout=120).returncode == 0
    out = subprocess.run(
        [rag, "report", "--html", str(tmp_path / "report.html")], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "questions 3" in out.stdout and "fishing" in out.stdout
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 3 and "http://" not in page and "https://" not in page
    assert "fishing" in page.lower()
