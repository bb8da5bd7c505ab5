"""Ingest on a Ray cluster: `rag ingest PATHS --ray auto|ADDRESS`, or `ingest(..., ray_address=...)`.

Ray Data spreads the work: files are loaded and chunked by map tasks, and chunk texts are embedded by a pool
of actors, each holding one copy of the embedding model. This process does what it does without Ray
(ingest.pipeline): it reads what the knowledge base holds, decides what changed, reuses stored vectors and
commits in one atomic step; the cluster never writes to the knowledge base.

    ingest(["data/"], "kb", embedder, settings, ray_address="auto")

Addresses: `auto` connects to the cluster RAY_ADDRESS names, else to the one `ray start` started on this
machine (or any other running here), else starts one on this machine for the ingest and stops it after
(Ray's own "auto" would fail there instead); `local` always starts one; anything else is a cluster's address
as `ray.init` takes it (`10.0.0.5:6379`). A cluster started here has no dashboard and
RAG_RAY_OBJECT_STORE_MB of object store.

Every node needs this project installed (the same version, with the embedding model), and reads the files
at the paths this process found them: the ingested folders must be at the same path on every node (a shared
filesystem; on one machine they are). ray is imported only here, and only when asked for; without it the
error says how to install it. Ray's exceptions become the project's in one place, `ray_errors`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ingest.pipeline import FileOutcome, FileWork, SourceFile, prepare_file
from rag.core.errors import ConfigurationError, RagError
from rag.core.settings import Settings
from rag.store.embedders import Embedder, SentenceTransformerEmbedder

INSTALL_HINT = "pip install 'rag-support-bot[ray]'"
_MIB = 1024 * 1024
# File-loading tasks per CPU of the cluster: enough for an even spread over files of different sizes, few enough
# that a task's overhead stays small next to loading its files.
_TASKS_PER_CPU = 4
# What Ray's "auto" says when no cluster runs (rather than one it found and could not reach).
_NONE_RUNNING = "Could not find any running Ray instance"
_CHAINED = "\n\nThe above exception was the direct cause of the following exception:"


class ClusterError(RagError):
    """The Ray cluster could not be reached, or failed during the ingest; nothing was committed."""


def import_ray() -> ModuleType:
    """The `ray` package with Ray Data, or a ConfigurationError saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data is in ray's `data` extra; a bare ray lacks its dependencies)
    except ImportError as exc:
        raise ConfigurationError(
            f"Ingesting on a Ray cluster (--ray) needs Ray Data, which is not installed ({exc}) - "
            f"`{INSTALL_HINT}`, or ingest in this process without --ray"
        ) from exc
    return ray


@contextlib.contextmanager
def ray_errors(ray: ModuleType) -> Iterator[None]:
    """Ray's exceptions as the project's: the one place they are translated. What failed on the cluster (an
    embedding model that does not load there, a loader's bug) is named in the message, with its own advice."""
    try:
        yield
    except ray.exceptions.RayError as exc:  # first: a task's error may also subclass the exception the task raised
        raise ClusterError(
            f"The ingest failed on the Ray cluster ({_describe(exc)}) - nothing was committed; fix that and run the "
            f"ingest again (`ray status` shows the cluster, `ray logs` its logs)"
        ) from exc
    except ConnectionError as exc:
        raise ClusterError(
            f"No Ray cluster could be reached: {exc} - start one with `ray start --head` and give its address "
            f"with --ray ADDRESS (or set RAY_ADDRESS), or use --ray local to start one on this machine"
        ) from exc


def _describe(exc: BaseException) -> str:
    """`Type: message` of what failed on the cluster. Ray sends a task's or an actor's exception as the text of
    its traceback (Ray Data keeps no more of it), with Ray's own exceptions chained after: the last exception in
    it that is not Ray's, else the last."""
    described = [_raised(section) for section in str(exc).split(_CHAINED)]
    ours = [d for d in described if d and not d.startswith("ray.")]
    return (ours or described)[-1] or type(exc).__name__


def _raised(traceback: str) -> str:
    """The lines of a traceback's text after its last frame (or after Ray's header naming the task), on one line."""
    lines = [line for line in traceback.strip().splitlines() if "ray::" not in line]
    frames = [i for i, line in enumerate(lines) if line.startswith(" ")]
    return " ".join(" ".join(lines[frames[-1] + 1 :] if frames else lines).split())


@contextlib.contextmanager
def ray_session(address: str, settings: Settings) -> Iterator[ModuleType]:
    """Ray connected to the cluster `address` names (see the module's docstring) while the block runs, and
    disconnected after (a cluster started for it stopped). A session this process already had is used and
    left open."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    with ray_errors(ray):
        connect(ray, address, settings)
    try:
        yield ray
    finally:
        ray.shutdown()


def connect(ray: ModuleType, address: str, settings: Settings) -> None:
    """`ray.init` for `address`: auto, local or a cluster's address (see the module's docstring)."""
    quiet: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address == "auto":
        try:
            ray.init(address="auto", **quiet)
            return
        except ConnectionError as exc:
            if _NONE_RUNNING not in str(exc):  # one was named or found but cannot be reached: say so
                raise
        address = "local"
    if address == "local":
        memory = settings.ray_object_store_mb * _MIB
        ray.init(address="local", include_dashboard=False, object_store_memory=memory, **quiet)
    else:
        ray.init(address=address, **quiet)


@contextlib.contextmanager
def ray_runner(address: str, embedder: Embedder, settings: Settings) -> Iterator[RayRunner]:
    """A `RayRunner` on the cluster `address` names, for the block. Its actors load the settings' embedding
    model, which must be the one `embedder` (this process's, for calibration) is."""
    if embedder.name != settings.embedding_model:
        raise ConfigurationError(
            f"The Ray actors embed with RAG_EMBEDDING_MODEL={settings.embedding_model!r} but this ingest was given "
            f"{embedder.name!r} - set RAG_EMBEDDING_MODEL={embedder.name}"
        )
    if settings.embedding_device != "cpu":
        raise ConfigurationError(
            f"Embedding on a Ray cluster runs on CPU actors; RAG_EMBEDDING_DEVICE={settings.embedding_device} is "
            f"not supported with --ray - set RAG_EMBEDDING_DEVICE=cpu, or ingest without --ray"
        )
    with ray_session(address, settings) as ray, _ray_data_context(ray):
        yield RayRunner(ray, settings)


@contextlib.contextmanager
def _ray_data_context(ray: ModuleType) -> Iterator[None]:
    """Ray Data without progress bars (the pipeline's own bar shows embedding; Ray's would print over it) and
    without its notes that each run starts and ends; its warnings and errors still show."""
    context = ray.data.DataContext.get_current()
    before = context.enable_progress_bars, context.print_on_execution_start
    context.enable_progress_bars = context.print_on_execution_start = False
    logger = logging.getLogger("ray.data")
    level, handlers = logger.level, list(logger.handlers)
    logger.setLevel(logging.WARNING)
    for handler in handlers:  # a handler's filter sees the records of ray.data's inner loggers too
        handler.addFilter(_not_about_progress_bars)
    try:
        yield
    finally:
        context.enable_progress_bars, context.print_on_execution_start = before
        logger.setLevel(level)
        for handler in handlers:
            handler.removeFilter(_not_about_progress_bars)


def _not_about_progress_bars(record: logging.LogRecord) -> bool:
    return "Progress bars disabled" not in record.getMessage()


class RayRunner:
    """Loads and chunks files in Ray Data map tasks, and embeds chunk texts in a pool of actors (one CPU and one
    copy of the model each; RAG_RAY_EMBED_ACTORS of them, default one per CPU of the cluster)."""

    def __init__(self, ray: ModuleType, settings: Settings):
        self.ray = ray
        self.batch_size = settings.ray_embed_batch_size
        self.cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.actors = settings.ray_embed_actors or self.cpus
        self.model: Callable[[], Embedder] = functools.partial(
            SentenceTransformerEmbedder,
            settings.embedding_model,
            device=settings.embedding_device,
            batch_size=settings.embedding_batch_size,
            offline=settings.hf_offline,
        )

    def prepare(self, files: Sequence[SourceFile], work: FileWork) -> Iterator[FileOutcome]:
        """`prepare_file` of each file in a Ray Data map task; yielded in the files' order as they come in."""
        if not files:
            return
        rows = [
            {"index": i, "path": os.path.abspath(f.path), "source": f.source, "legacy": f.legacy}
            for i, f in enumerate(files)
        ]
        blocks = min(len(rows), _TASKS_PER_CPU * self.cpus)
        waiting: dict[int, FileOutcome] = {}  # come in before an earlier file's
        following = 0
        with ray_errors(self.ray):
            dataset = self.ray.data.from_items(rows, override_num_blocks=blocks).map(
                _prepare_row, fn_kwargs={"work": work}
            )
            for row in dataset.iter_rows():
                outcome = pickle.loads(row["outcome"])
                outcome.file = files[row["index"]]  # as this process names it (the task was given it absolute)
                waiting[row["index"]] = outcome
                while following in waiting:
                    yield waiting.pop(following)
                    following += 1

    def embed(self, texts: Sequence[str]) -> Iterator[tuple[Sequence[int], np.ndarray]]:
        """The vectors of `texts` from the actor pool, one batch at a time as they come in."""
        if not texts:
            return
        # texts of a length share a batch: less padding for the model to compute
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        rows = [{"position": i, "text": texts[i]} for i in order]
        batches = math.ceil(len(rows) / self.batch_size)
        with ray_errors(self.ray):
            dataset = self.ray.data.from_items(rows, override_num_blocks=batches).map_batches(
                ChunkEmbedder,
                fn_constructor_kwargs={"model": self.model},
                batch_size=self.batch_size,
                batch_format="numpy",
                # one batch at a time: an actor whose model loaded first would otherwise queue up more than its share
                compute=self.ray.data.ActorPoolStrategy(
                    size=min(self.actors, batches), max_tasks_in_flight_per_actor=1
                ),
                num_cpus=1,
            )
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                yield batch["position"].tolist(), batch["vector"]


class ChunkEmbedder:
    """One Ray actor's copy of the embedding model; embeds a batch of chunk texts per call."""

    def __init__(self, model: Callable[[], Embedder]):
        self.embedder = model()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [str(text) for text in batch["text"]]
        return {"position": batch["position"], "vector": self.embedder.embed(texts)}


def _prepare_row(row: dict[str, Any], work: FileWork) -> dict[str, Any]:
    """One Ray Data row: a file to load, then its outcome, pickled (a row holds Arrow types, not dataclasses)."""
    file = SourceFile(Path(row["path"]), row["source"], row["legacy"])
    if os.path.lexists(file.path):
        outcome = prepare_file(file, work)
    else:
        outcome = FileOutcome(
            file,
            failure=f"not found on Ray node {_node_address()} - every node must see the "
            "ingested folders at the same path (a shared filesystem)",
        )
    return {"index": row["index"], "outcome": pickle.dumps(outcome)}


def _node_address() -> str:
    import ray.util

    return str(ray.util.get_node_ip_address())
