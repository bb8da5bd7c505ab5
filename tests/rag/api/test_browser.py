"""The web chat in a real headless Chromium (Debian's chromium, driven by Playwright): streaming answer with
sources, feedback stored, conversation kept across reloads, document text shown as text, the embeddable
widget on another origin allowed or refused by CORS, and a phone-sized screen."""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rag.api import create_app
from rag.conversations import SQLAlchemyConversationStore
from rag.core.settings import Settings
from rag.store.knowledge_base import KnowledgeBase
from tests.rag.api.serving import extractive_services
from tests.servers import free_port, uvicorn_in_thread

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def static_site(folder: Path):
    """Another origin: a plain web server for the company's own page that embeds the widget."""
    port = free_port()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("site")
    with static_site(folder) as allowed_origin:
        yield folder, allowed_origin


@pytest.fixture(scope="module")
def bot(demo_kb, embedder, tmp_path_factory, site):
    _, allowed_origin = site
    database = f"sqlite:///{tmp_path_factory.mktemp('db') / 'c.sqlite'}"
    settings = Settings(kb_dir=demo_kb, _env_file=None, database_url=database, allowed_origins=[allowed_origin])
    store = SQLAlchemyConversationStore(database)
    with KnowledgeBase.open(demo_kb) as kb:
        services = extractive_services(settings, kb, embedder, store=store)
        with uvicorn_in_thread(create_app(settings, services=services)) as base:
            yield base, store
    store.close()


def last_bot(page):
    return page.locator(".ragw-bot").last


def ask(page, question: str, label: str = "Your question") -> None:
    page.get_by_label(label).fill(question)
    page.get_by_label(label).press("Enter")
    page.wait_for_function(
        "() => !document.querySelector('.ragw-bot[aria-busy]') && document.querySelectorAll('.ragw-user').length > 0",
        timeout=30000,
    )


def test_chat_page_answers_with_sources_feedback_and_reload(bot, browser, tmp_path):
    base, store = bot
    page = browser.new_page()
    page.goto(base + "/")
    ask(page, "How much does gift wrapping cost?")
    answer = last_bot(page)
    assert "$4" in answer.locator(".ragw-text").inner_text()

    # sources: clicking one shows its snippet, and the document's <script> is text, not code
    source = answer.locator(".ragw-source").first
    assert source.get_attribute("aria-expanded") == "false"
    source.click()
    assert source.get_attribute("aria-expanded") == "true"
    snippet = answer.locator(".ragw-snippet").first
    assert snippet.is_visible() and "<script>window.__pwned = 1</script>" in snippet.inner_text()
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator(".ragw script, .ragw img").count() == 0

    # thumbs up is stored against the message the server returned
    answer.get_by_label("Helpful", exact=True).click()
    page.wait_for_function("() => document.querySelector('.ragw-bot:last-child [role=status]').textContent.length > 0")
    assert answer.get_by_label("Helpful", exact=True).get_attribute("aria-pressed") == "true"
    [rating] = store.feedback()
    assert rating.rating == "up"
    message = store.get_message(rating.message_id)
    assert message.question == "How much does gift wrapping cost?"

    # reload: the conversation and its id survive
    page.reload()
    assert page.locator(".ragw-user").first.inner_text().endswith("How much does gift wrapping cost?")
    ask(page, "And do wrapped gifts ship in a plain box?")
    turns = store.history(message.conversation_id, limit=10)
    assert [t.question for t in turns] == [
        "How much does gift wrapping cost?",
        "And do wrapped gifts ship in a plain box?",
    ]
    page.screenshot(path=str(tmp_path / "chat.png"))
    if os.environ.get("RAG_SCREENSHOT"):
        page.screenshot(path=os.environ["RAG_SCREENSHOT"])
    page.close()


def test_handoff_and_chinese(bot, browser):
    base, _ = bot
    page = browser.new_page(locale="zh-CN")
    page.goto(base + "/")
    ask(page, "转人工", label="您的问题")
    bot_reply = last_bot(page)
    assert "ragw-handoff" in bot_reply.get_attribute("class")
    assert "人工" in bot_reply.inner_text() and page.get_by_label("您的问题").is_visible()
    page.close()


def test_widget_on_an_allowed_site_and_refused_elsewhere(bot, browser, site, tmp_path):
    base, _ = bot
    folder, allowed_origin = site
    (folder / "index.html").write_text(
        f'<!doctype html><html><head><meta name="viewport" content="width=device-width, initial-scale=1"></head>'
        f'<body><h1>Pinecrest</h1><script src="{base}/widget.js" data-kb="Help center"></script></body></html>',
        encoding="utf-8",
    )
    phone = browser.new_page(viewport={"width": 375, "height": 667})
    phone.goto(allowed_origin + "/index.html")
    bubble = phone.get_by_label("Open chat")
    bubble.focus()
    phone.keyboard.press("Enter")  # keyboard only
    assert bubble.get_attribute("aria-expanded") == "true"
    panel = phone.get_by_role("dialog")
    box = panel.bounding_box()
    assert box["width"] == 375 and box["height"] == 667  # full screen on a phone
    ask(phone, "Do gift cards expire?")
    assert last_bot(phone).locator(".ragw-sources").count() == 1
    phone.keyboard.press("Escape")
    assert phone.get_by_role("dialog").is_hidden()
    phone.close()

    with static_site(folder) as other_origin:  # same page, an origin not in RAG_ALLOWED_ORIGINS
        page = browser.new_page()
        page.goto(other_origin + "/index.html")
        page.get_by_label("Open chat").click()
        ask(page, "Do gift cards expire?")
        assert "ragw-handoff" in last_bot(page).get_attribute("class")  # the error note: CORS refused the call
        assert last_bot(page).locator(".ragw-sources").count() == 0
        page.close()
