"""Telegram's Bot API webhook channel: updates carrying setWebhook's secret token, replies sent to a local
stand-in of the Bot API (rating buttons, 429 retry_after, the token kept out of the logs although it is in every
URL), and the whole product answering over real HTTP."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from rag.channels.base import (
    ChannelDeliveryError,
    ChannelRequestInvalid,
    ChannelUnauthorized,
    Inbound,
    Reply,
    WebhookRequest,
)
from rag.channels.formatting import split_message, utf16_len
from rag.channels.telegram import TelegramChannel, retry_hint
from rag.core.settings import Settings
from rag.core.types import Answer
from tests.rag.channels.platform import PlatformAPI, Scripted, platform_api

TOKEN = "7123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw4"
SECRET = "sh0p-webhook_S3cret"
CHAT = 412_345_678


def settings(api_url: str = "http://127.0.0.1:9", **more: Any) -> Settings:
    return Settings(
        _env_file=None, telegram_bot_token=TOKEN, telegram_secret_token=SECRET, telegram_api_url=api_url, **more
    )


def update(update_id: int, **content: Any) -> dict[str, Any]:
    return {"update_id": update_id, **content}


def text_message(text: str, message_id: int = 11, *, chat: int = CHAT, **sender: Any) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "from": {"id": chat, "is_bot": False, "first_name": "Ana", "language_code": "en", **sender},
        "chat": {"id": chat, "first_name": "Ana", "type": "private"},
        "date": 1_700_000_000,
        "text": text,
    }


def button(data: str, on_message: int = 12, query_id: str = "4382bfdwdsb323b2d9") -> dict[str, Any]:
    """A press of an inline button under the bot's message `on_message`."""
    return {
        "id": query_id,
        "from": {"id": CHAT, "is_bot": False, "first_name": "Ana", "language_code": "en"},
        "message": {
            "message_id": on_message,
            "from": {"id": 7123456789, "is_bot": True, "first_name": "Shop"},
            "chat": {"id": CHAT, "type": "private"},
            "date": 1_700_000_001,
            "text": "Express takes 1-2 business days.",
        },
        "chat_instance": "-3557473125846573893",
        "data": data,
    }


def request(payload: Any, secret: str | None = SECRET) -> WebhookRequest:
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers["x-telegram-bot-api-secret-token"] = secret
    return WebhookRequest("POST", headers, {}, json.dumps(payload).encode(), 0.0)


@pytest.fixture
def telegram() -> Iterator[TelegramChannel]:
    channel = TelegramChannel("shop", settings())
    yield channel
    channel.close()


# ---- the secret token and parsing (pure) --------------------------------------------------------------------
@pytest.mark.unit
@pytest.mark.parametrize("secret", [None, "", "sh0p-webhook_S3cre", "sh0p-webhook_S3cret2"])
def test_an_update_without_the_secret_token_is_refused(telegram, secret):
    with pytest.raises(ChannelUnauthorized, match="secret_token"):
        telegram.receive(request(update(1, message=text_message("hi")), secret=secret))


@pytest.mark.unit
def test_a_text_message_is_a_question_of_its_chat(telegram):
    answer = telegram.receive(request(update(900_001, message=text_message(" How fast is express shipping? "))))
    assert answer.status == 200 and answer.body == b""
    assert answer.events == [
        Inbound(
            channel="telegram",
            kb_id="shop",
            event_id="900001",
            thread=str(CHAT),
            user=str(CHAT),
            text="How fast is express shipping?",
            address={"chat_id": CHAT, "reply_to_message_id": 11},
        )
    ]


@pytest.mark.unit
@pytest.mark.parametrize(("command", "language"), [("/start", "en"), ("/start@PinecrestBot", "en"), ("/help", "zh")])
def test_start_and_help_are_greeted_in_the_webhook_answer_without_a_search(telegram, command, language):
    answer = telegram.receive(request(update(2, message=text_message(command, language_code=language))))
    assert answer.events == [] and answer.content_type == "application/json"
    call = json.loads(answer.body)
    assert call["method"] == "sendMessage" and call["chat_id"] == CHAT
    assert ("您好" in call["text"]) == (language == "zh")


@pytest.mark.unit
@pytest.mark.parametrize(
    "content",
    [
        pytest.param({"message": text_message("spam", is_bot=True)}, id="a-bot"),
        pytest.param({"message": {**text_message(""), "text": None, "sticker": {"file_id": "x"}}}, id="a-sticker"),
        pytest.param({"edited_message": text_message("typo fixed")}, id="an-edit"),
        pytest.param({"my_chat_member": {"chat": {"id": CHAT}}}, id="a-membership"),
    ],
)
def test_what_is_not_a_question_is_acknowledged_and_ignored(telegram, content):
    answer = telegram.receive(request(update(3, **content)))
    assert (answer.status, answer.body, answer.events) == (200, b"", [])


@pytest.mark.unit
@pytest.mark.parametrize(("data", "rating"), [("up:5f2c9a", "up"), ("down:5f2c9a", "down")])
def test_a_rating_button_rates_the_message_it_is_under_and_is_acknowledged(telegram, data, rating):
    answer = telegram.receive(request(update(4, callback_query=button(data, on_message=12))))
    (reaction,) = answer.events
    assert (reaction.event_id, reaction.message, reaction.rating) == ("4", f"{CHAT}:12", rating)
    call = json.loads(answer.body)
    assert call["method"] == "answerCallbackQuery" and call["callback_query_id"] == "4382bfdwdsb323b2d9"


@pytest.mark.unit
def test_a_button_that_is_not_ours_is_only_acknowledged(telegram):
    answer = telegram.receive(request(update(5, callback_query=button("size:XL"))))
    assert answer.events == []
    assert json.loads(answer.body) == {"method": "answerCallbackQuery", "callback_query_id": "4382bfdwdsb323b2d9"}


@pytest.mark.unit
@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"message": {}}'])
def test_an_update_that_cannot_be_read_is_invalid(telegram, body):
    with pytest.raises(ChannelRequestInvalid):
        telegram.receive(WebhookRequest("POST", {"x-telegram-bot-api-secret-token": SECRET}, {}, body, 0.0))


@pytest.mark.unit
def test_telegrams_slow_down_is_read_from_the_body():
    slow = httpx.Response(429, json={"ok": False, "error_code": 429, "parameters": {"retry_after": 7}})
    assert retry_hint(slow) == 7.0
    assert retry_hint(httpx.Response(200, json={"ok": True, "result": {}})) is None
    assert retry_hint(httpx.Response(400, json={"ok": False, "description": "Bad Request"})) is None
    assert retry_hint(httpx.Response(502, text="<html>bad gateway</html>")) is None


@pytest.mark.unit
def test_long_text_is_cut_at_line_breaks_within_telegrams_count():
    paragraph = "Returns are free within 30 days. 👍\n"
    text = (paragraph * 200).strip()
    parts = split_message(text, 4096, utf16_len)
    assert len(parts) == 2 and all(utf16_len(p) <= 4096 for p in parts)
    assert all(p.endswith("👍") for p in parts)  # cut at a line break, the emoji whole
    assert "\n".join(parts) == text
    assert split_message("x" * 9, 4) == ["xxxx", "xxxx", "x"]  # no space to cut at: cut anyway


@pytest.mark.unit
def test_configured_needs_the_token_and_the_secret_token():
    assert TelegramChannel.configured(settings())
    assert not TelegramChannel.configured(Settings(_env_file=None, telegram_bot_token=TOKEN))


@pytest.mark.unit
@pytest.mark.parametrize("secret", ["x", "sh0p-webhook_S3", "sh0p webhook S3cret", "x" * 257])
def test_a_short_or_malformed_secret_token_is_refused(secret):
    """Telegram accepts a secret_token of 1 character; one that short would be guessed."""
    assert len(SECRET) >= 16
    with pytest.raises(ValidationError, match="telegram_secret_token must be 16 to 256"):
        Settings(_env_file=None, telegram_bot_token=TOKEN, telegram_secret_token=secret)


# ---- replies against a stand-in of the Bot API --------------------------------------------------------------
def sent(message_id: int) -> dict[str, Any]:
    return {"ok": True, "result": {"message_id": message_id, "chat": {"id": CHAT, "type": "private"}, "date": 1}}


@pytest.fixture
def api() -> Iterator[PlatformAPI]:
    with platform_api() as api:
        api.default("/sendMessage", sent(12))
        yield api


@pytest.fixture
def sending(api) -> Iterator[TelegramChannel]:
    channel = TelegramChannel("shop", settings(api.url, channel_send_retries=3))
    yield channel
    channel.close()


def answer(text: str, message_id: str = "5f2c9a0d1e") -> Answer:
    return Answer("q", text, True, False, [], [], "extractive", "en", message_id=message_id)


def test_an_answer_replies_to_the_question_with_rating_buttons(api, sending):
    reply = Reply("Express takes 1-2 business days.", answer("Express takes 1-2 business days."), feedback=True)
    assert sending.send({"chat_id": CHAT, "reply_to_message_id": 11}, reply) == f"{CHAT}:12"
    (call,) = api.calls_to("/sendMessage")
    assert call.path == f"/bot{TOKEN}/sendMessage"
    assert call.json["chat_id"] == CHAT and call.json["text"] == "Express takes 1-2 business days."
    assert call.json["reply_parameters"] == {"message_id": 11, "allow_sending_without_reply": True}
    buttons = call.json["reply_markup"]["inline_keyboard"][0]
    assert [(b["text"], b["callback_data"]) for b in buttons] == [("👍", "up:5f2c9a0d1e"), ("👎", "down:5f2c9a0d1e")]


def test_a_persons_reply_has_no_buttons(api, sending):
    sending.send({"chat_id": CHAT, "reply_to_message_id": None}, Reply("Hi, this is Sam from support."))
    (call,) = api.calls_to("/sendMessage")
    assert "reply_markup" not in call.json and "reply_parameters" not in call.json


def test_a_long_answer_is_sent_in_parts_the_buttons_under_the_last(api, sending):
    api.script("/sendMessage", Scripted(200, sent(20)))
    text = ("Our warranty covers manufacturing defects for two years.\n" * 100).strip()  # ~5,800 characters
    assert sending.send({"chat_id": CHAT, "reply_to_message_id": 11}, Reply(text, answer(text), True)) == f"{CHAT}:12"
    first, last = (c.json for c in api.calls_to("/sendMessage"))
    assert "reply_parameters" in first and "reply_markup" not in first
    assert "reply_parameters" not in last and "reply_markup" in last
    assert len(first["text"]) <= 4096 and first["text"] + "\n" + last["text"] == text


@pytest.mark.parametrize(
    "slow_down",
    [
        pytest.param(Scripted(429, {"ok": False, "error_code": 429, "parameters": {"retry_after": 1}}), id="body"),
        pytest.param(Scripted(429, {"ok": False, "error_code": 429}, {"Retry-After": "1"}), id="header"),
    ],
)
def test_a_429_is_retried_after_the_seconds_telegram_asks(api, sending, slow_down):
    api.script("/sendMessage", slow_down)
    assert sending.send({"chat_id": CHAT}, Reply("hello")) == f"{CHAT}:12"
    first, second = api.calls_to("/sendMessage")
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 1.0


def test_server_errors_are_retried_with_growing_waits(api, sending):
    api.script("/sendMessage", Scripted(502, {"ok": False}), Scripted(500, {"ok": False}))
    assert sending.send({"chat_id": CHAT}, Reply("hello"))
    first, second, third = api.calls_to("/sendMessage")
    assert second.at - first.at >= 0.5 and third.at - second.at >= 1.0


def test_the_token_in_every_url_never_reaches_the_logs(api, sending, caplog):
    caplog.set_level(logging.DEBUG)
    blocked = {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}
    api.script("/sendMessage", Scripted(503, {"ok": False}), Scripted(403, blocked))
    with pytest.raises(ChannelDeliveryError, match="blocked by the user") as refused:
        sending.send({"chat_id": CHAT}, Reply("hello"))
    logged = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert logged and all("/bot***/sendMessage" in m for m in logged)  # httpx logged each URL, masked
    assert TOKEN not in caplog.text and TOKEN.split(":")[1] not in caplog.text and SECRET not in caplog.text
    assert TOKEN not in str(refused.value)


# ---- end to end: the product served over HTTP ---------------------------------------------------------------
SHIPPING = "How fast is express shipping?"


def deliver(served, payload: Any, secret: str = SECRET) -> httpx.Response:
    headers = {"content-type": "application/json", "x-telegram-bot-api-secret-token": secret}
    return httpx.post(served.webhook("telegram"), content=json.dumps(payload), headers=headers, timeout=30)


@pytest.fixture
def served(tmp_path, embedder, api):
    from tests.rag.channels.serving import served_kb  # the whole product: imported by the tests that serve it

    kb_settings = {"telegram_bot_token": TOKEN, "telegram_secret_token": SECRET, "telegram_api_url": api.url}
    with served_kb(tmp_path, embedder, kb_settings, channel_send_retries=3) as served:
        yield served


def test_a_message_is_answered_citing_a_source(served, api):
    assert deliver(served, update(1, message=text_message(SHIPPING, 11))).status_code == 200
    served.wait()
    (call,) = api.calls_to("/sendMessage")
    assert call.json["chat_id"] == CHAT and call.json["reply_parameters"]["message_id"] == 11
    assert "1-2 business days" in call.json["text"]
    assert "Sources:" in call.json["text"] and "faq_en.csv" in call.json["text"]
    assert call.json["reply_markup"]["inline_keyboard"][0][0]["text"] == "👍"


def test_a_wrong_secret_token_is_refused_and_nothing_is_sent(served, api):
    assert deliver(served, update(1, message=text_message(SHIPPING)), secret="guessed").status_code == 401
    served.wait()
    assert api.calls == []


def test_start_is_greeted_in_the_http_answer_each_time_it_comes(served, api):
    for _ in range(2):  # a re-delivery is greeted again (no dedupe for the greeting: harmless)
        response = deliver(served, update(1, message=text_message("/start")))
        assert response.status_code == 200 and response.json()["method"] == "sendMessage"
    served.wait()
    assert api.calls == []


def test_an_update_delivered_twice_is_answered_once(served, api):
    for _ in range(2):
        assert deliver(served, update(7, message=text_message(SHIPPING))).status_code == 200
    served.wait()
    assert len(api.calls_to("/sendMessage")) == 1


def test_a_429_from_telegram_is_retried_after_retry_after(served, api):
    api.script("/sendMessage", Scripted(429, {"ok": False, "error_code": 429, "parameters": {"retry_after": 1}}))
    assert deliver(served, update(1, message=text_message(SHIPPING))).status_code == 200
    served.wait()
    first, second = api.calls_to("/sendMessage")
    assert (first.status, second.status) == (429, 200) and second.at - first.at >= 1.0


def test_a_follow_up_in_the_chat_continues_the_conversation_and_a_button_rates_the_reply(served, api, tmp_path):
    api.script("/sendMessage", Scripted(200, sent(12)), Scripted(200, sent(14)))
    deliver(served, update(1, message=text_message(SHIPPING, 11)))
    served.wait()
    deliver(served, update(2, message=text_message("And to Canada?", 13)))
    served.wait()
    assert [c.json["reply_parameters"]["message_id"] for c in api.calls_to("/sendMessage")] == [11, 13]

    thread = served.store.channel_thread("shop", "telegram", str(CHAT))
    assert thread is not None and thread.address == {"chat_id": CHAT, "reply_to_message_id": 13}
    turns = served.store.conversation(thread.conversation_id)
    assert [t.question for t in turns] == [SHIPPING, "And to Canada?"]
    assert {(t.channel, t.customer_id) for t in turns} == {("telegram", f"telegram:{CHAT}")}

    first_buttons = api.calls_to("/sendMessage")[0].json["reply_markup"]["inline_keyboard"][0]
    pressed = deliver(served, update(3, callback_query=button(first_buttons[1]["callback_data"], on_message=12)))
    assert pressed.json()["method"] == "answerCallbackQuery"
    served.wait()
    rated = served.store.feedback_for([t.message_id for t in turns])
    assert {m: f.rating for m, f in rated.items()} == {turns[0].message_id: "down"}

    stored = b"".join(p.read_bytes() for p in tmp_path.glob("conversations.sqlite*"))
    assert TOKEN.encode() not in stored and SECRET.encode() not in stored
