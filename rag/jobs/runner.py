"""Ingest jobs: uploads, deletions and re-ingests of a knowledge base's documents, run in the background.

    runner = JobRunner(catalog, embedder, settings_for, queue_size=100)
    job = runner.submit(kb_id, "ingest", ["faq.csv", "guide.pdf"])     # at once: state "queued"
    ... GET /api/jobs/{job.id} shows state, files done / total, chunks embedded, each file's failure

A bounded queue (`QueueFull` past `queue_size` waiting jobs) and one writer per knowledge base: a knowledge base's
jobs run one after another in the order they came, different knowledge bases' side by side (`workers` at most).
Every change commits atomically (rag.store.knowledge_base), so chat keeps answering from the last committed
generation while a job runs. Progress is saved as it goes; a job that was queued or running when the server
stopped is marked failed when the next one starts (`recover`), never left "running".
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from rag.core.errors import NotFound, QueueFull, RagError
from rag.core.settings import Settings
from rag.store.catalog import Catalog, Job, JobFailure, JobKind, new_id
from rag.store.embedders import Embedder
from rag.store.knowledge_base import KnowledgeBase

if TYPE_CHECKING:  # imported where used: `ingest` imports `rag`, whose package imports this module (rag.wiring)
    from ingest.limits import FileLimits
    from ingest.pipeline import IngestProgress, Loader
    from ingest.sandbox import SandboxedLoader

log = logging.getLogger("rag.jobs")


class JobCancelled(RagError):
    """The server stopped while the job ran; nothing of it was committed."""


def supported_types() -> tuple[str, ...]:
    """The file extensions an upload may have: those a loader reads."""
    from ingest.loaders import LOADERS

    return tuple(sorted(LOADERS))


_SAVE_EVERY = 0.5  # seconds between progress writes
# With a catalog shared by several servers: how often each tells the others it still holds its jobs, and how long
# a job nobody refreshed is left before it is marked failed (its server died).
KEEP_ALIVE_SECONDS = 10.0
STALE_AFTER = timedelta(seconds=60)
# How long a job waits for another writer of its knowledge base (another server's job, `rag ingest`) to finish.
LOCK_WAIT = 600.0
INTERRUPTED = "interrupted: the server stopped while this job was {state} - upload the files again or re-ingest them"


class JobRunner:
    def __init__(
        self,
        catalog: Catalog,
        embedder: Embedder,
        settings_for: Callable[[str], Settings],
        *,
        queue_size: int = 100,
        workers: int = 2,
        sandbox: bool = False,
        on_committed: Callable[[str], None] | None = None,
    ):
        """`sandbox`: each file loads in a separate process bounded in time and memory by the knowledge base's
        settings (RAG_INGEST_FILE_TIMEOUT, RAG_INGEST_FILE_MEMORY_MB): uploads may be hostile."""
        self.catalog = catalog
        self.embedder = embedder
        self.settings_for = settings_for
        self.queue_size = queue_size
        self._sandboxes: dict[FileLimits, SandboxedLoader] = {}
        self._use_sandbox = sandbox
        self.on_committed = on_committed
        self._queues: dict[str, deque[Job]] = {}
        self._active: set[str] = set()  # knowledge bases with a drain task running: one writer each
        self._waiting = 0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest-job")
        self._closed = False
        self._stopping = threading.Event()
        self._keeper: threading.Thread | None = None
        if catalog.db.shared:
            self._keeper = threading.Thread(target=self._keep_alive, name="ingest-keep-alive", daemon=True)
            self._keeper.start()

    # ---- submitting ---------------------------------------------------------------------------------------
    def submit(self, kb_id: str, kind: JobKind, files: list[str]) -> Job:
        """Queue a job over `files` (upload names for ingest and reingest, sources for delete); QueueFull when
        `queue_size` jobs are already waiting."""
        job = Job(new_id("job"), kb_id, kind, "queued", datetime.now(UTC), files=list(files))
        with self._lock:
            if self._closed:
                raise QueueFull("The server is shutting down - retry in a moment")
            if self._waiting >= self.queue_size:
                raise QueueFull(
                    f"{self._waiting} ingest jobs are waiting (RAG_INGEST_QUEUE_SIZE={self.queue_size}) - retry "
                    f"when some have finished"
                )
            self.catalog.db.save_job(job)
            self._waiting += 1
            self._queues.setdefault(kb_id, deque()).append(job)
            if kb_id not in self._active:
                self._active.add(kb_id)
                self._pool.submit(self._drain, kb_id)
        return job

    def get(self, job_id: str) -> Job:
        job = self.catalog.db.job(job_id)
        if job is None:
            raise NotFound(f"No job {job_id!r} - job ids are returned by POST /api/kbs/{{kb}}/documents")
        return job

    def waiting(self) -> int:
        with self._lock:
            return self._waiting

    def recover(self) -> list[Job]:
        """Mark the jobs a stopped server left queued or running as failed (and their files): at start, and (with
        a shared catalog) whenever another server's jobs have gone unrefreshed for STALE_AFTER."""
        jobs = []
        for job in self.catalog.db.abandoned_jobs(STALE_AFTER):
            reason = INTERRUPTED.format(state=job.state)
            if not self.catalog.db.fail_abandoned(job.id, reason, STALE_AFTER):
                continue  # its server refreshed or finished it meanwhile
            job.state, job.error, job.finished_at = "failed", reason, datetime.now(UTC)
            jobs.append(job)
            if job.kind != "delete":
                for name in job.files:
                    self.catalog.set_file_state(job.kb_id, name, "failed", reason)
        if jobs:
            log.warning("%d ingest job(s) were interrupted by a restart and are marked failed", len(jobs))
        return jobs

    def close(self, wait: bool = True) -> None:
        with self._lock:
            self._closed = True
            for queue in self._queues.values():
                queue.clear()
        self._stopping.set()  # a running job stops at its next file or group of chunks (reported failed at start)
        if self._keeper is not None:
            self._keeper.join(timeout=5)
        self._pool.shutdown(wait=wait, cancel_futures=True)
        for sandbox in self._sandboxes.values():
            sandbox.close()

    def _keep_alive(self) -> None:
        while not self._stopping.wait(KEEP_ALIVE_SECONDS):
            try:
                self.catalog.db.touch_jobs()
                self.recover()
            except Exception:  # the database is down, or anything else: tried again at the next round
                log.warning("could not refresh the ingest jobs in the shared catalog", exc_info=True)

    def _loader(self, settings: Settings) -> Loader:
        from ingest.limits import FileLimits
        from ingest.loaders import load_file
        from ingest.sandbox import SandboxedLoader

        limits = FileLimits.from_settings(settings)
        if not self._use_sandbox:
            return functools.partial(load_file, limits=limits)
        with self._lock:
            if limits not in self._sandboxes:
                self._sandboxes[limits] = SandboxedLoader(limits)
            return self._sandboxes[limits].load

    # ---- running ------------------------------------------------------------------------------------------
    def _drain(self, kb_id: str) -> None:
        try:
            while True:
                with self._lock:
                    queue = self._queues.get(kb_id)
                    if not queue or self._closed:
                        return
                    job = queue.popleft()
                    self._waiting -= 1
                try:
                    self._run(job)
                except Exception:  # the catalog's database failed while recording the job: go on with the next
                    log.exception("ingest job %s could not be recorded", job.id)
        finally:
            with self._lock:
                self._active.discard(kb_id)

    def _run(self, job: Job) -> None:
        job.state, job.started_at = "running", datetime.now(UTC)
        self.catalog.db.save_job(job)
        try:
            if job.kind == "delete":
                self._delete(job)
            else:
                self._ingest(job)
        except Exception as exc:  # a job must end failed with its reason, whatever went wrong
            if not isinstance(exc, RagError):
                log.exception("ingest job %s failed", job.id)
            job.state, job.error = "failed", str(exc) or type(exc).__name__
            if job.kind != "delete":
                for name in job.files:
                    self.catalog.set_file_state(job.kb_id, name, "failed", job.error, job.id)
        job.finished_at = datetime.now(UTC)
        self.catalog.db.save_job(job)
        if self.on_committed is not None and job.state == "succeeded":
            self.on_committed(job.kb_id)

    def _ingest(self, job: Job) -> None:
        from ingest.pipeline import ingest

        kb_id = job.kb_id
        paths = [self.catalog.file_path(kb_id, name) for name in job.files]
        for name in job.files:
            self.catalog.set_file_state(kb_id, name, "ingesting", None, job.id)
        last_save = 0.0

        def progress(status: IngestProgress) -> None:
            nonlocal last_save
            if self._stopping.is_set():
                raise JobCancelled("the server is stopping - upload the files again or re-ingest them")
            job.files_done, job.chunks_embedded = status.files_done, status.chunks_embedded
            job.chunks_total = status.chunks_to_embed
            job.failures = [JobFailure(Path(f.path).name, f.reason) for f in status.failed]
            if time.monotonic() - last_save >= _SAVE_EVERY:
                last_save = time.monotonic()
                self.catalog.db.save_job(job)

        settings = self.settings_for(kb_id)
        report = ingest(
            paths,
            self.catalog.kb_location(kb_id),
            self.embedder,
            settings,
            on_progress=progress,
            loader=self._loader(settings),
            lock_wait=LOCK_WAIT,
        )
        failed = {Path(f.path).name: f.reason for f in report.failed}
        job.failures = [JobFailure(name, reason) for name, reason in failed.items()]
        job.files_done, job.chunks_embedded = len(job.files), report.chunks_embedded
        for name in job.files:
            reason = failed.get(name)
            self.catalog.set_file_state(kb_id, name, "failed" if reason else "ingested", reason, job.id)
        job.state = "failed" if job.files and len(failed) == len(job.files) else "succeeded"
        if job.state == "failed":
            job.error = "no file could be ingested - see each file's reason"

    def _delete(self, job: Job) -> None:
        """Remove the documents of `job.files` (sources) from the index, then uploaded files among them."""
        with KnowledgeBase.open(self.catalog.kb_location(job.kb_id)) as kb, kb.write_lock(wait=LOCK_WAIT):
            kb.remove_sources(job.files)
        uploads = {f.source: f.name for f in self.catalog.files(job.kb_id)}
        for source in job.files:
            if source in uploads:
                self.catalog.delete_file(job.kb_id, uploads[source])
        job.files_done = len(job.files)
        job.state = "succeeded"
