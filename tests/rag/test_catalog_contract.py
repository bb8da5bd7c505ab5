"""The catalog's database (uploaded files, ingest jobs, API keys, console sessions) on SQLite and on PostgreSQL,
where two servers share it: what one writes, the other reads."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from rag.store.catalog_db import CatalogDatabase, Job, JobFailure, StoredFile


@pytest.fixture(scope="module")
def pg_store(request) -> Iterator[object]:
    from rag.store.postgres import PostgresStore
    from tests.postgres import create_database

    store = PostgresStore(create_database(request.getfixturevalue("postgres_server")), pool_size=2)
    yield store
    store.close()


@pytest.fixture(params=["sqlite", "postgres"])
def two_servers(request, tmp_path) -> Iterator[tuple[CatalogDatabase, CatalogDatabase]]:
    """Two servers' view of one catalog: on SQLite, two processes on one file; on PostgreSQL, two servers."""
    if request.param == "sqlite":
        first, second = CatalogDatabase(tmp_path / "catalog.sqlite"), CatalogDatabase(tmp_path / "catalog.sqlite")
    else:
        from rag.store.postgres import PostgresConnection

        store = request.getfixturevalue("pg_store")
        first = CatalogDatabase(PostgresConnection(store), shared=True)
        second = CatalogDatabase(PostgresConnection(store), shared=True)
    yield first, second
    first.close()
    second.close()


def kb() -> str:
    return f"kb-{uuid.uuid4().hex[:8]}"


def test_files_are_recorded_updated_and_deleted(two_servers):
    one, other = two_servers
    kb_id = kb()
    one.put_file(StoredFile(kb_id, "faq.csv", 10, datetime.now(UTC), "queued"))
    one.put_file(StoredFile(kb_id, "faq.csv", 12, datetime.now(UTC), "queued"))  # uploaded again: replaced
    one.set_file_state(kb_id, "faq.csv", "failed", "not a CSV", "job_1")
    [stored] = other.files(kb_id)
    assert (stored.size, stored.state, stored.error, stored.job_id) == (12, "failed", "not a CSV", "job_1")
    other.set_file_state(kb_id, "faq.csv", "ingested")
    assert one.files(kb_id)[0].job_id == "job_1" and one.files(kb_id)[0].error is None
    one.delete_file(kb_id, "faq.csv")
    assert other.files(kb_id) == []


def test_jobs_are_saved_listed_and_read_back_whole(two_servers):
    one, other = two_servers
    kb_id = kb()
    job = Job(f"job_{uuid.uuid4().hex[:8]}", kb_id, "ingest", "queued", datetime.now(UTC), files=["a.md", "b.md"])
    one.save_job(job)
    job.state, job.started_at, job.files_done, job.chunks_total = "running", datetime.now(UTC), 1, 40
    job.failures = [JobFailure("b.md", "empty file")]
    one.save_job(job)
    again = other.job(job.id)
    assert again == job
    assert [j.id for j in other.jobs(kb_id)] == [job.id]
    assert job.id in {j.id for j in other.unfinished_jobs()}
    assert other.job("job_missing") is None


def test_a_servers_jobs_are_abandoned_only_when_it_stopped(two_servers):
    one, other = two_servers
    job = Job(f"job_{uuid.uuid4().hex[:8]}", kb(), "ingest", "running", datetime.now(UTC), files=["a.md"])
    one.save_job(job)
    assert job.id not in {j.id for j in one.abandoned_jobs(timedelta(seconds=60))}  # its own
    seen_by_other = {j.id for j in other.abandoned_jobs(timedelta(seconds=60))}
    if other.shared:  # a live server's job, refreshed just now
        assert job.id not in seen_by_other
        one.touch_jobs()
        assert job.id in {j.id for j in other.abandoned_jobs(timedelta(seconds=-1))}  # had it gone quiet
    else:  # one server per catalog file: another process's unfinished job is a stopped server's
        assert job.id in seen_by_other


def test_keys_verify_on_every_server_until_revoked(two_servers):
    one, other = two_servers
    kb_id = kb()
    record, secret = one.add_key(kb_id, ["chat", "ingest"], "website")
    assert other.verify_key(secret) == record
    assert other.verify_key(secret[:-1] + ("x" if secret[-1] != "x" else "y")) is None
    assert other.verify_key("not a key") is None
    assert [k.id for k in other.keys(kb_id)] == [record.id]
    with pytest.raises(ValueError, match="unknown scope"):
        one.add_key(kb_id, ["everything"])
    assert other.revoke_key(kb_id, record.id) is True
    assert one.verify_key(secret) is None and one.revoke_key(kb_id, record.id) is False


def test_console_sessions_are_shared_and_end_with_their_key(two_servers):
    one, other = two_servers
    kb_id = kb()
    record, _ = one.add_key(kb_id, ["conversations"])
    token, session = one.add_session(record, None, hours=1)
    assert other.session(token) == session
    other.end_session(token)
    assert one.session(token) is None
    token, _ = one.add_session(record, None, hours=1)
    one.revoke_key(kb_id, record.id)
    assert other.session(token) is None  # a revoked key's sign-ins end with it
    expired, _ = one.add_session(None, "admin-hash", hours=-1)
    assert other.session(expired) is None


def test_forgetting_a_knowledge_base_removes_its_rows(two_servers):
    one, other = two_servers
    kb_id = kb()
    one.put_file(StoredFile(kb_id, "x.md", 1, datetime.now(UTC), "ingested"))
    one.save_job(Job(f"job_{uuid.uuid4().hex[:8]}", kb_id, "ingest", "succeeded", datetime.now(UTC)))
    _, secret = one.add_key(kb_id, ["chat"])
    other.forget_kb(kb_id)
    assert one.files(kb_id) == [] and one.jobs(kb_id) == [] and one.verify_key(secret) is None


def test_an_older_catalog_file_gains_the_new_job_columns(tmp_path):
    import sqlite3

    path = tmp_path / "catalog.sqlite"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE jobs (id TEXT PRIMARY KEY, kb_id TEXT NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL, "
        "created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT, files TEXT NOT NULL, files_done INTEGER NOT "
        "NULL DEFAULT 0, chunks_embedded INTEGER NOT NULL DEFAULT 0, chunks_total INTEGER NOT NULL DEFAULT 0, "
        "failures TEXT NOT NULL DEFAULT '[]', error TEXT)"
    )
    old.execute("INSERT INTO jobs (id, kb_id, kind, state, created_at, files) VALUES ('j1', 'kb', 'ingest', "
                "'running', '2026-01-01T00:00:00+00:00', '[]')")  # fmt: skip
    old.commit()
    old.close()
    db = CatalogDatabase(path)
    try:
        assert [j.id for j in db.abandoned_jobs(timedelta(seconds=60))] == ["j1"]
        job = db.job("j1")
        assert job is not None
        job.state = "failed"
        db.save_job(job)
        assert db.job("j1").state == "failed"  # type: ignore[union-attr]
    finally:
        db.close()


# ---- curated answers -------------------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgres"])
def two_curated(request, tmp_path) -> Iterator[tuple[object, object]]:
    """One knowledge base's curated answers as two servers see them."""
    from rag.store.curated import SQLiteCuratedAnswers

    if request.param == "sqlite":
        first, second = SQLiteCuratedAnswers(tmp_path / "c.sqlite"), SQLiteCuratedAnswers(tmp_path / "c.sqlite")
    else:
        store, kb_id = request.getfixturevalue("pg_store"), kb()
        first, second = store.curated(kb_id), store.curated(kb_id)
    yield first, second
    first.close()
    second.close()


def test_curated_answers_written_on_one_server_are_read_on_the_other(two_curated):
    from rag.store.curated import CuratedAnswerNotFound, DuplicateCuratedAnswer

    one, other = two_curated
    assert other.version() == 0 and other.list() == []
    entry = one.add("Do you ship to Canada?", "Yes, in 5-8 business days.", ["Can I order from Canada?"])
    assert other.get(entry.id) == entry and other.version() == 1
    with pytest.raises(DuplicateCuratedAnswer):
        other.add("do you ship to canada?", "Twice.")
    changed = other.update(entry.id, enabled=False, answer="No longer.")
    assert one.get(entry.id) == changed and one.list(enabled_only=True) == [] and one.version() == 2
    result = one.import_csv("question,answer\nIs there a restocking fee?,No.\n", replace=True)
    assert (result.added, result.deleted) == (1, 1)
    assert [a.question for a in other.list()] == ["Is there a restocking fee?"] and other.version() == 3
    assert "Is there a restocking fee?,No." in other.export_csv()
    with pytest.raises(CuratedAnswerNotFound):
        other.get(entry.id)
    assert other.delete(entry.id) is False and other.version() == 3


def test_dropping_a_knowledge_base_removes_its_curated_answers(pg_store):
    kb_id = kb()
    answers = pg_store.curated(kb_id)
    answers.add("Do gift cards expire?", "Never.")
    answers.close()
    pg_store.drop(kb_id)
    fresh = pg_store.curated(kb_id)
    try:
        assert fresh.list() == [] and fresh.version() == 0
    finally:
        fresh.close()


def test_two_servers_adding_the_same_curated_question_at_once_keep_one(two_curated):
    import threading

    one, other = two_curated
    for round_ in range(5):
        question = f"Do you ship to region {round_}?"
        outcomes: list[str] = []
        threads = [
            threading.Thread(target=_add, args=(store, question, f"Answer {i}", outcomes))
            for i, store in enumerate((one, other))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["added", "duplicate"]
    assert len(one.list()) == 5 and one.version() == 5


def _add(store, question: str, answer: str, outcomes: list[str]) -> None:
    from rag.store.curated import DuplicateCuratedAnswer

    try:
        store.add(question, answer)
        outcomes.append("added")
    except DuplicateCuratedAnswer:
        outcomes.append("duplicate")


def test_a_full_pool_answers_database_unavailable_and_sql_may_hold_a_percent_sign(pg_store):
    from rag.core.errors import DatabaseUnavailable
    from rag.store.postgres import PostgresConnection, PostgresStore

    small = PostgresStore(
        pg_store.url.render_as_string(hide_password=False), pool_size=1, max_overflow=0, pool_timeout=0.5
    )
    try:
        with small.connect():
            with pytest.raises(DatabaseUnavailable, match="RAG_STORE_POOL_SIZE"):
                small.kb_ids()
        assert PostgresConnection(small).execute("SELECT '50%', ?", (1,)).fetchall() == [("50%", 1)]
    finally:
        small.close()


def test_a_malformed_store_url_is_refused_without_showing_its_password():
    from rag.core.errors import ConfigurationError
    from rag.store.postgres import PostgresStore

    with pytest.raises(ConfigurationError) as refused:
        PostgresStore("postgresql+psycopg//rag:s3cret@db/rag")
    assert "s3cret" not in str(refused.value)
    with pytest.raises(ConfigurationError, match="PostgreSQL"):
        PostgresStore("sqlite:///kb.db")
