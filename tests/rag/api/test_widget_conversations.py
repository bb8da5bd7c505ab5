"""The chat page's conversations in a real headless Chromium: "New conversation" starts a fresh one, a
conversation idle for half an hour is over (on reload, or when the open page is used again), and each answer
lists its related reading - also checked over HTTP, where /chat returns it."""

from __future__ import annotations

import httpx
import pytest

from rag.api import create_app
from rag.conversations import SQLAlchemyConversationStore
from rag.core.settings import Settings
from rag.store.knowledge_base import KnowledgeBase
from tests.rag.api.serving import extractive_services
from tests.servers import uvicorn_in_thread

pytestmark = pytest.mark.integration

SHIPPING = "How long does standard shipping take in the US?"
STORED_STATE = "() => Object.keys(localStorage).filter(k => k.startsWith('rag-chat:'))"


@pytest.fixture(scope="module")
def bot(demo_kb, embedder, tmp_path_factory):
    database = f"sqlite:///{tmp_path_factory.mktemp('db') / 'c.sqlite'}"
    settings = Settings(kb_dir=demo_kb, _env_file=None, database_url=database)
    store = SQLAlchemyConversationStore(database)
    with KnowledgeBase.open(demo_kb) as kb:
        services = extractive_services(settings, kb, embedder, store=store)
        with uvicorn_in_thread(create_app(settings, services=services)) as base:
            yield base, store
    store.close()


def ask(page, question: str, label: str = "Your question") -> None:
    before = page.locator(".ragw-user").count()
    page.get_by_label(label).fill(question)
    page.get_by_label(label).press("Enter")
    page.wait_for_function(
        "n => !document.querySelector('.ragw-bot[aria-busy]') && document.querySelectorAll('.ragw-user').length > n",
        arg=before if before else -1,
        timeout=30000,
        polling=100,
    )


def conversation_id(page) -> str | None:
    """The conversation the page continues (what it keeps in localStorage)."""
    [key] = page.evaluate(STORED_STATE)
    return page.evaluate("key => JSON.parse(localStorage.getItem(key)).conversationId", key)


def age_stored_conversation(page, minutes: float | None) -> None:
    """Make the stored conversation's last activity `minutes` old (None: stored without a time, as older widgets
    did)."""
    page.evaluate(
        """minutes => {
            for (const key of Object.keys(localStorage).filter(k => k.startsWith('rag-chat:'))) {
                const state = JSON.parse(localStorage.getItem(key));
                if (minutes === null) delete state.updatedAt; else state.updatedAt = Date.now() - minutes * 60000;
                localStorage.setItem(key, JSON.stringify(state));
            }
        }""",
        minutes,
    )


def test_new_conversation_button_starts_a_fresh_one(bot, browser):
    base, store = bot
    page = browser.new_page()
    page.goto(base + "/")
    ask(page, SHIPPING)
    ask(page, "What about express?")
    first = conversation_id(page)
    assert store.history(first)[-1].rewritten_query  # a follow-up: read with the question before it

    page.get_by_role("button", name="New conversation").click()
    assert page.locator(".ragw-user").count() == 0 and conversation_id(page) is None
    ask(page, "What about express?")
    second = conversation_id(page)
    assert second and second != first
    [turn] = store.history(second)
    assert turn.rewritten_query is None  # nothing earlier in this conversation to lean on
    page.reload()  # the new conversation is the one a reload continues
    assert page.locator(".ragw-user").count() == 1
    page.close()

    chinese = browser.new_page(locale="zh-CN")
    chinese.goto(base + "/")
    assert chinese.get_by_role("button", name="新对话").is_visible()
    chinese.close()


def test_a_reload_after_half_an_hour_idle_starts_a_new_conversation(bot, browser):
    base, _ = bot
    page = browser.new_page()
    page.goto(base + "/")
    ask(page, "Do gift cards expire?")
    first = conversation_id(page)

    age_stored_conversation(page, 29)
    page.reload()  # within the idle limit: the conversation goes on
    assert page.locator(".ragw-user").count() == 1 and conversation_id(page) == first

    age_stored_conversation(page, 31)
    page.reload()
    assert page.locator(".ragw-user").count() == 0
    ask(page, "Is there a restocking fee?")
    second = conversation_id(page)
    assert second and second != first

    age_stored_conversation(page, None)  # kept by a widget that never ended a conversation
    page.reload()
    assert page.locator(".ragw-user").count() == 0
    page.close()


def test_a_question_after_half_an_hour_on_the_open_page_starts_a_new_conversation(bot, browser):
    base, store = bot
    page = browser.new_page()
    page.clock.install()
    page.goto(base + "/")
    ask(page, SHIPPING)
    first = conversation_id(page)
    page.clock.fast_forward("31:00")
    ask(page, "What about express?")
    second = conversation_id(page)
    assert second and second != first
    assert page.get_by_role("separator").inner_text() == "New conversation"
    [turn] = store.history(second)
    assert turn.rewritten_query is None
    page.reload()  # only the new conversation is kept
    [kept] = page.locator(".ragw-user").all()
    assert kept.inner_text().endswith("What about express?")
    page.close()


def test_chat_returns_related_reading(bot):
    base, _ = bot
    body = httpx.post(f"{base}/chat", json={"question": SHIPPING}, timeout=60).json()
    assert body["answered"] and 0 < len(body["related"]) <= 3
    assert all(set(r) == {"title", "source", "url"} and r["title"] for r in body["related"])
    cited = {(c["source"], c["title"]) for c in body["citations"]}
    assert not cited & {(r["source"], r["title"]) for r in body["related"]}
    declined = httpx.post(f"{base}/chat", json={"question": "Who won the world cup in 1998?"}, timeout=60).json()
    assert not declined["answered"] and declined["related"] == []
    spec = httpx.get(f"{base}/openapi.json", timeout=30).json()
    assert spec["components"]["schemas"]["ChatResponse"]["properties"]["related"]["type"] == "array"


def test_related_reading_is_shown_under_the_answer(bot, browser):
    base, _ = bot
    expected = httpx.post(f"{base}/chat", json={"question": SHIPPING}, timeout=60).json()["related"]
    page = browser.new_page()
    page.goto(base + "/")
    ask(page, SHIPPING)

    def shown():
        box = page.locator(".ragw-bot").last.locator(".ragw-related")
        assert box.locator("h3").inner_text().lower() == "related reading"
        items = [li.inner_text() for li in box.locator("li").all()]
        links = box.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
        return items, links

    titles = [r["title"] for r in expected]
    urls = [r["url"] for r in expected if r["url"]]
    assert shown() == (titles, urls)
    page.reload()  # kept with the conversation
    assert shown() == (titles, urls)
    page.close()
