"""The conversation store's side of the channels: event ids answered once, platform threads mapped to
conversations, replies' platform ids linked to turns, the channel of each turn, and erasure of all of it - on
SQLite and a real PostgreSQL server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from rag.conversations import SQLAlchemyConversationStore
from rag.conversations.store import ChannelThread, ConversationQuery
from tests.postgres import create_database
from tests.rag.test_conversations import message

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path) -> Iterator[SQLAlchemyConversationStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'conversations.db'}"
    else:
        url = create_database(request.getfixturevalue("postgres_server"))
    s = SQLAlchemyConversationStore(url)
    yield s
    s.close()


def test_an_event_id_is_claimed_once_even_by_concurrent_deliveries(store):
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        results.append(store.claim_event("shop", "slack", "Ev1"))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    assert store.claim_event("shop", "telegram", "Ev1")  # another channel's id space
    assert store.claim_event("other", "slack", "Ev1")  # another knowledge base's
    store.release_event("shop", "slack", "Ev1")
    assert store.claim_event("shop", "slack", "Ev1")  # released (queue full): the platform's retry is answered


def test_threads_map_to_conversations_and_keep_the_latest_address(store):
    now = datetime.now(UTC)
    assert store.save_channel_thread(ChannelThread("shop", "slack", "C1:1.0", "conv-a", {"channel": "C1"}, now)) == (
        "conv-a"
    )
    # a second delivery proposing another new id gets the thread's first one
    again = ChannelThread("shop", "slack", "C1:1.0", "conv-x", {"channel": "C1", "n": 2}, now)
    assert store.save_channel_thread(again) == "conv-a"
    thread = store.channel_thread("shop", "slack", "C1:1.0")
    assert thread is not None and thread.conversation_id == "conv-a" and thread.address == {"channel": "C1", "n": 2}
    assert store.channel_thread("other", "slack", "C1:1.0") is None
    of = store.channel_thread_of("shop", "conv-a")
    assert of is not None and of.channel == "slack" and of.thread == "C1:1.0"
    assert store.channel_thread_of("shop", "conv-b") is None
    store.link_channel_message("shop", "slack", "C1:2.0", "m-1", "conv-a")
    store.link_channel_message("shop", "slack", "C1:2.0", "m-1", "conv-a")  # twice: no error
    assert store.channel_message("shop", "slack", "C1:2.0") == ("m-1", "conv-a")
    assert store.channel_message("shop", "telegram", "C1:2.0") is None


def test_the_channel_of_each_turn_is_stored(store):
    store.add_message(message("m-1", "conv-a", channel="telegram", kb_id="shop"))
    store.add_message(message("m-2", "conv-b", kb_id="shop"))
    assert [t.channel for t in store.conversation("conv-a")] == ["telegram"]
    assert [t.channel for t in store.conversation("conv-b")] == [""]
    page = store.conversations(ConversationQuery(kb_id="shop", channel="telegram"))
    assert [(c.conversation_id, c.channel) for c in page.items] == [("conv-a", "telegram")] and page.total == 1
    assert store.conversations(ConversationQuery(kb_id="shop", channel="email")).total == 0


def test_erasing_a_conversation_removes_its_platform_thread_and_reply_ids(store):
    now = datetime.now(UTC)
    store.add_message(message("m-1", "conv-a", channel="email", kb_id="shop", customer_id="email:ann@example.com"))
    store.save_channel_thread(ChannelThread("shop", "email", "<root@x>", "conv-a", {"to": "ann@example.com"}, now))
    store.link_channel_message("shop", "email", "<reply@shop>", "m-1", "conv-a")
    assert store.delete_customer("email:ann@example.com") == 1
    assert store.channel_thread("shop", "email", "<root@x>") is None
    assert store.channel_message("shop", "email", "<reply@shop>") is None
    engine = sa.create_engine(store._engine.url)
    with engine.connect() as conn:
        for table in ("chat_channel_threads", "chat_channel_messages"):
            assert conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() == 0
    engine.dispose()


def test_a_thread_whose_turns_were_never_stored_goes_with_its_customer_and_with_retention(store):
    now = datetime.now(UTC)
    store.save_channel_thread(ChannelThread("shop", "email", "ann", "conv-a", {"to": "ann@x"}, now, "email:ann@x"))
    store.save_channel_thread(ChannelThread("shop", "email", "bob", "conv-b", {"to": "bob@x"}, now, "email:bob@x"))
    store.delete_customer("email:ann@x", kb_id="shop")
    assert store.channel_thread("shop", "email", "ann") is None
    assert store.channel_thread("shop", "email", "bob") is not None
    store.delete_older_than(now - timedelta(days=1), kb_id="shop")  # bob wrote just now: kept
    assert store.channel_thread("shop", "email", "bob") is not None
    store.delete_older_than(now + timedelta(seconds=1), kb_id="shop")
    assert store.channel_thread("shop", "email", "bob") is None


def test_deleting_a_knowledge_base_removes_its_channel_rows(store):
    now = datetime.now(UTC)
    store.save_channel_thread(ChannelThread("shop", "slack", "t", "conv-a", {}, now))  # no turn stored
    store.claim_event("shop", "slack", "Ev1")
    store.claim_event("keep", "slack", "Ev1")
    store.delete_kb("shop")
    assert store.channel_thread("shop", "slack", "t") is None
    assert store.claim_event("shop", "slack", "Ev1")  # forgotten with it
    assert not store.claim_event("keep", "slack", "Ev1")
