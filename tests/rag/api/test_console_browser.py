"""The operator console (/console) in a real headless Chromium against a real server with a knowledge-base root:
sign in with the admin key, create a knowledge base and upload a document from the page, watch its job finish,
ask the chat page about it, then find that question in Conversations with the passages and scores retrieved for
it. A key with only the chat scope sees neither documents nor conversations; a wrong key is refused with the
server's message; sign-out ends the session. The page talks only to its server and logs no errors (CSP)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from rag.api import create_app
from rag.core.settings import Settings
from rag.wiring import build_services
from tests.servers import uvicorn_in_thread

pytestmark = pytest.mark.integration
ADMIN_KEY = "console-test-admin-key"
JOB_TIMEOUT_MS = 180_000  # an ingest job on a slow, busy machine
DOC_NAME = "aurora-kettle.md"
DOC = """# Aurora kettle care

The Aurora kettle must be descaled every 45 days with citric acid. Descaling takes twelve minutes and the
indicator light turns violet when it is done.
"""
OTHER_NAME = "returns.md"
OTHER = """# Returns

Unused items may be returned within 30 days of delivery for a full refund. Return shipping is free in the EU.
"""
QUESTION = "How often must the Aurora kettle be descaled?"
# Chromium reports every 4xx response on the console; the console's own check for a session (401 when signed out)
# and a refused sign-in are expected ones, anything else (a CSP violation, a script error) is not
EXPECTED_CONSOLE = "the server responded with a status of 401"
NO_FAVICON = "/favicon.ico)"  # the chat page names no icon, so Chromium asks for one (404)


@pytest.fixture
def server(tmp_path: Path, embedder) -> Iterator[str]:
    """A server over an empty knowledge-base root (each test its own), with an admin key."""
    settings = Settings(kb_root=tmp_path / "root", admin_api_key=ADMIN_KEY, _env_file=None)
    services = build_services(settings, background=True, embedder=embedder)
    try:
        with uvicorn_in_thread(create_app(settings, services=services)) as base:
            yield base
    finally:
        services.close()


@dataclass
class Watched:
    """What a page did that it must not: requests elsewhere than its server, errors on the console."""

    base: str
    outside: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def check(self, allowed: str | None = None) -> None:
        assert self.outside == [], f"requests outside {self.base}: {self.outside}"
        errors = [e for e in self.errors if allowed is None or not e.endswith(allowed)]
        assert errors == [], f"console errors (CSP violations, script errors): {errors}"


@contextlib.contextmanager
def watched_page(browser, base: str, **options) -> Iterator[tuple]:
    context = browser.new_context(**options)
    page = context.new_page()
    seen = Watched(base)
    page.on("request", lambda r: None if r.url.startswith(base + "/") else seen.outside.append(r.url))
    page.on("console", lambda m: seen.errors.append(f"{m.text} ({m.location.get('url')})") if _unexpected(m) else None)
    page.on("pageerror", lambda exc: seen.errors.append(f"uncaught: {exc}"))
    try:
        yield page, seen
    finally:
        context.close()


def _unexpected(message) -> bool:
    return message.type == "error" and EXPECTED_CONSOLE not in message.text


def sign_in(page, key: str) -> None:
    page.get_by_label("Key", exact=True).fill(key)
    page.get_by_role("button", name="Sign in").click()


def admin_call(base: str, method: str, path: str, **kwargs) -> dict:
    response = httpx.request(method, base + path, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, **kwargs)
    assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"
    return response.json()


def ask_chat_page(browser, base: str) -> str:
    """Ask the chat page (the widget, answering from the default knowledge base); the /chat stream as received."""
    with watched_page(browser, base) as (chat, seen):
        chat.goto(base + "/")
        with chat.expect_response(lambda r: r.url == base + "/chat") as reply:
            chat.get_by_label("Your question").fill(QUESTION)
            chat.get_by_label("Your question").press("Enter")
            chat.wait_for_function(
                "() => !document.querySelector('.ragw-bot[aria-busy]') && document.querySelector('.ragw-user')",
                timeout=60_000,
            )
        answer = chat.locator(".ragw-bot").last
        assert "45 days" in answer.locator(".ragw-text").inner_text()
        assert "ragw-handoff" not in (answer.get_attribute("class") or "")
        assert "Aurora kettle care" in answer.locator(".ragw-source").first.inner_text()
        stream = reply.value.text()
        seen.check(allowed=NO_FAVICON)
    return stream


def test_admin_uploads_a_document_asks_about_it_and_reads_the_transcript(server, browser, tmp_path):
    base = server
    document = tmp_path / DOC_NAME
    document.write_text(DOC, encoding="utf-8")
    other = tmp_path / OTHER_NAME
    other.write_text(OTHER, encoding="utf-8")
    with watched_page(browser, base, viewport={"width": 1280, "height": 800}) as (page, seen):
        page.goto(base + "/console")
        assert page.get_by_role("heading", name="Sign in").is_visible()
        assert page.get_by_label("Key", exact=True).get_attribute("type") == "password"
        sign_in(page, ADMIN_KEY)
        page.get_by_text("No knowledge base yet.").wait_for()
        assert page.locator("#who").inner_text() == "Admin"

        # a knowledge base created from the console is listed and selected
        page.get_by_text("Create a knowledge base").click()
        page.get_by_label("ID", exact=True).fill("help")
        page.get_by_label("Name", exact=True).fill("Help center")
        page.get_by_role("button", name="Create", exact=True).click()
        page.get_by_role("heading", name="Help center (help)").wait_for()
        assert page.locator("#kb-table tbody tr").count() == 1

        # upload two files with the file picker; the job's progress shows until it has succeeded
        page.set_input_files("#file-input", [str(document), str(other)])
        page.locator(".job[data-state=succeeded]").wait_for(timeout=JOB_TIMEOUT_MS)
        job = page.locator(".job").first
        assert DOC_NAME in job.inner_text() and "succeeded" in job.inner_text()
        assert "Files 2/2" in job.inner_text()
        assert job.locator("progress").get_attribute("aria-label") == "Progress"
        row = page.locator("#doc-table tbody tr", has_text=DOC_NAME)
        row.get_by_text("ingested").wait_for()
        chunks = int(row.locator("td").nth(2).inner_text())
        assert chunks >= 1
        kb_row = page.locator("#kb-table tbody tr", has_text="help")
        expect(kb_row.locator("td").nth(2)).to_have_text("2")  # documents
        assert int(kb_row.locator("td").nth(3).inner_text()) > chunks

        # its chunks as retrieval sees them; closing the panel returns the focus to the button
        page.get_by_role("button", name=f"View chunks of {DOC_NAME}").click()
        page.get_by_role("heading", name=f"Chunks of {DOC_NAME}").wait_for()
        assert "every 45 days" in page.locator("#chunk-list").inner_text()
        page.locator("#chunks-close").click()
        assert page.evaluate("() => document.activeElement.getAttribute('aria-label')") == f"View chunks of {DOC_NAME}"

        # the chat page answers from it and cites the uploaded file
        assert f'"source":"files/{DOC_NAME}"' in ask_chat_page(browser, base).replace(" ", "")

        # Conversations: the question is listed; its transcript says what was retrieved, with scores
        page.get_by_role("button", name="Conversations").click()
        listed = page.locator("#conv-table tbody tr", has_text=QUESTION)
        listed.wait_for()
        assert page.locator("#conv-status").inner_text() == "Conversations 1–1 of 1"
        listed.get_by_role("button", name=f"Open conversation: {QUESTION}").click()
        transcript = page.locator("#transcript")
        transcript.locator(".turn").first.wait_for()
        turn = transcript.locator(".turn").first
        assert QUESTION in turn.locator(".q").inner_text() and "45 days" in turn.locator(".a").inner_text()
        assert f"files/{DOC_NAME}" in turn.locator(".citations").inner_text()
        passages = turn.locator(".passages li")
        assert passages.count() == 2  # both documents were candidates, best first, each with its score
        assert f"files/{DOC_NAME}" in passages.first.inner_text() and "every 45 days" in passages.first.inner_text()
        assert f"files/{OTHER_NAME}" in passages.nth(1).inner_text()
        scores = [float(s.removeprefix("score ")) for s in passages.locator(".score").all_inner_texts()]
        assert 0 <= scores[1] < scores[0] <= 1
        assert page.evaluate("() => document.activeElement.id") == "transcript-title"

        # filters: text search narrows the list; the CSV link carries the same filters
        page.get_by_label("Text search").fill("no-such-words-anywhere")
        page.get_by_role("button", name="Apply").click()
        page.get_by_text("No conversation matches.").wait_for()
        assert page.locator("#conv-table tbody tr").count() == 0
        assert (
            page.locator("#csv-link")
            .get_attribute("href")
            .endswith("/api/kbs/help/conversations.csv?q=no-such-words-anywhere")
        )
        csv = page.request.get(base + "/api/kbs/help/conversations.csv")  # the session cookie, no key
        assert csv.ok and QUESTION in csv.text()

        # re-ingest one document, delete the other (after a confirmation): each a job followed to its end
        page.get_by_role("button", name="Knowledge").click()
        page.get_by_role("button", name=f"Re-ingest {DOC_NAME}").click()
        newest = page.locator(".job").first
        expect(newest).to_contain_text("Re-ingest")
        expect(newest).to_have_attribute("data-state", "succeeded", timeout=JOB_TIMEOUT_MS)
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name=f"Delete {OTHER_NAME}").click()
        expect(newest).to_contain_text("Delete")
        expect(newest).to_have_attribute("data-state", "succeeded", timeout=JOB_TIMEOUT_MS)
        expect(page.locator("#doc-table tbody tr")).to_have_count(1)
        expect(page.locator("#doc-table tbody tr").first).to_contain_text(DOC_NAME)

        # Chinese, remembered across a reload (the session too)
        page.get_by_label("Page language").select_option("zh")
        assert page.get_by_role("button", name="对话记录").is_visible()
        page.reload()
        page.get_by_role("heading", name="知识库列表").wait_for()
        assert page.locator("html").get_attribute("lang") == "zh-CN"
        assert page.locator("#who").inner_text() == "管理员"
        seen.check()


def test_scopes_wrong_key_and_sign_out(server, browser):
    base = server
    admin_call(base, "POST", "/api/kbs", json={"id": "shop", "name": "Pinecrest shop"})
    chat_key = admin_call(base, "POST", "/api/kbs/shop/keys", json={"scopes": ["chat"]})["key"]
    tablet = {"width": 820, "height": 1180}
    with watched_page(browser, base, viewport=tablet) as (page, seen):
        page.goto(base + "/console")

        # a wrong key: the server's message, and still the sign-in form
        sign_in(page, "rk_not-a-real-key")
        alert = page.get_by_role("alert").filter(has_text="not valid")
        alert.wait_for()
        assert page.get_by_label("Key", exact=True).is_visible()

        # keyboard only: a chat-only key sees its knowledge base, but neither documents nor conversations
        page.get_by_label("Key", exact=True).fill(chat_key)
        page.get_by_label("Key", exact=True).press("Enter")
        page.get_by_role("heading", name="Pinecrest shop (shop)").wait_for()
        assert page.locator("#who").inner_text() == "Key for shop (chat)"
        assert page.get_by_label("Key", exact=True).is_hidden()
        assert page.locator("#documents").is_hidden() and page.locator("#settings").is_hidden()
        assert page.get_by_role("button", name="Conversations").is_hidden()
        assert "scopes: chat" in page.locator("#kb-nothing").inner_text()
        assert page.locator("#kb-create").is_hidden()  # only the admin creates knowledge bases
        assert page.evaluate("() => document.activeElement.id") == "kbs-title"
        assert page.request.get(base + "/api/kbs/shop/documents").status == 403  # and the server agrees
        # nothing wider than a tablet's screen
        assert page.evaluate("() => document.documentElement.scrollWidth") <= tablet["width"]

        # sign-out: back to the sign-in form, and the session is over on the server too
        page.get_by_role("button", name="Sign out").click()
        page.get_by_role("heading", name="Sign in").wait_for()
        assert page.evaluate("() => document.activeElement.id") == "key"
        assert page.locator("#app").is_hidden() and page.locator("#sign-out").is_hidden()
        assert page.request.get(base + "/console/session").status == 401
        page.reload()
        page.get_by_role("heading", name="Sign in").wait_for()
        seen.check()
