"""The `rag` command as a user runs it: real processes, real model, real files."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import builders
from tests.paths import dataset

pytestmark = pytest.mark.integration
RAG = str(Path(sys.executable).with_name("rag"))


def rag(*args: str, cwd: Path, env_kb: Path | None = None) -> subprocess.CompletedProcess:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_") or k == "RAG_TEST_DATASETS"}
    if env_kb:
        env["RAG_KB_DIR"] = str(env_kb)
    return subprocess.run([RAG, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_ingest_ask_info_and_reingest(tmp_path):
    builders.write_all_types(tmp_path / "docs")
    (tmp_path / "docs" / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    out = rag("ingest", "docs", "--kb", "kb", "--no-progress", cwd=tmp_path)
    assert out.returncode == 1, out.stderr  # the good files are in; exit 1 tells scripts that one failed
    assert "added 10, updated 0, unchanged 0, removed 0, failed 1" in out.stdout
    assert "failed: docs/broken.pdf: corrupt PDF" in out.stderr
    assert "EOF marker" not in out.stderr  # pypdf's own log lines stay out: our line names the file and the problem

    again = rag("ingest", "docs", cwd=tmp_path, env_kb=tmp_path / "kb")  # RAG_KB_DIR works too
    assert "added 0, updated 0, unchanged 10, removed 0, failed 1" in again.stdout

    ask = rag("ask", "When does an express order arrive?", "--kb", "kb", "--json", "-k", "3", cwd=tmp_path)
    assert ask.returncode == 0, ask.stderr
    passages = json.loads(ask.stdout)["passages"]
    assert len(passages) == 3 and passages[0]["source"] == "docs/shipping.md"
    assert passages[0]["heading_path"] == ["Shipping Guide", "Express shipping"]
    assert passages[0]["score"] >= passages[1]["score"]

    text = rag("ask", "发票", "--kb", "kb", "--filter", "类别=账单", cwd=tmp_path)
    assert "[1]" in text.stdout and "docs/faq_zh.xlsx row 3" in text.stdout and "[2]" not in text.stdout

    info = json.loads(rag("info", "--kb", "kb", cwd=tmp_path).stdout)
    assert info["embedding_model"] == "all-MiniLM-L6-v2" and info["dimension"] == 384 and info["documents"] == 10


def test_errors_are_one_line_with_exit_code_2(tmp_path):
    out = rag("ask", "hello", "--kb", "nowhere", cwd=tmp_path)
    assert out.returncode == 2
    assert (
        out.stderr.strip() == "error: Knowledge base not found at nowhere - run `rag ingest data/ --kb nowhere` first"
    )
    assert not (tmp_path / "nowhere").exists()  # a mistyped --kb leaves no folder behind
    bad = rag("ask", "hello", "--filter", "novalue", cwd=tmp_path)
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr
    empty = rag("ask", "  ", cwd=tmp_path)
    assert empty.returncode == 2 and "the question is empty" in empty.stderr
    long = rag("ask", "why " * 1000, cwd=tmp_path)
    assert long.returncode == 2 and "RAG_MAX_QUESTION_CHARS" in long.stderr


def test_eval_small_beir_folder_writes_json(tmp_path):
    folder = tmp_path / "mini"
    (folder / "qrels").mkdir(parents=True)
    builders.write_jsonl(
        folder / "corpus.jsonl",
        [
            {"_id": "ship", "title": "Shipping", "text": "Standard shipping takes three to five business days."},
            {"_id": "ret", "title": "Returns", "text": "Items can be returned within thirty days for a refund."},
            {"_id": "pw", "title": "Passwords", "text": "Reset your password from the sign-in page."},
        ],
    )
    builders.write_jsonl(
        folder / "queries.jsonl",
        [
            {"_id": "q1", "text": "how long until my parcel arrives"},
            {"_id": "q2", "text": "can I send an item back and get my money"},
            {"_id": "q3", "text": "question without judgement"},
        ],
    )
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tship\t1\nq2\tret\t1\n")
    out = rag("eval", str(folder), "--retriever", "dense", "--k", "10", "--json", "m.json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    metrics = json.loads((tmp_path / "m.json").read_text())["dense"]
    assert metrics["ndcg@10"] == 1.0 and metrics["recall@10"] == 1.0 and metrics["mrr@10"] == 1.0
    assert metrics["queries"] == 2


def test_eval_stackfaq_meets_the_reference(tmp_path):
    out = rag("eval", str(dataset("stackfaq")), "--retriever", "dense", "--json", "m.json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    metrics = json.loads((tmp_path / "m.json").read_text())["dense"]
    assert metrics["ndcg@10"] >= 0.95, metrics
    assert set(metrics) >= {"ndcg@10", "recall@10", "mrr@10"}


def test_ingest_with_a_bad_file_exits_1_and_keeps_the_good_ones(tmp_path):
    """Scripts see the failure (exit 1) while the good files are in - a valid HTML page nested 5,000 levels deep
    among them (past Python's recursion limit) - and a hostile one, 30,000 unclosed list items deep, is read in
    linear time rather than failing or hanging."""
    docs = tmp_path / "docs"
    docs.mkdir()
    builders.write_markdown(docs / "shipping.md")
    (docs / "deep.html").write_text(
        "<html><body>" + "<div>" * 5000 + "<h2>Lost parcels</h2><p>Report a lost parcel within 14 days of the "
        "expected delivery date.</p>" + "</div>" * 5000 + "</body></html>",
        encoding="utf-8",
    )
    (docs / "hostile.html").write_text("<html><body>" + "<li><div>" * 30_000 + "Nested text.", encoding="utf-8")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    started = time.monotonic()
    out = rag("ingest", "docs", "--kb", "kb", "--no-progress", cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    assert "failed: docs/broken.pdf" in out.stderr and ".html" not in out.stderr
    assert "added 3, updated 0, unchanged 0, removed 0, failed 1" in out.stdout
    assert time.monotonic() - started < 120
    ask = rag("ask", "When must I report a lost parcel?", "--kb", "kb", "--json", cwd=tmp_path)
    passage = json.loads(ask.stdout)["passages"][0]
    assert passage["source"] == "docs/deep.html" and passage["heading_path"] == ["Lost parcels"]


def test_eval_customer_questions_prints_verdicts_per_language(tmp_path):
    builders.write_all_types(tmp_path / "docs")
    builders.write_jsonl(
        tmp_path / "questions.jsonl",
        [
            {"id": "en-1", "language": "en", "question": "When does an express order arrive?",
             "must_contain": [["1-2 business days", "1–2 business days"]]},
            {"id": "en-2", "language": "en", "question": "Who won the 1998 world cup?", "decline": True},
            {"id": "en-3", "language": "en", "question": "What about express?",
             "context": ["How long does standard shipping take?"], "must_contain": [["1-2 business days"]]},
        ],
    )  # fmt: skip
    out = rag("eval", "questions.jsonl", "--docs", "docs", "--json", "q.json", "--show", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "language  questions  right  wrongly declined  wrongly answered  right %" in out.stdout
    report = json.loads((tmp_path / "q.json").read_text())
    assert report["summary"]["all"]["questions"] == 3 and report["summary"]["en"]["questions"] == 3
    verdicts = {q["id"]: q["verdict"] for q in report["questions"]}
    assert verdicts["en-2"] == "right", out.stdout  # an off-topic question is declined
    assert not (tmp_path / "kb").exists()  # --docs builds a temporary knowledge base

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "question": "hi"}\n', encoding="utf-8")
    out = rag("eval", "bad.jsonl", "--docs", "docs", cwd=tmp_path)
    assert out.returncode == 2 and "bad.jsonl line 1" in out.stderr and "must_contain" in out.stderr


def test_knowledge_bases_in_a_root_folder(tmp_path):
    (tmp_path / "docs").mkdir()
    builders.write_markdown(tmp_path / "docs" / "guide.md")
    created = rag("kb", "create", "shop", "--name", "Shop", "--set", "min_score=0.25", "--kb-root", "kbs", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert rag("kb", "create", "shop", "--kb-root", "kbs", cwd=tmp_path).returncode == 2  # the id is taken
    bad = rag("kb", "create", "other", "--set", "min_score=high", "--kb-root", "kbs", cwd=tmp_path)
    assert bad.returncode == 2 and "min_score" in bad.stderr and not (tmp_path / "kbs" / "other").exists()

    ingested = rag("ingest", "docs", "--kb-root", "kbs", "--kb-id", "shop", "--no-progress", cwd=tmp_path)
    assert ingested.returncode == 0, ingested.stderr
    listed = rag("kb", "list", "--kb-root", "kbs", cwd=tmp_path)
    assert listed.stdout.startswith("shop\tShop\tauto\t1 files,"), listed.stdout
    answer = rag("ask", "How much is express shipping?", "--kb-root", "kbs", "--json", cwd=tmp_path)
    assert json.loads(answer.stdout)["citations"][0]["source"] == "docs/guide.md"

    key = rag("kb", "key", "shop", "--scope", "chat", "--kb-root", "kbs", cwd=tmp_path)
    assert key.returncode == 0 and key.stdout.startswith("rk_") and "shown only now" in key.stderr

    refused = rag("kb", "delete", "shop", "--kb-root", "kbs", cwd=tmp_path)  # asks; no answer on stdin
    assert refused.returncode != 0 and (tmp_path / "kbs" / "shop").exists()
    deleted = rag("kb", "delete", "shop", "--yes", "--kb-root", "kbs", cwd=tmp_path)
    assert deleted.returncode == 0 and not (tmp_path / "kbs" / "shop").exists()
    missing = rag("ingest", "docs", "--kb-root", "kbs", "--kb-id", "shop", cwd=tmp_path)
    assert missing.returncode == 2 and "No knowledge base 'shop'" in missing.stderr
