"""A champion that does not load (its artifacts gone) does not take the service down: its family falls
back to the version promoted before it, with a logged error, and /readyz says which versions serve and
that they are not the current aliases. Runs on a copy of the served chain's MLflow store."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow.models import infer_signature
from mlflow.pyfunc import PythonModel
from mlflow.tracking import MlflowClient

from crm_analytics.serving.app import create_app
from crm_analytics.settings import Settings
from crm_analytics.tracking import configure
from tests.serving.conftest import Served, auth

CHURN = "crm-churn"


def registry_copy(served: Served, tmp_path: Path) -> tuple[Settings, MlflowClient]:
    """Settings on a copy of the served chain's MLflow store, and its client (configured)."""
    registry = tmp_path / "mlflow.db"
    shutil.copyfile(served.folder / "mlruns" / "mlflow.db", registry)
    settings = served.settings.model_copy(update={"mlflow_tracking_uri": f"sqlite:///{registry}"})
    return settings, configure(settings)


def test_start_with_an_unloadable_champion_serves_the_one_before(
    served: Served, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings, client = registry_copy(served, tmp_path)
    current = client.get_model_version_by_alias(CHURN, "champion")
    broken = client.create_model_version(CHURN, source=str(tmp_path / "gone"), run_id=current.run_id)
    client.set_registered_model_alias(CHURN, "champion", broken.version)  # as a forced promotion would

    caplog.set_level(logging.ERROR, logger="crm_analytics.serving")
    with TestClient(create_app(settings)) as api:
        ready = api.get("/readyz")
        listed = api.get("/v1/models", headers=auth(served, "analyst")).json()
        reload = api.post("/v1/admin/reload", headers=auth(served, "admin"))  # tries again, still broken
    models = {m["name"]: m["version"] for m in listed}

    assert ready.status_code == 200
    body = ready.json()
    assert body["models"][CHURN] == str(current.version) == models[CHURN]
    assert body["aliases_current"] is False
    assert body["champions_not_loaded"] == {CHURN: str(broken.version)}
    assert f"{CHURN} version {broken.version} does not load" in caplog.text
    assert reload.status_code == 503
    assert f"{CHURN} v{broken.version}" in reload.json()["detail"]
    configure(served.settings)  # the other tests of this worker use the served chain's store


class RefusesEveryRow(PythonModel):
    """A model that loads but cannot predict (a broken artifact a forced promotion let through)."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        raise ValueError("refuses every row")


def test_start_with_a_champion_failing_its_warm_up_serves_the_one_before(
    served: Served, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings, client = registry_copy(served, tmp_path)
    current = client.get_model_version_by_alias(CHURN, "champion")
    example = pd.DataFrame([{"frequency": 1.0, "recency": 2.0, "T": 3.0}])
    with mlflow.start_run() as run:
        logged = mlflow.pyfunc.log_model(
            name="model", python_model=RefusesEveryRow(), signature=infer_signature(example)
        )
    refusing = client.create_model_version(CHURN, source=logged.model_uri, run_id=run.info.run_id)
    client.set_registered_model_alias(CHURN, "champion", refusing.version)

    caplog.set_level(logging.ERROR, logger="crm_analytics.serving")
    with TestClient(create_app(settings)) as api:
        body = api.get("/readyz").json()
    assert body["models"][CHURN] == str(current.version)
    assert body["champions_not_loaded"] == {CHURN: str(refusing.version)}
    assert f"{CHURN} version {refusing.version} does not load (ValueError)" in caplog.text
    configure(served.settings)


def test_readyz_names_the_served_versions_as_the_current_aliases(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    mlflow_log = logging.getLogger("mlflow")  # its own handler, not propagated: listen in for this test
    mlflow_log.addHandler(caplog.handler)
    try:
        with TestClient(create_app(served.settings)) as api:
            body = api.get("/readyz").json()
    finally:
        mlflow_log.removeHandler(caplog.handler)
    assert body["aliases_current"] is True
    assert body["champions_not_loaded"] == {}
    assert CHURN in body["models"]
    assert "Found extra inputs" not in caplog.text  # the warm-up sends each model its own columns only
