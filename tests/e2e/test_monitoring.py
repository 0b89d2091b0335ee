"""Realized performance and drift on a demo chain served with a 30-day horizon: the first refresh
(2025-10-31) has nothing matured; a month later the 2025-10-31 cohort's horizon has closed and is
measured once, against what the served champions were trained to expect; `crm monitor --json` shows
the state and the day's report opens in MLflow."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from crm_analytics.jobs import data, refresh, run
from crm_analytics.monitoring import realized
from crm_analytics.monitoring.report import EXPERIMENT
from crm_analytics.settings import Settings
from crm_analytics.tracking import configure
from crm_analytics.warehouse import Warehouse
from tests.conftest import in_project, project_env
from tests.test_cli import crm

SERVED = date(2025, 10, 31)
MATURED = date(2025, 11, 30)  # the 2025-10-31 cohort's horizon closes
DELIVERED = date(2025, 12, 3)  # ... and CRM_MONITOR_LATE_DAYS later it is measured
CUSTOMERS = 2_000


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A demo project served as of 2025-10-31 (30-day horizon), the next month's data delivered."""
    folder = tmp_path_factory.mktemp("monitoring_project")
    with in_project(folder) as settings:
        first = run.run(settings, CUSTOMERS, 5, until=SERVED, horizon_days=30)
        assert first.refresh.stages["monitor"]["realized_rows"] == 0  # nothing has matured yet
        data.demo_increment(settings.incoming, date(2025, 11, 1), DELIVERED, CUSTOMERS, 5)
    return settings


@pytest.fixture(autouse=True)
def in_the_project(project: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test in the project's folder with its CRM_* variables (``isolated`` cleared them)."""
    for name, value in project_env(project.data_dir.parent).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(project.data_dir.parent)


@pytest.mark.e2e
def test_a_matured_cohort_is_measured_once_against_what_training_expected(project: Settings) -> None:
    report = refresh.refresh(project)
    assert report.stages["monitor"]["realized_rows"] > 0
    with Warehouse(project.warehouse_url) as warehouse:
        rows = realized.latest(warehouse)
    assert {r.scored_as_of for r in rows} == {str(SERVED)}  # the 2025-12-03 cohort has not matured
    by_metric = {(r.model, r.metric): r for r in rows}
    auc = by_metric["crm-churn", "roc_auc"]
    assert auc.rows == CUSTOMERS
    assert auc.matured_on == str(MATURED)
    assert auc.horizon_days == 30
    client: MlflowClient = configure(project)
    run_id = client.get_model_version("crm-churn", auc.version).run_id
    assert run_id is not None
    trained = client.get_run(run_id).data.metrics
    assert auc.baseline == pytest.approx(trained["roc_auc"])
    assert abs(auc.value - trained["roc_auc"]) < 0.05  # a stable world: the served ranking holds
    calibration = by_metric["crm-churn", "churn_rate"]
    assert calibration.baseline is not None
    assert abs(calibration.value - calibration.baseline) < 0.03
    assert {"churn_rate:0", "churn_rate:1-2", "churn_rate:3+"} <= {r.metric for r in rows}
    purchases = by_metric["crm-clv", "purchases_total_error"]
    assert abs(purchases.value) < 0.2
    assert not [r for r in rows if r.breach]

    code, state, _ = crm("monitor", "--json")
    assert code == 0, state
    assert state["status"] == "ok"
    assert {r["metric"] for r in state["realized"]["latest"]} >= {"roc_auc", "churn_rate", "purchases_mae"}
    assert state["drift"]["as_of"] == str(DELIVERED)
    # a month since the last snapshot: only the recent purchases are comparable (features moved a month)
    assert state["drift"]["checks"] == 4

    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], f"tags.as_of = '{DELIVERED}'")
    assert len(runs) == 1
    page = client.download_artifacts(runs[0].info.run_id, "monitoring/report.html")
    text = Path(page).read_text(encoding="utf-8")
    assert "Realized performance" in text
    assert text.count("data:image/png;base64,") == 4 + 3  # the drift checks, the realized trends
    words = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)
    assert not re.search(r"G\d{7}", words)  # aggregates only: no customer id reaches the report

    again = refresh.refresh(project)  # the same day twice: nothing new measured
    assert again.status == "unchanged"
    with Warehouse(project.warehouse_url) as warehouse:
        assert [r.as_dict() for r in realized.latest(warehouse)] == [r.as_dict() for r in rows]


@pytest.mark.e2e
def test_retraining_is_due_weekly_goes_through_the_gate_and_is_not_repeated(project: Settings) -> None:
    refresh.refresh(project)  # served as of 2025-12-03 (unchanged when the test above ran)
    code, first, _ = crm("retrain", "--json")
    assert code == 0, first
    assert first["due"] is True
    # trained at 2025-10-01 (2025-10-31 minus the 30-day horizon); 2025-11-03 is mature now
    schedule = "schedule: last trained at 2025-10-01, 33 days before 2025-11-03"
    assert first["reasons"] == {"crm-clv": schedule, "crm-churn": schedule}
    decided = {p["model"]: p for p in first["promotions"]}
    assert set(decided) == {"crm-churn", "crm-clv"}
    # the same churn configuration refitted on newer labels: promoted as a refit, not on a gain
    assert decided["crm-churn"]["promoted"] is True, decided["crm-churn"]
    assert "refit" in decided["crm-churn"]["reason"]
    code, versions, _ = crm("models", "history", "--json")
    assert code == 0
    newest = {v["model"]: v for v in versions if v["version"] == "2"}
    for model, outcome in decided.items():  # every decision recorded with its figures
        assert newest[model]["holdout"].startswith("2025-11-03+")
        assert newest[model]["gate"] is not None, (model, outcome)
        assert newest[model]["champion"] is outcome["promoted"]
    print("retrain decisions:", {m: (o["promoted"], o["reason"]) for m, o in decided.items()})
    code, second, _ = crm("retrain", "--json")  # the same day again: nothing to do
    assert code == 0
    assert second["due"] is False
    assert set(second["reasons"].values()) == {"not due: trained 0 day(s) before the newest mature cutoff"}
    assert second["promotions"] == []
