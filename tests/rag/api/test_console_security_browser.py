"""The console against hostile content and forged requests, in a real headless Chromium: a document carrying
`<script>` and `onerror` markup shown in the chunk and transcript views executes nothing, and a write from the
page without the session's CSRF token (or with a forged one) is refused."""

from __future__ import annotations

import time

import pytest

from tests.rag.api.test_console_browser import ADMIN_KEY, admin_call, server, sign_in, watched_page

pytestmark = pytest.mark.integration
__all__ = ["server"]  # the fixture, shared with test_console_browser.py

NAME = "gift-wrapping.md"
HOSTILE = (
    "# Gift wrapping\n\nGift wrapping costs $4 per item. <script>window.__pwned = 1</script>"
    '<img src=x onerror="window.__pwned = 2"> Wrapped gifts ship in a plain outer box.\n'
)
QUESTION = "How much does gift wrapping cost?"


def test_hostile_markup_executes_nothing_and_writes_need_the_csrf_token(server, browser):
    base = server
    admin_call(base, "POST", "/api/kbs", json={"id": "shop", "name": "Shop"})
    job = admin_call(base, "POST", "/api/kbs/shop/documents", files={"files": (NAME, HOSTILE.encode())})
    while admin_call(base, "GET", f"/api/jobs/{job['job_id']}")["state"] in ("queued", "running"):
        time.sleep(0.2)
    admin_call(base, "POST", "/api/kbs/shop/chat", json={"question": QUESTION})

    with watched_page(browser, base, viewport={"width": 1280, "height": 800}) as (page, seen):
        page.goto(base + "/console")
        sign_in(page, ADMIN_KEY)
        page.get_by_role("button", name=f"View chunks of {NAME}").click()
        page.get_by_role("heading", name=f"Chunks of {NAME}").wait_for()
        assert "<script>" in page.locator("body").inner_text()  # shown as text
        page.get_by_role("button", name="Conversations").click()
        page.get_by_role("button", name=f"Open conversation: {QUESTION}").click()
        page.locator("text=Wrapped gifts ship >> visible=true").first.wait_for()
        page.wait_for_timeout(500)
        assert page.evaluate("() => window.__pwned") is None
        assert page.locator("script:not([src])").count() == 0 and page.locator("img[src=x]").count() == 0

        statuses = page.evaluate(
            """async () => {
                const body = JSON.stringify({id: "forged", name: "Forged"});
                const headers = {"Content-Type": "application/json"};
                const without = await fetch("/api/kbs", {method: "POST", headers, body});
                const forged = await fetch("/api/kbs", {method: "POST", body,
                                                        headers: {...headers, "X-CSRF-Token": "guess"}});
                const signOut = await fetch("/console/session", {method: "DELETE"});
                return [without.status, forged.status, signOut.status];
            }"""
        )
        assert statuses == [403, 403, 403]
        seen.errors = [e for e in seen.errors if "status of 403 (Forbidden)" not in e]  # the refusals just made
        seen.check()
    assert all(kb["id"] != "forged" for kb in admin_call(base, "GET", "/api/kbs")["data"])
