"""Retention: conversations whose last turn is older than a knowledge base's `retention_days` are deleted for
good, by a background thread that looks every RAG_RETENTION_CHECK_SECONDS (and once at start)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from rag.conversations.store import ConversationStore
from rag.core.settings import Settings
from rag.store.catalog import KnowledgeBaseInfo

log = logging.getLogger("rag.jobs.retention")


def apply_retention(
    kbs: list[KnowledgeBaseInfo],
    settings_for: Callable[[str], Settings],
    store: ConversationStore,
    now: datetime | None = None,
) -> dict[str, int]:
    """Delete each knowledge base's conversations past its retention period; turns deleted per kb id."""
    now = now or datetime.now(UTC)
    deleted: dict[str, int] = {}
    for info in kbs:
        try:
            days = settings_for(info.id).retention_days
            if days is not None:
                deleted[info.id] = store.delete_older_than(now - timedelta(days=days), kb_id=info.id)
        except Exception:  # one knowledge base's broken settings or a database hiccup: the others still go
            log.exception("retention could not run for knowledge base %s; trying again later", info.id)
    return deleted


class RetentionSweeper:
    """Runs `apply_retention` now and then every `interval` seconds until closed."""

    def __init__(
        self,
        list_kbs: Callable[[], list[KnowledgeBaseInfo]],
        settings_for: Callable[[str], Settings],
        store: ConversationStore,
        interval: float,
    ):
        self._list, self._settings_for, self._store = list_kbs, settings_for, store
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                deleted = apply_retention(self._list(), self._settings_for, self._store)
                if any(deleted.values()):
                    log.info("retention deleted turns: %s", deleted)
            except Exception:  # the thread must outlive any one failure
                log.exception("retention could not run; trying again later")
            self._stop.wait(self._interval)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
