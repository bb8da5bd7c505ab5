"""The inbox loop end to end in a real headless Chromium: a customer asks the widget something the documents don't
answer; in the console the question is in the inbox; an answer is written and published; the same question in the
widget now gets it, verbatim."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from tests.rag.api.test_console_browser import ADMIN_KEY, admin_call, server, sign_in, watched_page

pytestmark = pytest.mark.integration
__all__ = ["server"]  # the fixture, shared with test_console_browser.py

QUESTION = "Do you have a shop in Boston?"
FIX = "We sell online only - there is no shop in Boston, but orders to Boston arrive in 2 days."


def ask_widget(page, question: str) -> str:
    before = page.locator(".ragw-bot").count()
    page.get_by_label("Your question").fill(question)
    page.get_by_label("Your question").press("Enter")
    answered = f"document.querySelectorAll('.ragw-bot').length > {before}"
    page.wait_for_function(f"() => {answered} && !document.querySelector('.ragw-bot[aria-busy]')", timeout=60_000)
    return page.locator(".ragw-bot").last.locator(".ragw-text").inner_text()


def test_a_question_the_widget_could_not_answer_is_fixed_from_the_inbox(server, browser):
    base = server
    admin_call(base, "POST", "/api/kbs", json={"id": "shop", "name": "Shop"})
    doc = b"# Shipping\n\nStandard shipping takes 3 to 5 business days and costs $5.95.\n"
    job = admin_call(base, "POST", "/api/kbs/shop/documents", files={"files": ("shipping.md", doc)})
    while admin_call(base, "GET", f"/api/jobs/{job['job_id']}")["state"] in ("queued", "running"):
        time.sleep(0.2)

    with watched_page(browser, base) as (chat, chat_seen), watched_page(browser, base) as (console, seen):
        chat.goto(base + "/")
        first = ask_widget(chat, QUESTION)
        assert first != FIX and "ragw-handoff" in (chat.locator(".ragw-bot").last.get_attribute("class") or "")

        console.goto(base + "/console")
        sign_in(console, ADMIN_KEY)
        console.get_by_role("button", name="Inbox").click()
        group = console.locator("#gap-list li[data-gap]", has_text="Boston")
        expect(group).to_have_count(1)
        group.locator("button[data-write]").click()
        form = group.locator("#fix-form")
        form.get_by_label("Answer", exact=True).fill(FIX)
        form.get_by_role("button", name="Publish").click()
        expect(console.locator("#fix-form")).to_be_hidden()

        chat.get_by_role("button", name="New conversation").click()
        assert ask_widget(chat, QUESTION) == FIX  # verbatim, without re-ingest
        seen.check()
        chat_seen.check(allowed="/favicon.ico)")
