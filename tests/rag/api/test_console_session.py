"""The console's session: a key exchanged for an HttpOnly, SameSite=Strict cookie; every /api route accepts it, and
every change made with it must carry its CSRF token; it ends at sign-out or when its key is revoked."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from rag.api import create_app
from rag.core.settings import Settings
from rag.wiring import build_services

pytestmark = pytest.mark.integration
ADMIN_KEY = "console-admin-key"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture(scope="module")
def app(tmp_path_factory, embedder) -> Iterator[object]:
    settings = Settings(kb_root=tmp_path_factory.mktemp("console") / "root", admin_api_key=ADMIN_KEY, _env_file=None)
    services = build_services(settings, background=True, embedder=embedder)
    try:
        yield create_app(settings, services=services)
    finally:
        services.close()


def test_the_console_page_and_its_files_are_served(app):
    with TestClient(app) as client:
        page = client.get("/console")
        assert page.status_code == 200 and "console.js" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert client.get("/console/console.js").headers["content-type"].startswith("application/javascript")
        assert client.get("/console/other.js").status_code == 404


def test_an_admin_session_acts_as_the_admin_key_with_csrf_on_every_change(app):
    with TestClient(app) as client:
        assert client.post("/console/session", json={"key": "wrong"}).status_code == 401
        signed = client.post("/console/session", json={"key": ADMIN_KEY})
        assert signed.status_code == 200 and signed.json()["admin"] is True
        cookie = signed.headers["set-cookie"]
        assert "rag_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "Secure" not in cookie  # plain HTTP on loopback; HTTPS requests get Secure
        csrf = {"X-CSRF-Token": signed.json()["csrf_token"]}

        assert client.get("/api/kbs").status_code == 200  # the cookie alone reads
        create = {"id": "console-kb", "name": "Console"}
        refused = client.post("/api/kbs", json=create)
        assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["error"]["message"]
        assert client.post("/api/kbs", json=create, headers={"X-CSRF-Token": "forged"}).status_code == 403
        assert client.post("/api/kbs", json=create, headers=csrf).status_code == 201
        assert client.get("/console/session").json()["csrf_token"] == csrf["X-CSRF-Token"]

        assert client.request("DELETE", "/console/session").status_code == 403  # sign-out needs the token too
        assert client.request("DELETE", "/console/session", headers=csrf).status_code == 204
        assert client.get("/console/session").status_code == 401
        assert client.get("/api/kbs").status_code == 401


def test_a_knowledge_base_key_session_follows_its_scopes_and_ends_when_revoked(app):
    with TestClient(app) as admin:
        for kb in ("scoped-a", "scoped-b"):
            admin.post("/api/kbs", json={"id": kb, "name": kb}, headers=ADMIN)
        created = admin.post("/api/kbs/scoped-a/keys", json={"scopes": ["chat"]}, headers=ADMIN).json()
    with TestClient(app) as client:
        signed = client.post("/console/session", json={"key": created["key"]}).json()
        assert signed["admin"] is False and signed["kb"] == "scoped-a" and signed["scopes"] == ["chat"]
        assert [kb["id"] for kb in client.get("/api/kbs").json()["data"]] == ["scoped-a"]
        assert client.get("/api/kbs/scoped-a/documents").status_code == 403
        assert client.get("/api/kbs/scoped-b").status_code == 403
        with TestClient(app) as admin:
            assert admin.delete(f"/api/kbs/scoped-a/keys/{created['id']}", headers=ADMIN).status_code == 204
        assert client.get("/api/kbs").status_code == 401  # the key was revoked: its sessions end
