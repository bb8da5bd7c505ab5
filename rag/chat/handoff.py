"""Handoff notices: when the bot passes a customer to a person, a webhook receives the conversation.

Delivery happens on a background worker with retries and exponential backoff, so the customer's reply is
never delayed by a slow or failing receiver. The payload:

    {"event": "handoff", "conversation_id": "...", "message_id": "...", "reason": "customer_request",
     "question": "...", "language": "en",
     "transcript": [{"question", "answer", "answered", "handoff", "created_at"}, ...]}
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

import httpx

from rag.conversations.store import ConversationStore
from rag.core.types import Answer

log = logging.getLogger("rag.chat.handoff")
TRANSCRIPT_TURNS = 50


class WebhookNotifier:
    def __init__(
        self,
        url: str,
        store: ConversationStore | None = None,
        *,
        retries: int = 5,
        backoff: float = 0.5,
        timeout: float = 5.0,
        headers: dict[str, str] | None = None,
    ):
        if retries < 0:
            raise ValueError(f"retries must be at least 0. Currently, the retries is {retries}")
        self.url = url
        self.store = store
        self.retries = retries
        self.backoff = backoff
        self.client = httpx.Client(timeout=timeout, headers=headers or {})
        self.delivered = 0
        self.failed = 0
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._forgotten: set[str] = set()  # erased conversations: never delivered, even mid-retry
        self._worker = threading.Thread(target=self._run, name="handoff-webhook", daemon=True)
        self._worker.start()

    def __call__(self, conversation_id: str, answer: Answer) -> None:
        """Queue the notice and return at once."""
        payload = self.payload(conversation_id, answer)
        with self._queue.mutex:
            self._forgotten.discard(conversation_id)  # a new turn after an erasure is a new notice
        self._queue.put(payload)

    def payload(self, conversation_id: str, answer: Answer) -> dict[str, Any]:
        transcript = []
        if self.store is not None:
            for turn in self.store.history(conversation_id, limit=TRANSCRIPT_TURNS):
                transcript.append(
                    {
                        "question": turn.question,
                        "answer": turn.answer,
                        "answered": turn.answered,
                        "handoff": turn.handoff,
                        "created_at": turn.created_at.isoformat(),
                    }
                )
        if not transcript or transcript[-1]["question"] != answer.question:
            transcript.append(
                {
                    "question": answer.question,
                    "answer": answer.answer,
                    "answered": answer.answered,
                    "handoff": answer.handoff,
                    "created_at": None,
                }
            )
        return {
            "event": "handoff",
            "conversation_id": conversation_id,
            "message_id": answer.message_id,
            "reason": answer.decline_reason,
            "question": answer.question,
            "language": answer.language,
            "transcript": transcript,
        }

    def forget(self, conversation_ids: set[str]) -> int:
        """Drop the notices still waiting for these conversations, and stop retrying one being delivered
        (erasure: nothing of an erased conversation may leave the server afterwards). How many were dropped."""
        with self._queue.mutex:
            self._forgotten |= conversation_ids
            kept = [p for p in self._queue.queue if p is None or p["conversation_id"] not in conversation_ids]
            dropped = len(self._queue.queue) - len(kept)
            self._queue.queue.clear()
            self._queue.queue.extend(kept)
            self._queue.unfinished_tasks -= dropped
            if not self._queue.unfinished_tasks:
                self._queue.all_tasks_done.notify_all()
        return dropped

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self._deliver(item)
            finally:
                self._queue.task_done()

    def _deliver(self, payload: dict[str, Any]) -> None:
        for attempt in range(self.retries + 1):
            if payload["conversation_id"] in self._forgotten:
                return
            try:
                response = self.client.post(self.url, json=payload)
                if response.status_code < 400:
                    self.delivered += 1
                    return
                if response.status_code < 500 and response.status_code != 429:
                    log.error("handoff webhook %s refused the notice: HTTP %s", self.url, response.status_code)
                    self.failed += 1
                    return
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                problem = str(exc) or type(exc).__name__
            if attempt < self.retries:
                time.sleep(self.backoff * 2**attempt)
        log.error(
            "handoff webhook %s failed after %d attempts (%s) for conversation %s",
            self.url,
            self.retries + 1,
            problem,
            payload["conversation_id"],
        )
        self.failed += 1

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until queued notices are delivered or given up (tests, shutdown); False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self._queue.unfinished_tasks

    def close(self) -> None:
        self._queue.put(None)
        self._worker.join(timeout=5)
        self.client.close()
