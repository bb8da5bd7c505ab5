"""Inbound event -> conversation -> chat service -> outbound reply, the same for every channel.

    accept(event, sender)    called when a delivery arrives: a re-delivery (an event id seen before) is dropped,
                             anything else is queued and answered by a worker thread, so the platform gets its
                             "200 OK" at once (Slack and Feishu re-deliver what is not acknowledged in 3 s)
    agent_reply(...)         a person's reply from the console, posted on the platform the conversation is on

A platform thread (`Inbound.thread`) is one conversation: follow-ups get their context, the turns are stored with
the channel and the customer as "<channel>:<platform user id>", and a handoff opens in the agents' queue as on the
widget. The id of each reply posted is kept, so a reaction to it (or a mail answering it) finds the turn.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from datetime import UTC, datetime

from rag.channels.base import ChannelDeliveryError, Event, Inbound, Reaction, Reply, Sender
from rag.channels.formatting import reply_text
from rag.channels.outbound import mask
from rag.chat.service import ChatService
from rag.conversations.store import ChannelThread, ConversationStore
from rag.core.errors import MessageNotFound, QueueFull, RagError
from rag.text.language import detect_language

log = logging.getLogger("rag.channels")
REPLY_NOT_DELIVERED = "reply_not_delivered"  # the reason of a handoff opened because the platform refused the answer


class ChannelBridge:
    """Answers the channels' events for every knowledge base: `chat_for(kb_id)` gives its chat service."""

    def __init__(
        self,
        chat_for: Callable[[str], ChatService],
        store: ConversationStore,
        *,
        workers: int = 4,
        queue_size: int = 200,
        max_question_chars: int = 2000,
    ):
        self.chat_for = chat_for
        self.store = store
        self.max_question_chars = max_question_chars
        self.answered = 0  # events handled (answered or rated), for tests and logs
        self.failed = 0
        # One queue per worker, and each thread's work always on the same one: a thread's messages are answered
        # one after the other, in order (its second message needs the first's turn as context, and two at once
        # would both start a new conversation).
        per_worker = max(1, -(-queue_size // workers))
        self._queues: list[queue.Queue[tuple[str, Callable[[], object]] | None]] = [
            queue.Queue(maxsize=per_worker) for _ in range(workers)
        ]
        self._workers = [
            threading.Thread(target=self._run, args=(q,), name=f"channel-worker-{n}", daemon=True)
            for n, q in enumerate(self._queues)
        ]
        for worker in self._workers:
            worker.start()

    def accept(self, event: Event, sender: Sender) -> bool:
        """Queue `event` to be answered through `sender`; False when it was seen before (a re-delivery).
        QueueFull when too many wait: the event is forgotten again, so the platform's retry is answered."""
        if not self.store.claim_event(event.kb_id, event.channel, event.event_id):
            log.info("%s: event %s was delivered again; answered once", event.channel, event.event_id)
            return False
        key = event.thread if isinstance(event, Inbound) else event.message
        try:
            self._submit(
                (event.kb_id, event.channel, key),
                f"{event.channel} event {event.event_id} of {event.kb_id}",
                lambda: self.handle(event, sender),
            )
        except QueueFull:
            self.store.release_event(event.kb_id, event.channel, event.event_id)
            raise
        return True

    def handle(self, event: Event, sender: Sender) -> None:
        """Answer (or record the rating of) one event now, on this thread."""
        if isinstance(event, Inbound):
            self._answer(event, sender)
        elif isinstance(event, Reaction):
            self._rate(event)

    def agent_reply(self, kb_id: str, conversation_id: str, text: str, senders: Callable[[str], Sender | None]) -> bool:
        """Queue a person's reply to be posted on the platform the conversation is on; False when it is on none
        (the widget fetches its replies itself). `senders(channel)` gives the knowledge base's sender for one."""
        thread = self.store.channel_thread_of(kb_id, conversation_id)
        if thread is None:
            return False
        sender = senders(thread.channel)
        if sender is None:
            log.warning("%s is no longer configured for %s: a person's reply was not posted", thread.channel, kb_id)
            return False
        address, what = thread.address, f"a person's reply in {thread.channel} conversation {conversation_id}"

        def post() -> None:
            posted = sender.send(address, Reply(text))
            if posted:  # a mail answering the person's reply finds the conversation by it
                self.store.link_channel_message(kb_id, thread.channel, posted, "", conversation_id)

        self._submit((kb_id, thread.channel, thread.thread), what, post)
        return True

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until the queued events are handled (tests, shutdown); False on timeout."""
        deadline = time.monotonic() + timeout
        while self._pending() and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self._pending()

    def close(self) -> None:
        for q in self._queues:
            q.put(None)
        for worker in self._workers:
            worker.join(timeout=10)

    def _pending(self) -> int:
        return sum(q.unfinished_tasks for q in self._queues)

    # ---- internals ---------------------------------------------------------------------------------------
    def _submit(self, thread: tuple[str, str, str], what: str, work: Callable[[], object]) -> None:
        """Queue `work` on the worker of `thread` (knowledge base, channel, platform thread)."""
        shard = zlib.crc32("\x1f".join(thread).encode()) % len(self._queues)
        try:
            self._queues[shard].put_nowait((what, work))
        except queue.Full:
            raise QueueFull("Too many channel messages are waiting to be answered - retry later") from None

    def _run(self, jobs: queue.Queue[tuple[str, Callable[[], object]] | None]) -> None:
        while True:
            item = jobs.get()
            try:
                if item is None:
                    return
                what, work = item
                try:
                    work()
                    self.answered += 1
                except Exception as exc:  # one failure must not stop the worker
                    self.failed += 1
                    log.error("%s failed: %s", what, mask(f"{type(exc).__name__}: {exc}"))
            finally:
                jobs.task_done()

    def _answer(self, event: Inbound, sender: Sender) -> None:
        question = event.text.strip()[: self.max_question_chars]
        if not question:
            return
        customer = f"{event.channel}:{event.user}"
        thread = ChannelThread(
            event.kb_id, event.channel, event.thread, uuid.uuid4().hex, dict(event.address), datetime.now(UTC), customer
        )
        # the thread's conversation (this new id only if it has none yet), with the latest address: where a
        # person's reply goes too
        conversation_id = self.store.save_channel_thread(thread)
        chat = self.chat_for(event.kb_id)
        try:
            answer = chat.answer(
                question,
                conversation_id=conversation_id,
                customer_id=customer,
                channel=event.channel,
            )
        except RagError as exc:  # the LLM or database is down: say so rather than leave the customer waiting
            log.error("%s: no answer for %s: %s", event.channel, event.kb_id, mask(str(exc)))
            sender.send(
                event.address, Reply(str(chat.settings.localized("fallback_message", detect_language(question))))
            )
            return
        try:
            posted = sender.send(event.address, Reply(reply_text(answer), answer, feedback=answer.answered))
        except ChannelDeliveryError:
            # the customer asked and heard nothing: a person is asked to take it up (the console's queue)
            self.store.open_handoff(event.kb_id, conversation_id, REPLY_NOT_DELIVERED)
            raise
        if posted:
            self.store.link_channel_message(event.kb_id, event.channel, posted, answer.message_id, conversation_id)

    def _rate(self, event: Reaction) -> None:
        found = self.store.channel_message(event.kb_id, event.channel, event.message)
        if found is None:
            log.info("%s: a rating of a message the bot did not post (%s); ignored", event.channel, event.message)
            return
        try:
            self.store.add_feedback(found[0], event.rating)
        except MessageNotFound:  # the conversation was erased meanwhile
            pass
