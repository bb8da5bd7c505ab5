"""Slack (Events API): the app's Request URL is POST /channels/{kb}/slack; replies go in the customer's thread.

Every delivery is signed: X-Slack-Signature = "v0=" + hex HMAC-SHA256(signing secret,
"v0:{X-Slack-Request-Timestamp}:{raw body}"), and a timestamp older than `channel_max_clock_skew` is refused as a
replay. Slack sends `url_verification` once when the Request URL is saved (answered with its challenge), then
`event_callback`s: `message` (direct messages, or channels the app is subscribed to), `app_mention` and
`reaction_added` (a 👍 or 👎 on one of the bot's replies rates it). Replies: chat.postMessage with the bot token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

from rag.channels.base import (
    ChannelDeliveryError,
    ChannelRequestInvalid,
    ChannelUnauthorized,
    Event,
    Inbound,
    Reaction,
    Reply,
    WebhookRequest,
    WebhookResponse,
    within,
)
from rag.channels.formatting import split_message
from rag.channels.outbound import PlatformClient, json_body
from rag.core.settings import Settings

MAX_TEXT = 40_000  # chat.postMessage truncates longer text
_RATINGS: dict[str, Literal["up", "down"]] = {"+1": "up", "thumbsup": "up", "-1": "down", "thumbsdown": "down"}
# Messages a person wrote: plain ones, a thread reply also sent to the channel, a message with a file attached.
# Every other subtype is an edit, a deletion, a join or a bot's post, none of them a question.
_PERSON_SUBTYPES = (None, "thread_broadcast", "file_share")
_LEADING_MENTIONS = re.compile(r"^(?:\s*<@[A-Z0-9]+(?:\|[^>]*)?>)+\s*")
_MARKUP = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Slack-Signature Slack sends for `body` at `timestamp` (seconds since the epoch, as sent).

    >>> signature("8f742231b10e8888abcd99yyyzzz85a5", "1531420618", b"token=x")[:15]
    'v0=3eeaac307053'
    """
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def question_text(text: str) -> str:
    """A Slack message's text as the customer meant it: the leading @mention of the bot dropped, links and
    mentions as their labels, and Slack's escaping of &, < and > undone.

    >>> question_text("<@U0BOT> Do you ship to &lt;Norway&gt; &amp; <https://x.example|Sweden>?")
    'Do you ship to <Norway> & Sweden?'
    """
    text = _LEADING_MENTIONS.sub("", text)
    text = _MARKUP.sub(lambda m: m.group(2) or m.group(1).removeprefix("mailto:"), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()


def escape(text: str) -> str:
    """Text for a Slack message: the three characters Slack reads as markup escaped, nothing else.

    >>> escape("Orders < 50 € & more")
    'Orders &lt; 50 € &amp; more'
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackChannel:
    """A knowledge base's Slack app: checks and reads the Events API's deliveries, posts replies in thread."""

    name = "slack"

    @staticmethod
    def configured(settings: Settings) -> bool:
        return settings.slack_signing_secret is not None and settings.slack_bot_token is not None

    def __init__(self, kb_id: str, settings: Settings, *, clock: Callable[[], float] = time.time):
        if settings.slack_signing_secret is None or settings.slack_bot_token is None:
            raise ValueError("Slack needs RAG_SLACK_SIGNING_SECRET and RAG_SLACK_BOT_TOKEN (the app's settings pages)")
        self.kb_id = kb_id
        self.clock = clock
        self.max_skew = settings.channel_max_clock_skew
        self.api_url = settings.slack_api_url.rstrip("/")
        self._secret = settings.slack_signing_secret.get_secret_value()
        self._token = settings.slack_bot_token.get_secret_value()
        self.client = PlatformClient(
            "slack",
            retries=settings.channel_send_retries,
            max_wait=settings.channel_max_retry_wait,
            secrets=[self._secret, self._token],
        )

    # ---- inbound ------------------------------------------------------------------------------------------
    def receive(self, request: WebhookRequest) -> WebhookResponse:
        """Check the delivery's signature and age (ChannelUnauthorized), then read it (ChannelRequestInvalid)."""
        self._verify(request)
        try:
            payload = json.loads(request.body)
        except ValueError:
            raise ChannelRequestInvalid(
                "slack: the delivery is not JSON - is this the Events API's Request URL?"
            ) from None
        if not isinstance(payload, dict):
            raise ChannelRequestInvalid("slack: the delivery is not a JSON object")
        if payload.get("type") == "url_verification":
            return WebhookResponse(200, str(payload.get("challenge", "")).encode())
        if payload.get("type") != "event_callback":
            return WebhookResponse(200)  # app_rate_limited notices and the like: nothing to answer
        event = self.event(payload)
        return WebhookResponse(200, events=[event] if event is not None else [])

    def _verify(self, request: WebhookRequest) -> None:
        timestamp = request.headers.get("x-slack-request-timestamp", "")
        sent = request.headers.get("x-slack-signature", "")
        if not timestamp or not sent:
            raise ChannelUnauthorized("slack: the delivery is not signed (no X-Slack-Signature or timestamp)")
        try:
            stamped = float(timestamp)
        except ValueError:
            raise ChannelUnauthorized("slack: X-Slack-Request-Timestamp is not a number") from None
        if not within(stamped, self.clock(), self.max_skew):
            raise ChannelUnauthorized(
                f"slack: the delivery's timestamp is more than {self.max_skew:g} s off - a replay, or this "
                f"server's clock is wrong"
            )
        if not hmac.compare_digest(signature(self._secret, timestamp, request.body).encode(), sent.encode()):
            raise ChannelUnauthorized("slack: bad signature - check RAG_SLACK_SIGNING_SECRET (Basic Information)")

    def event(self, payload: Mapping[str, Any]) -> Event | None:
        """The message or rating an `event_callback` carries; None for anything the bot should not answer."""
        event = payload.get("event")
        if not isinstance(event, dict):
            raise ChannelRequestInvalid("slack: an event_callback without its event")
        kind = event.get("type")
        if kind in ("message", "app_mention"):
            return self._inbound(event, _bot_users(payload))
        if kind == "reaction_added":
            return self._reaction(event, str(payload.get("event_id") or ""))
        return None

    def _inbound(self, event: Mapping[str, Any], bots: set[str]) -> Inbound | None:
        user, channel, ts = event.get("user"), event.get("channel"), event.get("ts")
        if event.get("subtype") not in _PERSON_SUBTYPES or event.get("bot_id") or event.get("bot_profile"):
            return None  # never answer a bot, least of all ourselves
        if not (isinstance(user, str) and isinstance(channel, str) and isinstance(ts, str)) or user in bots:
            return None
        text = question_text(str(event.get("text") or ""))
        if not text:
            return None
        thread_ts = str(event.get("thread_ts") or ts)
        return Inbound(
            channel=self.name,
            kb_id=self.kb_id,
            # The message's own id, not the envelope's: a mention in a channel the app follows arrives twice
            # (app_mention and message, two event ids) and is answered once; a re-delivery has it too.
            event_id=f"{channel}:{ts}",
            thread=f"{channel}:{thread_ts}",
            user=user,
            text=text,
            address={"channel": channel, "thread_ts": thread_ts},
        )

    def _reaction(self, event: Mapping[str, Any], event_id: str) -> Reaction | None:
        item = event.get("item")
        rating = _RATINGS.get(str(event.get("reaction") or "").split("::")[0])  # "+1::skin-tone-2"
        if rating is None or not isinstance(item, dict) or item.get("type") != "message" or not event_id:
            return None
        channel, ts = item.get("channel"), item.get("ts")
        if not (isinstance(channel, str) and isinstance(ts, str)):
            return None
        return Reaction(self.name, self.kb_id, event_id, f"{channel}:{ts}", rating, {"channel": channel})

    # ---- outbound -----------------------------------------------------------------------------------------
    def send(self, address: Mapping[str, Any], reply: Reply) -> str | None:
        """Post `reply` in the thread at `address`; "<channel>:<ts>" of the (last) message posted."""
        channel, thread_ts = address["channel"], address.get("thread_ts")
        posted = None
        for part in split_message(reply.text, MAX_TEXT, lambda s: len(escape(s))):
            message: dict[str, Any] = {"channel": channel, "text": escape(part), "unfurl_links": False}
            if thread_ts:
                message["thread_ts"] = thread_ts
            posted = self._post(message)
        return f"{channel}:{posted}" if posted else None

    def _post(self, message: Mapping[str, Any]) -> str | None:
        response = self.client.call(
            "POST",
            f"{self.api_url}/chat.postMessage",
            json=message,
            headers={"Authorization": f"Bearer {self._token}"},
            what="chat.postMessage",
        )
        data = json_body(response, self.name, "chat.postMessage")
        if not data.get("ok"):
            error = data.get("error", "unknown_error")
            raise ChannelDeliveryError(
                f"slack: chat.postMessage refused the reply: {error} - "
                + _HINTS.get(error, "see https://api.slack.com/methods/chat.postMessage#errors")
            )
        ts = data.get("ts")
        return str(ts) if ts else None

    def close(self) -> None:
        self.client.close()


_HINTS = {
    "not_in_channel": "invite the app to the channel (/invite @app)",
    "channel_not_found": "invite the app to the channel, or give it the chat:write scope for it",
    "invalid_auth": "check RAG_SLACK_BOT_TOKEN (OAuth & Permissions, xoxb-...)",
    "not_authed": "check RAG_SLACK_BOT_TOKEN (OAuth & Permissions, xoxb-...)",
    "token_revoked": "reinstall the app and set its new RAG_SLACK_BOT_TOKEN",
    "missing_scope": "add the chat:write scope (OAuth & Permissions) and reinstall the app",
}


def _bot_users(payload: Mapping[str, Any]) -> set[str]:
    """The bot's own user ids, as the envelope's `authorizations` name them."""
    found = payload.get("authorizations")
    if not isinstance(found, list):
        return set()
    return {str(a["user_id"]) for a in found if isinstance(a, dict) and a.get("is_bot") and a.get("user_id")}
