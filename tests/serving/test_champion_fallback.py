"""A champion that does not load (its artifacts gone) does not take the service down: its family falls
back to the version promoted before it, with a logged error, and /readyz says which versions serve and
that they are not the current aliases. Runs on a copy of the served chain's MLflow store."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from crm_analytics.serving.app import create_app
from crm_analytics.tracking import configure
from tests.serving.conftest import Served, auth

CHURN = "crm-churn"


def test_start_with_an_unloadable_champion_serves_the_one_before(
    served: Served, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = tmp_path / "mlflow.db"
    shutil.copyfile(served.folder / "mlruns" / "mlflow.db", registry)
    settings = served.settings.model_copy(update={"mlflow_tracking_uri": f"sqlite:///{registry}"})
    client = configure(settings)
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


def test_readyz_names_the_served_versions_as_the_current_aliases(served: Served) -> None:
    with TestClient(create_app(served.settings)) as api:
        body = api.get("/readyz").json()
    assert body["aliases_current"] is True
    assert body["champions_not_loaded"] == {}
    assert CHURN in body["models"]
