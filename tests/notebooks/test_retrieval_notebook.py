"""notebooks/retrieval.ipynb is executed, so it never rots (its last cell checks hybrid >= max(parts) - 0.005)."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from tests.paths import ROOT, dataset

pytestmark = pytest.mark.integration


def test_retrieval_notebook_runs_and_hybrid_holds(tmp_path):
    dataset("stackfaq")  # skipped locally without the shared datasets, a failure in CI
    notebook = nbformat.read(ROOT / "notebooks" / "retrieval.ipynb", as_version=4)
    NotebookClient(notebook, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the chart was not drawn"
    text = "".join(o.get("text", "") for o in outputs)
    assert "hybrid" in text and "margin" in text
