"""The console's Handoffs section in a real headless Chromium, beside the customer's chat page in a second one: the
customer asks for a person and waits in the queue; the agent opens the conversation, gives a name (remembered),
claims it and replies; the customer's widget shows the reply, and the bot stays quiet (the holding message) until
the agent resolves the conversation, when it answers again. A key with the conversations scope but not chat sees
the queue without the agent's earlier replies, and a customer newly waiting is announced. The console page talks
only to its server and logs no errors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from rag.api import create_app
from rag.core.settings import Settings
from rag.wiring import build_services
from tests.rag.api.test_console_browser import ADMIN_KEY, NO_FAVICON, admin_call, sign_in, watched_page
from tests.servers import uvicorn_in_thread

pytestmark = pytest.mark.integration
KB = "shop"
DOC = b"# Gift wrapping\n\nGift wrapping costs $4.50 per item and comes with a handwritten card.\n"
ASK_PERSON = "I want to talk to a person"
QUESTION = "How much is gift wrapping?"
REPLY = "Hi, Mia here: gift wrapping is $4.50 per item."
HOLDING = Settings(_env_file=None).agent_holding_message
BOT_DONE = (  # the bot's reply to the question just asked has arrived (an agent's reply is no answer)
    "n => !document.querySelector('.ragw-bot[aria-busy]')"
    " && document.querySelectorAll('.ragw-bot:not(.ragw-agent)').length > n"
)


@pytest.fixture
def server(tmp_path: Path, embedder) -> Iterator[str]:
    """A server over a knowledge-base root with one small document ingested (the chat page's default KB)."""
    settings = Settings(kb_root=tmp_path / "root", admin_api_key=ADMIN_KEY, _env_file=None)
    services = build_services(settings, background=True, embedder=embedder)
    try:
        with uvicorn_in_thread(create_app(settings, services=services)) as base:
            admin_call(base, "POST", "/api/kbs", json={"id": KB, "name": "Pinecrest shop"})
            job = admin_call(base, "POST", f"/api/kbs/{KB}/documents", files={"files": ("gift.md", DOC)})
            deadline = time.monotonic() + 120
            while job["state"] in ("queued", "running"):
                assert time.monotonic() < deadline, f"ingest job still {job['state']}"
                time.sleep(0.1)
                job = admin_call(base, "GET", f"/api/jobs/{job['job_id']}")
            assert job["state"] == "succeeded", job
            yield base
    finally:
        services.close()


def widget_ask(chat, question: str) -> str:
    """Ask in the widget and wait for the bot's reply (not an agent's); its text."""
    before = chat.locator(".ragw-bot:not(.ragw-agent)").count()
    chat.get_by_label("Your question").fill(question)
    chat.get_by_label("Your question").press("Enter")
    chat.wait_for_function(BOT_DONE, arg=before, timeout=60_000)
    return chat.locator(".ragw-bot:not(.ragw-agent)").last.locator(".ragw-text").inner_text()


def focused_id(page) -> str:
    return page.evaluate("() => document.activeElement.id")


def test_agent_claims_replies_and_resolves_while_the_customer_chats(server, browser):
    base = server
    with (
        watched_page(browser, base) as (chat, chat_seen),
        watched_page(browser, base, viewport={"width": 1280, "height": 900}) as (page, seen),
    ):
        # the customer asks for a person: the widget says so
        chat.goto(base + "/")
        widget_ask(chat, ASK_PERSON)
        expect(chat.locator(".ragw-handoff").last).to_be_visible()

        # the agent opens Handoffs: the conversation is waiting, with its question and why it was handed off
        page.goto(base + "/console")
        sign_in(page, ADMIN_KEY)
        page.get_by_role("heading", name=f"Pinecrest shop ({KB})").wait_for()
        page.get_by_role("button", name="Handoffs").click()
        assert focused_id(page) == "ho-title"
        item = page.locator("#ho-list li[data-handoff]", has_text=ASK_PERSON)
        expect(item).to_have_count(1)
        expect(item.locator(".status")).to_have_text("Waiting")
        assert "the customer asked for a person" in item.inner_text()
        expect(page.locator("#ho-status")).to_have_text("Waiting: 1 · claimed: 0")

        # open it: the transcript, focus on its title; Claim without a name says to give one
        item.get_by_role("button", name=f"Open handoff: {ASK_PERSON}").click()
        assert focused_id(page) == "ho-panel-title"
        panel = page.locator("#ho-panel")
        expect(panel.locator("#ho-thread .turn .q").first).to_have_text(ASK_PERSON)
        assert panel.locator("#ho-replies-note").is_hidden()  # the admin may read the agent's replies
        page.get_by_label("Your name").fill("")
        panel.get_by_role("button", name="Claim").click()
        expect(panel.get_by_role("alert")).to_have_text("Enter your name first: the customer sees it.")
        assert focused_id(page) == "ho-agent"

        # name, claim, reply (Ctrl+Enter from the keyboard sends)
        page.get_by_label("Your name").fill("Mia")
        panel.get_by_role("button", name="Claim").click()
        expect(page.locator("#ho-panel-meta")).to_contain_text("Claimed by Mia")
        assert focused_id(page) == "ho-reply"
        expect(item.locator(".status")).to_have_text("Claimed by Mia")
        page.get_by_label("Reply to the customer").fill(REPLY)
        page.get_by_label("Reply to the customer").press("Control+Enter")
        sent = panel.locator("#ho-thread .agent-reply")
        expect(sent).to_have_count(1)
        assert REPLY in sent.inner_text() and "Mia (agent)" in sent.inner_text()
        assert page.get_by_label("Reply to the customer").input_value() == ""
        expect(page.locator("#announce")).to_have_text("Reply sent to the customer.")

        # the customer's widget shows the agent's reply; the bot stays quiet while the agent has the conversation
        expect(chat.locator(".ragw-agent")).to_contain_text(REPLY, timeout=10_000)
        assert widget_ask(chat, QUESTION) == HOLDING
        # the agent sees the customer's new question in the thread (the section polls), after the reply
        expect(panel.locator("#ho-thread .turn .q").last).to_have_text(QUESTION, timeout=12_000)
        assert panel.locator("#ho-thread > .turn").nth(1).get_attribute("class") == "turn agent-reply"

        # resolve: the queue empties, the bot answers again
        panel.get_by_role("button", name="Resolve").click()
        expect(page.locator("#ho-panel-meta")).to_contain_text("Resolved")
        assert focused_id(page) == "ho-panel-title"
        assert panel.get_by_role("button", name="Resolve").is_disabled()
        expect(page.locator("#ho-list")).to_contain_text("Nobody is waiting for a person.")
        again = widget_ask(chat, QUESTION)
        assert "4.50" in again and again != HOLDING
        expect(chat.locator(".ragw-bot:not(.ragw-agent)").last.locator(".ragw-source").first).to_be_visible()

        # the Resolved filter lists it; Escape closes the panel; the agent's name is remembered across a reload
        page.get_by_label("Show").select_option("resolved")
        expect(page.locator("#ho-list li[data-handoff] .status")).to_have_text("Resolved (Mia)")
        page.get_by_label("Reply to the customer").press("Escape")
        expect(panel).to_be_hidden()
        page.reload()
        page.get_by_role("button", name="Handoffs").click()
        assert page.get_by_label("Your name").input_value() == "Mia"

        # Chinese
        page.get_by_label("Page language").select_option("zh")
        assert page.get_by_role("button", name="人工接待").is_visible()
        assert page.get_by_role("heading", name="等待人工的对话").is_visible()
        seen.check()
        chat_seen.check(allowed=NO_FAVICON)


def test_conversations_key_without_chat_scope_and_a_new_customer_announced(server, browser):
    base = server
    key = admin_call(base, "POST", f"/api/kbs/{KB}/keys", json={"scopes": ["conversations"]})["key"]
    first = httpx.post(base + "/chat", json={"question": "Can I talk to a human?"}).json()
    assert first["handoff"]
    with watched_page(browser, base, viewport={"width": 820, "height": 1180}) as (page, seen):
        page.goto(base + "/console")
        sign_in(page, key)
        page.get_by_role("heading", name=f"Pinecrest shop ({KB})").wait_for()
        page.get_by_role("button", name="Handoffs").press("Enter")  # keyboard only
        item = page.locator("#ho-list li[data-handoff]", has_text="Can I talk to a human?")
        expect(item).to_have_count(1)
        opener = item.get_by_role("button", name="Open handoff: Can I talk to a human?")
        opener.focus()
        page.keyboard.press("Enter")
        expect(page.locator("#ho-thread .turn")).to_have_count(1)
        expect(page.locator("#ho-replies-note")).to_be_visible()  # no chat scope: the earlier replies are skipped

        # a second customer asks for a person while the section is open: announced, politely, and listed
        httpx.post(base + "/chat", json={"question": "Please get me a real person"}).raise_for_status()
        expect(page.locator("#announce")).to_have_text(
            "A customer is waiting for a person: Please get me a real person", timeout=12_000
        )
        assert page.locator("#announce").get_attribute("aria-live") == "polite"
        expect(page.locator("#ho-list li[data-handoff]")).to_have_count(2)

        # the focus survives the polling; Escape closes the panel and gives it back to the opener
        page.locator("#ho-close").focus()
        page.keyboard.press("Escape")
        assert page.evaluate("() => document.activeElement.getAttribute('data-open')") == first["conversation_id"]
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 820
        seen.check()
