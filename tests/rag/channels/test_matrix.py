"""The Matrix bot against a real Synapse (tests/synapse.py), talked to by a customer through a real Matrix client
(matrix-nio): it joins the rooms it is invited to, answers with citations, keeps the follow-up's context, hands
off to a person, records a 👍, answers nothing written before it started or joined, replies with notices (which
bots do not answer), knows itself by its token's account when matrix_user_id differs, backs off from a refused
token, waits out a 429, and never logs its token."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar, cast

import nio
import pytest

from rag.channels.base import Inbound, Reaction, Reply
from rag.channels.bridge import ChannelBridge
from rag.channels.matrix import MatrixBot, retry_hint
from rag.conversations.sql_store import SQLAlchemyConversationStore
from rag.core.errors import RagError
from rag.core.settings import Settings
from tests.rag.channels.serving import Served, served_kb
from tests.synapse import MatrixUser, SynapseServer, synapse_server

T = TypeVar("T")
WAIT = 60.0  # seconds a reply may take (the extractive bot answers in well under one)


@pytest.fixture(scope="module")
def synapse() -> Iterator[SynapseServer]:
    with synapse_server() as server:
        logging.getLogger(__name__).info("Synapse started in %.1f s", server.started_in)
        yield server


class Customer:
    """A person on Matrix, through matrix-nio (synchronous wrappers for a readable test)."""

    def __init__(self, server: SynapseServer, user: MatrixUser):
        self.user = user
        self.loop = asyncio.new_event_loop()
        self.client = nio.AsyncClient(server.url, user.user_id, user.device_id, store_path=None)
        self.client.restore_login(user.user_id, user.device_id, user.access_token)
        self.run(self.client.sync(timeout=0))  # the position: only what arrives afterwards is read

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def create_room(self, invite: str) -> str:
        created = self.run(self.client.room_create(name="Support", invite=[invite]))
        assert isinstance(created, nio.RoomCreateResponse), created
        return created.room_id

    def join(self, room_id: str) -> None:
        assert isinstance(self.run(self.client.join(room_id)), nio.JoinResponse)

    def invite(self, room_id: str, user_id: str) -> None:
        assert isinstance(self.run(self.client.room_invite(room_id, user_id)), nio.RoomInviteResponse)

    def say(self, room_id: str, text: str) -> str:
        sent = self.run(self.client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": text}))
        assert isinstance(sent, nio.RoomSendResponse), sent
        return sent.event_id

    def react(self, room_id: str, event_id: str, key: str) -> None:
        relation = {"rel_type": "m.annotation", "event_id": event_id, "key": key}
        sent = self.run(self.client.room_send(room_id, "m.reaction", {"m.relates_to": relation}))
        assert isinstance(sent, nio.RoomSendResponse), sent

    def members(self, room_id: str) -> set[str]:
        found = self.run(self.client.joined_members(room_id))
        assert isinstance(found, nio.JoinedMembersResponse), found
        return {member.user_id for member in found.members}

    def wait_for_member(self, room_id: str, user_id: str) -> None:
        deadline = time.monotonic() + WAIT
        while user_id not in self.members(room_id):
            assert time.monotonic() < deadline, f"{user_id} did not join {room_id}"
            time.sleep(0.1)

    def replies(self, room_id: str, sender: str, count: int = 1) -> list[nio.RoomMessageNotice]:
        """The next `count` notices (the bot's replies) `sender` posts in the room (syncing until they arrive)."""
        found: list[nio.RoomMessageNotice] = []
        deadline = time.monotonic() + WAIT
        while len(found) < count:
            assert time.monotonic() < deadline, f"{count} notice(s) from {sender} expected, got {found}"
            found += self.notices(room_id, sender)
        return found

    def notices(self, room_id: str, sender: str, timeout: float = 2.0) -> list[nio.RoomMessageNotice]:
        """The notices `sender` posted in the room since the last sync (waiting up to `timeout` s for news)."""
        synced = self.run(self.client.sync(timeout=int(timeout * 1000)))
        assert isinstance(synced, nio.SyncResponse), synced
        room = synced.rooms.join.get(room_id)
        events = room.timeline.events if room is not None else []
        found = [e for e in events if isinstance(e, nio.RoomMessageNotice) and e.sender == sender]
        assert all(e.source["content"]["msgtype"] == "m.notice" for e in found)
        return found

    def notices_for(self, room_id: str, sender: str, seconds: float) -> list[nio.RoomMessageNotice]:
        """Every notice `sender` posts in the room during the next `seconds`."""
        found: list[nio.RoomMessageNotice] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            found += self.notices(room_id, sender, timeout=min(left, 1.0))
        return found

    def close(self) -> None:
        self.run(self.client.close())
        self.loop.close()


@pytest.fixture
def customers(synapse) -> Iterator[list[Customer]]:
    opened: list[Customer] = []
    yield opened
    for customer in opened:
        customer.close()


def bot_settings(synapse: SynapseServer, bot: MatrixUser) -> dict[str, Any]:
    return {
        "matrix_homeserver_url": synapse.url,
        "matrix_user_id": bot.user_id,
        "matrix_access_token": bot.access_token,
    }


def conversation_of(served: Served, room_id: str) -> str:
    thread = served.store.channel_thread(served.kb_id, "matrix", room_id)
    assert thread is not None, f"no conversation for room {room_id}"
    return thread.conversation_id


def test_a_customer_is_answered_in_a_room_followed_up_handed_off_and_rated(
    synapse, customers, tmp_path, embedder, caplog
):
    caplog.set_level(logging.DEBUG)
    bot, alice = synapse.register("bot"), synapse.register("alice")
    customer = Customer(synapse, alice)
    customers.append(customer)
    # Before the bot runs: a room it is already in with an unanswered question, and an invitation waiting in a
    # room with a question written before the invitation.
    old_room = customer.create_room(invite=bot.user_id)
    (bot_client := Customer(synapse, bot)).join(old_room)
    customers.append(bot_client)
    customer.say(old_room, "What is your returns policy?")
    waiting_room = customer.create_room(invite="@nobody:localhost")
    customer.say(waiting_room, "Do you sell gift cards?")
    customer.invite(waiting_room, bot.user_id)

    with served_kb(tmp_path, embedder, kb_settings=bot_settings(synapse, bot)) as served:
        room = customer.create_room(invite=bot.user_id)
        customer.wait_for_member(room, bot.user_id)  # it accepts invitations
        customer.wait_for_member(waiting_room, bot.user_id)  # also those sent while it was not running

        asked = customer.say(room, "How much does standard shipping cost in the US?")
        [first] = customer.replies(room, bot.user_id)
        assert "faq_en.csv" in first.body and "Sources:" in first.body, first.body
        assert "$" in first.body

        customer.say(room, "and how fast is express?")
        [second] = customer.replies(room, bot.user_id)
        assert "express" in second.body.lower(), second.body
        assert "1-2 business days" in second.body, second.body

        customer.say(room, "I want to talk to a person")
        [third] = customer.replies(room, bot.user_id)
        cid = conversation_of(served, room)
        handoff = served.store.handoff(served.kb_id, cid)
        assert handoff is not None and handoff.state == "open"

        turns = served.store.conversation(cid)
        assert [t.question for t in turns] == [
            "How much does standard shipping cost in the US?",
            "and how fast is express?",
            "I want to talk to a person",
        ]
        assert {t.channel for t in turns} == {"matrix"}
        assert turns[1].rewritten_query, "the follow-up was answered without the conversation's context"
        assert {t.customer_id for t in turns} == {f"matrix:{alice.user_id}"}
        assert turns[0].answer in first.body and turns[2].answer in third.body
        assert served.store.channel_message(served.kb_id, "matrix", first.event_id) == (turns[0].message_id, cid)
        thread = served.store.channel_thread(served.kb_id, "matrix", room)
        assert thread is not None and thread.address == {"room_id": room}  # no token in what is stored
        assert asked not in {t.message_id for t in turns}

        customer.react(room, first.event_id, "👍️")  # with the emoji variation selector, as clients send it
        deadline = time.monotonic() + WAIT
        while turns[0].message_id not in served.store.feedback_for([turns[0].message_id]):
            assert time.monotonic() < deadline, "the 👍 was not recorded"
            time.sleep(0.1)
        assert served.store.feedback_for([turns[0].message_id])[turns[0].message_id].rating == "up"

        # What was written before it started (or joined) stays unanswered; what comes after is answered.
        customer.say(old_room, "Which payment methods do you accept?")
        [later] = customer.replies(old_room, bot.user_id)
        served.wait()
        old_turns = served.store.conversation(conversation_of(served, old_room))
        assert [t.question for t in old_turns] == ["Which payment methods do you accept?"], later.body
        assert served.store.channel_thread(served.kb_id, "matrix", waiting_room) is None

    token_seen = [r.getMessage() for r in caplog.records if bot.access_token in r.getMessage()]
    assert not token_seen
    assert any("joined" in r.getMessage() for r in caplog.records)


def test_a_bot_whose_matrix_user_id_differs_from_its_tokens_account_never_answers_itself(
    synapse, customers, tmp_path, embedder, caplog
):
    caplog.set_level(logging.DEBUG)
    bot, erin = synapse.register("bot-alias"), synapse.register("erin")
    customers.extend([customer := Customer(synapse, erin), bot_client := Customer(synapse, bot)])
    misnamed = bot.user_id.upper()  # "@BOT-ALIAS:LOCALHOST": Matrix ids are case-sensitive, the account is not this
    # Written before the bot joins: history (found by the bot's own join, which bears the real id).
    room = customer.create_room(invite=bot.user_id)
    customer.say(room, "Do you sell gift cards?")
    settings = bot_settings(synapse, bot) | {"matrix_user_id": misnamed}

    with served_kb(tmp_path, embedder, kb_settings=settings) as served:
        customer.wait_for_member(room, bot.user_id)
        # A person of the team writing through the bot's account (plain text, as clients send): not a question.
        bot_client.say(room, "Hello, a colleague will be with you shortly.")
        customer.say(room, "How much does standard shipping cost in the US?")
        [reply] = customer.replies(room, bot.user_id)
        assert "faq_en.csv" in reply.body, reply.body
        more = customer.notices_for(room, bot.user_id, seconds=4.0)  # an answer to itself would come within this
        served.wait()
        turns = served.store.conversation(conversation_of(served, room))

    assert not more, [m.body for m in more]
    assert [t.question for t in turns] == ["How much does standard shipping cost in the US?"]
    warned = [r.getMessage() for r in caplog.records if "the access token belongs to" in r.getMessage()]
    assert len(warned) == 1 and misnamed in warned[0] and bot.user_id in warned[0], warned
    assert not [r for r in caplog.records if bot.access_token in r.getMessage()]


def test_a_refused_token_is_logged_once_per_back_off_and_never_shown(synapse, tmp_path, embedder, caplog):
    caplog.set_level(logging.DEBUG)
    bot = synapse.register("bot-revoked")
    settings = bot_settings(synapse, bot) | {"matrix_access_token": "syt_not_a_token_of_this_server_4f2a9c"}
    with served_kb(tmp_path, embedder, kb_settings=settings):
        time.sleep(4.5)  # first try at 0 s, then after 1 s and 2 s more (and the next after 4 more)
    refused = [r for r in caplog.records if "refused the access token" in r.getMessage()]
    assert 2 <= len(refused) <= 4, [r.getMessage() for r in refused]
    assert all(r.levelno == logging.ERROR and "M_UNKNOWN_TOKEN" in r.getMessage() for r in refused)
    assert "retrying in 2 s" in refused[-1].getMessage() or "retrying in 4 s" in refused[-1].getMessage()
    assert not [r for r in caplog.records if "syt_not_a_token_of_this_server_4f2a9c" in r.getMessage()]


def test_a_reply_rate_limited_by_the_homeserver_is_sent_after_the_wait_it_asks(synapse, customers, tmp_path, caplog):
    bot, carol = synapse.register("bot-limited"), synapse.register("carol")
    customers.extend([customer := Customer(synapse, carol), bot_client := Customer(synapse, bot)])
    room = customer.create_room(invite=bot.user_id)
    bot_client.join(room)
    synapse.limit_messages(bot.user_id, per_second=1, burst_count=1)  # one message, then one a second
    settings = Settings(_env_file=None, kb_dir=tmp_path / "kb", **bot_settings(synapse, bot))
    store = SQLAlchemyConversationStore(f"sqlite:///{tmp_path / 'conversations.sqlite'}")
    bridge = ChannelBridge(lambda kb: pytest.fail("nothing to answer here"), store, workers=1)
    sender = MatrixBot("shop", settings, bridge)  # not started: only its outbound half is used
    try:
        started = time.monotonic()
        first = sender.send({"room_id": room}, Reply("Standard shipping is $5."))
        second = sender.send({"room_id": room}, Reply("Express takes 1-2 days."))
        waited = time.monotonic() - started
    finally:
        sender.close()
        bridge.close()
        store.close()
    assert first and second and first != second
    limited = [r.getMessage() for r in caplog.records if "rate limited (HTTP 429" in r.getMessage()]
    assert limited, "Synapse did not rate limit the second message"
    hinted = float(limited[0].split("retry after ")[1].split(" s")[0])  # Synapse's retry_after_ms
    assert 0 < hinted <= 1.0 and waited >= hinted, (limited, waited)
    bodies = [m.body for m in customer.replies(room, bot.user_id, count=2)]
    assert bodies == ["Standard shipping is $5.", "Express takes 1-2 days."]  # each posted once


class StalledChat:
    """A chat service whose model hangs until released, then fails: the bridge's queue fills up meanwhile."""

    settings = Settings(_env_file=None)

    def __init__(self) -> None:
        self.questions: list[str] = []
        self.release = threading.Event()

    def answer(self, question: str, **_: Any) -> None:
        self.questions.append(question)
        self.release.wait(WAIT)
        raise RagError("the model is not answering")


def test_messages_the_full_queue_refused_are_read_again_and_answered_once(synapse, customers, tmp_path, caplog):
    bot, dave = synapse.register("bot-busy"), synapse.register("dave")
    customers.append(customer := Customer(synapse, dave))
    settings = Settings(_env_file=None, kb_dir=tmp_path / "kb", **bot_settings(synapse, bot))
    store = SQLAlchemyConversationStore(f"sqlite:///{tmp_path / 'conversations.sqlite'}")
    chat = StalledChat()
    bridge = ChannelBridge(lambda kb: cast(Any, chat), store, workers=1, queue_size=1)
    matrix = MatrixBot("shop", settings, bridge)
    matrix.start()
    try:
        room = customer.create_room(invite=bot.user_id)
        customer.wait_for_member(room, bot.user_id)
        customer.say(room, "first")
        deadline = time.monotonic() + WAIT
        while not chat.questions:  # the one worker is stuck on it
            assert time.monotonic() < deadline
            time.sleep(0.05)
        customer.say(room, "second")  # waits in the queue
        customer.say(room, "third")  # no room for it: QueueFull
        while not [r for r in caplog.records if "read again" in r.getMessage()]:
            assert time.monotonic() < deadline, "the queue never filled up"
            time.sleep(0.05)
        chat.release.set()
        replies = customer.replies(room, bot.user_id, count=3)
        assert bridge.wait()
    finally:
        chat.release.set()
        matrix.close()
        bridge.close()
        store.close()
    assert chat.questions == ["first", "second", "third"]  # each once, in order
    assert [r.body for r in replies] == [str(settings.localized("fallback_message", "en"))] * 3


@pytest.mark.unit
def test_timeline_events_become_messages_and_ratings_after_the_bots_join(tmp_path):
    settings = Settings(
        _env_file=None,
        kb_dir=tmp_path / "kb",
        matrix_homeserver_url="http://127.0.0.1:1",
        matrix_user_id="@bot:example.org",
        matrix_access_token="syt_unit",
    )
    bot = MatrixBot("shop", settings, cast(ChannelBridge, None))
    try:

        def event(kind: str, sender: str, content: dict, **extra: Any) -> dict:
            return {"type": kind, "sender": sender, "event_id": f"${len(content)}{kind}{sender}{extra}", **extra} | {
                "content": content
            }

        text = {"msgtype": "m.text", "body": "old question"}
        timeline = [
            event("m.room.message", "@alice:example.org", text),
            event("m.room.member", "@bot:example.org", {"membership": "join"}, state_key="@bot:example.org"),
            event("m.room.message", "@alice:example.org", {"msgtype": "m.text", "body": "> <@bot> hi\n\nand express?"}),
            event("m.room.message", "@bot:example.org", {"msgtype": "m.text", "body": "my own reply"}),
            event("m.room.message", "@alice:example.org", {"msgtype": "m.notice", "body": "a notice"}),
            event("m.room.message", "@alice:example.org", {"msgtype": "m.image", "body": "cat.png"}),
            event(
                "m.room.message",
                "@alice:example.org",
                {"msgtype": "m.text", "body": "* edited", "m.relates_to": {"rel_type": "m.replace", "event_id": "$x"}},
            ),
            event("m.reaction", "@alice:example.org", {"m.relates_to": _annotation("$a", "👎🏽")}),
            event("m.reaction", "@alice:example.org", {"m.relates_to": _annotation("$b", "👍️")}),
            event("m.reaction", "@alice:example.org", {"m.relates_to": _annotation("$c", "🎉")}),
        ]
        found = bot.events("!room:example.org", timeline)
    finally:
        bot.close()
    assert [type(e).__name__ for e in found] == ["Inbound", "Reaction", "Reaction"]
    inbound, down, up = found
    assert isinstance(inbound, Inbound) and isinstance(down, Reaction) and isinstance(up, Reaction)
    assert (inbound.text, inbound.thread, inbound.user) == ("and express?", "!room:example.org", "@alice:example.org")
    assert inbound.address == {"room_id": "!room:example.org"}
    assert (down.message, down.rating, up.message, up.rating) == ("$a", "down", "$b", "up")


def _annotation(event_id: str, key: str) -> dict:
    return {"rel_type": "m.annotation", "event_id": event_id, "key": key}


@pytest.mark.unit
def test_the_wait_a_429_asks_for_is_read_from_retry_after_ms():
    import httpx

    assert retry_hint(httpx.Response(429, json={"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 1500})) == 1.5
    assert retry_hint(httpx.Response(429, json={"errcode": "M_LIMIT_EXCEEDED"})) is None
    assert retry_hint(httpx.Response(200, json={"retry_after_ms": 1500})) is None
    assert retry_hint(httpx.Response(429, text="busy")) is None
