"""Ingest on a real Ray cluster (two nodes of one CPU each, on this machine) gives the knowledge base the local
pipeline gives, and stays incremental; without Ray, `--ray` says how to install it."""

from __future__ import annotations

import inspect
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ingest.pipeline import IngestReport, ingest
from rag.cli import main
from rag.core.settings import Settings
from rag.store.knowledge_base import KnowledgeBase
from tests import builders

ROOT = Path(__file__).resolve().parents[2]
RAG = str(Path(sys.executable).with_name("rag"))
MIB = 1024 * 1024


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("ray is missing in CI - the dev extra installs ray[data]")
        pytest.skip("ray is not installed - pip install 'rag-support-bot[ray]'")
    return ray


@pytest.fixture(scope="module")
def cluster():
    """A real Ray cluster: a head and a worker node, one CPU each; every Ray process stopped after."""
    _ray()
    from ray.cluster_utils import Cluster

    node = {"num_cpus": 1, "object_store_memory": 200 * MIB}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    try:
        cluster.add_node(**node)
        yield cluster
    finally:
        cluster.shutdown()


@pytest.fixture
def settings() -> Settings:
    # the fusion calibration runs in this process after either kind of ingest; left out, it saves a minute
    return Settings(hybrid_adaptive=False, _env_file=None)


def _counts(report: IngestReport) -> tuple[int, ...]:
    return report.added, report.updated, report.unchanged, report.removed, report.chunks_embedded, report.chunks_reused


def _assert_same(local: Path, distributed: Path) -> None:
    """Chunk by chunk: ids, documents, texts and their hashes, content hashes, vectors within 1e-5."""
    with KnowledgeBase.open(local) as a, KnowledgeBase.open(distributed) as b:
        chunks = a.all_chunks()
        assert b.all_chunks() == chunks
        assert [c.text_hash() for c in b.all_chunks()] == [c.text_hash() for c in chunks]
        assert b.document_hashes() == a.document_hashes()
        ids = [c.id for c in chunks]
        assert b.index.size == a.index.size == len(ids)
        np.testing.assert_allclose(b.vectors(ids), a.vectors(ids), rtol=0, atol=1e-5)


@pytest.mark.integration
def test_ray_ingest_equals_the_local_one_and_stays_incremental(tmp_path, monkeypatch, cluster, embedder, settings):
    shutil.copytree(ROOT / "data", tmp_path / "data")
    docs = tmp_path / "data"
    local = ingest([docs], tmp_path / "local", embedder, settings)
    monkeypatch.setenv("RAY_ADDRESS", cluster.address)  # how `auto` finds a cluster from a user's shell
    distributed = ingest([docs], tmp_path / "ray", embedder, settings, ray_address="auto")
    assert _counts(distributed) == _counts(local) and distributed.failed == local.failed == []
    assert local.added == 20 and local.chunks_embedded > 200
    _assert_same(tmp_path / "local", tmp_path / "ray")

    again = ingest([docs], tmp_path / "ray", embedder, settings, ray_address=cluster.address)
    assert _counts(again) == (0, 0, 20, 0, 0, 0)

    # one file gone, one paragraph changed: the same removal, and only the changed chunk embedded, on both sides
    (docs / "exchanges.html").unlink()
    policy = docs / "shipping-policy.md"
    text = policy.read_text(encoding="utf-8")
    assert "2-4 extra business days" in text
    policy.write_text(text.replace("2-4 extra business days", "3-5 extra business days", 1), encoding="utf-8")
    local = ingest([docs], tmp_path / "local", embedder, settings)
    distributed = ingest([docs], tmp_path / "ray", embedder, settings, ray_address=cluster.address)
    assert _counts(distributed) == _counts(local)
    assert (local.updated, local.removed, local.unchanged) == (1, 1, 18) and local.chunks_reused > 0
    assert 0 < local.chunks_embedded < 5
    _assert_same(tmp_path / "local", tmp_path / "ray")
    with KnowledgeBase.open(tmp_path / "ray") as kb:
        assert "data/exchanges.html" not in {c.source for c in kb.all_chunks()}


@pytest.mark.integration
def test_a_task_failing_on_the_cluster_names_its_error_and_commits_nothing(tmp_path, cluster, embedder, settings):
    from ingest.distributed import ClusterError

    (tmp_path / "docs").mkdir()
    builders.write_txt(tmp_path / "docs" / "a.txt", "Parcels leave the warehouse within a day.")

    def parser_with_a_bug(path: Path, source: str) -> list:  # a local function: Ray ships it by value
        raise RuntimeError(f"parser bug on {path.name}")

    with pytest.raises(ClusterError, match=r"\(RuntimeError: parser bug on a.txt\) - nothing was committed"):
        ingest(
            [tmp_path / "docs"],
            tmp_path / "kb",
            embedder,
            settings,
            loader=parser_with_a_bug,
            ray_address=cluster.address,
        )
    with KnowledgeBase.open(tmp_path / "kb") as kb:
        assert kb.all_chunks() == []


@pytest.mark.integration
def test_rag_ingest_ray_local_starts_ray_here_and_stops_it(tmp_path):
    (tmp_path / "docs").mkdir()
    builders.write_markdown(tmp_path / "docs" / "shipping.md")
    builders.write_txt(tmp_path / "docs" / "support.txt", "Live chat is open on weekdays from 9 to 5.")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "RAY_"))}
    before = _ray_daemons()
    out = subprocess.run(
        [RAG, "ingest", "docs", "--kb", "kb", "--ray", "local", "--no-progress"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "added 2, updated 0, unchanged 0, removed 0, failed 0" in out.stdout
    with KnowledgeBase.open(tmp_path / "kb") as kb:
        assert {c.source for c in kb.all_chunks()} == {"docs/shipping.md", "docs/support.txt"}
    deadline = time.monotonic() + 30
    while _ray_daemons() - before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _ray_daemons() - before, "the Ray instance the ingest started is still running"


def _ray_daemons() -> set[int]:
    """Process ids of the Ray daemons on this machine (each Ray instance runs one GCS server and a raylet per node)."""
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:  # gone meanwhile
            continue
        if name in ("raylet", "gcs_server"):
            found.add(int(pid))
    return found


@pytest.mark.unit
def test_without_ray_the_option_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    class Embedder:  # the CLI's model is not needed to get this far
        name, dimension = "all-MiniLM-L6-v2", 384

        def embed(self, texts):
            return np.zeros((len(texts), 384), np.float32)

    for name in [k for k in os.environ if k.startswith("RAG_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("rag.wiring.create_embedder", lambda settings: Embedder())
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as where it is not installed
    (tmp_path / "docs").mkdir()
    builders.write_txt(tmp_path / "docs" / "a.txt", "Parcels leave the warehouse within a day.")

    assert main(["ingest", "docs", "--kb", "kb", "--ray", "auto", "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: Ingesting on a Ray cluster (--ray) needs Ray Data")
    assert "`pip install 'rag-support-bot[ray]'`" in error
    assert not (tmp_path / "kb").exists()  # refused before the knowledge base was created


@pytest.mark.unit
def test_auto_starts_ray_here_only_when_no_cluster_runs():
    from ingest.distributed import _NONE_RUNNING, connect

    class Ray:
        def __init__(self, refusal: str):
            self.refusal, self.calls = refusal, []

        def init(self, address: str, **options):
            self.calls.append((address, options))
            if address == "auto":
                raise ConnectionError(self.refusal)

    settings = Settings(ray_object_store_mb=300, _env_file=None)
    none_running = Ray(f"{_NONE_RUNNING}. Please specify the one to connect to by setting `--address` flag.")
    connect(none_running, "auto", settings)
    (first, _), (second, options) = none_running.calls
    assert (first, second) == ("auto", "local")
    assert options["include_dashboard"] is False and options["object_store_memory"] == 300 * MIB

    unreachable = Ray("Failed to connect to Ray cluster at 10.0.0.5:6379")  # named (RAY_ADDRESS) but down
    with pytest.raises(ConnectionError):
        connect(unreachable, "auto", settings)
    assert [address for address, _ in unreachable.calls] == ["auto"]

    # the words `auto` relies on are still the ones Ray says
    ray = _ray()
    assert _NONE_RUNNING in inspect.getsource(ray._private.services)
