"""`crm mlflow` (`make mlflow`): the MLflow UI on the jobs' own tracking store, registry and artifact folder,
started from the project folder, writing nothing anywhere else."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import mlflow
import pytest

from crm_analytics.settings import load_settings
from crm_analytics.tracking import configure, use_experiment
from tests.e2e.test_mlflow_server_postgres import free_port
from tests.test_cli import crm


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.slow  # the server takes 10-60 s to start on a busy 2-core machine
def test_crm_mlflow_serves_the_jobs_store_and_leaves_no_stray_files(tmp_path: Path) -> None:
    settings = load_settings()  # the defaults: mlruns/mlflow.db and mlruns/artifacts in this folder
    client = configure(settings)
    experiment_id = use_experiment(settings, "crm-ui-check")
    with mlflow.start_run():
        mlflow.log_param("seed", 7)
    client.create_registered_model("crm-ui-check")
    before = files_under(tmp_path)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "MLFLOW_"))}
    with (tmp_path.parent / f"{tmp_path.name}-mlflow.log").open("wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("crm")), "mlflow", "--port", str(port)],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, "crm mlflow exited"
            assert time.monotonic() < deadline, "crm mlflow not answering after 180 s"
            try:
                if httpx.get(f"{url}/health", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        experiments = httpx.get(
            f"{url}/api/2.0/mlflow/experiments/get-by-name",
            params={"experiment_name": "crm-ui-check"},
            trust_env=False,
        )
        models = httpx.get(f"{url}/api/2.0/mlflow/registered-models/search", trust_env=False)
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # crm became mlflow server: its own process group
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    assert experiments.status_code == 200
    experiment = experiments.json()["experiment"]
    assert experiment["experiment_id"] == experiment_id
    assert experiment["artifact_location"] == (tmp_path / "mlruns" / "artifacts" / "crm-ui-check").as_uri()
    assert models.status_code == 200
    assert [m["name"] for m in models.json()["registered_models"]] == ["crm-ui-check"]
    stray = {f for f in files_under(tmp_path) - before if not f.startswith("mlruns/mlflow.db")}
    assert stray == set()  # no ./mlflow.db, ./mlartifacts or ./mlruns of MLflow's own
    assert not (tmp_path / "mlflow.db").exists()


def test_crm_mlflow_on_a_tracking_server_says_to_open_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_MLFLOW_TRACKING_URI", "https://mlflow.example.org")

    code, _, stderr = crm("mlflow")

    assert code == 1
    assert "CRM_MLFLOW_TRACKING_URI names a tracking server" in stderr
