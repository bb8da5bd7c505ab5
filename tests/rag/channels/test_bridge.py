"""The channel seam (rag.channels.bridge) around the real chat service over the demo documents: one conversation
per platform thread, follow-ups, ratings, handoff, a person's reply routed back, re-deliveries answered once, a
full queue refused so the platform retries. The sender records what would be posted."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from rag.channels.base import ChannelDeliveryError, Inbound, Reaction, Reply
from rag.channels.bridge import REPLY_NOT_DELIVERED, ChannelBridge
from rag.core.errors import GeneratorUnavailable, QueueFull
from rag.core.settings import Settings
from rag.wiring import Services, build_services
from tests.rag.channels.serving import shop_template

pytestmark = pytest.mark.integration


class RecordingSender:
    name = "demo"

    def __init__(self, block: threading.Event | None = None) -> None:
        self.sent: list[tuple[dict[str, Any], Reply]] = []
        self.block = block

    def send(self, address: Mapping[str, Any], reply: Reply) -> str | None:
        if self.block is not None:
            self.block.wait(10)
        self.sent.append((dict(address), reply))
        return f"posted-{len(self.sent)}"

    def close(self) -> None:
        pass


@pytest.fixture
def services(tmp_path, embedder) -> Iterator[Services]:
    kb_dir = tmp_path / "kb"
    shutil.copytree(shop_template(embedder), kb_dir)
    settings = Settings(_env_file=None, kb_dir=kb_dir, database_url=f"sqlite:///{tmp_path / 'c.sqlite'}")
    built = build_services(settings, embedder=embedder)
    yield built
    built.close()


def message(text: str, event_id: str, thread: str = "room-1", user: str = "U1") -> Inbound:
    return Inbound("demo", "kb", event_id, thread, user, text, {"room": thread})


def test_a_thread_is_one_conversation_with_follow_ups_ratings_and_a_handoff(services):
    store = services.conversations
    bridge = ChannelBridge(lambda kb: services.chat_for(), store, workers=2)
    sender = RecordingSender()
    try:
        assert bridge.accept(message("How much does standard shipping cost in the US?", "e1"), sender)
        assert bridge.wait()
        assert bridge.accept(message("and is it free above some amount?", "e2"), sender)
        assert bridge.wait()
        assert bridge.accept(message("I want to talk to a person", "e3"), sender)
        assert bridge.wait()
        assert bridge.accept(Reaction("demo", "kb", "e4", "posted-1", "up"), sender)
        assert bridge.wait()
    finally:
        bridge.close()
    (address, first), (_, second), (_, third) = sender.sent
    assert address == {"room": "room-1"}
    assert "$5.95" in first.text and "faq_en.csv" in first.text and first.feedback
    assert first.answer is not None and second.answer is not None and third.answer is not None
    conversation = first.answer.conversation_id
    assert second.answer.conversation_id == conversation == third.answer.conversation_id
    assert second.answer.rewritten_query  # the follow-up was made standalone from the thread's history
    assert third.answer.handoff and not third.feedback
    turns = store.conversation(conversation)
    assert [t.channel for t in turns] == ["demo"] * 3
    assert {t.customer_id for t in turns} == {"demo:U1"}
    assert store.handoff(turns[0].kb_id, conversation).state == "open"
    assert store.feedback_for([first.answer.message_id])[first.answer.message_id].rating == "up"
    assert store.channel_message("kb", "demo", "posted-2") == (second.answer.message_id, conversation)


def test_another_thread_is_another_conversation_and_a_redelivery_is_answered_once(services):
    bridge = ChannelBridge(lambda kb: services.chat_for(), services.conversations)
    sender = RecordingSender()
    try:
        assert bridge.accept(message("How fast is express shipping?", "e1"), sender)
        assert not bridge.accept(message("How fast is express shipping?", "e1"), sender)  # re-delivered
        assert bridge.accept(message("How fast is express shipping?", "e2", thread="room-2"), sender)
        assert bridge.wait()
    finally:
        bridge.close()
    assert len(sender.sent) == 2
    ids = {reply.answer.conversation_id for _, reply in sender.sent if reply.answer is not None}
    assert len(ids) == 2
    assert {address["room"] for address, _ in sender.sent} == {"room-1", "room-2"}


def test_messages_of_one_thread_arriving_together_are_answered_in_order_in_one_conversation(services):
    bridge = ChannelBridge(lambda kb: services.chat_for(), services.conversations, workers=4)
    sender = RecordingSender()
    questions = ["How much does standard shipping cost in the US?", "and express?", "and to Canada?"]
    try:
        for n, question in enumerate(questions):  # back to back, before the first is answered
            bridge.accept(message(question, f"e{n}", thread="new-thread"), sender)
        bridge.accept(message("How fast is express shipping?", "other", thread="other-thread"), sender)
        assert bridge.wait()
    finally:
        bridge.close()
    answers = [reply.answer for _, reply in sender.sent if reply.answer is not None]
    in_thread = [a for a in answers if a.question in questions]
    assert [a.question for a in in_thread] == questions  # in the order they were written
    assert len({a.conversation_id for a in in_thread}) == 1  # not one conversation each
    thread = services.conversations.channel_thread("kb", "demo", "new-thread")
    assert thread is not None and thread.conversation_id == in_thread[0].conversation_id
    assert thread.customer_id == "demo:U1"


def test_a_persons_reply_goes_to_the_platform_the_conversation_is_on(services):
    bridge = ChannelBridge(lambda kb: services.chat_for(), services.conversations)
    sender = RecordingSender()
    try:
        bridge.accept(message("Can I pick up my order from your warehouse?", "e1"), sender)
        bridge.wait()
        answer = sender.sent[0][1].answer
        assert answer is not None
        assert bridge.agent_reply("kb", answer.conversation_id, "Hi, Sam here.", lambda name: sender)
        assert not bridge.agent_reply("kb", "a-widget-conversation", "Hi", lambda name: sender)
        assert bridge.wait()
    finally:
        bridge.close()
    address, reply = sender.sent[-1]
    assert address == {"room": "room-1"} and reply.text == "Hi, Sam here." and reply.answer is None


def test_a_full_queue_refuses_and_forgets_the_event_so_the_retry_is_answered(services):
    gate = threading.Event()
    bridge = ChannelBridge(lambda kb: services.chat_for(), services.conversations, workers=1, queue_size=1)
    sender = RecordingSender(block=gate)
    try:
        bridge.accept(message("How fast is express shipping?", "e1"), sender)  # taken by the worker (blocked)
        deadline = threading.Event()
        while bridge._queues[0].qsize() and not deadline.wait(0.01):
            pass
        bridge.accept(message("How fast is express shipping?", "e2"), sender)  # waits in the queue
        with pytest.raises(QueueFull):
            bridge.accept(message("How fast is express shipping?", "e3"), sender)
        gate.set()
        assert bridge.wait()
        assert bridge.accept(message("How fast is express shipping?", "e3"), sender)  # the platform's retry
        assert bridge.wait()
    finally:
        gate.set()
        bridge.close()
    assert len(sender.sent) == 3


class RefusingSender(RecordingSender):
    def send(self, address: Mapping[str, Any], reply: Reply) -> str | None:
        raise ChannelDeliveryError("demo: sending was refused: HTTP 403 not_in_channel")


def test_an_answer_the_platform_refuses_puts_the_conversation_in_the_agents_queue(services, caplog):
    bridge = ChannelBridge(lambda kb: services.chat_for(), services.conversations)
    try:
        bridge.accept(message("How fast is express shipping?", "e1"), RefusingSender())
        assert bridge.wait()
    finally:
        bridge.close()
    thread = services.conversations.channel_thread("kb", "demo", "room-1")
    assert thread is not None
    (turn,) = services.conversations.conversation(thread.conversation_id)
    handoff = services.conversations.handoff(turn.kb_id, thread.conversation_id)
    assert handoff is not None and (handoff.state, handoff.reason) == ("open", REPLY_NOT_DELIVERED)
    assert bridge.failed == 1 and "not_in_channel" in caplog.text


def test_when_the_model_is_down_the_customer_is_told_rather_than_left_waiting(services):
    chat = services.chat_for()

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise GeneratorUnavailable("the LLM server at http://llm:8080 refused the connection")

    chat.answer = failing  # type: ignore[method-assign]
    bridge = ChannelBridge(lambda kb: chat, services.conversations)
    sender = RecordingSender()
    try:
        bridge.accept(message("配送需要多长时间？", "e1"), sender)
        assert bridge.wait()
    finally:
        bridge.close()
    assert [reply.text for _, reply in sender.sent] == [chat.settings.fallback_message_zh]
