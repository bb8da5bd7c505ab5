"""The console's dashboard and inbox over the API: statistics per day and language, the unanswered questions
grouped with a "fixed since" count, answers rated down, handoffs, and trying a draft curated answer first."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from rag.api import create_app
from rag.core.settings import Settings
from rag.wiring import build_services

pytestmark = pytest.mark.integration
ADMIN = {"Authorization": "Bearer insights-admin"}
DOC = b"# Gift wrapping\n\nGift wrapping costs $4.50 per item and comes with a handwritten card.\n"


@pytest.fixture(scope="module")
def client(tmp_path_factory, embedder) -> Iterator[TestClient]:
    settings = Settings(
        kb_root=tmp_path_factory.mktemp("insights") / "root", admin_api_key="insights-admin", _env_file=None
    )
    services = build_services(settings, background=True, embedder=embedder)
    try:
        with TestClient(create_app(settings, services=services)) as c:
            c.post("/api/kbs", json={"id": "shop", "name": "Shop"}, headers=ADMIN).raise_for_status()
            job = c.post("/api/kbs/shop/documents", files={"files": ("gift.md", DOC)}, headers=ADMIN).json()
            while c.get(f"/api/jobs/{job['job_id']}", headers=ADMIN).json()["state"] in ("queued", "running"):
                time.sleep(0.1)
            yield c
    finally:
        services.close()


def ask(client: TestClient, question: str) -> dict:
    response = client.post("/api/kbs/shop/chat", json={"question": question}, headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


def test_dashboard_inbox_and_a_fix_tried_then_published(client):
    answered = ask(client, "How much does gift wrapping cost?")
    assert answered["answered"]
    client.post(
        "/api/kbs/shop/feedback",
        json={"message_id": answered["message_id"], "rating": "down", "comment": "too vague"},
        headers=ADMIN,
    ).raise_for_status()
    for question in ("Do you have a shop in Boston?", "Is there a store in Boston?", "Do you have a shop in boston"):
        assert not ask(client, question)["answered"]
    assert ask(client, "I want to talk to a human")["decline_reason"] == "customer_request"
    ask(client, "礼品包装多少钱？")

    response = client.get("/api/kbs/shop/stats", headers=ADMIN)
    assert response.status_code == 200, response.text
    board = response.json()
    assert board["questions"] == 6 and board["feedback_down"] == 1 and board["languages"] == {"en": 5, "zh": 1}
    assert board["answered_rate"] is not None and board["days"][0]["questions"] == 6
    assert board["top_topics"][0][0] == "Gift wrapping"
    english = client.get("/api/kbs/shop/stats?language=en", headers=ADMIN).json()
    assert english["questions"] == 5
    empty = client.get("/api/kbs/shop/stats?until=2000-01-01", headers=ADMIN).json()
    assert empty["questions"] == 0 and empty["days"] == []
    csv_days = client.get("/api/kbs/shop/stats.csv", headers=ADMIN)
    assert csv_days.status_code == 200 and csv_days.text.splitlines()[0].startswith("day,questions,answered")

    found = client.get("/api/kbs/shop/inbox", headers=ADMIN).json()
    boston = [g for g in found["gaps"] if "Boston" in g["question"] or "boston" in g["question"]]
    assert len(boston) == 1 and boston[0]["unanswered"] == 3 and boston[0]["answered_since"] == 0
    assert all("human" not in g["question"] for g in found["gaps"])  # asking for a person is not a gap
    assert found["rated_down"][0]["message_id"] == answered["message_id"]
    assert found["rated_down"][0]["comment"] == "too vague"
    assert any(h["decline_reason"] == "customer_request" for h in found["handoffs"])

    fix = {"question": "Do you have a shop in Boston?", "answer": "We sell online only - no shop in Boston yet."}
    tried = client.post(
        "/api/kbs/shop/try", json={"question": "Is there a store in Boston?", "draft": fix}, headers=ADMIN
    )
    assert tried.status_code == 200 and tried.json()["answer"] == fix["answer"]
    assert client.get("/api/kbs/shop/stats", headers=ADMIN).json()["questions"] == 6  # a try is not a turn

    client.post("/api/kbs/shop/answers", json=fix, headers=ADMIN).raise_for_status()
    assert ask(client, "Do you have a shop in Boston?")["answer"] == fix["answer"]
    after = client.get("/api/kbs/shop/inbox", headers=ADMIN).json()
    boston = [g for g in after["gaps"] if "oston" in g["question"]]
    assert boston[0]["answered_since"] == 1  # later customers now get the answer


def test_a_frustrated_customer_is_offered_a_person_and_the_mood_is_kept(client):
    calm = ask(client, "How much is gift wrapping?")
    assert calm["mood"] == "calm" and calm["topic"] == "Gift wrapping"
    upset = ask(client, "This is RIDICULOUS, I asked three times already! How much does gift wrapping cost???")
    assert upset["mood"] == "frustrated" and upset["answered"]
    assert upset["answer"].endswith(Settings(_env_file=None).frustrated_offer)  # a person offered at once
    zh = ask(client, "你们这服务太差了，气死我了！礼品包装到底多少钱？")  # the documents are English: declined
    assert zh["mood"] == "frustrated" and zh["handoff"]  # and a declined turn hands off anyway

    listed = client.get("/api/kbs/shop/conversations?mood=frustrated", headers=ADMIN).json()
    assert {c["conversation_id"] for c in listed["data"]} == {upset["conversation_id"], zh["conversation_id"]}
    board = client.get("/api/kbs/shop/stats", headers=ADMIN).json()
    assert board["moods"]["frustrated"] == 2
    only = client.get("/api/kbs/shop/stats?mood=frustrated&topic=Gift%20wrapping", headers=ADMIN).json()
    assert only["questions"] == 1  # the declined one drew on no document
