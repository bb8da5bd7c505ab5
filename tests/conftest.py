from __future__ import annotations

import pytest

from rag.settings import Settings


@pytest.fixture(scope="session")
def embedder():
    """The real bundled embedding model, loaded once per test session."""
    from rag.embedders import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder("all-MiniLM-L6-v2")


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(kb_dir=tmp_path / "kb", _env_file=None)
