"""Run a real ingest in this process and pause inside the commit window so a test can SIGKILL it there.

Usage: python -m tests.ingest.ingest_child FOLDER KB_DIR
Prints IN_COMMIT once the new index file is written and the manifest updated, before the SQLite commit.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ingest.pipeline import ingest
from rag.core.settings import Settings
from rag.store.chunk_store import ChunkStore
from rag.store.embedders import SentenceTransformerEmbedder


def main() -> None:
    folder, kb_dir = Path(sys.argv[1]), Path(sys.argv[2])
    real_write_manifest = ChunkStore.write_manifest

    def write_manifest_then_wait(store, manifest):
        real_write_manifest(store, manifest)
        if manifest.generation > 1:  # not the empty knowledge base created first
            print("IN_COMMIT", flush=True)
            time.sleep(60)

    ChunkStore.write_manifest = write_manifest_then_wait  # type: ignore[method-assign]  # patched on purpose: the pause
    settings = Settings(kb_dir=kb_dir, _env_file=None)
    ingest([folder], kb_dir, SentenceTransformerEmbedder(settings.embedding_model), settings)


if __name__ == "__main__":
    main()
