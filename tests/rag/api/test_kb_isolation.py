"""Isolation of knowledge bases, for every route of the management API (enumerated from the app, so a route added
later is covered too): a key of knowledge base A gets 403 on B, a key without scopes gets 403 everywhere, no key
or a wrong key gets 401, and only the admin key creates and deletes knowledge bases."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from rag.api import create_app
from rag.core.settings import Settings
from rag.wiring import build_services

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": "Bearer isolation-admin-key"}
ALL_SCOPES = ["chat", "ingest", "conversations", "manage"]
ADMIN_ONLY = {("POST", "/api/kbs"), ("DELETE", "/api/kbs/{kb}")}
OPEN_TO_EVERY_KEY = {("GET", "/api/kbs")}  # lists only what the key may see


@pytest.fixture(scope="module")
def setup(tmp_path_factory, embedder) -> Iterator[tuple[TestClient, dict]]:
    settings = Settings(
        kb_root=tmp_path_factory.mktemp("iso") / "root", admin_api_key="isolation-admin-key", _env_file=None
    )
    services = build_services(settings, background=True, embedder=embedder)
    try:
        with TestClient(create_app(settings, services=services)) as client:
            ids: dict = {}
            for kb in ("kb-a", "kb-b"):
                client.post("/api/kbs", json={"id": kb, "name": kb}, headers=ADMIN).raise_for_status()
                job = client.post(
                    f"/api/kbs/{kb}/documents",
                    files=[("files", ("doc.md", b"# Doc\n\nReturns are accepted within 30 days.\n"))],
                    headers=ADMIN,
                ).json()
                while client.get(f"/api/jobs/{job['job_id']}", headers=ADMIN).json()["state"] in ("queued", "running"):
                    time.sleep(0.1)
                ids[kb] = {"job_id": job["job_id"]}
                ids[kb]["key"] = _key(client, kb, ALL_SCOPES)
                ids[kb]["no_scope_key"] = _key(client, kb, [])
                answer = client.post(f"/api/kbs/{kb}/chat", json={"question": "returns?"}, headers=ADMIN).json()
                ids[kb]["conversation_id"] = answer["conversation_id"]
                ids[kb]["message_id"] = answer["message_id"]
                docs = client.get(f"/api/kbs/{kb}/documents", headers=ADMIN).json()["data"]
                ids[kb]["document_id"] = docs[0]["document_id"]
                created = client.post(
                    f"/api/kbs/{kb}/answers", json={"question": "Q?", "answer": "A."}, headers=ADMIN
                ).json()
                ids[kb]["answer_id"] = created["id"]
                ids[kb]["key_id"] = client.get(f"/api/kbs/{kb}/keys", headers=ADMIN).json()["data"][0]["id"]
            yield client, ids
    finally:
        services.close()


def _key(client: TestClient, kb: str, scopes: list[str]) -> dict:
    created = client.post(f"/api/kbs/{kb}/keys", json={"scopes": scopes}, headers=ADMIN).json()
    return {"Authorization": f"Bearer {created['key']}"}


def _routes(client: TestClient) -> list[tuple[str, str]]:
    """Every (method, path) under /api, as the OpenAPI document lists the app's routes."""
    paths = client.get("/openapi.json").json()["paths"]
    return [(method.upper(), path) for path, ops in paths.items() if path.startswith("/api/") for method in ops]


def _url(path: str, ids: dict, kb: str) -> str:
    values = {"kb": kb, "customer_id": "someone", **ids[kb]}
    return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), path)


def test_every_route_is_enumerated(setup):
    client, _ = setup
    routes = _routes(client)
    assert len(routes) >= 25, routes  # the surface the next checks cover
    assert ("POST", "/api/kbs/{kb}/chat") in routes and ("GET", "/api/jobs/{job_id}") in routes


def test_a_key_of_one_knowledge_base_gets_403_on_every_route_of_another(setup):
    client, ids = setup
    checked = 0
    for method, path in _routes(client):
        if (method, path) in OPEN_TO_EVERY_KEY:
            continue
        if "{" not in path and (method, path) not in ADMIN_ONLY:
            continue
        url = _url(path, ids, "kb-b")
        response = client.request(method, url, headers=ids["kb-a"]["key"], json={})
        assert response.status_code == 403, (method, url, response.status_code, response.text)
        checked += 1
    assert checked >= 25


def test_a_key_without_scopes_gets_403_everywhere(setup):
    client, ids = setup
    for method, path in _routes(client):
        if (method, path) in OPEN_TO_EVERY_KEY:
            continue
        url = _url(path, ids, "kb-a")
        response = client.request(method, url, headers=ids["kb-a"]["no_scope_key"], json={})
        assert response.status_code == 403, (method, url, response.status_code, response.text)
    assert client.get("/api/kbs", headers=ids["kb-a"]["no_scope_key"]).json()["data"] == []


def test_no_key_or_a_wrong_key_gets_401_everywhere(setup):
    client, ids = setup
    for method, path in _routes(client):
        url = _url(path, ids, "kb-a")
        for headers in ({}, {"Authorization": "Bearer not-a-key"}):
            response = client.request(method, url, headers=headers, json={})
            assert response.status_code == 401, (method, url, headers, response.status_code)


def test_a_key_reaches_its_own_knowledge_base(setup):
    client, ids = setup
    key = ids["kb-a"]["key"]
    assert client.post("/api/kbs/kb-a/chat", json={"question": "returns?"}, headers=key).status_code == 200
    assert client.get("/api/kbs/kb-a/documents", headers=key).status_code == 200
    assert client.get(f"/api/jobs/{ids['kb-a']['job_id']}", headers=key).status_code == 200
    assert client.get("/api/kbs/kb-a/conversations", headers=key).status_code == 200
    assert [kb["id"] for kb in client.get("/api/kbs", headers=key).json()["data"]] == ["kb-a"]
    # the OpenAI-compatible API: the key's knowledge base is its only model
    completion = {"model": "kb-b", "messages": [{"role": "user", "content": "returns?"}]}
    assert client.post("/v1/chat/completions", json=completion, headers=key).status_code == 404
    completion["model"] = "kb-a"
    assert client.post("/v1/chat/completions", json=completion, headers=key).status_code == 200
