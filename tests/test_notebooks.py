"""The notebooks: committed without outputs, and each runs top to bottom (slow)."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"
EXPECTED = [
    "01_quickstart.ipynb",
    "02_features_and_labels.ipynb",
    "03_experiments_in_mlflow.ipynb",
    "04_reading_explanations.ipynb",
    "05_fairness_audit.ipynb",
]


def _read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS / name, as_version=4)


def test_the_five_notebooks_are_there() -> None:
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_committed_notebooks_have_no_outputs(name) -> None:
    nb = _read(name)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: a cell has outputs"
            assert cell.execution_count is None, f"{name}: a cell has been run"


@pytest.mark.parametrize("name", EXPECTED)
def test_notebooks_use_the_package_and_define_nothing_it_needs(name) -> None:
    code = "\n".join(c.source for c in _read(name).cells if c.cell_type == "code")
    tree = ast.parse(code)
    defined = [
        n.name
        for n in ast.walk(tree)
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    ]
    assert defined == [], f"{name} defines {defined}: put it in the package"
    imported = {
        (n.module or "").split(".")[0]
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom)
    }
    assert "cmerisk" in imported


#: DuckDB refuses any progress-bar setting inside Jupyter unless ipywidgets is
#: installed (duckdb issue 7590), and cmerisk switches DuckDB's bar off.
NO_WIDGETS = importlib.util.find_spec("ipywidgets") is None


@pytest.mark.slow
@pytest.mark.skipif(
    NO_WIDGETS,
    reason="ipywidgets is not installed (dev extras): DuckDB refuses "
    "'SET enable_progress_bar' inside a Jupyter kernel without it",
)
@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_runs_top_to_bottom(name, tmp_path, monkeypatch) -> None:
    from nbclient import NotebookClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # the kernel inherits TMPDIR: the notebook's work folder (tempfile.mkdtemp)
    # goes under tmp_path, which pytest cleans, not into the machine's /tmp
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    nb = _read(name)
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError naming the cell that failed
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "error"
    ]
    assert errors == []
    assert list(temp.glob("cmerisk-nb-*")), "the notebook's work folder is elsewhere"
    assert not (tmp_path / "mlflow.db").exists()  # MLflow stays in a temp folder
