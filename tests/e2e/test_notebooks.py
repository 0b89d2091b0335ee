"""The analysts' notebooks: stored without outputs, and each runs top to bottom on a small demo chain.

One ``crm run --customers 400`` in a folder of its own (its own warehouse, MLflow store and serving
store: never the user's ``data/`` or ``mlruns/``) feeds all four. Each notebook runs in a fresh kernel
of this interpreter with that folder's ``CRM_*`` variables, from ``<folder>/notebooks``, so that its
default ``PROJECT_DIR = ".."`` is the folder ``crm run`` ran in, as after ``make run``.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient
from typer.testing import CliRunner

from crm_analytics.cli import app as cli
from tests.conftest import project_env

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOK_FILES = sorted(NOTEBOOKS.glob("*.ipynb"))
EXPECTED = {
    "01-explore-customers",
    "02-retrain-and-compare",
    "03-segments-for-a-campaign",
    "04-offer-policy-review",
}
KERNEL = "crm-analytics-notebook-tests"
CELL_TIMEOUT = 300  # seconds per cell


@dataclass
class Project:
    folder: Path
    env: dict[str, str]  # the CRM_* variables it was built with
    personal: list[str]  # names, e-mails, phones, streets of its source records: never in an output


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    folder = tmp_path_factory.mktemp("project")
    env = project_env(folder)
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("CRM_"):
                patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        patch.chdir(folder)
        result = CliRunner().invoke(cli, ["run", "--customers", "400"])
    assert result.exit_code == 0, result.output
    (folder / "notebooks").mkdir()
    records = pd.concat(pd.read_parquet(p) for p in (folder / "data" / "demo").glob("customers_*.parquet"))
    names = records["first_name"].str.cat(records["last_name"], sep=" ")
    personal = pd.concat([names, records["email"], records["phone"], records["street"]]).dropna().astype(str)
    return Project(folder, env, sorted({value for value in personal if len(value) >= 6}))


@pytest.fixture(scope="module")
def jupyter_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Jupyter data folder whose one kernelspec runs this interpreter (the venv's), whatever else is
    installed on the machine."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "crm-analytics (tests)", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    return root


def test_every_notebook_is_here() -> None:
    missing = EXPECTED - {path.stem for path in NOTEBOOK_FILES}
    assert not missing, f"notebooks/ lacks {sorted(missing)}"


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda path: path.stem)
def test_notebook_is_stored_clean(path: Path) -> None:
    """No outputs, execution counts or timings committed; an intro first, then one cell of parameters."""
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    for cell in code:
        assert cell.outputs == [], f"{path.name} cell {cell.id}: outputs stored; clear them before committing"
        assert cell.execution_count is None, f"{path.name} cell {cell.id}: execution count stored"
        assert "execution" not in cell.metadata, f"{path.name} cell {cell.id}: execution timings stored"
    assert notebook.cells[0].cell_type == "markdown"
    tagged = [i for i, cell in enumerate(code) if "parameters" in cell.metadata.get("tags", [])]
    assert tagged == [0], f"{path.name}: the first code cell, and only it, is tagged 'parameters'"
    assert any("from crm_analytics" in cell.source for cell in code)


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda path: path.stem)
def test_notebook_runs(
    path: Path, project: Project, jupyter_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in project.env.items():
        monkeypatch.setenv(name, value)  # the kernel inherits this environment
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_path))
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name=KERNEL,
        timeout=CELL_TIMEOUT,
        startup_timeout=120,
        resources={"metadata": {"path": str(project.folder / "notebooks")}},
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on the first error
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    assert not [output for output in outputs if output.output_type == "error"]
    text = "\n".join(
        str(output.get("text", "")) + str(output.get("data", {}).get("text/plain", "")) for output in outputs
    )
    leaked = [value for value in project.personal if value in text]
    assert not leaked, f"{path.name} shows personal data ({len(leaked)} values)"
    if path.stem == "02-retrain-and-compare":  # by default the gate's verdict only, no champion moved
        assert text.count("PROMOTE = False") == 2, text
        assert "crm-churn v2: the gate would not promote (roc_auc gains" in text
