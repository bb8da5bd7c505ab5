"""Calls to a platform's API (rag.channels.outbound) against a real local HTTP server: retries with backoff,
429 Retry-After honoured (and refused when longer than a reply may wait), and secrets masked in every log line."""

from __future__ import annotations

import logging

import pytest

from rag.channels.base import ChannelDeliveryError
from rag.channels.outbound import PlatformClient, json_body, mask
from tests.rag.channels.platform import Scripted, platform_api

pytestmark = pytest.mark.integration
TOKEN = "123456:AAF-secret-token-value"


def test_a_429_is_retried_after_its_retry_after():
    with platform_api() as api:
        api.script("/send", Scripted(429, {"ok": False}, {"Retry-After": "1"}))
        client = PlatformClient("demo", retries=3, backoff=0.01)
        response = client.call("POST", f"{api.url}/send", json={"text": "hi"})
        client.close()
        first, second = api.calls_to("/send")
    assert response.status_code == 200
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 1.0  # waited as asked, not the 0.01 s backoff


def test_a_platforms_own_rate_limit_signal_is_honoured():
    """Telegram and WeCom say "retry after N" in the body; the client's retry_hint reads it."""
    with platform_api() as api:
        api.script("/send", Scripted(200, {"ok": False, "retry_after": 1}))

        def hint(response):
            data = response.json()
            return float(data["retry_after"]) if not data.get("ok") and "retry_after" in data else None

        client = PlatformClient("demo", retries=2, backoff=0.01, retry_hint=hint)
        assert client.call("POST", f"{api.url}/send").json() == {"ok": True}
        client.close()
        first, second = api.calls_to("/send")
    assert second.at - first.at >= 1.0


def test_server_errors_back_off_and_give_up_with_a_clear_error():
    with platform_api() as api:
        api.script("/send", *[Scripted(503, {"ok": False})] * 3)
        client = PlatformClient("demo", retries=2, backoff=0.2)
        with pytest.raises(ChannelDeliveryError, match=r"demo: call failed after 3 attempts \(HTTP 503\)"):
            client.call("POST", f"{api.url}/send")
        client.close()
        calls = api.calls_to("/send")
    assert len(calls) == 3
    assert calls[1].at - calls[0].at >= 0.2 and calls[2].at - calls[1].at >= 0.4  # exponential


def test_a_retry_after_longer_than_a_reply_may_wait_is_not_waited_for():
    with platform_api() as api:
        api.script("/send", Scripted(429, {}, {"Retry-After": "3600"}))
        client = PlatformClient("demo", retries=5, max_wait=60)
        with pytest.raises(ChannelDeliveryError, match="rate limited for 3600 s"):
            client.call("POST", f"{api.url}/send")
        client.close()
        assert len(api.calls) == 1


def test_a_client_error_is_returned_not_retried():
    with platform_api() as api:
        api.script("/send", Scripted(400, {"ok": False, "error": "invalid_auth"}))
        client = PlatformClient("demo", retries=3, backoff=0.01)
        response = client.call("POST", f"{api.url}/send")
        client.close()
        assert len(api.calls) == 1
    with pytest.raises(ChannelDeliveryError, match="HTTP 400"):
        json_body(response, "demo", "sending")


def test_a_token_in_the_url_never_reaches_the_logs(caplog):
    caplog.set_level(logging.DEBUG)
    with platform_api() as api:
        api.script("/sendMessage", Scripted(500, {}))
        client = PlatformClient("telegram", retries=1, backoff=0.01, secrets=[TOKEN])
        client.call("POST", f"{api.url}/bot{TOKEN}/sendMessage", json={"text": "hi"})
        client.close()
    unreachable = PlatformClient("telegram", retries=0, secrets=[TOKEN])
    with pytest.raises(ChannelDeliveryError) as failure:
        unreachable.call("POST", f"http://127.0.0.1:9/bot{TOKEN}/sendMessage")
    assert mask(f"/bot{TOKEN}/x") == "/bot***/x"  # while a client holding it is open
    unreachable.close()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "sendMessage" in logged  # httpx did log the requests...
    assert TOKEN not in logged and TOKEN not in str(failure.value)  # ...with the token masked
