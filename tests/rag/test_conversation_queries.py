"""Knowledge bases, customers, operator queries and hard deletion in the conversation store, against SQLite in a
temporary folder and a real PostgreSQL server (tests/postgres.py)."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from rag.conversations import SQLAlchemyConversationStore, StoredMessage
from rag.conversations.analytics import compute_stats
from rag.conversations.export import COLUMNS, turns_csv
from rag.conversations.store import ConversationQuery, ConversationSummary
from tests.postgres import create_database
from tests.rag.test_conversations import T0, message

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'conversations.db'}"
    return create_database(request.getfixturevalue("postgres_server"))


@pytest.fixture
def store(store_url) -> Iterator[SQLAlchemyConversationStore]:
    s = SQLAlchemyConversationStore(store_url)
    yield s
    s.close()


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# ---- databases made before knowledge bases ----------------------------------------------------------
def old_schema() -> sa.MetaData:
    """chat_messages and chat_feedback exactly as the first release created them."""
    metadata = sa.MetaData()
    sa.Table(
        "chat_messages",
        metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String, nullable=False, unique=True),
        sa.Column("conversation_id", sa.String, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("rewritten_query", sa.Text),
        sa.Column("retrieved", sa.JSON, nullable=False),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("citations", sa.JSON, nullable=False),
        sa.Column("answered", sa.Boolean, nullable=False),
        sa.Column("handoff", sa.Boolean, nullable=False),
        sa.Column("generator", sa.String, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("language", sa.String, nullable=False),
        sa.Column("decline_reason", sa.String),
        sa.Index("ix_chat_messages_conversation", "conversation_id", "created_at"),
        sa.Index("ix_chat_messages_created_at", "created_at"),
    )
    sa.Table(
        "chat_feedback",
        metadata,
        sa.Column(
            "message_id", sa.String, sa.ForeignKey("chat_messages.message_id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("rating", sa.String, nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("rating IN ('up', 'down')", name="ck_chat_feedback_rating"),
        sa.Index("ix_chat_feedback_created_at", "created_at"),
    )
    return metadata


def make_old_database(url: str) -> None:
    metadata = old_schema()
    engine = sa.create_engine(url)
    old = dict(vars(message("old-1", "old-conv")))
    del old["kb_id"], old["customer_id"]
    old["created_at"] = T0.replace(tzinfo=None) if engine.dialect.name == "sqlite" else T0
    old["retrieved"] = [list(pair) for pair in old["retrieved"]]
    try:
        with engine.begin() as conn:
            metadata.create_all(conn)
            conn.execute(metadata.tables["chat_messages"].insert(), old)
    finally:
        engine.dispose()


def columns_and_indexes(url: str) -> tuple[set[str], set[str]]:
    engine = sa.create_engine(url)
    try:
        inspector = sa.inspect(engine)
        columns = {c["name"] for c in inspector.get_columns("chat_messages")}
        return columns, {i["name"] for i in inspector.get_indexes("chat_messages")}
    finally:
        engine.dispose()


def test_a_database_made_before_knowledge_bases_opens_and_gains_the_columns(store_url):
    make_old_database(store_url)
    assert "kb_id" not in columns_and_indexes(store_url)[0]
    with SQLAlchemyConversationStore(store_url) as store:
        old = store.get_message("old-1")
        assert old == message("old-1", "old-conv")  # kb_id "" and no customer
        assert old.kb_id == "" and old.customer_id is None
        store.add_message(message("new-1", "new-conv", at(1), kb_id="shop", customer_id="cust-1"))
        assert [m.message_id for m in store.messages(kb_id="")] == ["old-1"]
        assert [m.message_id for m in store.messages(kb_id="shop")] == ["new-1"]
    columns, indexes = columns_and_indexes(store_url)
    assert {"kb_id", "customer_id"} <= columns
    assert {"ix_chat_messages_kb_created_at", "ix_chat_messages_customer"} <= indexes
    with SQLAlchemyConversationStore(store_url) as again:  # idempotent
        assert again.get_message("new-1").customer_id == "cust-1"


def test_several_workers_upgrading_an_old_database_at_once(store_url):
    make_old_database(store_url)
    workers = 8
    start = threading.Barrier(workers)
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            start.wait()
            with SQLAlchemyConversationStore(store_url) as store:  # an engine, and connections, of its own
                assert store.get_message("old-1") is not None
        except BaseException as exc:  # reported below: an exception in a thread would otherwise be lost
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert {"kb_id", "customer_id"} <= columns_and_indexes(store_url)[0]


# ---- knowledge base filters ---------------------------------------------------------------------------
def test_messages_feedback_and_counts_of_one_knowledge_base(store):
    store.add_message(message("s1", "c1", at(0), kb_id="shop"))
    store.add_message(message("s2", "c2", at(1), kb_id="shop"))
    store.add_message(message("b1", "c1", at(2), kb_id="bank"))  # the same conversation id in another KB
    store.add_feedback("s1", "up")
    store.add_feedback("b1", "down")
    assert [m.message_id for m in store.messages(kb_id="shop")] == ["s1", "s2"]
    assert [m.message_id for m in store.messages(at(1), kb_id="shop")] == ["s2"]  # since stays positional
    assert [m.message_id for m in store.messages(kb_id="nowhere")] == []
    assert [f.message_id for f in store.feedback(kb_id="bank")] == ["b1"]
    assert [f.message_id for f in store.feedback(None, "shop")] == ["s1"]
    assert store.conversation_count() == 3  # c1 in shop and c1 in bank are two conversations
    assert store.conversation_count(kb_id="shop") == 2
    assert store.conversation_count(at(1), kb_id="shop") == 1
    assert [m.message_id for m in store.history("c1", kb_id="bank")] == ["b1"]
    assert [m.message_id for m in store.conversation("c1")] == ["s1", "b1"]
    assert [m.message_id for m in store.conversation("c1", kb_id="shop")] == ["s1"]


def test_feedback_for_some_messages(store):
    for i in range(3):
        store.add_message(message(f"m{i}"))
    up = store.add_feedback("m0", "up")
    down = store.add_feedback("m2", "down", "wrong")
    assert store.feedback_for(["m0", "m1", "m2", "unknown", "m0"]) == {"m0": up, "m2": down}
    assert store.feedback_for([]) == {}
    assert store.feedback_for(f"m{i}" for i in range(3)) == {"m0": up, "m2": down}  # any iterable


def test_feedback_for_more_ids_than_one_statement_takes(store):
    store.add_message(message("m0"))
    up = store.add_feedback("m0", "up")
    assert store.feedback_for([f"x{i}" for i in range(1500)] + ["m0"]) == {"m0": up}


# ---- operator queries -----------------------------------------------------------------------------------
@pytest.fixture
def conversations(store) -> SQLAlchemyConversationStore:
    """shop/c1 (en, answered twice, alice, rated up), shop/c2 (zh, declined, handed off, rated down),
    shop/c3 (asked for a person, then answered), bank/c1 (alice again, answered)."""
    store.add_message(message("c1-1", "c1", at(0), kb_id="shop", customer_id="alice"))
    store.add_message(
        message("c1-2", "c1", at(1), kb_id="shop", customer_id="alice", question="And for admins?", answer="Same.")
    )
    store.add_feedback("c1-1", "up")
    store.add_message(
        message(
            "c2-1",
            "c2",
            at(10),
            kb_id="shop",
            question="如何退货？",
            answer="抱歉，我没有找到答案。",
            language="zh",
            answered=False,
            handoff=True,
            decline_reason="low_retrieval_score",
        )
    )
    store.add_feedback("c2-1", "down", "没用")
    store.add_message(
        message(
            "c3-1",
            "c3",
            at(20),
            kb_id="shop",
            question="I want a human",
            answer="Connecting you to a person.",
            answered=False,
            handoff=True,
            decline_reason="customer_request",
        )
    )
    store.add_message(message("c3-2", "c3", at(21), kb_id="shop", question="Is 50% off_sale on?", answer="Yes."))
    store.add_message(
        message(
            "b1-1", "c1", at(30), kb_id="bank", customer_id="alice", question="Open an account?", answer="Use the app."
        )
    )
    return store


def listed(store: SQLAlchemyConversationStore, **filters) -> list[str]:
    page = store.conversations(ConversationQuery(**filters))
    assert page.total == len(page.items)  # one page holds them all here
    return [f"{s.kb_id}/{s.conversation_id}" for s in page.items]


def test_every_conversation_newest_first(conversations):
    assert listed(conversations) == ["bank/c1", "shop/c3", "shop/c2", "shop/c1"]
    assert listed(conversations, kb_id="shop") == ["shop/c3", "shop/c2", "shop/c1"]
    assert listed(conversations, kb_id="nowhere") == []


def test_summaries_count_every_turn(conversations):
    items = {f"{s.kb_id}/{s.conversation_id}": s for s in conversations.conversations(ConversationQuery()).items}
    assert items["shop/c1"] == ConversationSummary(
        conversation_id="c1",
        kb_id="shop",
        customer_id="alice",
        started_at=at(0),
        last_at=at(1),
        turns=2,
        first_question="How do I reset my password?",
        answered_turns=2,
        declined_turns=0,
        handed_off=False,
        language="en",
        feedback_up=1,
        feedback_down=0,
    )
    c3 = items["shop/c3"]
    assert (c3.turns, c3.first_question, c3.answered_turns, c3.declined_turns, c3.handed_off) == (
        2,
        "I want a human",
        1,
        0,  # asking for a person is not a decline
        True,
    )
    assert c3.customer_id is None and c3.feedback_up == c3.feedback_down == 0
    c2 = items["shop/c2"]
    assert (c2.language, c2.first_question, c2.declined_turns, c2.feedback_down) == ("zh", "如何退货？", 1, 1)
    assert c2.started_at.tzinfo == UTC and c2.started_at == at(10)
    assert items["bank/c1"].turns == 1  # not merged with shop/c1


@pytest.mark.parametrize(
    "filters, expected",
    [
        ({"answered": True}, ["bank/c1", "shop/c3", "shop/c1"]),
        ({"answered": False}, ["shop/c2"]),
        ({"declined": True}, ["shop/c2"]),
        ({"declined": False}, ["bank/c1", "shop/c3", "shop/c1"]),
        ({"handed_off": True}, ["shop/c3", "shop/c2"]),
        ({"handed_off": False}, ["bank/c1", "shop/c1"]),
        ({"feedback": "up"}, ["shop/c1"]),
        ({"feedback": "down"}, ["shop/c2"]),
        ({"feedback": "any"}, ["shop/c2", "shop/c1"]),
        ({"feedback": "none"}, ["bank/c1", "shop/c3"]),
        ({"language": "zh"}, ["shop/c2"]),
        ({"language": "fr"}, []),
        ({"since": at(1)}, ["bank/c1", "shop/c3", "shop/c2", "shop/c1"]),  # c1's last turn, inclusive
        ({"since": at(1.5)}, ["bank/c1", "shop/c3", "shop/c2"]),
        ({"until": at(10)}, ["shop/c1"]),  # c2 starts at 10: not before
        ({"since": at(5), "until": at(25)}, ["shop/c3", "shop/c2"]),
        ({"text": "RESET"}, ["shop/c1"]),  # case-insensitive
        ({"text": "退货"}, ["shop/c2"]),
        ({"text": "use the APP"}, ["bank/c1"]),  # answers too
        ({"text": "%"}, ["shop/c3"]),  # a literal %, not "anything"
        ({"text": "_"}, ["shop/c3"]),
        ({"text": "50%_"}, []),
        ({"customer_id": "alice"}, ["bank/c1", "shop/c1"]),
        ({"customer_id": "alice", "kb_id": "shop"}, ["shop/c1"]),
        ({"customer_id": "bob"}, []),
        ({"kb_id": "shop", "handed_off": True, "feedback": "none"}, ["shop/c3"]),
        ({"answered": True, "declined": True}, []),
    ],
)
def test_filters(conversations, filters, expected):
    assert listed(conversations, **filters) == expected


def test_a_text_filter_keeps_every_turn_of_the_conversation(conversations):
    [c1] = conversations.conversations(ConversationQuery(text="admins")).items
    assert (c1.turns, c1.first_question, c1.feedback_up) == (2, "How do I reset my password?", 1)


def test_pages(conversations):
    everything = listed(conversations)
    first = conversations.conversations(ConversationQuery(limit=3))
    second = conversations.conversations(ConversationQuery(limit=3, offset=3))
    assert (first.total, second.total) == (4, 4)
    assert [f"{s.kb_id}/{s.conversation_id}" for s in first.items + second.items] == everything
    assert len(second.items) == 1
    beyond = conversations.conversations(ConversationQuery(offset=10))
    assert beyond.items == [] and beyond.total == 4
    none = conversations.conversations(ConversationQuery(limit=0, kb_id="shop"))
    assert none.items == [] and none.total == 3


def test_analytics_read_every_knowledge_base(conversations):
    stats = compute_stats(conversations)
    assert (stats.conversations, stats.questions, stats.answered, stats.handoffs) == (4, 6, 4, 2)
    assert (stats.feedback_up, stats.feedback_down) == (1, 1)
    assert [g.question for g in stats.top_unanswered] == ["如何退货？"]  # asking for a person is no gap
    since = compute_stats(conversations, since=at(20))
    assert (since.conversations, since.questions) == (2, 3)


def test_bad_queries_say_what_is_wrong(store):
    with pytest.raises(ValueError, match="limit"):
        ConversationQuery(limit=-1)
    with pytest.raises(ValueError, match="offset"):
        ConversationQuery(offset=-5)
    with pytest.raises(ValueError, match="up, down, any, none"):
        ConversationQuery(feedback="maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="time zone"):
        store.conversations(ConversationQuery(since=T0.replace(tzinfo=None)))


# ---- hard deletion ------------------------------------------------------------------------------------
SECRET_QUESTION = "My card 4111 and address: 5 Secret Lane 秘密街道"


def leftovers(url: str, needles: list[str]) -> list[str]:
    """Every cell of every table in the database that contains one of the needles."""
    engine = sa.create_engine(url)
    found = []
    try:
        with engine.connect() as conn:
            for table_name in sa.inspect(conn).get_table_names():
                table = sa.Table(table_name, sa.MetaData(), autoload_with=conn)
                for row in conn.execute(sa.select(table)):
                    for column, value in row._mapping.items():
                        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
                        found += [f"{table_name}.{column}: {needle}" for needle in needles if needle in text]
    finally:
        engine.dispose()
    return found


def erasable(store: SQLAlchemyConversationStore) -> None:
    """The conversation "erase-me" (customer "cust-secret", rated, with a comment) beside others to keep."""
    store.add_message(message("e1", "erase-me", at(0), kb_id="shop", question=SECRET_QUESTION))
    store.add_message(
        message("e2", "erase-me", at(1), kb_id="shop", customer_id="cust-secret", rewritten_query=SECRET_QUESTION)
    )
    store.add_feedback("e1", "down", f"you ignored: {SECRET_QUESTION}")
    store.add_feedback("e2", "up")
    store.add_message(message("k1", "keep-me", at(2), kb_id="shop", customer_id="cust-other"))
    store.add_feedback("k1", "up")
    store.add_message(message("k2", "keep-me-too", at(3), kb_id="bank"))


NEEDLES = ["erase-me", "cust-secret", SECRET_QUESTION]


def kept(store: SQLAlchemyConversationStore) -> list[str]:
    return [m.message_id for m in store.messages()]


def test_delete_conversation_leaves_nothing_behind(store, store_url):
    erasable(store)
    assert leftovers(store_url, NEEDLES)  # the scan finds what is there
    assert store.delete_conversation("erase-me", kb_id="bank") == 0  # not in that knowledge base
    assert store.delete_conversation("erase-me") == 2
    assert leftovers(store_url, NEEDLES) == []
    assert kept(store) == ["k1", "k2"]
    assert [f.message_id for f in store.feedback()] == ["k1"]
    assert store.delete_conversation("erase-me") == 0


def test_delete_customer_takes_their_whole_conversations(store, store_url):
    erasable(store)
    store.add_message(message("b-alice", "bank-conv", at(4), kb_id="bank", customer_id="cust-secret"))
    assert store.delete_customer("cust-secret", kb_id="shop") == 2  # e1 had no customer id yet: it goes too
    assert kept(store) == ["k1", "k2", "b-alice"]
    assert store.delete_customer("cust-secret") == 1
    assert leftovers(store_url, NEEDLES) == []
    assert kept(store) == ["k1", "k2"]
    assert store.delete_customer("nobody") == 0


def test_delete_older_than_goes_by_the_last_turn(store, store_url):
    erasable(store)  # erase-me: 0 and 1 minutes; keep-me: 2; keep-me-too (bank): 3
    store.add_message(message("late", "long-one", at(0), kb_id="shop"))
    store.add_message(message("later", "long-one", at(60), kb_id="shop"))  # its first turn is old, its last is not
    assert store.delete_older_than(at(2), kb_id="bank") == 0
    assert store.delete_older_than(at(2)) == 2  # erase-me only; keep-me's last turn is at the cutoff
    assert leftovers(store_url, NEEDLES) == []
    assert kept(store) == ["late", "k1", "k2", "later"]
    assert store.delete_older_than(at(10), kb_id="shop") == 1  # keep-me
    assert kept(store) == ["late", "k2", "later"]
    with pytest.raises(ValueError, match="time zone"):
        store.delete_older_than(at(10).replace(tzinfo=None))


def test_delete_kb(store, store_url):
    erasable(store)
    assert store.delete_kb("shop") == 3
    assert leftovers(store_url, NEEDLES + ["cust-other"]) == []
    assert kept(store) == ["k2"] and store.feedback() == []
    assert store.delete_kb("shop") == 0


def test_sqlite_file_keeps_no_trace_of_an_erased_conversation(tmp_path):
    database = tmp_path / "conversations.db"
    with SQLAlchemyConversationStore(f"sqlite:///{database}") as store:
        erasable(store)
        assert store.delete_conversation("erase-me") == 2
        assert kept(store) == ["k1", "k2"]
        files = [p for p in tmp_path.iterdir() if p.name.startswith("conversations.db")]
        raw = b"".join(Path(p).read_bytes() for p in files)
    assert b"keep-me" in raw  # the scan reads the file's text
    for needle in NEEDLES:
        assert needle.encode() not in raw, needle


def test_stored_message_from_answer_records_kb_and_customer():
    from rag.core.types import Answer

    answer = Answer(
        question="q",
        answer="a",
        answered=True,
        handoff=False,
        citations=[],
        passages=[],
        generator="extractive",
        language="en",
        conversation_id="c",
        message_id="m",
    )
    turn = StoredMessage.from_answer(answer, T0, kb_id="shop", customer_id="cust-1")
    assert (turn.kb_id, turn.customer_id) == ("shop", "cust-1")
    plain = StoredMessage.from_answer(answer, T0)
    assert (plain.kb_id, plain.customer_id) == ("", None)


# ---- CSV export ---------------------------------------------------------------------------------------
def test_csv_export_round_trips_through_a_csv_reader(store):
    tricky = 'He said "hi", then:\nline two, 第二行，含“引号”\r\nand a third'
    store.add_message(
        message(
            "m1",
            "会话-1",
            at(0),
            kb_id="售后",
            customer_id="客户,1",
            question="如何退货？" + tricky,
            answer="请看 [1] 和 [2]。",
            citations=[{"source": "退货政策.md"}, {"source": "faq, v2.csv"}, {"source": "退货政策.md"}],
            language="zh",
            rewritten_query="退货流程",
            latency_ms=1234.5678,
            channel="wecom",
        )
    )
    store.add_message(
        message(
            "m2",
            "c2",
            at(1),
            question='=HYPERLINK("http://evil")',
            answer="-1 is not an answer",
            answered=False,
            handoff=True,
            decline_reason="low_retrieval_score",
        )
    )
    store.add_feedback("m1", "down", '@admin 答案不对, "wrong"')
    turns = store.messages()
    lines = list(turns_csv(turns, store.feedback_for(m.message_id for m in turns)))
    assert len(lines) == 3  # header, then one (possibly multi-line) record per turn
    header, first, second = list(csv.reader(io.StringIO("".join(lines), newline="")))
    assert header == list(COLUMNS) == [
        "kb_id", "conversation_id", "message_id", "created_at", "customer_id", "language", "question",
        "rewritten_query", "answer", "answered", "handoff", "decline_reason", "sources", "rating", "comment",
        "latency_ms", "channel",
    ]  # fmt: skip
    row = dict(zip(header, first, strict=True))
    assert row == {
        "kb_id": "售后",
        "conversation_id": "会话-1",
        "message_id": "m1",
        "created_at": "2026-03-01T09:30:15.123456+00:00",
        "customer_id": "客户,1",
        "language": "zh",
        "question": "如何退货？" + tricky,
        "rewritten_query": "退货流程",
        "answer": "请看 [1] 和 [2]。",
        "answered": "true",
        "handoff": "false",
        "decline_reason": "",
        "sources": "退货政策.md; faq, v2.csv",
        "rating": "down",
        "comment": '\'@admin 答案不对, "wrong"',  # would run as a formula
        "latency_ms": "1234.57",
        "channel": "wecom",
    }
    row = dict(zip(header, second, strict=True))
    assert row["question"] == '\'=HYPERLINK("http://evil")' and row["answer"] == "'-1 is not an answer"
    assert (row["answered"], row["handoff"], row["decline_reason"]) == ("false", "true", "low_retrieval_score")
    assert (row["rating"], row["comment"], row["customer_id"], row["sources"]) == ("", "", "", "faq.md")


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_cells_that_a_spreadsheet_would_run_stay_text(start):
    turn = message("m1", question=f"{start}cmd|' /C calc'!A0", customer_id=f"{start}x", kb_id=f"{start}kb")
    [_, row] = csv.reader(io.StringIO("".join(turns_csv([turn], {})), newline=""))
    assert row[0] == f"'{start}kb" and row[4] == f"'{start}x" and row[6] == f"'{start}cmd|' /C calc'!A0"
