"""A real ingest process killed with SIGKILL leaves the previous knowledge base loadable and consistent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ingest.pipeline import ingest
from rag.retrieval import DenseRetriever
from rag.store.knowledge_base import KnowledgeBase
from tests import builders

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
RAG = Path(sys.executable).with_name("rag")


def snapshot(kb_dir: Path) -> dict[str, str]:
    with KnowledgeBase.open(kb_dir) as kb:
        kb.check()  # index and chunk table agree
        return {doc_id: h for doc_id, (_, h) in kb.document_hashes().items()}


def many_documents(folder: Path, n: int, tag: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    sentence = "Customers asked about order {i} and the {tag} policy for parcels, refunds and invoices. "
    for i in range(n):
        builders.write_txt(folder / f"doc{i:04d}.txt", "".join(sentence.format(i=i, tag=tag) for _ in range(12)))


def wait_for(stream, needle: str, timeout: float) -> bool:
    found = threading.Event()
    seen: list[str] = []

    def reader():
        buffer = ""
        while True:
            ch = stream.read(1)
            if not ch:
                return
            buffer += ch
            if needle in buffer:
                found.set()
            seen.append(ch)

    threading.Thread(target=reader, daemon=True).start()
    return found.wait(timeout)


def assert_previous_state_survives(kb_dir: Path, before: dict[str, str], embedder, settings, folder: Path) -> None:
    assert snapshot(kb_dir) == before
    with KnowledgeBase.open(kb_dir) as kb:
        assert DenseRetriever(kb, embedder).retrieve("refund policy for order 3", k=3)
    # the next ingest finishes the job and cleans up what the killed one left behind
    report = ingest([folder], kb_dir, embedder, settings)
    assert not report.failed
    after = snapshot(kb_dir)
    assert after != before
    assert len(list(kb_dir.glob("index-*"))) == 1


def test_kill_during_embedding_of_the_real_cli(tmp_path, embedder, settings):
    folder = tmp_path / "docs"
    many_documents(folder, 20, "old")
    ingest([folder], settings.kb_dir, embedder, settings)
    before = snapshot(settings.kb_dir)

    many_documents(folder, 600, "new")  # changes every document: a long re-embedding
    proc = subprocess.Popen(
        [str(RAG), "ingest", str(folder), "--kb", str(settings.kb_dir)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert wait_for(proc.stderr, "embedding", timeout=120), "the ingest never started embedding"
        time.sleep(1.0)
        assert proc.poll() is None, "ingest finished before it could be killed; give it more work"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert_previous_state_survives(settings.kb_dir, before, embedder, settings, folder)


def test_kill_inside_the_commit_window(tmp_path, embedder, settings):
    folder = tmp_path / "docs"
    many_documents(folder, 20, "old")
    ingest([folder], settings.kb_dir, embedder, settings)
    before = snapshot(settings.kb_dir)

    many_documents(folder, 30, "new")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.ingest.ingest_child", str(folder), str(settings.kb_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert wait_for(proc.stdout, "IN_COMMIT", timeout=120), "the ingest never reached its commit"
        # new index file written, manifest row updated, transaction still open: the worst moment
        assert len(list(settings.kb_dir.glob("index-*.faiss"))) == 2
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert_previous_state_survives(settings.kb_dir, before, embedder, settings, folder)
