"""The knowledge-base management API in process (real model, FAISS, SQLite, background jobs with the sandboxed
loader): knowledge bases, uploads and jobs, documents, per-KB chat and settings, curated answers, keys,
conversations and erasure. The same over a real `rag serve` and under load: test_kb_server.py."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rag.api import create_app
from rag.core.settings import Settings
from rag.wiring import Services, build_services
from tests.builders import write_markdown

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
ADMIN = {"Authorization": "Bearer admin-key-for-tests"}
GIFT_DOC = b"# Gift wrapping\n\nGift wrapping costs $4.50 per item and comes with a handwritten card.\n"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("kbs") / "root"


@pytest.fixture(scope="module")
def client(root, embedder) -> Iterator[TestClient]:
    settings = Settings(kb_root=root, admin_api_key="admin-key-for-tests", max_upload_bytes=2_000_000, _env_file=None)
    services: Services = build_services(settings, background=True, embedder=embedder)
    try:
        with TestClient(create_app(settings, services=services)) as c:
            yield c
    finally:
        services.close()


def wait_for(client: TestClient, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}", headers=ADMIN).json()
        if job["state"] in ("succeeded", "failed"):
            return job
        time.sleep(0.2)
    raise TimeoutError(f"job {job_id} did not finish")


def upload(client: TestClient, kb: str, *files: tuple[str, bytes], headers: dict = ADMIN) -> dict:
    response = client.post(f"/api/kbs/{kb}/documents", files=[("files", f) for f in files], headers=headers)
    assert response.status_code == 202, response.text
    return wait_for(client, response.json()["job_id"])


def make_kb(client: TestClient, kb_id: str, **extra) -> dict:
    response = client.post("/api/kbs", json={"id": kb_id, "name": kb_id.title(), **extra}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()


def ask(client: TestClient, kb: str, question: str, headers: dict = ADMIN, **extra) -> dict:
    response = client.post(f"/api/kbs/{kb}/chat", json={"question": question, **extra}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_knowledge_base_lifecycle(client, root):
    created = make_kb(client, "lifecycle", language="en", settings={"min_score": 0.3, "llm_api_key": "sk-secret"})
    assert created["settings"] == {"min_score": 0.3, "llm_api_key": "********"}  # a secret is never shown
    assert created["documents"] == 0 and (root / "lifecycle" / "kb.json").is_file()
    assert client.post("/api/kbs", json={"id": "lifecycle", "name": "Again"}, headers=ADMIN).status_code == 409
    for bad in ({"id": "../up", "name": "x"}, {"id": "Upper", "name": "x"}, {"id": "ok-id", "name": ""}):
        assert client.post("/api/kbs", json=bad, headers=ADMIN).status_code == 422, bad
    bad_settings = {"id": "badset", "name": "x", "settings": {"min_score": "high"}}
    response = client.post("/api/kbs", json=bad_settings, headers=ADMIN)
    assert response.status_code == 422 and "min_score" in response.json()["error"]["message"]
    unknown = client.post("/api/kbs", json={"id": "badset", "name": "x", "settings": {"kb_dir": "/"}}, headers=ADMIN)
    assert unknown.status_code == 422 and "settings.kb_dir" in unknown.json()["error"]["message"]
    assert not (root / "badset").exists()

    reset = {"name": "Renamed", "settings": {"min_score": None, "llm_api_key": None}}  # null: the server's value
    changed = client.patch("/api/kbs/lifecycle", json=reset, headers=ADMIN)
    assert changed.status_code == 200 and changed.json()["name"] == "Renamed" and changed.json()["settings"] == {}
    ids = [kb["id"] for kb in client.get("/api/kbs", headers=ADMIN).json()["data"]]
    assert "lifecycle" in ids

    assert client.delete("/api/kbs/lifecycle", headers=ADMIN).status_code == 204
    assert client.get("/api/kbs/lifecycle", headers=ADMIN).status_code == 404
    assert not (root / "lifecycle").exists()


def test_upload_ingest_answer_and_delete(client, root, tmp_path):
    make_kb(client, "shop")
    faq = (ROOT / "data" / "faq_en.csv").read_bytes()
    guide = write_markdown(tmp_path / "guide.md").read_bytes()
    job = upload(client, "shop", ("faq_en.csv", faq), ("../../guide.md", guide), ("gift.md", GIFT_DOC))
    assert job["state"] == "succeeded" and job["files_done"] == job["files_total"] == 3 and not job["failures"]
    assert job["chunks_embedded"] > 0
    # the traversal name was kept inside the knowledge base's files folder
    assert (root / "shop" / "files" / "guide.md").is_file() and not (root / "guide.md").exists()

    docs = {d["name"]: d for d in client.get("/api/kbs/shop/documents", headers=ADMIN).json()["data"]}
    assert set(docs) == {"faq_en.csv", "guide.md", "gift.md"}
    assert all(d["status"] == "ingested" and d["chunks"] > 0 and d["ingested_at"] for d in docs.values())
    chunks = client.get(f"/api/kbs/shop/documents/{docs['gift.md']['document_id']}/chunks", headers=ADMIN).json()
    assert "$4.50" in chunks["data"][0]["text"]

    answer = ask(client, "shop", "How much does gift wrapping cost?")
    assert answer["answered"] and "4.50" in answer["answer"]
    assert answer["citations"][0]["source"] == "files/gift.md"

    deleted = client.delete(f"/api/kbs/shop/documents/{docs['gift.md']['document_id']}", headers=ADMIN)
    assert deleted.status_code == 202 and wait_for(client, deleted.json()["job_id"])["state"] == "succeeded"
    names = {d["name"] for d in client.get("/api/kbs/shop/documents", headers=ADMIN).json()["data"]}
    assert names == {"faq_en.csv", "guide.md"} and not (root / "shop" / "files" / "gift.md").exists()
    after = ask(client, "shop", "How much does gift wrapping cost?")
    assert all(c["source"] != "files/gift.md" for c in after["citations"])

    again = client.post(f"/api/kbs/shop/documents/{docs['guide.md']['document_id']}/reingest", headers=ADMIN)
    assert again.status_code == 202 and wait_for(client, again.json()["job_id"])["state"] == "succeeded"


def test_uploads_refused_or_reported(client, root):
    make_kb(client, "limits")
    refused = client.post(
        "/api/kbs/limits/documents",
        files=[("files", ("ok.md", GIFT_DOC)), ("files", ("tool.exe", b"MZ\x90\x00"))],
        headers=ADMIN,
    )
    assert refused.status_code == 415 and "tool.exe" in refused.json()["error"]["message"]
    assert not list((root / "limits" / "files").iterdir())  # nothing of a refused request is kept

    too_big = client.post("/api/kbs/limits/documents", files=[("files", ("big.txt", b"x" * 2_100_000))], headers=ADMIN)
    assert too_big.status_code == 413 and "RAG_MAX_UPLOAD_BYTES" in too_big.json()["error"]["message"]

    job = upload(client, "limits", ("broken.pdf", b"this is not a pdf"), ("fine.md", GIFT_DOC))
    assert job["state"] == "succeeded"
    assert [f["file"] for f in job["failures"]] == ["broken.pdf"] and job["failures"][0]["reason"]
    docs = {d["name"]: d for d in client.get("/api/kbs/limits/documents", headers=ADMIN).json()["data"]}
    assert docs["broken.pdf"]["status"] == "failed" and docs["broken.pdf"]["error"]
    assert docs["fine.md"]["status"] == "ingested"

    all_bad = upload(client, "limits", ("empty.txt", b""))
    assert all_bad["state"] == "failed" and all_bad["failures"][0]["file"] == "empty.txt"


def test_settings_take_effect_at_once(client):
    make_kb(client, "tuned")
    upload(client, "tuned", ("gift.md", GIFT_DOC))
    assert ask(client, "tuned", "How much does gift wrapping cost?")["answered"]
    client.patch(
        "/api/kbs/tuned",
        json={"settings": {"min_score": 1.01, "fallback_message": "A colleague will take over from here."}},
        headers=ADMIN,
    )
    declined = ask(client, "tuned", "How much does gift wrapping cost?")
    assert not declined["answered"] and declined["answer"] == "A colleague will take over from here."


def test_curated_answer_is_returned_verbatim_without_reingest(client):
    make_kb(client, "curated")
    upload(client, "curated", ("gift.md", GIFT_DOC))
    text = "Yes - every order over $80 ships free with Standard shipping, anywhere in the US."
    created = client.post(
        "/api/kbs/curated/answers",
        json={"question": "Is shipping free?", "answer": text, "phrasings": ["Do you offer free shipping?"]},
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    again = client.post(
        "/api/kbs/curated/answers", json={"question": "is shipping FREE?", "answer": "x"}, headers=ADMIN
    )
    assert again.status_code == 409 and created.json()["id"] in again.json()["error"]["message"]
    answer = ask(client, "curated", "do you offer free shipping")
    assert answer["answer"] == text and answer["answered"] and answer["generator"] == "curated"

    answer_id = created.json()["id"]
    client.patch(f"/api/kbs/curated/answers/{answer_id}", json={"enabled": False}, headers=ADMIN)
    assert ask(client, "curated", "do you offer free shipping")["answer"] != text
    exported = client.get("/api/kbs/curated/answers.csv", headers=ADMIN)
    assert exported.status_code == 200 and "Is shipping free?" in exported.text
    assert client.delete(f"/api/kbs/curated/answers/{answer_id}", headers=ADMIN).status_code == 204
    assert client.get(f"/api/kbs/curated/answers/{answer_id}", headers=ADMIN).status_code == 404

    sheet = "question,answer,phrasings,language,enabled\nCan I pay by invoice?,Yes: net 30 for businesses.,,en,true\n"
    imported = client.post(
        "/api/kbs/curated/answers.csv", files={"file": ("answers.csv", sheet.encode())}, headers=ADMIN
    )
    assert imported.status_code == 200 and imported.json()["added"] == 1
    assert ask(client, "curated", "Can I pay by invoice?")["answer"] == "Yes: net 30 for businesses."


def test_keys_are_scoped_hashed_and_revocable(client, root):
    make_kb(client, "keyed")
    upload(client, "keyed", ("gift.md", GIFT_DOC))
    created = client.post("/api/kbs/keyed/keys", json={"scopes": ["chat"], "name": "widget"}, headers=ADMIN)
    assert created.status_code == 201
    key, key_id = created.json()["key"], created.json()["id"]
    bearer = {"Authorization": f"Bearer {key}"}
    assert ask(client, "keyed", "How much is gift wrapping?", headers=bearer)["answered"]
    assert client.get("/api/kbs/keyed/documents", headers=bearer).status_code == 403
    assert [kb["id"] for kb in client.get("/api/kbs", headers=bearer).json()["data"]] == ["keyed"]
    assert [m["id"] for m in client.get("/v1/models", headers=bearer).json()["data"]] == ["keyed"]

    with sqlite3.connect(root / "catalog.sqlite") as db:  # only the hash of the secret is stored
        dump = "\n".join(db.iterdump())
    assert key.split("_", 2)[2] not in dump

    assert client.delete(f"/api/kbs/keyed/keys/{key_id}", headers=ADMIN).status_code == 204
    assert client.post("/api/kbs/keyed/chat", json={"question": "hi"}, headers=bearer).status_code == 401
    assert client.get("/api/kbs", headers={"Authorization": "Bearer rk_000000000000_" + "x" * 43}).status_code == 401
    assert client.get("/api/kbs").status_code == 401


def test_conversations_listed_shown_exported_and_erased(client, root):
    make_kb(client, "talks")
    upload(client, "talks", ("gift.md", GIFT_DOC))
    first = ask(client, "talks", "How much does gift wrapping cost?", customer_id="cust-42")
    ask(client, "talks", "Does it come with a card?", conversation_id=first["conversation_id"], customer_id="cust-42")
    other = ask(client, "talks", "Can I pay with bitcoin on the moon?")
    listed = client.get("/api/kbs/talks/conversations", headers=ADMIN).json()
    assert listed["total"] == 2 and {c["conversation_id"] for c in listed["data"]} == {
        first["conversation_id"],
        other["conversation_id"],
    }
    declined = client.get("/api/kbs/talks/conversations?declined=true", headers=ADMIN).json()
    assert [c["conversation_id"] for c in declined["data"]] == [other["conversation_id"]]
    found = client.get("/api/kbs/talks/conversations?q=CARD", headers=ADMIN).json()
    assert [c["conversation_id"] for c in found["data"]] == [first["conversation_id"]]
    assert client.get("/api/kbs/talks/conversations?since=yesterday", headers=ADMIN).status_code == 422

    detail = client.get(f"/api/kbs/talks/conversations/{first['conversation_id']}", headers=ADMIN).json()
    assert detail["customer_id"] == "cust-42" and len(detail["turns"]) == 2
    turn = detail["turns"][0]
    assert turn["citations"] and turn["retrieved"][0]["source"] == "files/gift.md" and turn["retrieved"][0]["text"]

    exported = client.get("/api/kbs/talks/conversations.csv", headers=ADMIN)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert exported.text.count("talks,") >= 3 and "gift wrapping" in exported.text

    erased = client.delete("/api/kbs/talks/customers/cust-42", headers=ADMIN)
    assert erased.status_code == 200 and erased.json() == {"conversations": 1, "turns": 2}
    assert client.get(f"/api/kbs/talks/conversations/{first['conversation_id']}", headers=ADMIN).status_code == 404
    assert client.delete(f"/api/kbs/talks/conversations/{other['conversation_id']}", headers=ADMIN).status_code == 204
    assert client.get("/api/kbs/talks/conversations", headers=ADMIN).json()["total"] == 0
    with sqlite3.connect(root / "conversations.sqlite") as db:
        dump = "\n".join(db.iterdump())
    assert first["conversation_id"] not in dump and "cust-42" not in dump and "bitcoin" not in dump


def test_a_knowledge_base_allows_its_own_origins(client):
    make_kb(client, "widgets", settings={"allowed_origins": ["https://shop.example.com"]})
    make_kb(client, "closed")
    shop = {"Origin": "https://shop.example.com", "Access-Control-Request-Method": "POST"}
    preflight = client.options("/api/kbs/widgets/chat", headers=shop)
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://shop.example.com"
    assert client.options("/api/kbs/closed/chat", headers=shop).status_code == 400
    evil = {"Origin": "https://evil.example.net", "Access-Control-Request-Method": "POST"}
    assert client.options("/api/kbs/widgets/chat", headers=evil).status_code == 400

    allowed = client.post(
        "/api/kbs/widgets/chat", json={"question": "hello?"}, headers={**ADMIN, "Origin": "https://shop.example.com"}
    )
    assert allowed.headers.get("access-control-allow-origin") == "https://shop.example.com"
    refused = client.post(
        "/api/kbs/closed/chat", json={"question": "hello?"}, headers={**ADMIN, "Origin": "https://shop.example.com"}
    )
    assert "access-control-allow-origin" not in refused.headers


def test_a_question_without_words_is_answered_in_the_knowledge_bases_language(client):
    make_kb(client, "zh-shop", language="zh")
    upload(client, "zh-shop", ("gift.md", GIFT_DOC))
    declined = ask(client, "zh-shop", "#58213 ???")
    assert declined["language"] == "zh" and declined["answer"] == Settings(_env_file=None).fallback_message_zh
    assert ask(client, "zh-shop", "How much does gift wrapping cost?")["language"] == "en"


def test_a_manage_key_cannot_redirect_questions_or_relax_privacy(client, root):
    make_kb(client, "tenant", settings={"llm_api_key": "sk-tenant", "fallback_message": "Hold on."})
    key = client.post("/api/kbs/tenant/keys", json={"scopes": ["manage"]}, headers=ADMIN).json()["key"]
    manage = {"Authorization": f"Bearer {key}"}
    shown = client.get("/api/kbs/tenant", headers=manage).json()["settings"]
    assert shown["llm_api_key"] == "********"
    # sent back as shown, a secret keeps its value; other settings change
    kept = client.patch(
        "/api/kbs/tenant", json={"settings": {**shown, "fallback_message": "One moment."}}, headers=manage
    )
    assert kept.status_code == 200, kept.text
    stored = (root / "tenant" / "kb.json").read_text(encoding="utf-8")
    assert "sk-tenant" in stored and "One moment." in stored
    assert oct((root / "tenant" / "kb.json").stat().st_mode & 0o777) == "0o600"
    for change in ({"llm_base_url": "http://attacker.example/v1"}, {"redact_pii": False, "retention_days": None}):
        refused = client.patch(
            "/api/kbs/tenant", json={"settings": {**shown, **change, "redact_pii": True}}, headers=manage
        )
        assert refused.status_code == 403 and "RAG_ADMIN_API_KEY" in refused.json()["error"]["message"], change


def test_without_a_key_v1_reaches_only_the_default_knowledge_base(client):
    make_kb(client, "zz-private")
    ids = sorted(kb["id"] for kb in client.get("/api/kbs", headers=ADMIN).json()["data"])
    assert [m["id"] for m in client.get("/v1/models").json()["data"]] == [ids[0]]  # what the open /chat answers from
    private = {"model": "zz-private", "messages": [{"role": "user", "content": "How much is gift wrapping?"}]}
    assert client.post("/v1/chat/completions", json=private).status_code == 404


def test_a_broken_kb_json_hides_only_its_own_knowledge_base(client, root):
    make_kb(client, "broken")
    (root / "broken" / "kb.json").write_text("[]", encoding="utf-8")
    ids = [kb["id"] for kb in client.get("/api/kbs", headers=ADMIN).json()["data"]]
    assert "broken" not in ids and ids
    response = client.get("/api/kbs/broken", headers=ADMIN)
    assert response.status_code == 503 and str(root) not in response.json()["error"]["message"]
