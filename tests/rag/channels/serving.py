"""The product as `rag serve` runs it, for the channel tests: a knowledge-base root holding "shop" (the demo
documents of data/, ingested once per session with the real model) with the channel settings a test gives it,
built by `build_services(..., background=True)` (so its Matrix bot and SMTP listener start) and served over
real HTTP.

    with served_kb(tmp_path, embedder, kb_settings={"slack_signing_secret": ..., ...}) as served:
        httpx.post(served.webhook("slack"), ...)
        served.wait()                       # every queued channel message answered
        served.store.conversation(...)
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.pipeline import ingest
from rag.conversations.store import ConversationStore
from rag.core.settings import Settings
from rag.store.catalog import FolderCatalog
from rag.store.embedders import Embedder
from rag.wiring import Services, build_services
from tests.rag.api.serving import guarded_server

ROOT = Path(__file__).resolve().parents[3]
KB_ID = "shop"
_template: list[Path] = []
_template_lock = threading.Lock()


@dataclass
class Served:
    url: str
    kb_id: str
    services: Services
    store: ConversationStore

    def webhook(self, channel: str) -> str:
        return f"{self.url}/channels/{self.kb_id}/{channel}"

    def wait(self, timeout: float = 60.0) -> None:
        """Until every channel message received so far is answered (and its reply posted)."""
        assert self.services.channels is not None
        assert self.services.channels.bridge.wait(timeout), "channel messages still unanswered"


def shop_template(embedder: Embedder) -> Path:
    """The demo documents ingested once per test session (copied into each test's knowledge-base root)."""
    with _template_lock:
        if not _template:
            folder = Path(tempfile.mkdtemp(prefix="shop-kb-"))
            atexit.register(shutil.rmtree, folder, True)
            report = ingest([ROOT / "data"], folder / "kb", embedder, Settings(kb_dir=folder / "kb", _env_file=None))
            assert not report.failed, report.failed
            _template.append(folder / "kb")
        return _template[0]


@contextlib.contextmanager
def served_kb(
    tmp_path: Path, embedder: Embedder, kb_settings: dict[str, Any], **server_settings: Any
) -> Iterator[Served]:
    """`kb_settings`: the knowledge base's own settings (its channels); `server_settings`: the server's (e.g.
    email_listen_port=...)."""
    root = tmp_path / "kbs"
    settings = Settings(
        _env_file=None,
        kb_root=root,
        database_url=f"sqlite:///{tmp_path / 'conversations.sqlite'}",
        **server_settings,
    )
    settings.with_overrides(kb_settings)  # a mistake in the test's settings shows here, not as a 404 later
    catalog = FolderCatalog(root)
    try:
        catalog.create_kb(KB_ID, "Pinecrest Supply Co.", "auto", kb_settings)
        shutil.copytree(shop_template(embedder), catalog.kb_path(KB_ID), dirs_exist_ok=True)
    finally:
        catalog.close()
    services = build_services(settings, background=True, embedder=embedder)
    try:
        assert services.conversations is not None
        with guarded_server(settings, services) as url:
            yield Served(url, KB_ID, services, services.conversations)
    finally:
        services.close()
