"""POST /chat end to end over HTTP against a real uvicorn server (extractive generator, real model and KB)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from rag.api import create_app
from rag.core.settings import Settings
from rag.store.knowledge_base import KnowledgeBase
from tests.rag.api.serving import extractive_services
from tests.servers import free_port, process, sse_events, uvicorn_in_thread

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def base_url(demo_kb, embedder):
    settings = Settings(kb_dir=demo_kb, _env_file=None, max_body_bytes=4096, max_question_chars=500)
    kb = KnowledgeBase.open(demo_kb)
    services = extractive_services(settings, kb, embedder)
    with uvicorn_in_thread(create_app(settings, services=services)) as url:
        yield url
    kb.close()


def test_answer_is_grounded_and_cited(base_url):
    r = httpx.post(f"{base_url}/chat", json={"question": "How much does express shipping cost in the US?"}, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= {
        "answer",
        "answered",
        "handoff",
        "citations",
        "conversation_id",
        "message_id",
        "usage",
        "latency_ms",
    }
    assert body["answered"] is True and body["handoff"] is False
    assert "$12.95" in body["answer"]
    assert body["citations"], body
    for c in body["citations"]:
        assert f"[{c['marker']}]" in body["answer"]
        assert c["source"].startswith("data/") or c["url"]
        assert c["snippet"] and c["chunk_id"] is not None and 0 < c["score"] <= 1.0001
    assert any(c["source"] in ("data/shipping-policy.md", "data/faq_en.csv") for c in body["citations"])


def test_conversation_id_is_kept_and_message_ids_are_new(base_url):
    first = httpx.post(
        f"{base_url}/chat", json={"question": "Do gift cards expire?", "conversation_id": "conv-42"}, timeout=30
    ).json()
    second = httpx.post(
        f"{base_url}/chat", json={"question": "Can I use two coupons?", "conversation_id": "conv-42"}, timeout=30
    ).json()
    assert first["conversation_id"] == second["conversation_id"] == "conv-42"
    assert first["message_id"] != second["message_id"]


def test_out_of_scope_question_declines_and_hands_off(base_url):
    body = httpx.post(
        f"{base_url}/chat", json={"question": "Who won the football world cup in 1998?"}, timeout=30
    ).json()
    assert body["answered"] is False and body["handoff"] is True and body["citations"] == []
    assert body["answer"] == Settings(_env_file=None).fallback_message
    assert body["decline_reason"] == "low_retrieval_score"


def test_chinese_question_gets_a_chinese_answer(base_url):
    body = httpx.post(f"{base_url}/chat", json={"question": "几点之前下单当天能发货？"}, timeout=30).json()
    assert body["language"] == "zh"
    if body["answered"]:
        assert body["citations"] and any("\u4e00" <= ch <= "\u9fff" for ch in body["answer"])
    else:
        assert body["answer"] == Settings(_env_file=None).fallback_message_zh


def test_streaming_sends_deltas_then_one_done_event_with_citations(base_url):
    with httpx.stream(
        "POST", f"{base_url}/chat", json={"question": "How long do refunds take?", "stream": True}, timeout=30
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r)
    kinds = [e for e, _ in events]
    assert kinds[-1] == "done" and kinds.count("done") == 1 and set(kinds[:-1]) == {"delta"}
    streamed = "".join(d["text"] for e, d in events if e == "delta")
    done = events[-1][1]
    assert " ".join(streamed.split()) == " ".join(done["answer"].split())
    assert done["answered"] and done["citations"]


def test_filters_restrict_the_sources(base_url):
    body = httpx.post(
        f"{base_url}/chat",
        json={
            "question": "How do I return an item?",
            "top_k": 3,
            "filters": {"source_prefix": "data/returns-and-refunds"},
        },
        timeout=30,
    ).json()
    assert body["citations"] and {c["source"] for c in body["citations"]} == {"data/returns-and-refunds.html"}


def test_planted_instructions_in_a_document_are_not_obeyed(base_url):
    body = httpx.post(f"{base_url}/chat", json={"question": "How much is shipping insurance?"}, timeout=30).json()
    assert "PWNED" not in body["answer"] and "developer mode" not in body["answer"]
    assert body["answered"] and "$3.50" in body["answer"]


@pytest.mark.parametrize(
    "payload, status, kind, needle",
    [
        ({"question": ""}, 422, "invalid_request", "question: must not be empty"),
        ({"question": "   "}, 422, "invalid_request", "question: must not be empty"),
        ({"question": "x" * 501}, 422, "invalid_request", "the limit is 500"),
        ({"question": "hi", "colour": "blue"}, 422, "invalid_request", "colour"),
        ({"question": "hi", "top_k": 0}, 422, "invalid_request", "top_k"),
        ({"question": "hi", "top_k": 999}, 422, "invalid_request", "top_k: must be at most 20"),
        ({"question": 7}, 422, "invalid_request", "question"),
        ({}, 422, "invalid_request", "question"),
        ({"question": "hi", "filters": {"metadata": {"a": [1]}}}, 422, "invalid_request", "filters.metadata"),
    ],
)
def test_bad_requests_get_a_4xx_json_error_naming_the_problem(base_url, payload, status, kind, needle):
    r = httpx.post(f"{base_url}/chat", json=payload, timeout=30)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["type"] == kind and needle in error["message"]


def test_malformed_json_oversized_and_chunked_bodies(base_url):
    r = httpx.post(
        f"{base_url}/chat", content=b'{"question": "hi",', headers={"content-type": "application/json"}, timeout=30
    )
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_json"
    not_text = b'{"question": "\xff\xfe"}'  # not UTF-8
    r = httpx.post(f"{base_url}/chat", content=not_text, headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_json"
    # a JSON object labelled as something else (curl -d sends form encoding): the label is what is wrong
    for label in ("text/plain", "application/x-www-form-urlencoded"):
        r = httpx.post(f"{base_url}/chat", content=b'{"question": "hi"}', headers={"content-type": label}, timeout=30)
        error = r.json()["error"]
        assert r.status_code == 415 and error["type"] == "unsupported_media_type"
        assert "Content-Type: application/json" in error["message"] and label in error["message"]
    r = httpx.post(f"{base_url}/chat", json={"question": "y" * 5000}, timeout=30)
    assert r.status_code == 413 and r.json()["error"]["type"] == "body_too_large"

    def chunks():
        yield b'{"question": "'
        for _ in range(10):
            yield b"z" * 1000
        yield b'"}'

    r = httpx.post(f"{base_url}/chat", content=chunks(), headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 413 and r.json()["error"]["type"] == "body_too_large"
    r = httpx.get(f"{base_url}/chat", timeout=30)
    assert r.status_code == 405 and r.json()["error"]["type"] == "method_not_allowed"
    # and the server keeps serving
    assert httpx.get(f"{base_url}/health", timeout=30).json()["status"] == "ok"


def test_health_and_openapi_docs(base_url):
    health = httpx.get(f"{base_url}/health", timeout=30).json()
    assert health["generator"] == "extractive" and health["knowledge_base"]["chunks"] > 100
    for path in ("/health", "/", "/widget.js"):  # uptime monitors ask with HEAD: headers, no body
        head = httpx.head(f"{base_url}{path}", timeout=30)
        assert head.status_code == 200 and head.content == b"", path
    assert httpx.get(f"{base_url}/docs", timeout=30).status_code == 200
    spec = httpx.get(f"{base_url}/openapi.json", timeout=30).json()
    assert "/chat" in spec["paths"] and "/health" in spec["paths"]


def test_rag_serve_command_serves_the_same_api(demo_kb, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    cmd = [str(Path(sys.executable).with_name("rag")), "serve", "--kb", str(demo_kb), "--port", str(port)]
    with process(cmd, f"http://127.0.0.1:{port}/health", env=env, timeout=120, log=tmp_path / "serve.log"):
        body = httpx.post(
            f"http://127.0.0.1:{port}/chat", json={"question": "How long is the return window?"}, timeout=30
        ).json()
        assert body["answered"] and "30 days" in body["answer"]
    missing = subprocess.run(
        [str(Path(sys.executable).with_name("rag")), "serve", "--kb", str(tmp_path / "none")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2 and "Knowledge base not found" in missing.stderr
