"""Background work: ingest jobs (queue bound, one writer per knowledge base, recovery after a restart) and retention
(on SQLite and real PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from rag.conversations.sql_store import SQLAlchemyConversationStore
from rag.core.errors import QueueFull
from rag.core.settings import Settings
from rag.jobs.retention import apply_retention
from rag.jobs.runner import INTERRUPTED, JobRunner
from rag.store.catalog import FolderCatalog, Job
from rag.store.catalog_db import CatalogDatabase
from tests.postgres import create_database
from tests.rag.test_conversations import message

pytestmark = pytest.mark.integration


class _HeldRunner(JobRunner):
    """A runner whose jobs wait for `release` (to look at the queue while they run) and record their order."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.release = threading.Event()
        self.ran: list[tuple[str, str]] = []
        self.concurrent: dict[str, int] = {}
        self._running: dict[str, int] = {}
        self._count = threading.Lock()

    def _run(self, job: Job) -> None:
        with self._count:
            self._running[job.kb_id] = self._running.get(job.kb_id, 0) + 1
            self.concurrent[job.kb_id] = max(self.concurrent.get(job.kb_id, 0), self._running[job.kb_id])
        self.release.wait(10)
        self.ran.append((job.kb_id, job.id))
        with self._count:
            self._running[job.kb_id] -= 1


@pytest.fixture
def catalog(tmp_path):
    catalog = FolderCatalog(tmp_path / "root")
    for kb in ("a", "b"):
        catalog.create_kb(kb, kb.upper())
    yield catalog
    catalog.close()


def _settings(_: str) -> Settings:
    return Settings(_env_file=None)


def test_a_bounded_queue_and_one_writer_per_knowledge_base(catalog):
    runner = _HeldRunner(catalog, embedder=None, settings_for=_settings, queue_size=3, workers=2)  # type: ignore[arg-type]
    try:
        first = runner.submit("a", "ingest", ["1.md"])
        queued = [runner.submit("a", "ingest", ["2.md"]), runner.submit("b", "ingest", ["3.md"])]
        deadline = datetime.now(UTC) + timedelta(seconds=5)
        while runner.waiting() > 1 and datetime.now(UTC) < deadline:  # a's first and b's job started
            pass
        submitted = 3
        with pytest.raises(QueueFull, match="RAG_INGEST_QUEUE_SIZE"):
            while True:  # fills what is left of the queue, then refuses
                runner.submit("a", "ingest", ["more.md"])
                submitted += 1
        assert runner.waiting() == 3
        runner.release.set()
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while len(runner.ran) < submitted and datetime.now(UTC) < deadline:
            pass
        assert len(runner.ran) == submitted
        order_a = [job_id for kb, job_id in runner.ran if kb == "a"]
        assert order_a[:2] == [first.id, queued[0].id]  # a knowledge base's jobs run in the order they came
        assert runner.concurrent == {"a": 1, "b": 1}  # never two writers on one knowledge base
    finally:
        runner.release.set()
        runner.close()


def test_jobs_left_running_by_a_stopped_server_are_reported_failed(catalog, tmp_path):
    import io

    catalog.save_file("a", "guide.md", io.BytesIO(b"# Guide\n\nText.\n"))
    catalog.set_file_state("a", "guide.md", "ingesting", job_id="job_1")
    running = Job("job_1", "a", "ingest", "running", datetime.now(UTC), files=["guide.md"])
    queued = Job("job_2", "b", "delete", "queued", datetime.now(UTC), files=["files/x.md"])
    done = Job("job_3", "b", "ingest", "succeeded", datetime.now(UTC))
    stopped_server = CatalogDatabase(tmp_path / "root" / "catalog.sqlite")  # the process that queued them
    for job in (running, queued, done):
        stopped_server.save_job(job)
    stopped_server.close()

    runner = JobRunner(catalog, embedder=None, settings_for=_settings)  # type: ignore[arg-type]
    try:
        assert {j.id for j in runner.recover()} == {"job_1", "job_2"}
    finally:
        runner.close()
    for job_id, state in (("job_1", "running"), ("job_2", "queued")):
        job = catalog.db.job(job_id)
        assert job is not None and job.state == "failed" and job.error == INTERRUPTED.format(state=state)
        assert job.finished_at is not None
    assert catalog.db.job("job_3").state == "succeeded"  # type: ignore[union-attr]
    assert catalog.files("a")[0].state == "failed" and catalog.files("a")[0].error


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'conversations.sqlite'}"
    else:
        url = create_database(request.getfixturevalue("postgres_server"))
    s = SQLAlchemyConversationStore(url)
    yield s
    s.close()


def test_retention_deletes_old_conversations_of_the_knowledge_bases_that_set_it(store, catalog):
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    old, recent = now - timedelta(days=40), now - timedelta(days=5)
    store.add_message(message("m1", "old-a", at=old, kb_id="a"))
    store.add_feedback("m1", "down", "wrong")
    store.add_message(message("m2", "recent-a", at=recent, kb_id="a"))
    store.add_message(message("m3", "old-b", at=old, kb_id="b"))
    catalog.update_kb("a", settings={"retention_days": 30})

    def settings_for(kb_id: str) -> Settings:
        return Settings(_env_file=None).with_overrides(catalog.get_kb(kb_id).settings)

    assert apply_retention(catalog.list_kbs(), settings_for, store, now=now) == {"a": 1}
    assert store.conversation("old-a", kb_id="a") == [] and store.feedback_for(["m1"]) == {}
    assert [m.message_id for m in store.conversation("recent-a", kb_id="a")] == ["m2"]
    assert [m.message_id for m in store.conversation("old-b", kb_id="b")] == ["m3"]  # b keeps everything
