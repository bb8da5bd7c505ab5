"""Ingest end to end with the real embedding model, real FAISS and real files of every type."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ingest.pipeline import discover, in_scope, ingest, legacy_source_name
from rag.core.errors import ConfigurationError, EmbeddingModelMismatch, KnowledgeBaseLocked
from rag.core.types import Filters
from rag.retrieval import DenseRetriever
from rag.store.knowledge_base import KnowledgeBase
from tests import builders

pytestmark = pytest.mark.integration


@pytest.fixture
def docs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # sources are recorded relative to the working directory
    builders.write_all_types(tmp_path / "docs")
    return tmp_path / "docs"


def test_ingest_every_type_then_retrieve_with_provenance(docs, embedder, settings):
    report = ingest([docs], settings.kb_dir, embedder, settings)
    assert (report.added, report.updated, report.removed, report.failed) == (10, 0, 0, [])
    with KnowledgeBase.open(settings.kb_dir) as kb:
        kb.check()
        retriever = DenseRetriever(kb, embedder)
        top = retriever.retrieve("how many days does express delivery take", k=3)[0].chunk
        assert top.source == "docs/shipping.md" and top.heading_path == ("Shipping Guide", "Express shipping")
        pdf = retriever.retrieve("is accidental damage covered by the warranty", k=1)[0].chunk
        assert (pdf.source, pdf.page) == ("docs/warranty.pdf", 1)
        faq = retriever.retrieve("where is my parcel, can I track it", k=1)[0].chunk
        assert (faq.source, faq.row, faq.title) == ("docs/faq.csv", 2, "How do I track my order?")
        zh = retriever.retrieve("礼品卡有效期", k=2)
        assert "docs/records.jsonl#d2" in [p.chunk.doc_id for p in zh]
        assert zh[0].score <= 1.0001 and zh[0].score >= zh[-1].score


def test_reingest_is_incremental_updates_and_deletes(docs, embedder, settings):
    ingest([docs], settings.kb_dir, embedder, settings)

    again = ingest([docs], settings.kb_dir, embedder, settings)
    assert (again.added, again.updated, again.unchanged, again.removed, again.chunks_embedded) == (0, 0, 10, 0, 0)

    # change one section of the markdown file: only its changed chunk is embedded again
    md = docs / "shipping.md"
    md.write_text(md.read_text().replace("costs $12.95", "costs $9.99"))
    (docs / "support.txt").unlink()
    builders.write_jsonl(
        docs / "records.jsonl",
        [
            {
                "_id": "d1",
                "title": "Gift cards",
                "text": "Gift cards never expire and can be combined with coupons.",
                "metadata": {"lang": "en"},
            }
        ],
    )
    builders.write_txt(docs / "new.txt", "Live chat is available on weekdays.")
    report = ingest([docs], settings.kb_dir, embedder, settings)
    assert (report.added, report.updated, report.removed, report.failed) == (1, 1, 2, [])
    assert report.unchanged == 7
    assert report.chunks_embedded == 2  # the changed markdown section + new.txt
    assert report.chunks_reused >= 3

    with KnowledgeBase.open(settings.kb_dir) as kb:
        kb.check()
        sources = {c.source for c in kb.all_chunks()}
        doc_ids = {c.doc_id for c in kb.all_chunks()}
        assert "docs/support.txt" not in sources and "docs/new.txt" in sources
        assert "docs/records.jsonl#d2" not in doc_ids and "docs/records.jsonl#d1" in doc_ids
        hit = DenseRetriever(kb, embedder).retrieve("price of express shipping", k=1)[0].chunk
        assert "$9.99" in hit.text


def test_bad_files_are_reported_and_skipped_and_a_broken_update_keeps_the_old_version(docs, embedder, settings):
    ingest([docs], settings.kb_dir, embedder, settings)
    (docs / "empty.txt").write_bytes(b"")
    (docs / "image.png").write_bytes(b"\x89PNG\r\n")
    (docs / "warranty.pdf").write_bytes(b"%PDF-1.4 truncated garbage")  # a good file goes bad
    report = ingest([docs], settings.kb_dir, embedder, settings)
    failed = {f.path.split("/")[-1]: f.reason for f in report.failed}
    assert set(failed) == {"empty.txt", "image.png", "warranty.pdf"}
    assert "empty" in failed["empty.txt"] and "unsupported" in failed["image.png"]
    assert report.removed == 0  # the previous warranty.pdf is kept, not deleted
    with KnowledgeBase.open(settings.kb_dir) as kb:
        assert any(c.source == "docs/warranty.pdf" for c in kb.all_chunks())


def test_missing_path_is_reported(tmp_path, embedder, settings):
    report = ingest([tmp_path / "nope"], settings.kb_dir, embedder, settings)
    assert report.failed[0].reason == "no such file or directory"


def test_deletion_only_touches_the_ingested_folder(tmp_path, monkeypatch, embedder, settings):
    monkeypatch.chdir(tmp_path)
    builders.write_txt((tmp_path / "a").mkdir() or tmp_path / "a" / "one.txt", "Alpha document about invoices.")
    builders.write_txt((tmp_path / "b").mkdir() or tmp_path / "b" / "two.txt", "Beta document about refunds.")
    ingest([tmp_path / "a", tmp_path / "b"], settings.kb_dir, embedder, settings)
    report = ingest([tmp_path / "a"], settings.kb_dir, embedder, settings)  # b not mentioned: kept
    assert report.removed == 0
    shutil.rmtree(tmp_path / "a")
    (tmp_path / "a").mkdir()
    report = ingest([tmp_path / "a"], settings.kb_dir, embedder, settings)
    assert report.removed == 1
    with KnowledgeBase.open(settings.kb_dir) as kb:
        assert {c.source for c in kb.all_chunks()} == {"b/two.txt"}


def test_filters_by_source_prefix_and_metadata(docs, embedder, settings):
    ingest([docs], settings.kb_dir, embedder, settings)
    with KnowledgeBase.open(settings.kb_dir) as kb:
        retriever = DenseRetriever(kb, embedder)
        only_pdf = retriever.retrieve("shipping", k=5, filters=Filters(source_prefix="docs/warranty"))
        assert only_pdf and {p.chunk.source for p in only_pdf} == {"docs/warranty.pdf"}
        zh = retriever.retrieve("gift cards", k=5, filters=Filters(metadata={"lang": "zh"}))
        assert [p.chunk.doc_id for p in zh] == ["docs/records.jsonl#d2"]
        category = retriever.retrieve("退货", k=5, filters=Filters(metadata={"类别": "账单"}))
        assert [p.chunk.title for p in category] == ["发票怎么开？"]
        assert retriever.retrieve("x", k=5, filters=Filters(metadata={"lang": "fr"})) == []


@pytest.mark.parametrize("kind", ["hnsw", "ivf", "ivfpq"])
def test_approximate_indexes_answer_like_exact(tmp_path, monkeypatch, embedder, kind):
    from rag.core.settings import Settings

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "many"
    folder.mkdir()
    topics = ["shipping", "refunds", "invoices", "passwords", "warranty", "coupons", "gift cards", "exchanges"]
    for i in range(120):
        builders.write_txt(folder / f"n{i}.txt", f"Note {i}: customers ask about {topics[i % 8]} in case {i}.")
    exact = Settings(kb_dir=tmp_path / "exact", _env_file=None)
    approx = Settings(kb_dir=tmp_path / kind, index_type=kind, _env_file=None)
    ingest([folder], exact.kb_dir, embedder, exact)
    ingest([folder], approx.kb_dir, embedder, approx)
    builders.write_txt(folder / "n0.txt", "Note 0 now talks about loyalty points.")
    report = ingest([folder], approx.kb_dir, embedder, approx)  # rebuilt from stored vectors
    assert report.updated == 1
    with KnowledgeBase.open(approx.kb_dir) as kb:
        assert kb.manifest.index_type == kind
        kb.check()
        hits = DenseRetriever(kb, embedder).retrieve("loyalty points", k=1)
        assert hits[0].chunk.source == "many/n0.txt"
        filtered = DenseRetriever(kb, embedder).retrieve("refunds", k=3, filters=Filters(source_prefix="many/n1"))
        assert filtered and all(p.chunk.source.startswith("many/n1") for p in filtered)


def test_changing_index_type_rebuilds(docs, embedder, settings):
    ingest([docs], settings.kb_dir, embedder, settings)
    hnsw = settings.model_copy(update={"index_type": "hnsw"})
    ingest([docs], settings.kb_dir, embedder, hnsw)
    with KnowledgeBase.open(settings.kb_dir) as kb:
        assert kb.manifest.index_type == "hnsw"
        kb.check()


def test_opening_with_another_model_is_a_clear_error(docs, embedder, settings):
    ingest([docs], settings.kb_dir, embedder, settings)

    class OtherModel:
        name, dimension = "other-model", 8

        def embed(self, texts):
            return np.zeros((len(texts), 8), np.float32)

    with pytest.raises(EmbeddingModelMismatch, match="built with embedding model 'all-MiniLM-L6-v2'"):
        ingest([docs], settings.kb_dir, OtherModel(), settings)
    with pytest.raises(EmbeddingModelMismatch, match="RAG_EMBEDDING_MODEL=all-MiniLM-L6-v2"):
        KnowledgeBase.open(settings.kb_dir, embedding_model="other-model")


def test_a_second_writer_is_refused(docs, embedder, settings):
    ingest([docs], settings.kb_dir, embedder, settings)
    with KnowledgeBase.open(settings.kb_dir) as kb, kb.write_lock():
        with pytest.raises(KnowledgeBaseLocked, match="Another process is writing"):
            ingest([docs], settings.kb_dir, embedder, settings)


def test_discover_skips_hidden_files_and_scopes():
    assert in_scope("docs/a.md", ["docs"]) and not in_scope("docs2/a.md", ["docs"])
    assert in_scope("a.md", ["."]) and not in_scope("/abs/a.md", ["."])


def test_discover_ignores_hidden(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config.txt").write_text("x")
    (tmp_path / ".DS_Store").write_text("x")
    (tmp_path / "a.md").write_text("# A\n\ntext")
    found = discover([tmp_path])
    assert [f.path.name for f in found.files] == ["a.md"] and found.scopes == [tmp_path.name] and not found.failures


def test_sources_are_named_by_the_ingested_folder_wherever_it_lies(tmp_path, monkeypatch):
    data = tmp_path / "srv" / "app" / "data"
    (data / "zh").mkdir(parents=True)
    (data / "faq.csv").write_text("question,answer\nQ,A\n")
    (data / "zh" / "a.md").write_text("# A\n\ntext")
    (tmp_path / "elsewhere").mkdir()
    for cwd in (tmp_path / "srv" / "app", tmp_path / "elsewhere"):
        monkeypatch.chdir(cwd)
        found = discover([data])
        assert [f.source for f in found.files] == ["data/faq.csv", "data/zh/a.md"] and found.scopes == ["data"]
        # a file given on its own is named as part of its folder: it updates the document the folder made
        assert [f.source for f in discover([data / "zh" / "a.md"]).files] == ["zh/a.md"]
    monkeypatch.chdir(tmp_path / "srv" / "app")
    assert [f.source for f in discover(["data/"]).files] == ["data/faq.csv", "data/zh/a.md"]
    assert [f.source for f in discover(["data/faq.csv"]).files] == ["data/faq.csv"]
    # a folder given inside another one: each file is loaded once, under the first name it was found by
    assert [f.source for f in discover([data, data / "zh"]).files] == ["data/faq.csv", "data/zh/a.md"]


def test_two_different_folders_with_the_same_name_are_refused(tmp_path):
    for parent in ("a", "b"):
        builders.write_txt((tmp_path / parent / "data").mkdir(parents=True) or tmp_path / parent / "data" / "x.txt")
    with pytest.raises(ConfigurationError, match=r"Two different folders are named 'data' .* rename one of them"):
        discover([tmp_path / "a" / "data", tmp_path / "b" / "data"])
    with pytest.raises(ConfigurationError, match="named 'data'"):
        discover([tmp_path / "a" / "data", tmp_path / "b" / "data" / "x.txt"])
    assert len(discover([tmp_path / "a" / "data", tmp_path / "a" / "data" / ".." / "data"]).files) == 1


def test_the_same_folder_ingested_from_elsewhere_is_unchanged(docs, tmp_path, monkeypatch, embedder, settings):
    ingest([docs], settings.kb_dir, embedder, settings)
    (tmp_path / "deploy").mkdir()
    monkeypatch.chdir(tmp_path / "deploy")  # the folder's absolute path is never recorded
    again = ingest([docs.resolve()], settings.kb_dir, embedder, settings)
    assert (again.added, again.updated, again.unchanged, again.removed, again.chunks_embedded) == (0, 0, 10, 0, 0)
    with KnowledgeBase.open(settings.kb_dir) as kb:
        assert {c.source.split("/")[0] for c in kb.all_chunks()} == {"docs"}


def test_absolute_sources_from_earlier_versions_are_replaced(docs, tmp_path, monkeypatch, embedder, settings):
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    # a knowledge base built by an earlier version, outside the working directory: absolute sources
    with monkeypatch.context() as old:
        old.setattr("ingest.pipeline.source_name", lambda file, folder: legacy_source_name(file))
        ingest([docs], settings.kb_dir, embedder, settings)
    with KnowledgeBase.open(settings.kb_dir) as kb:
        assert all(c.source.startswith(docs.as_posix() + "/") for c in kb.all_chunks())
    (docs / "support.txt").unlink()  # gone since: its absolute-path document must go too

    report = ingest([docs], settings.kb_dir, embedder, settings)
    assert (report.added, report.removed, report.failed) == (9, 10, [])
    with KnowledgeBase.open(settings.kb_dir) as kb:
        kb.check()
        sources = {c.source for c in kb.all_chunks()}
        assert "docs/shipping.md" in sources and all(s.startswith("docs/") for s in sources)
    again = ingest([docs], settings.kb_dir, embedder, settings)
    assert (again.unchanged, again.removed, again.chunks_embedded) == (9, 0, 0)


def test_a_failing_file_keeps_its_earlier_version_under_its_old_name(docs, tmp_path, monkeypatch, embedder, settings):
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    with monkeypatch.context() as old:
        old.setattr("ingest.pipeline.source_name", lambda file, folder: legacy_source_name(file))
        ingest([docs], settings.kb_dir, embedder, settings)
    (docs / "warranty.pdf").write_bytes(b"%PDF-1.4 truncated garbage")
    report = ingest([docs], settings.kb_dir, embedder, settings)
    assert [f.path.split("/")[-1] for f in report.failed] == ["warranty.pdf"]
    with KnowledgeBase.open(settings.kb_dir) as kb:
        assert (docs / "warranty.pdf").as_posix() in {c.source for c in kb.all_chunks()}


def test_sources_a_nested_folder_had_in_earlier_versions_are_replaced(tmp_path, monkeypatch, embedder, settings):
    monkeypatch.chdir(tmp_path)
    sub = tmp_path / "data" / "sub"
    sub.mkdir(parents=True)
    builders.write_txt(sub / "one.txt", "Alpha document about invoices.")
    builders.write_txt(sub / "two.txt", "Beta document about refunds.")
    with monkeypatch.context() as old:  # recorded relative to the working directory: data/sub/one.txt
        old.setattr("ingest.pipeline.source_name", lambda file, folder: legacy_source_name(file))
        ingest([Path("data/sub")], settings.kb_dir, embedder, settings)
    (sub / "two.txt").unlink()
    report = ingest([Path("data/sub")], settings.kb_dir, embedder, settings)
    assert (report.added, report.removed) == (1, 2)
    with KnowledgeBase.open(settings.kb_dir) as kb:
        assert {c.source for c in kb.all_chunks()} == {"sub/one.txt"}
