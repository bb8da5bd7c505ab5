"""The conversation store's contract, run against both backends: SQLite in a temporary folder and a real
PostgreSQL server (tests/postgres.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from rag.conversations import ConversationStore, Feedback, SQLAlchemyConversationStore, StoredMessage
from rag.core.errors import ConfigurationError, MessageNotFound
from tests.postgres import create_database
from tests.servers import free_port

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'conversations.db'}"  # the folder does not exist yet
    return create_database(request.getfixturevalue("postgres_server"))


@pytest.fixture
def store(store_url) -> Iterator[SQLAlchemyConversationStore]:
    s = SQLAlchemyConversationStore(store_url)
    yield s
    s.close()


def message(message_id: str, conversation_id: str = "c1", at: datetime = T0, **fields) -> StoredMessage:
    values = dict(
        question="How do I reset my password?",
        rewritten_query=None,
        retrieved=[(3, 0.812345), (7, 0.5)],
        answer="Open Settings > Security [1].",
        citations=[{"marker": 1, "chunk_id": 3, "source": "faq.md"}],
        answered=True,
        handoff=False,
        generator="extractive",
        latency_ms=12.5,
        prompt_tokens=0,
        completion_tokens=0,
        language="en",
        decline_reason=None,
    )
    return StoredMessage(message_id=message_id, conversation_id=conversation_id, created_at=at, **(values | fields))


def test_round_trip_of_every_field(store, store_url):
    assert isinstance(store, ConversationStore)
    original = StoredMessage(
        message_id="m-1",
        conversation_id="conv:1",
        created_at=datetime(2026, 3, 1, 17, 30, 15, 654321, tzinfo=timezone(timedelta(hours=8))),
        question="and for admins?",
        rewritten_query="How do admins reset a password?",
        retrieved=[(42, 0.7312345678901234), (9, -0.25), (10, 0.0)],
        answer="I'm sorry, I couldn't find that.",
        answered=False,
        handoff=True,
        citations=[
            {
                "marker": 1,
                "chunk_id": 42,
                "source": "a.pdf",
                "title": "A",
                "heading": "Intro",
                "snippet": "...",
                "score": 0.73,
                "url": None,
                "page": 3,
                "row": None,
            }
        ],
        generator="openai",
        latency_ms=1234.56,
        prompt_tokens=812,
        completion_tokens=64,
        language="en",
        decline_reason="low_retrieval_score",
    )
    store.add_message(original)
    got = store.get_message("m-1")
    assert got == original
    assert got.created_at.tzinfo == UTC and got.created_at.hour == 9
    assert all(type(c) is int and type(s) is float for c, s in got.retrieved)
    assert store.get_message("no-such-id") is None

    store.close()  # reopening finds the tables and the data
    with SQLAlchemyConversationStore(store_url) as reopened:
        assert reopened.get_message("m-1") == original


def test_knowledge_base_and_customer_round_trip(store):
    assert message("m0").kb_id == "" and message("m0").customer_id is None  # old constructors still work
    turn = message("m1", kb_id="售后-kb", customer_id="cust 42 / 张三")
    store.add_message(turn)
    store.add_message(message("m2", at=T0 + timedelta(seconds=1)))
    assert store.get_message("m1") == turn
    assert store.history("c1") == [turn, message("m2", at=T0 + timedelta(seconds=1))]
    assert store.history("c1", kb_id="售后-kb") == [turn]
    assert store.history("c1", 1, "") == [message("m2", at=T0 + timedelta(seconds=1))]


def test_chinese_text(store):
    zh = message(
        "m-zh",
        "会话",
        question="如何重置密码？",
        answer="请打开“设置”>“安全”[1]。😀",
        language="zh",
        rewritten_query="管理员如何重置密码",
        citations=[{"title": "常见问题", "snippet": "重置密码：设置"}],
    )
    store.add_message(zh)
    assert store.get_message("m-zh") == zh
    assert store.history("会话") == [zh]
    assert store.add_feedback("m-zh", "down", "答案不完整").comment == "答案不完整"
    assert store.feedback()[0].comment == "答案不完整"


def test_history_is_the_last_messages_oldest_first(store):
    # Stored out of time order, with another conversation interleaved.
    for i in [3, 0, 4, 1, 2]:
        store.add_message(message(f"a{i}", "a", T0 + timedelta(seconds=i)))
        store.add_message(message(f"b{i}", "b", T0 + timedelta(seconds=i, microseconds=1)))
    assert [m.message_id for m in store.history("a")] == ["a0", "a1", "a2", "a3", "a4"]
    assert [m.message_id for m in store.history("a", limit=3)] == ["a2", "a3", "a4"]
    assert [m.message_id for m in store.history("b", limit=1)] == ["b4"]
    assert store.history("a", limit=0) == []
    assert store.history("nobody") == []


def test_history_keeps_insertion_order_for_equal_times(store):
    for i in range(3):
        store.add_message(message(f"m{i}", at=T0))
    assert [m.message_id for m in store.history("c1")] == ["m0", "m1", "m2"]
    assert [m.message_id for m in store.history("c1", limit=2)] == ["m1", "m2"]


def test_duplicate_message_id_is_refused(store):
    store.add_message(message("m1"))
    with pytest.raises(ValueError, match="already stored"):
        store.add_message(message("m1", question="again"))
    assert store.get_message("m1").question == "How do I reset my password?"


def test_naive_datetimes_are_refused(store):
    with pytest.raises(ValueError, match="time zone"):
        store.add_message(message("m1", at=T0.replace(tzinfo=None)))
    with pytest.raises(ValueError, match="time zone"):
        store.messages(since=T0.replace(tzinfo=None))


def test_feedback_replaces_the_earlier_rating(store):
    store.add_message(message("m1"))
    store.add_message(message("m2"))
    first = store.add_feedback("m1", "up")
    assert first.rating == "up" and first.comment is None and first.created_at.tzinfo == UTC
    second = store.add_feedback("m1", "down", "It did not answer my question")
    assert store.feedback() == [second]
    assert second == Feedback("m1", "down", "It did not answer my question", second.created_at)
    assert second.created_at >= first.created_at

    other = store.add_feedback("m2", "up")
    assert store.feedback() == [second, other]
    assert store.feedback(since=other.created_at) == [other]


def test_feedback_on_an_unknown_message(store):
    with pytest.raises(MessageNotFound, match="'nope'.*message_id returned by /chat") as caught:
        store.add_feedback("nope", "up")
    assert caught.value.message_id == "nope"
    assert store.feedback() == []


@pytest.mark.parametrize("rating", ["UP", "neutral", "", None])
def test_feedback_with_a_bad_rating(store, rating):
    store.add_message(message("m1"))
    with pytest.raises(ValueError, match="'up' or 'down'"):
        store.add_feedback("m1", rating)
    assert store.feedback() == []


def test_messages_since_and_conversation_count(store):
    assert store.messages() == [] and store.conversation_count() == 0
    stored = [message(f"m{i}", f"c{i % 3}", T0 + timedelta(minutes=i)) for i in range(6)]
    for m in reversed(stored):
        store.add_message(m)
    assert store.messages() == stored  # oldest first
    assert store.messages(since=T0 + timedelta(minutes=4)) == stored[4:]  # inclusive
    assert store.messages(since=T0 + timedelta(minutes=4, microseconds=1)) == stored[5:]
    assert store.messages(since=T0 + timedelta(days=1)) == []
    # the same instant in another time zone
    assert store.messages(since=(T0 + timedelta(minutes=4)).astimezone(timezone(timedelta(hours=-5)))) == stored[4:]
    assert store.conversation_count() == 3
    assert store.conversation_count(since=T0 + timedelta(minutes=4)) == 2  # c1 (m4) and c2 (m5)
    assert store.conversation_count(since=T0 + timedelta(days=1)) == 0


def test_concurrent_writers_and_readers(store):
    threads_n, per_thread = 6, 15
    errors: list[BaseException] = []
    start = threading.Barrier(threads_n)
    written = threading.Barrier(threads_n)  # t0-0 exists before anyone rates it, however the threads are scheduled

    def work(t: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                store.add_message(message(f"t{t}-{i}", f"conv-{t}", T0 + timedelta(seconds=i)))
                assert store.history(f"conv-{t}", limit=2)[-1].message_id == f"t{t}-{i}"
            written.wait()
            store.add_feedback("t0-0", "up" if t % 2 else "down", f"thread {t}")  # all on one message
        except BaseException as exc:  # reported below: an exception in a thread would otherwise be lost
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(store.messages()) == threads_n * per_thread
    assert store.conversation_count() == threads_n
    for t in range(threads_n):
        assert [m.message_id for m in store.history(f"conv-{t}", limit=per_thread)] == [
            f"t{t}-{i}" for i in range(per_thread)
        ]
    [only] = store.feedback()
    assert only.message_id == "t0-0"


@pytest.mark.parametrize(
    "url, says",
    [
        ("not a url", "is not a database URL"),
        ("mysql://user:secret@localhost/db", "supports SQLite and PostgreSQL"),
        ("postgresql+nodriver://user:secret@localhost/db", "driver is not available"),
    ],
)
def test_bad_urls_say_what_to_set(url, says):
    with pytest.raises(ConfigurationError, match=says) as caught:
        SQLAlchemyConversationStore(url)
    assert "RAG_DATABASE_URL" in str(caught.value)
    assert "secret" not in str(caught.value)


def test_unreachable_server_says_what_to_check():
    url = f"postgresql://user:secret@127.0.0.1:{free_port()}/db"  # plain postgresql:// means psycopg 3
    with pytest.raises(ConfigurationError, match="RAG_DATABASE_URL.*check that the server is running") as caught:
        SQLAlchemyConversationStore(url)
    assert "secret" not in str(caught.value) and "postgresql+psycopg://user:***@127.0.0.1" in str(caught.value)
