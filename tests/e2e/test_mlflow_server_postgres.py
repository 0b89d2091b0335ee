"""A team's MLflow: ``mlflow server`` with its tracking and registry in PostgreSQL and artifacts served by
the server. ``crm run`` trains, registers and promotes through it; the champions are then read back
through the server alone, and the registry's rows are in PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import mlflow
import psycopg
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from crm_analytics.cli import app as cli

SERVED = ("crm-clv", "crm-churn", "crm-offers")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def mlflow_server(postgres_url: str, tmp_path: Path) -> Iterator[str]:
    """``mlflow server`` on 127.0.0.1 over a fresh PostgreSQL database; its URL."""
    port = free_port()
    backend = postgres_url.replace("postgresql://", "postgresql+psycopg://", 1)
    artifacts = tmp_path / "server-artifacts"
    command = [
        str(Path(sys.executable).with_name("mlflow")), "server",
        "--backend-store-uri", backend, "--artifacts-destination", str(artifacts),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "MLFLOW_"))}
    with (tmp_path / "mlflow-server.log").open("wb") as log:
        process = subprocess.Popen(
            command, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "mlflow-server.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/health", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        else:
            raise AssertionError("mlflow server not ready after 120 s")
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.postgres
def test_crm_run_trains_and_promotes_through_an_mlflow_server_on_postgres(
    mlflow_server: str, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client_folder = tmp_path / "analyst"
    client_folder.mkdir()
    monkeypatch.chdir(client_folder)
    env = {
        "CRM_DATA_DIR": str(client_folder / "data"),
        "CRM_WAREHOUSE_URL": f"duckdb:///{client_folder / 'data' / 'warehouse.duckdb'}",
        "CRM_MLFLOW_TRACKING_URI": mlflow_server,
        "CRM_SERVING_STORE_URL": f"sqlite:///{client_folder / 'data' / 'serving.db'}",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["run", "--customers", "300"])  # trains, registers, promotes, scores
    assert result.exit_code == 0, result.output

    registry = MlflowClient(tracking_uri=mlflow_server)
    for name in SERVED:
        champion = registry.get_model_version_by_alias(name, "champion")
        assert champion.version == "1"
        assert str(champion.source).startswith(("models:/", "mlflow-artifacts:/")), champion.source
    mlflow.set_tracking_uri(mlflow_server)
    model = mlflow.pyfunc.load_model("models:/crm-churn@champion")  # downloaded through the server
    assert model.metadata.get_input_schema() is not None

    with psycopg.connect(postgres_url) as conn:  # the registry lives in PostgreSQL
        names = {r[0] for r in conn.execute("SELECT name FROM registered_models")}
        aliases = {r[0] for r in conn.execute("SELECT alias FROM registered_model_aliases")}
        runs = conn.execute("SELECT COUNT(*) FROM runs").fetchone()
    assert set(SERVED) <= names
    assert aliases == {"champion"}
    assert runs is not None
    assert runs[0] >= 3
    assert not (client_folder / "mlruns").exists()  # nothing went to the analyst's own folder
    assert any((tmp_path / "server-artifacts").rglob("MLmodel"))  # the server keeps the artifacts
