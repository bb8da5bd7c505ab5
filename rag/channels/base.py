"""The channel seam: a platform's delivery becomes `Inbound` messages (or `Reaction`s), the bridge answers them
through the knowledge base's chat service, and the channel's `send` delivers the `Reply` where the customer wrote.

Each platform user or thread is one conversation (`Inbound.thread`); `Inbound.address` is whatever the channel
needs to reply there later (a Slack channel and thread, a Telegram chat, a mail's Message-ID), kept with the
conversation so a person's replies from the console reach the same place. Nothing secret goes in an address.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from rag.core.errors import RagError
from rag.core.types import Answer

ChannelName = Literal["slack", "telegram", "feishu", "wecom", "matrix", "email"]
CHANNELS: tuple[str, ...] = ("slack", "telegram", "feishu", "wecom", "matrix", "email")
WEBHOOK_CHANNELS: tuple[str, ...] = ("slack", "telegram", "feishu", "wecom")


class ChannelUnauthorized(RagError):
    """A delivery whose signature, token or timestamp does not check out (HTTP 401, nothing answered)."""


class ChannelRequestInvalid(RagError):
    """A delivery that is signed correctly but cannot be read (HTTP 400)."""


class ChannelDeliveryError(RagError):
    """A reply the platform would not take, after the retries (logged; the turn stays stored)."""


@dataclass(frozen=True)
class Inbound:
    """A customer's message on a platform."""

    channel: str
    kb_id: str
    event_id: str  # the platform's id of this delivery: a re-delivery carries the same one and is answered once
    thread: str  # the platform's user, chat or thread this belongs to: one conversation per thread
    user: str  # the platform's id of the customer (stored as customer_id "<channel>:<user>")
    text: str
    address: Mapping[str, Any] = field(default_factory=dict)  # where to reply (no secrets)


@dataclass(frozen=True)
class Reaction:
    """A customer's thumbs up or down on one of the bot's replies (a reaction or a button)."""

    channel: str
    kb_id: str
    event_id: str
    message: str  # the platform's id of the bot's reply that was rated
    rating: Literal["up", "down"]
    address: Mapping[str, Any] = field(default_factory=dict)  # for an acknowledgement, where the platform needs one


Event = Inbound | Reaction


@dataclass(frozen=True)
class Reply:
    """What goes back: the text to post, and the answer it came from (None for a person's reply)."""

    text: str
    answer: Answer | None = None
    feedback: bool = False  # offer rating buttons where the platform has them (answers, not handoff notices)


@dataclass(frozen=True)
class WebhookRequest:
    """An HTTP delivery from a platform, as received: header names lower-case, the body's exact bytes (the
    signatures cover them), and when it arrived (seconds since the epoch)."""

    method: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    received_at: float


@dataclass
class WebhookResponse:
    """What to answer the platform at once, and the events to answer in the background."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    events: list[Event] = field(default_factory=list)


@runtime_checkable
class Sender(Protocol):
    """The outbound half every channel has: post `reply` at `address`; the platform's id of the posted message
    (for reactions and mail threading), or None when the platform gives none."""

    name: str

    def send(self, address: Mapping[str, Any], reply: Reply) -> str | None: ...

    def close(self) -> None: ...


@runtime_checkable
class WebhookChannel(Sender, Protocol):
    """A channel the platform calls over HTTP (POST /channels/{kb}/{name}). `receive` checks the delivery's
    signature or token and timestamp (ChannelUnauthorized otherwise) and answers at once; platforms expect an
    answer within a few seconds, so the events it returns are answered afterwards."""

    def receive(self, request: WebhookRequest) -> WebhookResponse: ...


def within(timestamp: float, now: float, tolerance: float) -> bool:
    """Whether a signed timestamp is recent enough (either way: clocks differ) to rule out a replayed request.

    >>> within(1000, 1200, 300), within(1000, 1400, 300), within(1400, 1000, 300)
    (True, False, False)
    """
    return abs(now - timestamp) <= tolerance
