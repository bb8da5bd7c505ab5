"""Hooks for every test run, whichever paths it is given: the docstring examples collected from rag/ and ingest/
(`--doctest-modules`) are pure and fast, so `pytest -m unit` selects them too."""

from __future__ import annotations

import pytest
from _pytest.doctest import DoctestItem


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, DoctestItem):
            item.add_marker(pytest.mark.unit)
