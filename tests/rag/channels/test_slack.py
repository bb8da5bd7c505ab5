"""Slack's Events API channel: deliveries signed as Slack's documentation describes (checked against its worked
example), replies posted to a local stand-in of the Web API, and the whole product answering over real HTTP."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from rag.channels.base import (
    ChannelDeliveryError,
    ChannelRequestInvalid,
    ChannelUnauthorized,
    Inbound,
    Reaction,
    Reply,
    WebhookRequest,
)
from rag.channels.slack import SlackChannel, escape, question_text, signature
from rag.core.settings import Settings
from tests.rag.channels.platform import PlatformAPI, Scripted, platform_api

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TOKEN = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"
NOW = 1_700_000_000.0
BOT = "U0BOT"


def settings(api_url: str = "http://127.0.0.1:9", **more: Any) -> Settings:
    return Settings(_env_file=None, slack_signing_secret=SECRET, slack_bot_token=TOKEN, slack_api_url=api_url, **more)


def signed(payload: Any, *, at: float = NOW, secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    """A delivery's body and headers, signed as Slack signs them."""
    body = json.dumps(payload).encode()
    timestamp = str(int(at))
    headers = {"x-slack-request-timestamp": timestamp, "x-slack-signature": signature(secret, timestamp, body)}
    return body, headers


def request(payload: Any, **signing: Any) -> WebhookRequest:
    body, headers = signed(payload, **signing)
    return WebhookRequest("POST", headers, {}, body, NOW)


def callback(event: dict[str, Any], event_id: str = "Ev01") -> dict[str, Any]:
    """An event_callback envelope, as the Events API wraps every event."""
    return {
        "token": "legacy-verification-token",
        "team_id": "T0SHOP",
        "api_app_id": "A0APP",
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(NOW),
        "authorizations": [{"team_id": "T0SHOP", "user_id": BOT, "is_bot": True}],
    }


def message(text: str, *, ts: str = "1700000000.000100", channel: str = "D0DM", **more: Any) -> dict[str, Any]:
    return {"type": "message", "channel": channel, "user": "U0CUSTOMER", "text": text, "ts": ts, **more}


@pytest.fixture
def slack() -> Iterator[SlackChannel]:
    channel = SlackChannel("shop", settings(), clock=lambda: NOW)
    yield channel
    channel.close()


# ---- signatures and parsing (pure) -------------------------------------------------------------------------
@pytest.mark.unit
def test_the_signature_is_the_one_of_slacks_worked_example():
    # docs: "Verifying requests from Slack" (a slash command's form body, signed the same way as events)
    body = (
        "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
        "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
        "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
        "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    assert signature("8f742231b10e8888abcd99yyyzzz85a5", "1531420618", body.encode()) == expected


@pytest.mark.unit
def test_url_verification_is_answered_with_its_challenge_once_signed(slack):
    challenge = {
        "token": "t",
        "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
        "type": "url_verification",
    }
    answer = slack.receive(request(challenge))
    assert (answer.status, answer.body, answer.events) == (200, challenge["challenge"].encode(), [])
    with pytest.raises(ChannelUnauthorized):
        slack.receive(request(challenge, secret="not-the-signing-secret"))


@pytest.mark.unit
@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda r: WebhookRequest("POST", r.headers, {}, r.body + b" ", NOW), id="body-changed"),
        pytest.param(lambda r: WebhookRequest("POST", {}, {}, r.body, NOW), id="unsigned"),
        pytest.param(
            lambda r: WebhookRequest("POST", {**r.headers, "x-slack-signature": "v0=" + "0" * 64}, {}, r.body, NOW),
            id="wrong-signature",
        ),
        pytest.param(
            lambda r: WebhookRequest("POST", {**r.headers, "x-slack-request-timestamp": "soon"}, {}, r.body, NOW),
            id="timestamp-not-a-number",
        ),
    ],
)
def test_a_delivery_that_does_not_check_out_is_refused(slack, tamper):
    good = request(callback(message("Do you ship to Norway?")))
    assert slack.receive(good).events  # the untampered one passes
    with pytest.raises(ChannelUnauthorized):
        slack.receive(tamper(good))


@pytest.mark.unit
def test_a_stale_or_future_timestamp_is_refused_even_when_signed_correctly(slack):
    skew = settings().channel_max_clock_skew
    payload = callback(message("Do you ship to Norway?"))
    assert slack.receive(request(payload, at=NOW - skew + 5)).events
    for at in (NOW - skew - 5, NOW + skew + 5):
        with pytest.raises(ChannelUnauthorized, match="timestamp"):
            slack.receive(request(payload, at=at))


@pytest.mark.unit
def test_a_signed_delivery_that_is_not_json_is_invalid(slack):
    timestamp = str(int(NOW))
    body = b"payload=%7B%7D"
    headers = {"x-slack-request-timestamp": timestamp, "x-slack-signature": signature(SECRET, timestamp, body)}
    with pytest.raises(ChannelRequestInvalid):
        slack.receive(WebhookRequest("POST", headers, {}, body, NOW))


@pytest.mark.unit
def test_a_direct_message_becomes_a_question_in_its_own_thread(slack):
    answer = slack.receive(request(callback(message("How fast is express shipping?", ts="1700000000.000100"))))
    assert answer.status == 200 and answer.body == b""
    assert answer.events == [
        Inbound(
            channel="slack",
            kb_id="shop",
            event_id="D0DM:1700000000.000100",
            thread="D0DM:1700000000.000100",
            user="U0CUSTOMER",
            text="How fast is express shipping?",
            address={"channel": "D0DM", "thread_ts": "1700000000.000100"},
        )
    ]


@pytest.mark.unit
def test_a_reply_in_a_thread_belongs_to_the_threads_conversation(slack):
    follow_up = message("And to Canada?", ts="1700000050.000200", thread_ts="1700000000.000100")
    (event,) = slack.receive(request(callback(follow_up))).events
    assert isinstance(event, Inbound)
    assert event.thread == "D0DM:1700000000.000100"
    assert event.address == {"channel": "D0DM", "thread_ts": "1700000000.000100"}


@pytest.mark.unit
def test_a_mention_arrives_twice_but_is_one_question_without_the_mention(slack):
    said = "<@U0BOT> Do you ship to &lt;PO boxes&gt;?"
    mention = {**message(said, channel="C0SUPPORT"), "type": "app_mention"}
    (as_mention,) = slack.receive(request(callback(mention, "Ev01"))).events
    (as_message,) = slack.receive(request(callback(message(said, channel="C0SUPPORT"), "Ev02"))).events
    assert isinstance(as_mention, Inbound) and as_mention.text == "Do you ship to <PO boxes>?"
    assert as_mention.event_id == as_message.event_id  # the bridge answers it once


@pytest.mark.unit
@pytest.mark.parametrize(
    "event",
    [
        pytest.param(message("Order shipped", bot_id="B0OTHER", subtype="bot_message"), id="another-bot"),
        pytest.param(message("Order shipped", bot_id="B0OTHER"), id="bot-without-subtype"),
        pytest.param({**message("Our answer"), "user": BOT}, id="ourselves"),
        pytest.param(message("edited", subtype="message_changed"), id="an-edit"),
        pytest.param(message("", subtype="channel_join"), id="a-join"),
        pytest.param(message("<@U0BOT>"), id="only-a-mention"),
        pytest.param({"type": "reaction_added", "reaction": "tada", "item": {"type": "message"}}, id="other-emoji"),
        pytest.param({"type": "team_join", "user": {"id": "U1"}}, id="other-event"),
    ],
)
def test_what_is_not_a_persons_question_or_rating_is_acknowledged_and_ignored(slack, event):
    answer = slack.receive(request(callback(event)))
    assert (answer.status, answer.events) == (200, [])


@pytest.mark.unit
@pytest.mark.parametrize(
    ("emoji", "rating"), [("+1", "up"), ("thumbsup", "up"), ("-1::skin-tone-3", "down"), ("thumbsdown", "down")]
)
def test_a_thumb_on_a_message_rates_it(slack, emoji, rating):
    reacted = {
        "type": "reaction_added",
        "user": "U0CUSTOMER",
        "reaction": emoji,
        "item_user": BOT,
        "item": {"type": "message", "channel": "D0DM", "ts": "1700000001.000300"},
        "event_ts": "1700000009.000400",
    }
    assert slack.receive(request(callback(reacted, "Ev09"))).events == [
        Reaction("slack", "shop", "Ev09", "D0DM:1700000001.000300", rating, {"channel": "D0DM"})
    ]


@pytest.mark.unit
def test_slack_markup_is_read_as_text_and_written_escaped():
    assert question_text("<@U0BOT|bot>  <mailto:help@shop.example|help@shop.example> &amp; more") == (
        "help@shop.example & more"
    )
    assert escape("<b> & </b>") == "&lt;b&gt; &amp; &lt;/b&gt;"


@pytest.mark.unit
def test_configured_needs_both_credentials():
    assert SlackChannel.configured(settings())
    assert not SlackChannel.configured(Settings(_env_file=None, slack_signing_secret=SECRET))
    assert not SlackChannel.configured(Settings(_env_file=None, slack_bot_token=TOKEN))


# ---- replies against a stand-in of the Web API -------------------------------------------------------------
@pytest.fixture
def api() -> Iterator[PlatformAPI]:
    with platform_api() as api:
        api.default("/chat.postMessage", {"ok": True, "channel": "D0DM", "ts": "1700000001.000300"})
        yield api


@pytest.fixture
def posting(api) -> Iterator[SlackChannel]:
    channel = SlackChannel("shop", settings(api.url, channel_send_retries=3))
    yield channel
    channel.close()


def test_a_reply_is_posted_in_the_thread_with_the_bot_token(api, posting):
    posted = posting.send({"channel": "D0DM", "thread_ts": "1700000000.000100"}, Reply("Free returns <30 days> & more"))
    (call,) = api.calls_to("/chat.postMessage")
    assert posted == "D0DM:1700000001.000300"  # what a reaction to it names
    assert call.headers["authorization"] == f"Bearer {TOKEN}"
    assert call.json == {
        "channel": "D0DM",
        "thread_ts": "1700000000.000100",
        "text": "Free returns &lt;30 days&gt; &amp; more",
        "unfurl_links": False,
    }


def test_a_429_is_retried_after_the_seconds_its_retry_after_asks(api, posting):
    api.script("/chat.postMessage", Scripted(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}))
    assert posting.send({"channel": "D0DM", "thread_ts": "1.1"}, Reply("hello")) == "D0DM:1700000001.000300"
    first, second = api.calls_to("/chat.postMessage")
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 1.0


def test_server_errors_are_retried_with_growing_waits(api, posting):
    api.script("/chat.postMessage", Scripted(503, {"ok": False}), Scripted(502, {"ok": False}))
    assert posting.send({"channel": "D0DM", "thread_ts": "1.1"}, Reply("hello"))
    first, second, third = api.calls_to("/chat.postMessage")
    assert second.at - first.at >= 0.5 and third.at - second.at >= 1.0  # 0.5 s, then twice that


def test_a_refusal_says_how_to_fix_it_and_no_token_reaches_the_logs(api, posting, caplog):
    caplog.set_level(logging.DEBUG)
    api.script(
        "/chat.postMessage", Scripted(500, {"ok": False}), Scripted(200, {"ok": False, "error": "not_in_channel"})
    )
    with pytest.raises(ChannelDeliveryError, match=r"not_in_channel - invite the app"):
        posting.send({"channel": "C0SUPPORT", "thread_ts": "1.1"}, Reply("hello"))
    assert any(r.name == "httpx" for r in caplog.records)  # the requests were logged...
    assert "retrying" in caplog.text
    assert TOKEN not in caplog.text and SECRET not in caplog.text  # ...without the credentials


def test_an_answer_longer_than_slack_takes_is_posted_in_parts(api, posting):
    long = ("Our warranty covers manufacturing defects for two years. " * 800).strip()  # ~45,000 characters
    posting.send({"channel": "D0DM", "thread_ts": "1.1"}, Reply(long))
    parts = [c.json["text"] for c in api.calls_to("/chat.postMessage")]
    assert len(parts) == 2 and all(len(p) <= 40_000 for p in parts)
    assert " ".join(parts) == long


# ---- end to end: the product served over HTTP ---------------------------------------------------------------
SHIPPING = "How fast is express shipping?"


def deliver(served, payload: Any, *, secret: str = SECRET, retry: int | None = None) -> httpx.Response:
    body, headers = signed(payload, at=time.time(), secret=secret)
    headers["content-type"] = "application/json"
    if retry is not None:  # what Slack adds to a re-delivery
        headers |= {"x-slack-retry-num": str(retry), "x-slack-retry-reason": "http_timeout"}
    return httpx.post(served.webhook("slack"), content=body, headers=headers, timeout=30)


@pytest.fixture
def served(tmp_path, embedder, api):
    from tests.rag.channels.serving import served_kb  # the whole product: imported by the tests that serve it

    kb_settings = {"slack_signing_secret": SECRET, "slack_bot_token": TOKEN, "slack_api_url": api.url}
    with served_kb(tmp_path, embedder, kb_settings, channel_send_retries=3) as served:
        yield served


def test_a_signed_message_is_answered_in_its_thread_citing_a_source(served, api):
    assert deliver(served, callback(message(SHIPPING, ts="1700000000.000100"))).status_code == 200
    served.wait()
    (call,) = api.calls_to("/chat.postMessage")
    assert call.json["channel"] == "D0DM" and call.json["thread_ts"] == "1700000000.000100"
    assert "1-2 business days" in call.json["text"]
    assert "Sources:" in call.json["text"] and "faq_en.csv" in call.json["text"]


def test_the_url_verification_challenge_is_answered_over_http(served, api):
    response = deliver(served, {"token": "t", "challenge": "c-123", "type": "url_verification"})
    assert (response.status_code, response.text) == (200, "c-123")


def test_a_bad_signature_is_refused_and_nothing_is_posted(served, api):
    response = deliver(served, callback(message(SHIPPING)), secret="a-guess-at-the-secret")
    assert response.status_code == 401
    served.wait()
    assert api.calls == []


def test_a_delivery_made_twice_is_answered_once(served, api):
    event = callback(message(SHIPPING), "Ev0DUP")
    assert deliver(served, event).status_code == 200
    assert deliver(served, event, retry=1).status_code == 200
    served.wait()
    assert len(api.calls_to("/chat.postMessage")) == 1


def test_a_429_from_slack_is_retried_after_retry_after(served, api):
    api.script("/chat.postMessage", Scripted(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}))
    assert deliver(served, callback(message(SHIPPING))).status_code == 200
    served.wait()
    first, second = api.calls_to("/chat.postMessage")
    assert (first.status, second.status) == (429, 200) and second.at - first.at >= 1.0
    assert second.json == first.json  # the same reply, posted once it could be


def test_a_follow_up_in_the_thread_continues_the_conversation_and_a_thumb_rates_the_reply(served, api, tmp_path):
    api.script("/chat.postMessage", Scripted(200, {"ok": True, "channel": "D0DM", "ts": "1700000001.000111"}))
    deliver(served, callback(message(SHIPPING, ts="1700000000.000100"), "Ev1"))
    served.wait()
    follow_up = message("And to Canada?", ts="1700000050.000200", thread_ts="1700000000.000100")
    deliver(served, callback(follow_up, "Ev2"))
    served.wait()
    replies = api.calls_to("/chat.postMessage")
    assert [c.json["thread_ts"] for c in replies] == ["1700000000.000100"] * 2

    thread = served.store.channel_thread("shop", "slack", "D0DM:1700000000.000100")
    assert thread is not None and thread.address == {"channel": "D0DM", "thread_ts": "1700000000.000100"}
    turns = served.store.conversation(thread.conversation_id)
    assert [t.question for t in turns] == [SHIPPING, "And to Canada?"]
    assert {(t.channel, t.customer_id) for t in turns} == {("slack", "slack:U0CUSTOMER")}

    thumb = {
        "type": "reaction_added",
        "user": "U0CUSTOMER",
        "reaction": "+1",
        "item": {"type": "message", "channel": "D0DM", "ts": "1700000001.000300"},  # the second reply's ts
        "event_ts": "1700000060.000500",
    }
    deliver(served, callback(thumb, "Ev3"))
    served.wait()
    rated = served.store.feedback_for([t.message_id for t in turns])
    assert {m: f.rating for m, f in rated.items()} == {turns[1].message_id: "up"}

    stored = b"".join(p.read_bytes() for p in tmp_path.glob("conversations.sqlite*"))
    assert TOKEN.encode() not in stored and SECRET.encode() not in stored
