"""The console's Dashboard and Inbox in a real headless Chromium against a real server: questions asked over the
API show as totals, a chart with one bar per day beside a table of the same numbers, and top topics that filter;
the two similar questions the document does not cover show as one unanswered group in the Inbox, where an answer
is written, tried (the bot would answer with the draft) and published; asked again, the group shows as fixed. A
curated answer whose question exists is refused with the server's message. The page talks only to its server."""

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
from tests.rag.api.test_console_browser import ADMIN_KEY, admin_call, sign_in, watched_page
from tests.servers import uvicorn_in_thread

pytestmark = pytest.mark.integration
KB = "shop"
DOC = b"""# Gift wrapping

Gift wrapping costs $4.50 per item and comes with a handwritten card. Wrapped parcels ship within two days.
"""
ANSWERED = ["How much does gift wrapping cost?", "Does gift wrapping come with a card?"]
BOSTON = ["Do you have a shop in Boston?", "Is there a store in Boston?"]
FIX = "We sell online only: there is no shop in Boston yet, but delivery to Boston takes two days."
COMMENT = "I wanted the price for two items"


@pytest.fixture
def server(tmp_path: Path, embedder) -> Iterator[str]:
    """A server over an empty knowledge-base root with an admin key."""
    settings = Settings(kb_root=tmp_path / "root", admin_api_key=ADMIN_KEY, _env_file=None)
    services = build_services(settings, background=True, embedder=embedder)
    try:
        with uvicorn_in_thread(create_app(settings, services=services)) as base:
            yield base
    finally:
        services.close()


def ask(base: str, question: str) -> dict:
    return admin_call(base, "POST", f"/api/kbs/{KB}/chat", json={"question": question})


def shop_with_history(base: str) -> None:
    """A knowledge base with one document, two answered questions (one rated down) and two it cannot answer."""
    admin_call(base, "POST", "/api/kbs", json={"id": KB, "name": "Pinecrest shop"})
    job = admin_call(base, "POST", f"/api/kbs/{KB}/documents", files={"files": ("gift.md", DOC)})
    deadline = time.monotonic() + 120
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"ingest job still {job['state']}"
        time.sleep(0.1)
        job = admin_call(base, "GET", f"/api/jobs/{job['job_id']}")
    assert job["state"] == "succeeded", job
    replies = [ask(base, q) for q in ANSWERED]
    assert all(r["answered"] for r in replies), replies
    admin_call(
        base,
        "POST",
        f"/api/kbs/{KB}/feedback",
        json={"message_id": replies[0]["message_id"], "rating": "down", "comment": COMMENT},
    )
    assert not any(ask(base, q)["answered"] for q in BOSTON)


def test_dashboard_and_inbox_answer_written_tried_published_and_fixed(server, browser):
    base = server
    shop_with_history(base)
    board = admin_call(base, "GET", f"/api/kbs/{KB}/stats")
    assert board["questions"] == 4
    with watched_page(browser, base, viewport={"width": 1280, "height": 900}) as (page, seen):
        page.goto(base + "/console")
        sign_in(page, ADMIN_KEY)
        page.get_by_role("heading", name=f"Pinecrest shop ({KB})").wait_for()

        # Dashboard: the totals, a chart with one bar per day and a table with the same numbers
        page.get_by_role("button", name="Dashboard").click()
        assert page.evaluate("() => document.activeElement.id") == "dash-title"
        totals = page.locator("#totals")
        expect(totals.locator("[data-total=questions] dd")).to_have_text("4")
        assert totals.locator("[data-total=conversationsN] dd").inner_text() == str(board["conversations"])
        assert totals.locator("[data-total=answeredRate] dd").inner_text() == "50%"
        assert totals.locator("[data-total=thumbsDown] dd").inner_text() == "1"
        assert totals.locator("[data-total=thumbsUp] dd").inner_text() == "0"
        assert totals.locator("[data-total=p95] dd").inner_text().endswith(" ms")
        chart = page.locator("#chart-questions svg")
        assert chart.get_attribute("role") == "img"
        assert "4 in all" in chart.get_attribute("aria-label")
        bars = chart.locator("rect.bar-questions")
        rows = page.locator("#days-table tbody tr")
        assert bars.count() == rows.count() == len(board["days"]) >= 1  # questions asked a moment ago: one day
        for i, day in enumerate(board["days"]):
            assert bars.nth(i).get_attribute("data-day") == day["day"] == rows.nth(i).locator("th").inner_text()
            assert bars.nth(i).get_attribute("data-value") == str(day["questions"])
            cells = rows.nth(i).locator("td").all_inner_texts()
            assert cells[:3] == [str(day["questions"]), str(day["answered"]), str(day["handoffs"])]
        assert page.locator("#chart-outcomes svg rect.bar-answered").count() == len(board["days"])
        assert page.locator("#moods [data-mood=calm]").is_visible()
        csv_link = page.locator("#stats-csv-link").get_attribute("href")
        assert csv_link == f"{base}/api/kbs/{KB}/stats.csv"
        days_csv = page.request.get(csv_link)  # the session cookie, no key
        assert days_csv.ok and days_csv.text().startswith("day,questions,answered")

        # a top topic filters the dashboard (and its CSV) by it
        topic, count = board["top_topics"][0]
        page.locator("#topics button").first.click()
        expect(page.locator("#dash-topic-text")).to_have_text(f"Topic: {topic}")
        expect(totals.locator("[data-total=questions] dd")).to_have_text(str(count))
        assert page.evaluate("() => document.activeElement.id") == "dash-topic-clear"
        assert "topic=" in page.locator("#stats-csv-link").get_attribute("href")
        page.locator("#dash-topic-clear").click()
        expect(totals.locator("[data-total=questions] dd")).to_have_text("4")
        # the language filter: nothing in Chinese was asked
        filters = page.locator("#dash-filters")
        filters.get_by_label("Language", exact=True).select_option("zh")
        filters.get_by_role("button", name="Apply").click()
        expect(page.locator("#dash-status")).to_have_text("No questions in this range.")
        assert page.locator("#stats-csv-link").get_attribute("href").endswith("stats.csv?language=zh")

        # Inbox: the two Boston questions are one group; the rated-down answer carries the customer's comment
        page.get_by_role("button", name="Inbox").click()
        group = page.locator("#gap-list li[data-gap]", has_text="Boston")
        expect(group).to_have_count(1)
        assert "Unanswered 2 times" in group.inner_text()
        assert group.locator(".status-fixed").count() == 0
        down = page.locator("#down-list li[data-item]")
        expect(down).to_have_count(1)
        assert ANSWERED[0] in down.inner_text() and COMMENT in down.inner_text()

        # write the answer, try it: the bot would answer with the draft, verbatim
        write = group.locator("button[data-write]")
        write.click()
        assert write.get_attribute("aria-expanded") == "true"
        form = group.locator("#fix-form")
        expect(form).to_be_visible()
        assert page.evaluate("() => document.activeElement.id") == "fix-answer"
        question = form.get_by_label("Question", exact=True).input_value()
        assert "Boston" in question
        form.get_by_label("Answer", exact=True).fill(FIX)
        form.get_by_role("button", name="Try it").click()
        result = form.locator("#fix-result")
        expect(result.locator(".a")).to_have_text(FIX)
        assert "generator: curated" in result.inner_text()
        assert "Your draft matched" in result.inner_text()
        form.get_by_role("button", name="Publish").click()
        expect(page.locator("#fix-form")).to_be_hidden()
        expect(page.locator("#announce")).to_have_text(f"Answer published: {question}")
        # the inbox reloads after a publish and then moves the focus back to the list: wait for it, so the next
        # form is not opened while the lists are being redrawn
        page.wait_for_function(
            "() => document.activeElement && (document.activeElement.hasAttribute('data-write')"
            " || document.activeElement.id === 'inbox-title')"
        )

        # the same question again, from the rated-down answer's form: the server's 409 message
        down.locator("button[data-write]").click()
        form = down.locator("#fix-form")
        form.get_by_label("Question", exact=True).fill(question)
        form.get_by_label("Answer", exact=True).fill("Another answer.")
        form.get_by_role("button", name="Publish").click()
        expect(form.get_by_role("alert")).to_contain_text("already has the question")
        form.get_by_label("Answer", exact=True).press("Escape")
        expect(page.locator("#fix-form")).to_be_hidden()
        assert page.evaluate("() => document.activeElement.getAttribute('data-write')") == down.get_attribute(
            "data-item"
        )

        # asked again, the bot answers with the published answer; the group shows as fixed
        again = ask(base, BOSTON[0])
        assert again["answered"] and again["answer"] == FIX and again["generator"] == "curated"
        page.get_by_role("button", name="Refresh").click()
        expect(group.locator(".status-fixed")).to_have_text("fixed")
        assert "Answered since then: 1" in group.inner_text()

        # Chinese labels for the new sections
        page.get_by_label("Page language").select_option("zh")
        assert page.get_by_role("button", name="概览").is_visible()
        expect(group.locator(".status-fixed")).to_have_text("已解决")
        assert page.get_by_role("heading", name="待处理事项").is_visible()

        # the refused publish is the one expected error Chromium logs
        conflict = f"status of 409 (Conflict) ({base}/api/kbs/{KB}/answers)"
        seen.errors = [e for e in seen.errors if not e.endswith(conflict)]
        seen.check()


def test_conversations_scope_sees_dashboard_and_inbox_but_cannot_write(server, browser):
    base = server
    admin_call(base, "POST", "/api/kbs", json={"id": KB, "name": "Pinecrest shop"})
    key = admin_call(base, "POST", f"/api/kbs/{KB}/keys", json={"scopes": ["chat", "conversations"]})["key"]
    for question in BOSTON:
        response = httpx.post(
            f"{base}/api/kbs/{KB}/chat", json={"question": question}, headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 200 and not response.json()["answered"]
    with watched_page(browser, base, viewport={"width": 820, "height": 1180}) as (page, seen):
        page.goto(base + "/console")
        sign_in(page, key)
        page.get_by_role("heading", name=f"Pinecrest shop ({KB})").wait_for()
        page.get_by_role("button", name="Dashboard").press("Enter")
        expect(page.locator("#totals [data-total=questions] dd")).to_have_text("2")
        assert page.locator("#totals [data-total=answeredRate] dd").inner_text() == "0%"
        page.get_by_role("button", name="Inbox").click()
        group = page.locator("#gap-list li[data-gap]")
        expect(group).to_have_count(1)
        assert "Unanswered 2 times" in group.inner_text()
        assert group.locator("button[data-write]").count() == 0  # writing answers needs the manage scope
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 820
        seen.check()
