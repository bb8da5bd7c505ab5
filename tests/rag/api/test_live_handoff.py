"""Live handoff: a handed-off conversation waits in the agents' queue; an agent claims it and replies; the customer's
widget (real headless Chromium) shows the reply; the bot stays quiet until the agent resolves it; erasure removes
the agent's side too."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from rag.api import create_app
from rag.core.settings import Settings
from rag.wiring import build_services
from tests.rag.api.chromium import headless_chromium
from tests.servers import uvicorn_in_thread

pytestmark = pytest.mark.integration
ADMIN = {"Authorization": "Bearer handoff-admin"}
DOC = b"# Gift wrapping\n\nGift wrapping costs $4.50 per item and comes with a handwritten card.\n"


@pytest.fixture(scope="module")
def served(tmp_path_factory, embedder) -> Iterator[tuple[object, Path]]:
    root = tmp_path_factory.mktemp("handoff") / "root"
    settings = Settings(kb_root=root, admin_api_key="handoff-admin", _env_file=None)
    services = build_services(settings, background=True, embedder=embedder)
    app = create_app(settings, services=services)
    try:
        with TestClient(app) as c:
            c.post("/api/kbs", json={"id": "shop", "name": "Shop"}, headers=ADMIN).raise_for_status()
            job = c.post("/api/kbs/shop/documents", files={"files": ("gift.md", DOC)}, headers=ADMIN).json()
            while c.get(f"/api/jobs/{job['job_id']}", headers=ADMIN).json()["state"] in ("queued", "running"):
                time.sleep(0.1)
        yield app, root
    finally:
        services.close()


def test_claim_reply_quiet_bot_resolve_and_erase(served):
    app, root = served
    with TestClient(app) as client:
        asked = client.post("/chat", json={"question": "I want to talk to a person please"}).json()
        cid = asked["conversation_id"]
        queue = client.get("/api/kbs/shop/handoffs?state=open", headers=ADMIN).json()["data"]
        assert [h["conversation_id"] for h in queue] == [cid] and queue[0]["reason"] == "customer_request"

        claimed = client.post(f"/api/kbs/shop/handoffs/{cid}/claim", json={"agent": "Mia"}, headers=ADMIN).json()
        assert claimed["state"] == "claimed" and claimed["agent"] == "Mia"
        other = client.post(f"/api/kbs/shop/handoffs/{cid}/claim", json={"agent": "Bob"}, headers=ADMIN)
        assert other.status_code == 409 and "Mia" in other.json()["error"]["message"]  # one agent at a time
        quiet = client.post("/chat", json={"question": "How much is gift wrapping?", "conversation_id": cid}).json()
        assert quiet["decline_reason"] == "agent_handling"
        assert quiet["answer"] == Settings(_env_file=None).agent_holding_message and not quiet["citations"]
        assert not quiet["handoff"]  # already with a person: not a new handoff, and not a gap in the inbox
        assert all(
            g["question"] != "How much is gift wrapping?"
            for g in client.get("/api/kbs/shop/inbox", headers=ADMIN).json()["gaps"]
        )

        sent = client.post(
            f"/api/kbs/shop/handoffs/{cid}/reply",
            json={"agent": "Mia", "text": "Hi, it's $4.50 per item."},
            headers=ADMIN,
        )
        assert sent.status_code == 200
        proof = {"message_id": asked["message_id"]}
        assert client.get(f"/chat/{cid}/agent").status_code == 422  # no proof of taking part
        assert client.get(f"/chat/{cid}/agent", params={"message_id": "guess"}).status_code == 404
        updates = client.get(f"/chat/{cid}/agent", params=proof).json()
        assert updates["state"] == "claimed" and [m["text"] for m in updates["messages"]] == [
            "Hi, it's $4.50 per item."
        ]
        later = client.get(f"/chat/{cid}/agent", params={**proof, "after": updates["messages"][0]["created_at"]}).json()
        assert later["messages"] == []
        transcript = client.get(f"/api/kbs/shop/conversations/{cid}", headers=ADMIN).json()
        assert [t["question"] for t in transcript["turns"]][-1] == "How much is gift wrapping?"  # the agent sees it

        assert client.post(f"/api/kbs/shop/handoffs/{cid}/resolve", headers=ADMIN).json()["state"] == "resolved"
        back = client.post("/chat", json={"question": "How much is gift wrapping?", "conversation_id": cid}).json()
        assert back["answered"] and "4.50" in back["answer"]  # the bot answers again

        assert client.delete(f"/api/kbs/shop/conversations/{cid}", headers=ADMIN).status_code == 204
        with sqlite3.connect(root / "conversations.sqlite") as db:
            dump = "\n".join(db.iterdump())
        assert cid not in dump and "$4.50 per item." not in dump
        assert client.get(f"/chat/{cid}/agent", params=proof).status_code == 404  # erased: nothing to show


def test_the_widget_shows_the_agents_reply(served):
    app, _ = served
    with uvicorn_in_thread(app) as base, headless_chromium() as browser:
        page = browser.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(base + "/")
        page.get_by_label("Your question").fill("Can I talk to a human?")
        page.get_by_label("Your question").press("Enter")
        page.wait_for_selector(".ragw-handoff", timeout=30_000)
        cid = page.evaluate(
            "() => JSON.parse(Object.entries(localStorage).find(([k]) => k.startsWith('rag-chat:'))[1]).conversationId"
        )
        httpx.post(
            f"{base}/api/kbs/shop/handoffs/{cid}/reply",
            json={"agent": "Mia", "text": "Mia here - how can I help?"},
            headers=ADMIN,
        ).raise_for_status()
        page.wait_for_selector(".ragw-agent", timeout=15_000)
        assert "Mia here - how can I help?" in page.locator(".ragw-agent").inner_text()
        page.reload()  # kept across reloads, like the bot's answers
        page.wait_for_selector(".ragw-agent", timeout=10_000)
        assert problems == []
