"""Channels as a support team configures and uses them, over real HTTP: per knowledge base (and the environment's
only for the default one), secrets never shown back, who may point a channel elsewhere, changes effective at once,
unknown channels 404, and a person's reply from the console posted on the platform the customer wrote on."""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

import httpx
import pytest

from rag.store.catalog import FolderCatalog
from tests.rag.channels.platform import platform_api
from tests.rag.channels.serving import served_kb

pytestmark = pytest.mark.integration

ADMIN = "admin-key-for-channel-tests"
TOKEN = "7000000001:AAchannel-config-token-value"
SECRET = "config-secret_token-1"
CHAT = 55_501


def telegram_update(update_id: int, text: str) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 100 + update_id,
            "from": {"id": CHAT, "is_bot": False, "first_name": "Lin", "language_code": "en"},
            "chat": {"id": CHAT, "type": "private"},
            "date": 1_700_000_000,
            "text": text,
        },
    }


def deliver(url: str, payload: dict[str, Any], secret: str = SECRET) -> httpx.Response:
    headers = {"content-type": "application/json", "x-telegram-bot-api-secret-token": secret}
    return httpx.post(url, content=json.dumps(payload), headers=headers, timeout=30)


def admin(method: str, url: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30, **kwargs)


def test_a_telegram_customer_asks_for_a_person_and_the_agents_reply_reaches_telegram(tmp_path, embedder, caplog):
    caplog.set_level(logging.DEBUG)
    with platform_api() as api:
        api.default("/sendMessage", {"ok": True, "result": {"message_id": 900}})
        kb_settings = {"telegram_bot_token": TOKEN, "telegram_secret_token": SECRET, "telegram_api_url": api.url}
        with served_kb(tmp_path, embedder, kb_settings, admin_api_key=ADMIN) as served:
            assert deliver(served.webhook("telegram"), telegram_update(1, "I want to talk to a person")).is_success
            served.wait()
            (handoff_reply,) = api.calls_to("/sendMessage")
            assert "connecting you" in handoff_reply.json["text"]
            queue = admin("GET", f"{served.url}/api/kbs/shop/handoffs").json()
            (waiting,) = queue["data"] if "data" in queue else queue["handoffs"]
            conversation = waiting["conversation_id"]
            reply = admin(
                "POST",
                f"{served.url}/api/kbs/shop/handoffs/{conversation}/reply",
                json={"agent": "sam", "text": "Hi Lin, Sam here - how can I help?"},
            )
            assert reply.status_code == 200, reply.text
            served.wait()
            agent_call = api.calls_to("/sendMessage")[-1]
            assert (
                agent_call.json["chat_id"] == CHAT and agent_call.json["text"] == "Hi Lin, Sam here - how can I help?"
            )
            # the bot stays quiet while the agent has the conversation; the customer hears that a person answers
            assert deliver(served.webhook("telegram"), telegram_update(2, "ok, my order is late")).is_success
            served.wait()
            assert "member of our team has your conversation" in api.calls_to("/sendMessage")[-1].json["text"]
            turns = served.store.conversation(conversation)
            assert [t.channel for t in turns] == ["telegram", "telegram"]
            listed = admin("GET", f"{served.url}/api/kbs/shop/conversations", params={"channel": "telegram"}).json()
            assert [(c["conversation_id"], c["channel"]) for c in listed["data"]] == [(conversation, "telegram")]
            assert admin("GET", f"{served.url}/api/kbs/shop/conversations?channel=slack").json()["total"] == 0
            detail = admin("GET", f"{served.url}/api/kbs/shop/conversations/{conversation}").json()
            assert [t["channel"] for t in detail["turns"]] == ["telegram", "telegram"]
            assert {t.customer_id for t in turns} == {f"telegram:{CHAT}"}
            database = tmp_path / "conversations.sqlite"
    dump = "\n".join(sqlite3.connect(database).iterdump())
    assert "Sam here" in dump  # the agent's reply is kept, as on the widget...
    assert TOKEN not in dump and SECRET not in dump  # ...and no platform secret is
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "sendMessage" in logged and TOKEN not in logged and SECRET not in logged


def test_channel_settings_per_knowledge_base_secrets_hidden_and_changes_effective_at_once(tmp_path, embedder):
    with platform_api() as api, served_kb(tmp_path, embedder, {}, admin_api_key=ADMIN) as served:
        hook = served.webhook("telegram")
        assert deliver(hook, telegram_update(1, "hello")).status_code == 404  # not configured: no such webhook
        settings = {"telegram_bot_token": TOKEN, "telegram_secret_token": SECRET, "telegram_api_url": api.url}
        patched = admin("PATCH", f"{served.url}/api/kbs/shop", json={"settings": settings})
        assert patched.status_code == 200, patched.text
        shown = admin("GET", f"{served.url}/api/kbs/shop").json()["settings"]
        assert TOKEN not in json.dumps(shown) and SECRET not in json.dumps(shown)
        assert shown["telegram_bot_token"] == shown["telegram_secret_token"] != TOKEN
        assert shown["telegram_api_url"] == api.url
        assert deliver(hook, telegram_update(2, "How fast is express shipping?")).status_code == 200
        assert deliver(hook, telegram_update(3, "hello"), secret="wrong").status_code == 401
        served.wait()
        assert len(api.calls_to("/sendMessage")) == 1
        # a knowledge base's own key may not send its conversations somewhere else
        key = admin("POST", f"{served.url}/api/kbs/shop/keys", json={"scopes": ["manage"]}).json()["key"]
        moved = httpx.patch(
            f"{served.url}/api/kbs/shop",
            headers={"Authorization": f"Bearer {key}"},
            json={"settings": {"telegram_api_url": "https://attacker.example"}},
        )
        assert moved.status_code == 403 and "telegram_api_url" in moved.text
        taken = httpx.patch(  # ...nor answer (and send as) another team's support address
            f"{served.url}/api/kbs/shop",
            headers={"Authorization": f"Bearer {key}"},
            json={"settings": {"email_address": "ceo@shop.example"}},
        )
        assert taken.status_code == 403 and "email_address" in taken.text
        bad = admin("PATCH", f"{served.url}/api/kbs/shop", json={"settings": {"telegram_secret_token": "has space"}})
        assert bad.status_code == 422 and "telegram_secret_token" in bad.text
        assert httpx.post(f"{served.url}/channels/shop/whatsapp", content=b"{}").status_code == 404
        assert httpx.post(f"{served.url}/channels/nope/telegram", content=b"{}").status_code == 404


def test_channels_in_the_environment_serve_only_the_default_knowledge_base(tmp_path, embedder):
    with platform_api() as api:
        env = {"telegram_bot_token": TOKEN, "telegram_secret_token": SECRET, "telegram_api_url": api.url}
        with served_kb(tmp_path, embedder, {}, default_kb="shop", **env) as served:
            catalog = FolderCatalog(tmp_path / "kbs")
            catalog.create_kb("other", "Another shop")
            catalog.close()
            assert deliver(f"{served.url}/channels/other/telegram", telegram_update(1, "hello")).status_code == 404
            assert deliver(served.webhook("telegram"), telegram_update(2, "How fast is express shipping?")).is_success
            served.wait()
            assert len(api.calls_to("/sendMessage")) == 1
