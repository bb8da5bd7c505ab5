"""Stateless replicas: two `rag serve` processes on one PostgreSQL (knowledge base in pgvector via RAG_STORE_URL,
conversations via RAG_DATABASE_URL), spoken to over loopback HTTP while sixteen clients chat on both. Content
uploaded through one is answered by the other; one killed with SIGKILL leaves the other serving; PostgreSQL stopped
and started again under load gives 503s, never a hang, and serving comes back without a restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ingest.pipeline import ingest
from rag.core.settings import Settings
from rag.store.postgres import PostgresStore
from tests.paths import ROOT as REPO
from tests.postgres import PostgresServer, create_database, postgres_server
from tests.rag.api.test_kb_server import ChatLoad, RagServer, rag_serve

pytestmark = pytest.mark.integration
KB = "kb"  # the knowledge base's id: the name of each replica's --kb folder
QUESTIONS = ["How long does standard shipping take?", "Can I return an item?", "Do you ship to Canada?"]
NEW_QUESTION = "What does the Lantern Club membership give members?"
NEW_DOCUMENT = (
    "# Lantern Club\n\nThe Lantern Club membership gives members a free Quillfeather tote bag with every order over "
    "$80 and early access to the winter sale.\n"
)


@pytest.fixture
def database(tmp_path, embedder) -> Iterator[tuple[PostgresServer, str]]:
    """A PostgreSQL server of the test's own (it is stopped in one test) holding the demo knowledge base."""
    with postgres_server() as server:
        url = create_database(server.url)
        store = PostgresStore(url)
        try:
            ingest([REPO / "data"], store.backend(KB), embedder, Settings(_env_file=None))
        finally:
            store.close()
        yield server, url


def replica_env(url: str) -> dict[str, str]:
    return {"RAG_STORE_URL": url, "RAG_DATABASE_URL": url, "RAG_STORE_TIMEOUT": "5"}


def cites(server: RagServer, question: str, source: str) -> bool:
    response = server.call("POST", "/chat", json={"question": question}, timeout=30)
    return response.status_code == 200 and any(c["source"].endswith(source) for c in response.json()["citations"])


def test_two_replicas_share_content_and_one_survives_the_other_being_killed(tmp_path, database):
    _, url = database
    doc = tmp_path / "lantern-club.md"
    doc.write_text(NEW_DOCUMENT, encoding="utf-8")
    env = replica_env(url)
    with (
        rag_serve(tmp_path / "a" / KB, tmp_path / "a.log", single_kb=True, env=env) as a,
        rag_serve(tmp_path / "b" / KB, tmp_path / "b.log", single_kb=True, env=env) as b,
    ):
        assert cites(b, QUESTIONS[0], "faq_en.csv") or cites(b, QUESTIONS[0], "shipping.md")
        assert not cites(b, NEW_QUESTION, "files/lantern-club.md")
        with ChatLoad(a, ["/chat"], QUESTIONS, threads=8) as on_a, ChatLoad(b, ["/chat"], QUESTIONS, threads=8) as on_b:
            finished = a.wait_job(a.upload(KB, [doc])["job_id"])
            assert finished["state"] == "succeeded", finished
            done = time.monotonic()
            while not cites(b, NEW_QUESTION, "files/lantern-club.md"):
                assert time.monotonic() - done < 5, f"replica b does not answer the new content\n{b.log_tail()}"
                time.sleep(0.1)
            seen_after = time.monotonic() - done
            answered_by_a = len(on_a.outcomes)
            os.kill(a.proc.pid, signal.SIGKILL)
            assert a.proc.wait(timeout=30) == -signal.SIGKILL
            killed_at = len(on_b.outcomes)
            time.sleep(5)  # b keeps serving its clients alone
        assert len(on_b.outcomes) > killed_at + 8, "replica b stopped answering after a was killed"
        assert on_b.failures() == [], on_b.failures()[:3]
        assert [o for o in on_a.outcomes[:answered_by_a] if o[1] != 200] == []  # before it was killed
        assert cites(b, NEW_QUESTION, "files/lantern-club.md")
    print(f"new content answered by the other replica {seen_after:.2f}s after its job finished")


def test_a_database_outage_answers_503_and_serving_resumes_without_a_restart(tmp_path, database):
    server, url = database
    with rag_serve(tmp_path / "a" / KB, tmp_path / "a.log", single_kb=True, env=replica_env(url)) as a:
        assert cites(a, QUESTIONS[0], "faq_en.csv") or cites(a, QUESTIONS[0], "shipping.md")
        outcomes: list[tuple[int | None, float]] = []
        with ChatLoad(a, ["/chat"], QUESTIONS, threads=8) as load:
            time.sleep(2)
            server.stop()
            stopped = time.monotonic()
            during: list[tuple[int | None, float]] = []
            while time.monotonic() - stopped < 8:
                started = time.monotonic()
                try:
                    status = httpx.post(a.base + "/chat", json={"question": QUESTIONS[1]}, timeout=30).status_code
                except httpx.HTTPError:
                    status = None
                during.append((status, time.monotonic() - started))
                time.sleep(0.2)
            server.start()
            restarted = time.monotonic()
            while not cites(a, QUESTIONS[0], "faq_en.csv") and not cites(a, QUESTIONS[0], "shipping.md"):
                assert time.monotonic() - restarted < 30, f"serving did not resume\n{a.log_tail()}"
                time.sleep(0.5)
            resumed = time.monotonic() - restarted
            outcomes = during
        assert during and all(status == 503 for status, _ in during), during
        assert max(seconds for _, seconds in during) < 15, during  # none hangs past RAG_STORE_TIMEOUT and then some
        assert {o[1] for o in load.outcomes} <= {200, 503}, {o[1] for o in load.outcomes}
        assert a.proc.poll() is None
    print(f"{len(outcomes)} requests during the outage, all 503; serving resumed {resumed:.1f}s after the restart")


def test_replicas_share_knowledge_bases_keys_uploads_and_curated_answers(tmp_path, postgres_server):
    """`rag serve --kb-root` twice on one database: whatever is managed through one is served by the other."""
    env = {"RAG_STORE_URL": (url := create_database(postgres_server)), "RAG_DATABASE_URL": url}
    doc = tmp_path / "lantern-club.md"
    doc.write_text(NEW_DOCUMENT, encoding="utf-8")
    with (
        rag_serve(tmp_path / "a" / "root", tmp_path / "a.log", env=env) as a,
        rag_serve(tmp_path / "b" / "root", tmp_path / "b.log", env=env) as b,
    ):
        a.create_kb("shop")
        assert [kb["id"] for kb in b.ok(b.call("GET", "/api/kbs"))["data"]] == ["shop"]
        key = a.ok(a.call("POST", "/api/kbs/shop/keys", json={"scopes": ["chat", "ingest"]}), 201)["key"]
        as_key = {"Authorization": f"Bearer {key}"}
        job = b.wait_job(a.upload("shop", [doc])["job_id"])  # the job runs on a; b reads its progress
        assert job["state"] == "succeeded", job
        answer = b.ok(b.call("POST", "/api/kbs/shop/chat", json={"question": NEW_QUESTION}, headers=as_key))
        assert any(c["source"] == "files/lantern-club.md" for c in answer["citations"]), answer
        # b ingests again a file it never received: its bytes come from the database
        [uploaded] = b.documents("shop").values()
        again = b.ok(b.call("POST", f"/api/kbs/shop/documents/{uploaded['document_id']}/reingest", headers=as_key), 202)
        assert b.wait_job(again["job_id"])["state"] == "succeeded"
        curated = {"question": "Is the Lantern Club free?", "answer": "Yes: the Lantern Club costs nothing to join."}
        a.ok(a.call("POST", "/api/kbs/shop/answers", json=curated), 201)
        reply = b.ok(b.call("POST", "/api/kbs/shop/chat", json={"question": curated["question"]}, headers=as_key))
        assert reply["answer"] == curated["answer"], reply
        a.ok(a.call("DELETE", "/api/kbs/shop"), 204)
        assert b.call("GET", "/api/kbs/shop").status_code == 404
        assert b.call("POST", "/api/kbs/shop/chat", json={"question": NEW_QUESTION}, headers=as_key).status_code == 401
        # created again under the same id: b serves the new, empty one, with the settings a gives it
        a.create_kb("shop")
        key = a.ok(a.call("POST", "/api/kbs/shop/keys", json={"scopes": ["chat"]}), 201)["key"]
        a.ok(a.call("PATCH", "/api/kbs/shop", json={"settings": {"fallback_message": "Nothing here yet."}}))
        fresh = b.ok(
            b.call(
                "POST",
                "/api/kbs/shop/chat",
                json={"question": NEW_QUESTION},
                headers={"Authorization": f"Bearer {key}"},
            )
        )
        assert fresh["citations"] == [] and fresh["answer"] == "Nothing here yet.", fresh


def test_the_command_line_ingests_asks_and_describes_a_knowledge_base_in_postgresql(tmp_path, postgres_server):
    """The README's commands: `rag ingest data/ --kb support`, `rag ask` and `rag info` with RAG_STORE_URL."""
    rag = str(Path(sys.executable).with_name("rag"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")} | {
        "RAG_STORE_URL": create_database(postgres_server),
        "HF_HUB_OFFLINE": "1",
    }

    def run(*args: str) -> str:
        done = subprocess.run([rag, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    out = run("ingest", str(REPO / "data"), "--kb", "support", "--no-progress")
    assert "knowledge base 'support'" in out and "postgresql+psycopg://postgres@127.0.0.1" in out, out
    assert not list(tmp_path.glob("support/*.faiss")) and not (tmp_path / "support" / "chunks.sqlite").exists()
    assert "shipping" in run("ask", "How long does standard shipping take?", "--kb", "support").lower()
    info = json.loads(run("info", "--kb", "support"))
    assert info["index_type"] == "hnsw" and info["chunks"] > 20 and info["chunks"] == info["indexed_vectors"]
    again = run("ingest", str(REPO / "data"), "--kb", "support", "--no-progress")
    assert "added 0, updated 0" in again and "(0 chunks embedded" in again, again
