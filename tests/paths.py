"""Where the tests find the shared evaluation datasets (beside the checkout, as in CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("RAG_TEST_DATASETS", ROOT.parent / "shared" / "datasets"))


def dataset(name: str) -> Path:
    """The dataset folder; skipped locally when absent, a failure under CI=true (never silently skipped there)."""
    path = DATASETS / name
    if not (path / "corpus.jsonl").is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"dataset {path} is missing in CI - shared/datasets must sit beside the checkout")
        pytest.skip(f"dataset {path} not found (set RAG_TEST_DATASETS)")
    return path
