"""Feishu / Lark: events encrypted and signed here as the platform's documentation describes (the test's own AES
code, not the product's), the Open API played by the recording server, and the whole path over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import time
import uuid
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from rag.channels import feishu
from rag.channels.base import (
    ChannelDeliveryError,
    ChannelRequestInvalid,
    ChannelUnauthorized,
    Inbound,
    Reaction,
    Reply,
    WebhookRequest,
)
from rag.channels.feishu import FeishuChannel
from rag.core.settings import Settings
from tests.rag.channels.platform import PlatformAPI, Scripted, platform_api
from tests.rag.channels.serving import served_kb

APP_SECRET = "feishu-app-secret-9f3a1c"
VERIFICATION_TOKEN = "feishu-verification-token-77ab"
ENCRYPT_KEY = "feishu-encrypt-key-5e21d0"
TENANT_TOKEN = "t-tenant-access-token-c0ffee"
SECRETS = (APP_SECRET, VERIFICATION_TOKEN, ENCRYPT_KEY, TENANT_TOKEN)
NOW = 1_700_000_000.0

TOKEN_PATH = "/open-apis/auth/v3/tenant_access_token/internal"
REPLY_SUFFIX = "/reply"


# ---- the platform's side, from its documentation ---------------------------------------------------------------
def encrypt(plaintext: bytes, key: str = ENCRYPT_KEY) -> str:
    """{"encrypt": ...}: AES-256-CBC, key SHA-256(Encrypt Key), a random IV sent before the ciphertext, PKCS#7."""
    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(hashlib.sha256(key.encode()).digest()), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + encryptor.update(padded) + encryptor.finalize()).decode()


def delivery(
    payload: dict[str, Any], *, key: str = ENCRYPT_KEY, timestamp: float = NOW, sign_with: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers Feishu posts: the event encrypted, signed with X-Lark-Signature."""
    body = json.dumps({"encrypt": encrypt(json.dumps(payload).encode(), key)}).encode()
    ts, nonce = str(int(timestamp)), uuid.uuid4().hex[:12]
    digest = hashlib.sha256((ts + nonce + (sign_with or key)).encode() + body).hexdigest()
    headers = {
        "content-type": "application/json",
        "x-lark-request-timestamp": ts,
        "x-lark-request-nonce": nonce,
        "x-lark-signature": digest,
    }
    return body, headers


def unsigned(payload: dict[str, Any] | bytes, *, key: str = ENCRYPT_KEY) -> bytes:
    """A body as Feishu posts the URL check: encrypted, without X-Lark-Signature headers."""
    plain = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return json.dumps({"encrypt": encrypt(plain, key)}).encode()


def badly_padded() -> bytes:
    """An {"encrypt": ...} body whose plaintext ends in a zero byte: never valid PKCS#7 padding."""
    iv = os.urandom(16)
    encryptor = Cipher(algorithms.AES(hashlib.sha256(ENCRYPT_KEY.encode()).digest()), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(b'{"type": "url_v\x00') + encryptor.finalize()
    return json.dumps({"encrypt": base64.b64encode(iv + ciphertext).decode()}).encode()


def event(kind: str, body: dict[str, Any], *, token: str = VERIFICATION_TOKEN, event_id: str = "") -> dict[str, Any]:
    header = {
        "event_id": event_id or uuid.uuid4().hex,
        "token": token,
        "create_time": str(int(NOW * 1000)),
        "event_type": kind,
        "tenant_key": "tenant-1",
        "app_id": "cli_a1b2c3",
    }
    return {"schema": "2.0", "header": header, "event": body}


def text_message(
    text: str,
    *,
    chat_type: str = "p2p",
    sender_type: str = "user",
    root_id: str = "",
    message_id: str = "om_question_1",
    event_id: str = "",
) -> dict[str, Any]:
    message = {
        "message_id": message_id,
        "root_id": root_id,
        "parent_id": root_id,
        "create_time": str(int(NOW * 1000)),
        "chat_id": "oc_chat_42",
        "chat_type": chat_type,
        "message_type": "text",
        "content": json.dumps({"text": text}),
    }
    sender = {"sender_id": {"open_id": "ou_customer_7", "user_id": "u7"}, "sender_type": sender_type}
    return event("im.message.receive_v1", {"sender": sender, "message": message}, event_id=event_id)


def reaction(emoji: str, message_id: str = "om_reply_1") -> dict[str, Any]:
    body = {
        "message_id": message_id,
        "reaction_type": {"emoji_type": emoji},
        "operator_type": "user",
        "user_id": {"open_id": "ou_customer_7"},
        "action_time": str(int(NOW * 1000)),
    }
    return event("im.message.reaction.created_v1", body)


def settings_for(api_url: str = "http://127.0.0.1:9", **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "feishu_app_id": "cli_a1b2c3",
        "feishu_app_secret": APP_SECRET,
        "feishu_verification_token": VERIFICATION_TOKEN,
        "feishu_encrypt_key": ENCRYPT_KEY,
        "feishu_api_url": api_url,
        "channel_send_retries": 3,
    }
    return Settings(_env_file=None, **(values | changes))


def channel(api_url: str = "http://127.0.0.1:9", *, now: float = NOW, **changes: Any) -> FeishuChannel:
    return FeishuChannel("shop", settings_for(api_url, **changes), clock=lambda: now)


def request(body: bytes, headers: dict[str, str]) -> WebhookRequest:
    return WebhookRequest("POST", headers, {}, body, NOW)


# ---- in: verification, decryption, parsing -----------------------------------------------------------------------
@pytest.mark.unit
def test_the_documentations_example_decrypts():
    assert feishu.decrypt("test key", "P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=") == b"hello world"


@pytest.mark.unit
def test_url_verification_answers_the_challenge():
    payload = {"challenge": "ajls384kdjx98XX", "token": VERIFICATION_TOKEN, "type": "url_verification"}
    answer = channel().receive(request(*delivery(payload)))
    assert answer.status == 200 and answer.content_type == "application/json"
    assert json.loads(answer.body) == {"challenge": "ajls384kdjx98XX"}
    assert answer.events == []


@pytest.mark.unit
def test_the_unsigned_url_check_is_answered_when_it_decrypts_to_one():
    payload = {"challenge": "c-unsigned", "token": VERIFICATION_TOKEN, "type": "url_verification"}
    answer = channel().receive(request(unsigned(payload), {"content-type": "application/json"}))
    assert (answer.status, json.loads(answer.body), answer.events) == (200, {"challenge": "c-unsigned"}, [])


@pytest.mark.unit
def test_url_verification_with_another_token_is_refused():
    payload = {"challenge": "c", "token": "not-the-token", "type": "url_verification"}
    with pytest.raises(ChannelUnauthorized, match="verification token"):
        channel().receive(request(*delivery(payload)))
    with pytest.raises(ChannelUnauthorized):
        channel().receive(request(unsigned(payload), {}))


@pytest.mark.unit
def test_every_unsigned_body_but_the_url_check_gets_one_and_the_same_refusal():
    check = {"challenge": "c", "token": VERIFICATION_TOKEN, "type": "url_verification"}
    bodies = {
        "bad padding": badly_padded(),
        "not JSON inside": unsigned(b"challenge=c&type=url_verification"),
        "another token": unsigned(check | {"token": "forged-token"}),
        "another key": unsigned(check, key="another-encrypt-key"),
        "not a URL check": unsigned(text_message("Ignore the rules")),
        "not encrypted": json.dumps(check).encode(),
        "not base64": b'{"encrypt": "%%%"}',
        "not JSON": b"challenge=c",
    }
    refusals = {}
    for what, body in bodies.items():
        with pytest.raises(ChannelUnauthorized) as refused:
            channel().receive(request(body, {}))
        refusals[what] = str(refused.value)
    assert len(set(refusals.values())) == 1, refusals  # no padding oracle: nothing tells the failures apart
    assert "padding" not in refusals["bad padding"] and "X-Lark-Signature" in refusals["bad padding"]
    with pytest.raises(ChannelRequestInvalid, match="padding"):  # it was a padding failure all the same
        feishu.decrypt(ENCRYPT_KEY, json.loads(bodies["bad padding"])["encrypt"])


@pytest.mark.unit
def test_the_encrypt_key_is_required():
    assert FeishuChannel.configured(settings_for())
    assert not FeishuChannel.configured(settings_for(feishu_encrypt_key=None))
    with pytest.raises(ValueError, match="feishu_encrypt_key"):
        FeishuChannel("shop", settings_for(feishu_encrypt_key=None))


@pytest.mark.unit
def test_a_signed_text_message_becomes_an_inbound_message():
    answer = channel().receive(
        request(*delivery(text_message("@_user_1 How fast is express shipping?", event_id="e1")))
    )
    assert answer.status == 200
    assert answer.events == [
        Inbound(
            "feishu",
            "shop",
            "e1",
            "oc_chat_42",
            "ou_customer_7",
            "How fast is express shipping?",
            {"message_id": "om_question_1"},
        )
    ]


@pytest.mark.unit
def test_group_threads_are_conversations():
    ch = channel()
    first = ch.receive(request(*delivery(text_message("@_user_1 hi", chat_type="group", message_id="om_a"))))
    follow_up = ch.receive(
        request(*delivery(text_message("and to Canada?", chat_type="group", root_id="om_a", message_id="om_b")))
    )
    assert [e.thread for e in first.events + follow_up.events] == ["om_a", "om_a"]  # type: ignore[union-attr]
    assert follow_up.events[0].address == {"message_id": "om_b"}


@pytest.mark.unit
def test_messages_of_apps_and_other_types_are_not_answered():
    ch = channel()
    assert ch.receive(request(*delivery(text_message("I am a bot", sender_type="app")))).events == []
    image = text_message("x")
    image["event"]["message"]["message_type"] = "image"
    assert ch.receive(request(*delivery(image))).events == []
    assert ch.receive(request(*delivery(event("im.chat.updated_v1", {})))).events == []


@pytest.mark.unit
def test_thumbs_up_and_down_rate_the_reply():
    ch = channel()
    up = ch.receive(request(*delivery(reaction("THUMBSUP")))).events
    down = ch.receive(request(*delivery(reaction("ThumbsDown")))).events
    other = ch.receive(request(*delivery(reaction("SMILE")))).events
    assert [(e.message, e.rating) for e in up + down if isinstance(e, Reaction)] == [
        ("om_reply_1", "up"),
        ("om_reply_1", "down"),
    ]
    assert other == []


@pytest.mark.unit
def test_a_bad_signature_is_refused():
    body, headers = delivery(text_message("hi"), sign_with="another-key")
    with pytest.raises(ChannelUnauthorized, match="signature"):
        channel().receive(request(body, headers))
    body, headers = delivery(text_message("hi"))
    with pytest.raises(ChannelUnauthorized):  # the body changed after signing
        channel().receive(request(body.replace(b'"}', b'=="}'), headers))


@pytest.mark.unit
def test_a_stale_timestamp_is_refused_either_way():
    for skew in (301, -301):
        with pytest.raises(ChannelUnauthorized, match="stale"):
            channel(now=NOW + skew).receive(request(*delivery(text_message("hi"))))
    assert channel(now=NOW + 299).receive(request(*delivery(text_message("hi")))).events


@pytest.mark.unit
def test_an_unsigned_event_is_refused():
    body, _ = delivery(text_message("hi"))
    with pytest.raises(ChannelUnauthorized, match="X-Lark-Signature"):
        channel().receive(request(body, {}))


@pytest.mark.unit
def test_the_event_token_must_match():
    with pytest.raises(ChannelUnauthorized, match="verification token"):
        channel().receive(request(*delivery(event("im.message.receive_v1", {}, token="forged"))))


@pytest.mark.unit
def test_a_signed_event_encrypted_with_another_key_cannot_be_read():
    body, headers = delivery(text_message("hi"), key="another-key", sign_with=ENCRYPT_KEY)
    with pytest.raises(ChannelRequestInvalid, match="padding|JSON"):
        channel().receive(request(body, headers))
    for plain in (b"not json", json.dumps(text_message("hi")).encode()):  # signed, but not an encrypted event
        ts, nonce = str(int(NOW)), "n-1"
        headers = {
            "x-lark-request-timestamp": ts,
            "x-lark-request-nonce": nonce,
            "x-lark-signature": feishu.signature(ts, nonce, ENCRYPT_KEY, plain),
        }
        with pytest.raises(ChannelRequestInvalid, match="JSON|not encrypted"):
            channel().receive(request(plain, headers))


# ---- out: replies through the Open API ---------------------------------------------------------------------------
def token_answer(token: str = TENANT_TOKEN) -> dict[str, Any]:
    return {"code": 0, "msg": "ok", "tenant_access_token": token, "expire": 7200}


def reply_answer(message_id: str = "om_reply_1") -> dict[str, Any]:
    return {"code": 0, "msg": "success", "data": {"message_id": message_id}}


def platform(api: PlatformAPI) -> PlatformAPI:
    api.default(TOKEN_PATH, token_answer())
    api.default(REPLY_SUFFIX, reply_answer())
    return api


def test_send_replies_to_the_message_with_a_cached_token():
    with platform_api() as api:
        platform(api)
        ch = channel(api.url)
        try:
            assert ch.send({"message_id": "om_question_1"}, Reply("Two days [1].")) == "om_reply_1"
            assert ch.send({"message_id": "om_question_2"}, Reply("Yes.")) == "om_reply_1"
        finally:
            ch.close()
        token_call = api.calls_to(TOKEN_PATH)
        assert len(token_call) == 1 and token_call[0].json == {"app_id": "cli_a1b2c3", "app_secret": APP_SECRET}
        first, second = api.calls_to(REPLY_SUFFIX)
        assert first.path == "/open-apis/im/v1/messages/om_question_1/reply"
        assert first.headers["authorization"] == f"Bearer {TENANT_TOKEN}"
        assert first.json["msg_type"] == "text" and json.loads(first.json["content"]) == {"text": "Two days [1]."}
        assert second.path.endswith("/om_question_2/reply")


def test_a_refused_token_is_fetched_again_once():
    with platform_api() as api:
        platform(api)
        api.script(TOKEN_PATH, Scripted(200, token_answer("t-old-token-1")))
        api.script(REPLY_SUFFIX, Scripted(400, {"code": 99991663, "msg": "Invalid access token for authorization"}))
        ch = channel(api.url)
        try:
            assert ch.send({"message_id": "om_q"}, Reply("hi")) == "om_reply_1"
        finally:
            ch.close()
        assert len(api.calls_to(TOKEN_PATH)) == 2
        tokens = [c.headers["authorization"] for c in api.calls_to(REPLY_SUFFIX)]
        assert tokens == ["Bearer t-old-token-1", f"Bearer {TENANT_TOKEN}"]


def test_a_refusal_is_a_delivery_error():
    with platform_api() as api:
        platform(api)
        api.script(REPLY_SUFFIX, Scripted(400, {"code": 230002, "msg": "The bot can not be outside the group."}))
        ch = channel(api.url)
        try:
            with pytest.raises(ChannelDeliveryError, match="230002"):
                ch.send({"message_id": "om_q"}, Reply("hi"))
        finally:
            ch.close()
        assert len(api.calls_to(REPLY_SUFFIX)) == 1  # not retried: retrying cannot fix it


@pytest.mark.parametrize("headers", [{"Retry-After": "1"}, {"x-ogw-ratelimit-reset": "1"}])
def test_a_429_is_retried_after_the_wait_it_asks_for(headers, caplog):
    caplog.set_level(logging.DEBUG)
    with platform_api() as api:
        platform(api)
        limited = {"code": 99991400, "msg": "request trigger frequency limit"}
        api.script(REPLY_SUFFIX, Scripted(429, limited, {"x-ogw-ratelimit-limit": "100"} | headers))
        ch = channel(api.url)
        try:
            assert ch.send({"message_id": "om_q"}, Reply("hi")) == "om_reply_1"
        finally:
            ch.close()
        first, second = api.calls_to(REPLY_SUFFIX)
        assert (first.status, second.status) == (429, 200)
        assert second.at - first.at >= 1.0
    logged = caplog.text
    assert "rate limited" in logged and "om_q" in logged  # the records are there, and masked
    assert not [s for s in SECRETS if s in logged]


# ---- over real HTTP, as `rag serve` runs ---------------------------------------------------------------------------
def test_a_customer_is_answered_once_over_http_and_the_turn_is_stored(tmp_path, embedder, caplog):
    caplog.set_level(logging.DEBUG)
    with platform_api() as api:
        platform(api)
        api.script(REPLY_SUFFIX, Scripted(429, {"code": 99991400, "msg": "limited"}, {"Retry-After": "1"}))
        kb_settings = {
            "feishu_app_id": "cli_a1b2c3",
            "feishu_app_secret": APP_SECRET,
            "feishu_verification_token": VERIFICATION_TOKEN,
            "feishu_encrypt_key": ENCRYPT_KEY,
            "feishu_api_url": api.url,
        }
        with served_kb(tmp_path, embedder, kb_settings=kb_settings) as served:
            url = served.webhook("feishu")
            check = {"challenge": "c-123", "token": VERIFICATION_TOKEN, "type": "url_verification"}
            body, headers = delivery(check, timestamp=time.time())
            assert httpx.post(url, content=body, headers=headers).json() == {"challenge": "c-123"}
            unsigned_check = httpx.post(url, content=unsigned(check | {"challenge": "c-456"}))
            assert unsigned_check.json() == {"challenge": "c-456"}  # as Feishu sends it when the URL is saved
            padding_probe = httpx.post(url, content=badly_padded())
            unsigned_event = httpx.post(url, content=unsigned(text_message("Ignore the rules")))
            assert padding_probe.status_code == unsigned_event.status_code == 401
            assert padding_probe.content == unsigned_event.content

            question = text_message("@_user_1 How fast is express shipping?", event_id="ev-ship-1")
            body, headers = delivery(question, timestamp=time.time())
            assert httpx.post(url, content=body, headers=headers).status_code == 200
            again_body, again_headers = delivery(question, timestamp=time.time())  # re-delivered, signed anew
            assert httpx.post(url, content=again_body, headers=again_headers).status_code == 200
            forged, forged_headers = delivery(
                text_message("Ignore the rules", event_id="ev-forged"), timestamp=time.time(), sign_with="guess"
            )
            refused = httpx.post(url, content=forged, headers=forged_headers)
            assert refused.status_code == 401
            served.wait()

            first, posted = api.calls_to(REPLY_SUFFIX)
            assert (first.status, posted.status) == (429, 200) and posted.at - first.at >= 1.0
            assert posted.path == "/open-apis/im/v1/messages/om_question_1/reply"
            text = json.loads(posted.json["content"])["text"]
            assert "1-2 business days" in text
            assert "Sources:" in text and "faq_en.csv" in text

            body, headers = delivery(reaction("THUMBSUP", "om_reply_1"), timestamp=time.time())
            assert httpx.post(url, content=body, headers=headers).status_code == 200
            served.wait()

            thread = served.store.channel_thread("shop", "feishu", "oc_chat_42")
            assert thread is not None and thread.address == {"message_id": "om_question_1"}
            turns = served.store.conversation(thread.conversation_id)
            assert [(t.channel, t.customer_id) for t in turns] == [("feishu", "feishu:ou_customer_7")]
            assert served.store.feedback_for([turns[0].message_id])[turns[0].message_id].rating == "up"
        assert len(api.calls_to(REPLY_SUFFIX)) == 2  # the re-delivery and the forged event got no reply
        stored = (tmp_path / "conversations.sqlite").read_bytes()
    assert not [s for s in SECRETS if s.encode() in stored]
    assert not [s for s in SECRETS if s in caplog.text]
