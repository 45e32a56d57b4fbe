"""Every notebook runs top to bottom (they narrate the package; they define nothing)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert [p.name for p in NOTEBOOKS][:3] == [
        "01-quickstart.ipynb",
        "02-segments-and-tiers.ipynb",
        "03-churn-early-warning.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch):
    notebook = nbformat.read(path, as_version=4)
    # Executed from notebooks/, as a reader opening it in Jupyter would.
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert errors == []
    images = sum(
        1
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    )
    assert images >= 3  # the charts were drawn


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_with_its_outputs(path):
    # A reader on GitHub sees the charts and tables without running anything.
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.get("execution_count") for cell in code), "run every cell before saving"
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    images = sum(
        1
        for cell in code
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    )
    assert images >= 3
    errors = [
        o for cell in code for o in cell.get("outputs", []) if o.get("output_type") == "error"
    ]
    assert errors == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_uses_only_public_api(path):
    # No private module (segml._config, segml.scoring._scorer) and no private member
    # (scorer._clv_rfm): notebooks show what users can call.
    notebook = nbformat.read(path, as_version=4)
    source = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    private = re.findall(r"[\w)\]]\._\w+", source)
    assert private == []
