"""Promises the project makes about itself: the public API, the README's settings table, the layout."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import rag
from rag.core.settings import Settings

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[1]


def test_public_api_is_complete_and_sorted():
    assert rag.__all__ == sorted(rag.__all__)
    for name in rag.__all__:
        assert getattr(rag, name) is not None, name
    for name in ("ChatService", "Answer", "Settings", "KnowledgeBase", "RagError", "build_services"):
        assert name in rag.__all__
    exported = {n for n in vars(rag) if not n.startswith("_") and not isinstance(getattr(rag, n), type(rag))}
    assert exported <= set(rag.__all__), exported - set(rag.__all__)


def _settings_table() -> list[tuple[list[str], list[str]]]:
    """(variables, defaults) of each row of the README's configuration table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`RAG_"):
            continue
        names = re.findall(r"`RAG_([A-Z0-9_]+)`", cells[0])
        defaults = [d.strip().strip("`") for d in re.split(r",\s*| / ", cells[1])] if cells[1] else []
        rows.append((names, defaults))
    return rows


def _shown(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[]" if not value else str(value).replace("'", '"').replace(" ", "")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_readme_settings_table_matches_the_code():
    fields = Settings.model_fields
    defaults = Settings(_env_file=None)
    rows = _settings_table()
    assert len(rows) >= 15
    for names, shown in rows:
        for name in names:
            assert name.lower() in fields, f"README names RAG_{name}, which Settings does not have"
        if len(shown) != len(names) or any(s.startswith("(") for s in shown):
            continue  # prose (e.g. the fallback messages) rather than one value per variable
        for name, value in zip(names, shown, strict=True):
            assert _same(value, _shown(getattr(defaults, name.lower()))), f"RAG_{name}: README says {value!r}"


def _same(a: str, b: str) -> bool:
    try:
        return float(a) == float(b)
    except ValueError:
        return a == b
