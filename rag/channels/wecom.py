"""WeCom / 企业微信 (a self-built app's callback): GET verifies the URL, POST delivers messages; replies go out
through the app message API.

Each callback carries msg_signature, timestamp and nonce in its query: msg_signature = hex SHA-1 of the sorted
concatenation of the Token, the timestamp, the nonce and the encrypted text (`echostr` of the GET, <Encrypt> of
the POST's XML). The encrypted text is AES-256-CBC with key = base64(EncodingAESKey + "="), IV = its first 16
bytes, PKCS#7 padded to 32 bytes; its plaintext is 16 random bytes, the message's length (4 bytes, big-endian),
the message and the CorpID it is for. The POST is answered with an empty 200 at once (WeCom re-delivers what is
not answered in 5 s, with the same MsgId: answered once); the answer goes out by POST /cgi-bin/message/send.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from rag.channels.base import (
    ChannelDeliveryError,
    ChannelRequestInvalid,
    ChannelUnauthorized,
    Inbound,
    Reply,
    WebhookRequest,
    WebhookResponse,
    within,
)
from rag.channels.crypto import aes_cbc_decrypt, b64decode
from rag.channels.formatting import split_message
from rag.channels.outbound import AccessToken, PlatformClient, json_body, mask
from rag.core.settings import Settings

log = logging.getLogger("rag.channels")

MAX_TEXT_BYTES = 2048  # a text message's content, in UTF-8 bytes
MAX_XML_BYTES = 64 * 1024  # a callback's body, and the message inside it: text messages are far smaller
TOKEN_INVALID = frozenset({40014, 42001})  # invalid / expired access_token: fetch a new one, once
# "slow down" answered with HTTP 200: API call frequency limit (45009) and "system busy" (-1); seconds to wait
BUSY = {45009: 2.0, -1: 1.0}
_PADDING_BLOCK = 32
_MARKUP_DECLARATION = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_ENCODING_DECLARATION = re.compile(r"""\s*<\?xml\s[^>]*?\bencoding\s*=\s*["']([^"']*)["']""")


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """msg_signature: hex SHA-1 of the four strings, sorted, concatenated.

    >>> signature("t", "1", "n", "e")
    'c0a1b489e56d1e30512623839dc51717e5cb15ba'
    """
    return hashlib.sha1("".join(sorted((token, timestamp, nonce, encrypted))).encode()).hexdigest()


def decrypt(encoding_aes_key: str, encrypted: str) -> tuple[bytes, str]:
    """The message inside WeCom's encrypted text, and the receive id (the CorpID) it names."""
    key = b64decode(encoding_aes_key + "=", "EncodingAESKey")
    plain = aes_cbc_decrypt(key, key[:16], b64decode(encrypted, "the encrypted message"), block=_PADDING_BLOCK)
    if len(plain) < 20:
        raise ChannelRequestInvalid("decrypted WeCom message is too short to hold its length")
    length = int.from_bytes(plain[16:20], "big")
    if 20 + length > len(plain):
        raise ChannelRequestInvalid("decrypted WeCom message is shorter than the length it states")
    return plain[20 : 20 + length], plain[20 + length :].decode("utf-8", "replace")


def parse_xml(raw: bytes, what: str) -> dict[str, str]:
    """The child elements' texts of a small flat XML document. Refused unread: documents larger than
    MAX_XML_BYTES, not UTF-8 (WeCom sends UTF-8; in UTF-16 a DOCTYPE would hide from the check below) and with a
    DOCTYPE or ENTITY declaration (entity expansion bombs, external entities). The parser refuses a DOCTYPE too.

    >>> parse_xml(b"<xml><MsgType><![CDATA[text]]></MsgType><MsgId>7</MsgId></xml>", "message")
    {'MsgType': 'text', 'MsgId': '7'}
    """
    if len(raw) > MAX_XML_BYTES:
        raise ChannelRequestInvalid(f"{what} is larger than {MAX_XML_BYTES} bytes")
    text = _utf8(raw, what)
    if _MARKUP_DECLARATION.search(text):
        raise ChannelRequestInvalid(f"{what} declares a DOCTYPE or entities: refused")
    return _parse_flat(text, what)


def _utf8(raw: bytes, what: str) -> str:
    """`raw` decoded strictly as UTF-8, so that the markup check reads the characters the parser will read."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ChannelRequestInvalid(f"{what} is not UTF-8 (WeCom sends UTF-8): refused") from None
    if "\x00" in text:  # UTF-16 without a byte order mark decodes as UTF-8 with a NUL after each ASCII letter
        raise ChannelRequestInvalid(f"{what} holds NUL characters (UTF-16?), not UTF-8 XML: refused")
    declared = _ENCODING_DECLARATION.match(text)
    if declared and declared[1].lower() not in ("utf-8", "utf8"):
        raise ChannelRequestInvalid(f"{what} declares the encoding {declared[1]!r}, not UTF-8: refused")
    return text


def _parse_flat(text: str, what: str) -> dict[str, str]:
    # Fed a str, expat reads UTF-8 whatever the document declares.
    document = _FlatDocument()
    parser = ET.XMLParser(target=document)
    try:
        parser.feed(text)
        parser.close()
    except _DoctypeRefused:
        raise ChannelRequestInvalid(f"{what} declares a DOCTYPE or entities: refused") from None
    except ET.ParseError as exc:
        raise ChannelRequestInvalid(f"{what} is not XML: {exc}") from None
    return document.texts


class _DoctypeRefused(Exception):
    pass


class _FlatDocument:
    """An xml.etree parser target that keeps only the texts of the root's children, and refuses a DOCTYPE (where
    entities are declared) as soon as the parser meets one."""

    def __init__(self) -> None:
        self.depth = 0
        self.texts: dict[str, str] = {}
        self.parts: list[str] = []

    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        raise _DoctypeRefused(name)

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        self.depth += 1
        if self.depth == 2:
            self.parts = []

    def data(self, text: str) -> None:
        if self.depth == 2:
            self.parts.append(text)

    def end(self, tag: str) -> None:
        if self.depth == 2:
            self.texts[tag] = "".join(self.parts).strip()
        self.depth -= 1

    def close(self) -> None:
        pass


def retry_hint(response: httpx.Response) -> float | None:
    """Seconds to wait when WeCom says "slow down" in its body (errcode 45009 or -1 with HTTP 200)."""
    try:
        data = response.json()
    except ValueError:
        return None
    code = data.get("errcode") if isinstance(data, dict) else None
    return BUSY.get(code) if isinstance(code, int) else None


class WeComChannel:
    """A knowledge base's WeCom self-built app: checks and decrypts its callbacks, answers in the app's chat."""

    name = "wecom"

    @staticmethod
    def configured(settings: Settings) -> bool:
        return bool(
            settings.wecom_corp_id
            and settings.wecom_agent_id is not None
            and settings.wecom_secret
            and settings.wecom_token
            and settings.wecom_encoding_aes_key
        )

    def __init__(self, kb_id: str, settings: Settings, *, clock: Callable[[], float] = time.time):
        if not self.configured(settings):
            raise ValueError(
                "WeCom needs wecom_corp_id, wecom_agent_id, wecom_secret, wecom_token and wecom_encoding_aes_key set"
            )
        assert settings.wecom_secret and settings.wecom_token and settings.wecom_encoding_aes_key
        self.kb_id = kb_id
        self.corp_id = str(settings.wecom_corp_id)
        self.agent_id = settings.wecom_agent_id
        self.secret = settings.wecom_secret.get_secret_value()
        self.token = settings.wecom_token.get_secret_value()
        self.aes_key = settings.wecom_encoding_aes_key.get_secret_value()
        self.api_url = settings.wecom_api_url.rstrip("/")
        self.max_skew = settings.channel_max_clock_skew
        self.clock = clock
        self.client = PlatformClient(
            self.name,
            retries=settings.channel_send_retries,
            max_wait=settings.channel_max_retry_wait,
            secrets=[self.secret, self.token, self.aes_key],
            retry_hint=retry_hint,
        )
        self._access = AccessToken(self._fetch_token, clock)

    # ---- in ------------------------------------------------------------------------------------------------
    def receive(self, request: WebhookRequest) -> WebhookResponse:
        if request.method == "GET":  # the URL check when the callback is saved: answer echostr's plaintext
            echostr = request.query.get("echostr")
            if not echostr:
                raise ChannelRequestInvalid("WeCom URL verification without echostr")
            return WebhookResponse(200, self._open(request.query, echostr))
        if request.method != "POST":
            raise ChannelRequestInvalid("WeCom calls back by GET (URL check) or POST (messages)")
        encrypted = parse_xml(request.body, "WeCom callback body").get("Encrypt")
        if not encrypted:
            raise ChannelRequestInvalid("WeCom callback without <Encrypt> - set the app's callback to secure mode")
        message = parse_xml(self._open(request.query, encrypted), "decrypted WeCom message")
        event = self._inbound(message)
        return WebhookResponse(200, b"", events=[event] if event is not None else [])

    def _open(self, query: Mapping[str, str], encrypted: str) -> bytes:
        """The checked, decrypted plaintext of `encrypted`; 401 for a bad signature, stale timestamp or a message
        meant for another corporation."""
        timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
        expected = signature(self.token, timestamp, nonce, encrypted)
        if not hmac.compare_digest(expected.encode(), query.get("msg_signature", "").lower().encode()):
            raise ChannelUnauthorized("WeCom msg_signature does not match - is wecom_token the callback's Token?")
        try:
            fresh = within(float(timestamp), self.clock(), self.max_skew)
        except ValueError:
            fresh = False
        if not fresh:
            raise ChannelUnauthorized(f"WeCom callback timestamp {timestamp!r} is stale or unreadable (a replay?)")
        plain, receive_id = decrypt(self.aes_key, encrypted)
        if not hmac.compare_digest(receive_id.encode(), self.corp_id.encode()):
            raise ChannelUnauthorized("WeCom message is for another CorpID - check wecom_corp_id")
        return plain

    def _inbound(self, message: Mapping[str, str]) -> Inbound | None:
        if message.get("MsgType") != "text":
            log.debug("wecom: a %s callback ignored", message.get("MsgType") or "typeless")
            return None  # events (entering the app, ...), images, voice, ...
        user, msg_id = message.get("FromUserName", ""), message.get("MsgId", "")
        if not user or not msg_id:
            raise ChannelRequestInvalid("WeCom text message without FromUserName or MsgId")
        return Inbound(self.name, self.kb_id, msg_id, user, user, message.get("Content", ""), {"touser": user})

    # ---- out -----------------------------------------------------------------------------------------------
    def send(self, address: Mapping[str, Any], reply: Reply) -> str | None:
        touser = str(address.get("touser") or "")
        if not touser:
            raise ChannelDeliveryError("wecom: the conversation's address has no touser to reply to")
        posted = None
        for part in split_message(reply.text, MAX_TEXT_BYTES, lambda text: len(text.encode())):
            posted = self._send_text(touser, part)
        return posted

    def _send_text(self, touser: str, text: str) -> str | None:
        body = {"touser": touser, "msgtype": "text", "agentid": self.agent_id, "text": {"content": text}}

        def send_with(token: str) -> dict[str, Any]:
            response = self.client.call(
                "POST",
                f"{self.api_url}/cgi-bin/message/send",
                json=body,
                params={"access_token": token},
                what="message/send",
            )
            return json_body(response, self.name, "message/send")

        data = self._access.use(send_with, lambda answer: answer.get("errcode") in TOKEN_INVALID)
        _check(data, "message/send")
        return str(data.get("msgid") or "") or None

    def _fetch_token(self) -> tuple[str, float]:
        response = self.client.call(
            "GET",
            f"{self.api_url}/cgi-bin/gettoken",
            params={"corpid": self.corp_id, "corpsecret": self.secret},
            what="gettoken",
        )
        data = json_body(response, self.name, "gettoken")
        _check(data, "gettoken")
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise ChannelDeliveryError("wecom: gettoken answered no access_token - check wecom_api_url")
        return token, float(data.get("expires_in") or 0)

    def close(self) -> None:
        self.client.close()
        self._access.close()


def _check(data: Mapping[str, Any], what: str) -> None:
    if data.get("errcode", 0) != 0:
        raise ChannelDeliveryError(
            f"wecom: {what} was refused (errcode {data.get('errcode')}: {mask(str(data.get('errmsg', '')))}) - "
            "check wecom_corp_id, wecom_secret, wecom_agent_id and the app's visible range"
        )
