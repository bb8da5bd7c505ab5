"""Feishu / Lark: event subscription (schema 2.0) in, the IM API's "reply to a message" out.

In: the Encrypt Key is required. With it every event arrives as {"encrypt": base64} (AES-256-CBC, key = SHA-256 of
the Encrypt Key, IV = the first 16 bytes) and signed: X-Lark-Signature = hex SHA-256(timestamp + nonce + Encrypt
Key + body), the timestamp checked for freshness. Without one Feishu posts plain JSON that only the Verification
Token inside it vouches for: no signature, no timestamp, a captured event replayable at will. The one unsigned
delivery is the URL check made when the Request URL is saved: it is answered only when it decrypts to a
url_verification carrying the Verification Token, and every other unsigned body gets the same 401 with the same
message, so that nobody learns from the answers whether a forged ciphertext's padding was right (a padding
oracle). Every event carries the Verification Token too (`header.token`). A customer's text message
(`im.message.receive_v1`) is answered; a thumbs up or down on a reply (`im.message.reaction.created_v1`) rates it.

Out: a tenant_access_token (cached until shortly before it expires) and POST .../messages/{id}/reply. Feishu
answers a 429 with `x-ogw-ratelimit-reset` (and older APIs a 400 with code 99991400): both are waited out.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Literal

import httpx

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
from rag.channels.crypto import aes_cbc_decrypt, b64decode
from rag.channels.outbound import AccessToken, PlatformClient, mask
from rag.core.settings import Settings

log = logging.getLogger("rag.channels")

RATE_LIMITED = 99991400  # "request trigger frequency limit"
# the tenant_access_token is missing, invalid or expired: fetch a new one and try once more
TOKEN_INVALID = frozenset({99991661, 99991663, 99991668})
_MENTION = re.compile(r"@_(?:user_\d+|all)\s?")
_RATINGS: dict[str, Literal["up", "down"]] = {
    "THUMBSUP": "up",
    "THUMBSDOWN": "down",
}  # emoji_type, upper-cased (Feishu spells it "ThumbsDown")
_UNSIGNED = (
    "Feishu event without a valid X-Lark-Signature, and not a URL check encrypted with feishu_encrypt_key that "
    "carries feishu_verification_token - are feishu_encrypt_key and feishu_verification_token the app's?"
)


def signature(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    """X-Lark-Signature of a delivery: hex SHA-256 of timestamp + nonce + Encrypt Key + the body's bytes.

    >>> signature("1", "n", "k", b"{}")[:12]
    'fbd3ecb62fa4'
    """
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode() + body).hexdigest()


def decrypt(encrypt_key: str, encrypted: str) -> bytes:
    """The plaintext of an {"encrypt": ...} payload (ChannelRequestInvalid when it is not one made with this key)."""
    data = b64decode(encrypted, "encrypt")
    key = hashlib.sha256(encrypt_key.encode()).digest()
    return aes_cbc_decrypt(key, data[:16], data[16:])


def retry_hint(response: httpx.Response) -> float | None:
    """Seconds Feishu asks to wait: `x-ogw-ratelimit-reset` of a 429, or of a 400 with code 99991400."""
    reset = response.headers.get("x-ogw-ratelimit-reset")
    if response.status_code == 429:
        return _seconds(reset)
    if response.status_code == 400 and _code(response) == RATE_LIMITED:
        return _seconds(reset) or 1.0
    return None


def text_of(content: str) -> str:
    """The text of a text message's `content` JSON, without the @-mention placeholders.

    >>> text_of('{"text": "@_user_1 How fast is express shipping?"}')
    'How fast is express shipping?'
    """
    try:
        text = json.loads(content).get("text", "")
    except (ValueError, AttributeError):
        return ""
    return _MENTION.sub("", text if isinstance(text, str) else "").strip()


class FeishuChannel:
    """A knowledge base's Feishu / Lark app (a bot): answers its direct messages and group mentions."""

    name = "feishu"

    @staticmethod
    def configured(settings: Settings) -> bool:
        """All four set: without the Encrypt Key events would come unsigned, forgeable and replayable."""
        return bool(
            settings.feishu_app_id
            and settings.feishu_app_secret
            and settings.feishu_verification_token
            and settings.feishu_encrypt_key
        )

    def __init__(self, kb_id: str, settings: Settings, *, clock: Callable[[], float] = time.time):
        if not self.configured(settings):
            raise ValueError(
                "Feishu needs feishu_app_id, feishu_app_secret, feishu_verification_token and feishu_encrypt_key "
                "set - set an Encrypt Key in the app's Event Subscriptions page and copy it to feishu_encrypt_key"
            )
        assert settings.feishu_app_secret and settings.feishu_verification_token and settings.feishu_encrypt_key
        self.kb_id = kb_id
        self.app_id = settings.feishu_app_id
        self.app_secret = settings.feishu_app_secret.get_secret_value()
        self.token = settings.feishu_verification_token.get_secret_value()
        self.encrypt_key = settings.feishu_encrypt_key.get_secret_value()
        self.api_url = settings.feishu_api_url.rstrip("/")
        self.max_skew = settings.channel_max_clock_skew
        self.clock = clock
        self.client = PlatformClient(
            self.name,
            retries=settings.channel_send_retries,
            max_wait=settings.channel_max_retry_wait,
            secrets=[self.app_secret, self.token, self.encrypt_key],
            retry_hint=retry_hint,
        )
        self._access = AccessToken(self._fetch_token, clock)  # the tenant_access_token

    # ---- in ------------------------------------------------------------------------------------------------
    def receive(self, request: WebhookRequest) -> WebhookResponse:
        if request.method != "POST":
            raise ChannelRequestInvalid("Feishu delivers events by POST")
        if not self._check_signature(request):
            return self._url_verification(request.body)
        payload = self._payload(request.body)
        if payload.get("type") == "url_verification":
            return self._challenge(payload)
        header = payload.get("header")
        if not isinstance(header, dict):
            raise ChannelRequestInvalid("Feishu event without a header: subscribe with event schema 2.0")
        self._check_token(header.get("token"))
        event = payload.get("event")
        found = self._event(header, event) if isinstance(event, dict) else None
        return _json({}, [found] if found is not None else [])

    def _check_signature(self, request: WebhookRequest) -> bool:
        """True for a correctly signed, recent delivery; False for an unsigned one; 401 otherwise."""
        headers = request.headers
        given = headers.get("x-lark-signature")
        if given is None:
            return False
        timestamp, nonce = headers.get("x-lark-request-timestamp", ""), headers.get("x-lark-request-nonce", "")
        expected = signature(timestamp, nonce, self.encrypt_key, request.body)
        if not hmac.compare_digest(expected.encode(), given.strip().lower().encode()):
            raise ChannelUnauthorized("Feishu signature does not match - is feishu_encrypt_key the app's Encrypt Key?")
        try:
            fresh = within(float(timestamp), self.clock(), self.max_skew)
        except ValueError:
            fresh = False
        if not fresh:
            raise ChannelUnauthorized(f"Feishu request timestamp {timestamp!r} is stale or unreadable (a replay?)")
        return True

    def _url_verification(self, body: bytes) -> WebhookResponse:
        """The answer to the unsigned URL check. Whatever else is wrong (not JSON, not encrypted, bad padding,
        not JSON inside, another token, not a url_verification) gets one and the same 401: a different answer for
        bad padding would let a forger decrypt captured events a byte at a time."""
        try:
            payload = self._payload(body)
            if payload.get("type") == "url_verification":
                return self._challenge(payload)
        except (ChannelRequestInvalid, ChannelUnauthorized):
            pass
        raise ChannelUnauthorized(_UNSIGNED)

    def _payload(self, body: bytes) -> dict[str, Any]:
        """The event inside an {"encrypt": ...} body, as JSON (ChannelRequestInvalid for anything else)."""
        encrypted = _json_object(body, "Feishu request body").get("encrypt")
        if not isinstance(encrypted, str):
            raise ChannelRequestInvalid(
                "Feishu event not encrypted - set an Encrypt Key in the app's Event Subscriptions page"
            )
        return _json_object(decrypt(self.encrypt_key, encrypted), "decrypted Feishu event")

    def _challenge(self, payload: Mapping[str, Any]) -> WebhookResponse:
        self._check_token(payload.get("token"))
        return _json({"challenge": payload.get("challenge", "")})

    def _check_token(self, token: object) -> None:
        if not isinstance(token, str) or not hmac.compare_digest(token.encode(), self.token.encode()):
            raise ChannelUnauthorized("Feishu verification token does not match feishu_verification_token")

    def _event(self, header: Mapping[str, Any], event: Mapping[str, Any]) -> Event | None:
        kind, event_id = header.get("event_type"), str(header.get("event_id") or "")
        if not event_id:
            raise ChannelRequestInvalid("Feishu event without header.event_id")
        if kind == "im.message.receive_v1":
            return self._message(event_id, event)
        if kind == "im.message.reaction.created_v1":
            return self._reaction(event_id, event)
        log.debug("feishu: event %s of type %s ignored", event_id, kind)
        return None

    def _message(self, event_id: str, event: Mapping[str, Any]) -> Inbound | None:
        sender, message = _dict(event.get("sender")), _dict(event.get("message"))
        if sender.get("sender_type") != "user" or message.get("message_type") != "text":
            return None  # apps' messages (ours too) and images, files, cards
        message_id = str(message.get("message_id") or "")
        user = str(_dict(sender.get("sender_id")).get("open_id") or "")
        if not message_id or not user:
            raise ChannelRequestInvalid("Feishu message event without message.message_id or sender open_id")
        if message.get("chat_type") == "p2p":
            thread = str(message.get("chat_id") or user)
        else:  # a group: each thread of replies is one conversation
            thread = str(message.get("root_id") or message_id)
        text = text_of(str(message.get("content") or ""))
        return Inbound(self.name, self.kb_id, event_id, thread, user, text, {"message_id": message_id})

    def _reaction(self, event_id: str, event: Mapping[str, Any]) -> Reaction | None:
        emoji = str(_dict(event.get("reaction_type")).get("emoji_type") or "").upper()
        rating = _RATINGS.get(emoji)
        message_id = str(event.get("message_id") or "")
        if rating is None or event.get("operator_type") == "app" or not message_id:
            return None
        return Reaction(self.name, self.kb_id, event_id, message_id, rating)

    # ---- out -----------------------------------------------------------------------------------------------
    def send(self, address: Mapping[str, Any], reply: Reply) -> str | None:
        message_id = str(address.get("message_id") or "")
        if not message_id:
            raise ChannelDeliveryError("feishu: the conversation's address has no message_id to reply to")
        body = {"msg_type": "text", "content": json.dumps({"text": reply.text}), "uuid": uuid.uuid4().hex}
        url = f"{self.api_url}/open-apis/im/v1/messages/{message_id}/reply"

        def reply_with(token: str) -> tuple[httpx.Response, dict[str, Any]]:
            headers = {"Authorization": f"Bearer {token}"}
            response = self.client.call("POST", url, json=body, headers=headers, what="reply")
            return response, _result(response, "reply")

        response, data = self._access.use(reply_with, lambda answer: answer[1].get("code") in TOKEN_INVALID)
        _check(data, response, "reply")
        return str(_dict(data.get("data")).get("message_id") or "") or None

    def _fetch_token(self) -> tuple[str, float]:
        url = f"{self.api_url}/open-apis/auth/v3/tenant_access_token/internal"
        response = self.client.call(
            "POST", url, json={"app_id": self.app_id, "app_secret": self.app_secret}, what="tenant_access_token"
        )
        data = _result(response, "tenant_access_token")
        _check(data, response, "tenant_access_token")
        token = data.get("tenant_access_token")
        if not isinstance(token, str) or not token:
            raise ChannelDeliveryError("feishu: tenant_access_token missing from the answer - check feishu_api_url")
        return token, float(data.get("expire") or 0)

    def close(self) -> None:
        self.client.close()
        self._access.close()


def _json(body: object, events: list[Event] | None = None) -> WebhookResponse:
    return WebhookResponse(200, json.dumps(body).encode(), "application/json", events or [])


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise ChannelRequestInvalid(f"{what} is not JSON") from None
    if not isinstance(data, dict):
        raise ChannelRequestInvalid(f"{what} is not a JSON object")
    return data


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _code(response: httpx.Response) -> object:
    try:
        data = response.json()
    except ValueError:
        return None
    return data.get("code") if isinstance(data, dict) else None


def _result(response: httpx.Response, what: str) -> dict[str, Any]:
    """Feishu's JSON answer, whatever its HTTP status (errors come as a 4xx with a `code`)."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict) or "code" not in data:
        detail = mask(response.text[:200])
        raise ChannelDeliveryError(f"feishu: {what} was refused: HTTP {response.status_code} {detail}".rstrip())
    return data


def _check(data: Mapping[str, Any], response: httpx.Response, what: str) -> None:
    if data.get("code") != 0:
        message = mask(str(data.get("msg", "")))
        raise ChannelDeliveryError(
            f"feishu: {what} was refused (HTTP {response.status_code}, code {data.get('code')}: {message}) - "
            "check the app's permissions (im:message, im:message:send_as_bot) and feishu_app_id / feishu_app_secret"
        )
