"""The web side: security headers on every response, API docs served offline under the same
Content-Security-Policy, and document links that are not http(s) never becoming clickable citations - neither
in the API response nor in the widget (checked in a real Chromium, which also reports any CSP violation)."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from ingest.pipeline import ingest
from rag.api.headers import CONTENT_SECURITY_POLICY
from rag.conversations import SQLAlchemyConversationStore
from rag.core.settings import Settings
from rag.store.knowledge_base import KnowledgeBase
from tests.rag.api.serving import extractive_services, guarded_server

pytestmark = pytest.mark.integration

HOSTILE_HTML = """<!doctype html><html><head><title>Gift vouchers</title>
<link rel="canonical" href="javascript:alert(document.domain)"></head>
<body><h1>Gift vouchers</h1><p>Pinecrest gift vouchers never expire and can be redeemed in the online shop.</p>
</body></html>"""
RECORDS = [
    {
        "_id": "lockers",
        "title": "Parcel lockers",
        "url": " JAVA\tSCRIPT:alert(1)",
        "text": "Parcel lockers: collect your parcel from a Pinecrest parcel locker within 7 days of delivery.",
    },
    {
        "_id": "data",
        "title": "Wrapping paper",
        "url": "data:text/html,<script>alert(1)</script>",
        "text": "Wrapping paper: recycled wrapping paper is available in three colours for every order.",
    },
    {
        "_id": "credit",
        "title": "Store credit",
        "url": "https://help.example.com/store-credit",
        "text": "Store credit: refunds as store credit are issued within one business day and never expire.",
    },
]


@pytest.fixture(scope="module")
def site(tmp_path_factory, embedder):
    """A bot over documents whose links are hostile (javascript:, data:) or fine (https)."""
    docs = tmp_path_factory.mktemp("hostile-links")
    (docs / "vouchers.html").write_text(HOSTILE_HTML, encoding="utf-8")
    (docs / "extras.jsonl").write_text("\n".join(json.dumps(r) for r in RECORDS) + "\n", encoding="utf-8")
    kb_dir = tmp_path_factory.mktemp("kb") / "kb"
    database = f"sqlite:///{tmp_path_factory.mktemp('db') / 'c.sqlite'}"
    settings = Settings(kb_dir=kb_dir, _env_file=None, database_url=database)
    assert not ingest([docs], kb_dir, embedder, settings).failed
    store = SQLAlchemyConversationStore(database)
    with KnowledgeBase.open(kb_dir) as kb:
        services = extractive_services(settings, kb, embedder, store=store)
        with guarded_server(settings, services) as url:
            yield url
    store.close()


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/"),
        ("GET", "/widget.js"),
        ("GET", "/health"),
        ("GET", "/docs"),
        ("GET", "/openapi.json"),
        ("POST", "/chat"),
        ("TRACE", "/chat"),
    ],
)
def test_every_response_carries_the_security_headers(site, method, path):
    r = httpx.request(method, site + path, timeout=30)
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert r.headers["referrer-policy"] == "no-referrer"


def test_too_large_bodies_carry_them_too(site):
    r = httpx.post(f"{site}/chat", content=b"x" * 70000, headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 413 and r.headers["x-content-type-options"] == "nosniff"


def test_docs_are_served_from_this_server(site):
    page = httpx.get(f"{site}/docs", timeout=30).text
    assert not re.search(r"(src|href)=\"(https?:)?//", page), page  # nothing from a CDN
    for asset, media_type in [
        ("swagger-ui-bundle.js", "application/javascript"),
        ("swagger-ui.css", "text/css"),
        ("docs.js", "application/javascript"),
        ("favicon.png", "image/png"),
    ]:
        r = httpx.get(f"{site}/docs/assets/{asset}", timeout=30)
        assert r.status_code == 200 and r.headers["content-type"].startswith(media_type) and r.content
    assert httpx.get(f"{site}/docs/assets/..%2Fapp.py", timeout=30).status_code == 404


@pytest.mark.parametrize(
    "question, url",
    [
        ("Do Pinecrest gift vouchers expire?", None),
        ("How long can I collect my parcel from a parcel locker?", None),
        ("Is recycled wrapping paper available?", None),
        ("How fast is store credit issued?", "https://help.example.com/store-credit"),
    ],
)
def test_only_http_links_become_citation_urls(site, question, url):
    body = httpx.post(f"{site}/chat", json={"question": question}, timeout=30).json()
    assert body["citations"], body
    assert body["citations"][0]["url"] == url
    assert not any(c["url"] and not c["url"].startswith("https://") for c in body["citations"])


def watched_page(browser, base: str):
    """A page that records console errors (CSP violations among them) and every request leaving `base`."""
    page = browser.new_page()
    page.problems = []
    page.on("console", lambda m: page.problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    page.on("request", lambda r: None if r.url.startswith(base) else page.problems.append(f"outside: {r.url}"))
    return page


def test_swagger_ui_works_offline_under_the_csp(site, browser):
    page = watched_page(browser, site)
    page.goto(f"{site}/docs")
    page.wait_for_selector(".opblock", timeout=20000)
    operations = httpx.get(f"{site}/openapi.json", timeout=30).json()["paths"]
    assert page.locator(".opblock").count() == sum(len(ops) for ops in operations.values()) >= 6
    assert page.problems == []
    page.close()


def test_widget_links_only_http_urls_even_if_the_server_sent_others(site, browser):
    """Defence in depth: a /chat reply carrying javascript: and data: URLs (a server that did not sanitise)."""
    citations = [
        {
            "marker": i + 1,
            "chunk_id": i,
            "source": f"doc{i}.md",
            "url": url,
            "title": f"Doc {i}",
            "heading": "",
            "page": None,
            "row": None,
            "snippet": "Some text.",
            "score": 0.9,
        }
        for i, url in enumerate(
            [
                "javascript:alert(1)",
                " JaVaScRiPt:alert(2)",
                "data:text/html,<b>x</b>",
                "https://help.example.com/ok",
                "/relative/page",
            ]
        )
    ]
    page = page_answered_with(browser, site, {"answer": "Here you go [1][2][3][4][5].", "citations": citations})
    page.wait_for_selector(".ragw-sources", timeout=20000)
    hrefs = page.eval_on_selector_all(".ragw-snippet a", "links => links.map(a => a.getAttribute('href'))")
    assert hrefs == ["https://help.example.com/ok", f"{site}/relative/page"]
    assert page.problems == []  # the chat page and widget run under the CSP without a violation
    page.close()


def test_widget_shows_hostile_related_titles_as_text_and_links_only_http_urls(site, browser):
    """A /chat reply whose related reading carries markup in its titles and javascript:/data: URLs."""
    related = [
        {"title": '<img src=x onerror="window.__pwned = 3">Evil', "source": "a.md", "url": "javascript:alert(1)"},
        {"title": "<script>window.__pwned = 4</script>", "source": "b.md", "url": "https://help.example.com/ok"},
        {"title": "", "source": "<b>c.md</b>", "url": " data:text/html,<b>x</b>"},
    ]
    page = page_answered_with(browser, site, {"answer": "Here you go.", "citations": [], "related": related})
    page.wait_for_selector(".ragw-related", timeout=20000)
    items = page.locator(".ragw-related li").all_inner_texts()
    assert items == [related[0]["title"], related[1]["title"], "<b>c.md</b>"]  # shown as text
    hrefs = page.eval_on_selector_all(".ragw-related a", "links => links.map(a => a.getAttribute('href'))")
    assert hrefs == ["https://help.example.com/ok"]
    assert page.locator(".ragw img, .ragw script, .ragw-related b").count() == 0
    assert page.evaluate("() => window.__pwned") is None
    assert page.problems == []
    page.close()


def page_answered_with(browser, site, fields: dict):
    """The chat page, its /chat replying with one `done` event holding `fields`, after a question was asked."""
    done = {
        "answered": True, "handoff": False, "conversation_id": "c1", "message_id": "m1",
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "estimated": True},
        "latency_ms": 1.0, "generator": "extractive", "language": "en", **fields,
    }  # fmt: skip
    stream = f"event: done\ndata: {json.dumps(done)}\n\n"
    page = watched_page(browser, site)
    page.route("**/chat", lambda route: route.fulfill(status=200, content_type="text/event-stream", body=stream))
    page.goto(f"{site}/")
    page.get_by_label("Your question").fill("hostile?")
    page.get_by_label("Your question").press("Enter")
    return page
