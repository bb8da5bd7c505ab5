"""The handoff webhook against a real local HTTP receiver: retried with backoff, never blocking the reply."""

from __future__ import annotations

import time

from rag.chat.handoff import WebhookNotifier
from rag.core.types import Answer
from tests.receivers import webhook_receiver


def answer(question="Can I talk to a human?") -> Answer:
    return Answer(
        question=question,
        answer="Connecting you now.",
        answered=False,
        handoff=True,
        citations=[],
        passages=[],
        generator="extractive",
        language="en",
        conversation_id="c1",
        message_id="m1",
        decline_reason="customer_request",
    )


def test_notice_is_delivered_after_failures_with_backoff():
    with webhook_receiver(fail_first=2) as receiver:
        notifier = WebhookNotifier(receiver.url, retries=3, backoff=0.05)
        started = time.perf_counter()
        notifier("c1", answer())
        assert time.perf_counter() - started < 0.12  # queued: sending inline takes >= 0.15 s of backoff alone
        assert notifier.wait(10)
        notifier.close()
    assert receiver.attempts == 3 and notifier.delivered == 1
    [payload] = receiver.received
    assert (
        payload["event"] == "handoff" and payload["conversation_id"] == "c1" and payload["reason"] == "customer_request"
    )
    assert payload["transcript"][-1]["question"] == "Can I talk to a human?"


def test_gives_up_after_the_retries_and_on_client_errors():
    with webhook_receiver(fail_first=100) as receiver:
        notifier = WebhookNotifier(receiver.url, retries=2, backoff=0.01)
        notifier("c1", answer())
        assert notifier.wait(10)
        notifier.close()
    assert receiver.attempts == 3 and notifier.failed == 1 and not receiver.received
    with webhook_receiver(fail_first=100, status=404) as receiver:
        notifier = WebhookNotifier(receiver.url, retries=5, backoff=0.01)
        notifier("c1", answer())
        assert notifier.wait(10)
        notifier.close()
    assert receiver.attempts == 1 and notifier.failed == 1


def test_a_slow_receiver_never_delays_the_caller():
    with webhook_receiver(delay=1.0) as receiver:
        notifier = WebhookNotifier(receiver.url, retries=0)
        started = time.perf_counter()
        for _ in range(3):
            notifier("c1", answer())
        assert time.perf_counter() - started < 0.5  # inline it would take >= 3 s
        assert notifier.wait(15)
        notifier.close()
    assert len(receiver.received) == 3
