"""The monitoring simulation of ``benchmarks/monitoring_days.py`` at `make test`'s size, on DuckDB
(``CI_PLAN``: 5,000 guests, 26 refreshed days, prices x1.25 from day 13, half the returning guests gone
from day 16, churn's horizon 7 days, retraining fortnightly; the 60-day run at 20,000 guests is the
benchmark, its record in ``benchmarks/monitoring_days.json``). It is also [operate]'s daily service on
DuckDB: every day's ``ServiceDays`` checks (a killed refresh, the same day twice) hold as the shifts
arrive.

No alarm of any kind before the first shift (data quality, drift, and realized performance, which
measures the quiet cohorts from day 10); the price shift flagged by drift (within ``CI_PRICE_DELAY``
refreshes at this volume); the churn shift flagged by realized performance once a cohort it touches has
matured, no later than the first cohort it wholly covers; retraining on schedule and on the breach, every
gate decision kept with its figures; then what the operator sees: `crm monitor` (exit 3 on the breach),
the day's report in MLflow, and `crm retrain` on the same day again doing nothing.
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from benchmarks.monitoring_days import CI_PLAN, CI_PRICE_DELAY, Day, Outcome, simulate
from crm_analytics.monitoring import realized
from crm_analytics.monitoring.report import EXPERIMENT
from crm_analytics.settings import Settings
from crm_analytics.tracking import configure
from crm_analytics.warehouse import Warehouse
from tests.conftest import in_project, project_env
from tests.e2e.daily_refresh import ServiceDays
from tests.test_cli import crm

RERUN_DAYS = {CI_PLAN.day(1), CI_PLAN.day(14)}
KILLED_DAY = CI_PLAN.day(20)


def print_day(day: Day) -> None:
    print(day.day, day.refresh_seconds, day.retrain_seconds, day.alarms, day.retrain["reasons"], flush=True)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Outcome]:
    folder = tmp_path_factory.mktemp("monitoring_days")
    with in_project(folder) as settings:
        service = ServiceDays(settings, RERUN_DAYS, KILLED_DAY)
        outcome = simulate(settings, CI_PLAN, on_day=print_day, checks=service)
        service.finished(CI_PLAN.day(CI_PLAN.days))
    print(json.dumps(outcome.summary(), indent=1))  # the detection delays, the retrains
    return settings, outcome


@pytest.fixture(autouse=True)
def in_the_project(simulated: tuple[Settings, Outcome], monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test in the project's folder with its CRM_* variables (``isolated`` cleared them)."""
    folder = simulated[0].data_dir.parent
    for name, value in project_env(folder).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CRM_RETRAIN_EVERY_DAYS", str(CI_PLAN.retrain_every_days))
    monkeypatch.chdir(folder)


def test_no_false_alarm_and_each_shift_flagged_in_time(simulated: tuple[Settings, Outcome]) -> None:
    settings, outcome = simulated
    summary, plan = outcome.summary(), outcome.plan
    assert summary["false_alarms"] == {}
    assert all(d.quality_checks > 0 for d in outcome.days if d.day != str(KILLED_DAY))  # it was checked
    delay = summary["price"]["delay_refreshes"]
    assert delay is not None, summary["price"]
    assert delay <= CI_PRICE_DELAY, summary["price"]
    churn = summary["churn"]
    assert churn["flagged"] is not None, churn
    first, last = churn["first_cohort_touched_measured"], churn["first_cohort_covered_measured"]
    assert first <= churn["flagged"] <= last
    # every realized alarm is about a cohort whose horizon the churn shift reached, none about prices
    touched = date.fromisoformat(churn["first_cohort_touched"])
    for day in outcome.days:
        for alarm in day.realized:
            assert alarm.startswith("crm-churn:"), (day.day, alarm)
            assert date.fromisoformat(alarm.rpartition("@")[2]) >= touched, (day.day, alarm)

    # while quiet, realized performance was measured, each cohort once, and agreed with training
    assert sum(d.realized_rows for d in outcome.days if d.number < plan.price_day) > 0
    with Warehouse(settings.warehouse_url) as warehouse:
        rows = realized.latest(warehouse)
    assert len({(r.scored_as_of, r.model, r.metric) for r in rows}) == len(rows)
    client: MlflowClient = configure(settings)
    quiet = [r for r in rows if r.model == "crm-churn" and date.fromisoformat(r.scored_as_of) < touched]
    assert {r.metric for r in quiet} >= {"roc_auc", "churn_rate", "churn_rate:0", "churn_rate:3+"}
    for row in quiet:
        assert row.horizon_days == plan.horizon_days
        scored = date.fromisoformat(row.scored_as_of)
        assert date.fromisoformat(row.matured_on) == scored + timedelta(days=plan.horizon_days)
        if row.metric == "roc_auc":
            run_id = client.get_model_version("crm-churn", row.version).run_id
            assert row.baseline == pytest.approx(client.get_run(str(run_id)).data.metrics["roc_auc"])
            assert abs(row.value - row.baseline) < 0.05, row
    values = [r for r in rows if r.model == "crm-clv" and date.fromisoformat(r.scored_as_of) < touched]
    errors = [r.value for r in values if r.metric == "purchases_total_error"]
    assert errors, values
    assert all(abs(e) < 0.5 for e in errors), errors  # the served purchases add up in a quiet world


def test_retraining_runs_on_schedule_and_on_the_breach_and_every_decision_is_recorded(
    simulated: tuple[Settings, Outcome],
) -> None:
    _, outcome = simulated
    summary = outcome.summary()
    retrains = summary["retrains"]
    reasons = [reason for r in retrains for reason in r["reasons"].values()]
    assert any(reason.startswith("schedule:") for reason in reasons), retrains
    on_breach = [r for r in retrains if r["reasons"]["crm-churn"].startswith("breach:")]
    assert on_breach, retrains
    assert on_breach[0]["day"] >= summary["churn"]["flagged"]
    decided = [p for r in retrains for p in r["promotions"]]
    assert {p["model"] for p in decided} == {"crm-churn", "crm-clv"}
    # each candidate's decision is on its version: churn's with the gate's figures; CLV at a 7-day
    # horizon chose its purchase model on the holdout (a validation window needs 28 days), so it
    # cannot be weighed, is refused once with that reason, and is not weighed again
    gated = ("crm-churn", "crm-clv")
    candidates = [v for v in outcome.versions if v["version"] != "1" and v["model"] in gated]
    assert candidates
    for version in candidates:
        assert version["gate"] is not None, version
        if version["model"] == "crm-churn":
            assert {"metric", "candidate", "champion", "passed"} <= set(version["gate"]), version
        else:
            assert "cannot be weighed" in version["gate"]["reason"], version
    clv = [p for p in decided if p["model"] == "crm-clv"]
    assert len(clv) == len([v for v in candidates if v["model"] == "crm-clv"])  # never weighed twice
    first_churn = next(p for p in decided if p["model"] == "crm-churn")
    assert first_churn["promoted"], first_churn  # the scheduled refit of the champion's configuration
    assert "refit" in first_churn["reason"]


def test_the_operator_sees_the_breach_the_report_and_no_second_retrain(
    simulated: tuple[Settings, Outcome],
) -> None:
    settings, outcome = simulated
    code, state, _ = crm("monitor", "--json")
    # the last matured cohort (day 16) was scored by a version trained before the churn shift
    assert code == 3, state
    assert state["status"] == "breach"
    assert state["drift"]["as_of"] == outcome.days[-1].day
    breached = {r["metric"] for r in state["realized"]["breaches"]}
    assert breached, state["realized"]
    assert all(m.startswith("churn_rate") for m in breached), breached
    assert state["realized"]["trend"]["crm-churn:roc_auc"]

    client: MlflowClient = configure(settings)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], f"tags.as_of = '{outcome.days[-1].day}'")
    assert len(runs) == 1  # one run per day, even when a promotion rescored it
    page = client.download_artifacts(runs[0].info.run_id, "monitoring/report.html")
    text = Path(page).read_text(encoding="utf-8")
    assert "Realized performance" in text
    assert "BREACH" in text
    words = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)
    assert not re.search(r"G\d{7}", words)  # aggregates only: no customer id reaches the report

    code, again, _ = crm("retrain", "--json")  # the simulation retrained today already
    assert code == 0, again
    assert again["due"] is False
    assert again["promotions"] == []
