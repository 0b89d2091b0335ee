"""The whole asset graph materialized in-process on a small served chain (`crm run --customers 300`):
a file dropped into the incoming folder makes the sensor request a run; the run serves the new day and
is in the refresh history `crm status` reads; the same folder again is no new run, and the same day
again changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from dagster import RunRequest, SkipReason, build_sensor_context, materialize
from typer.testing import CliRunner

from crm_analytics.cli import app as cli
from crm_analytics.jobs.status import status
from crm_analytics.orchestration.assets import ASSETS, CrmResource, history_id
from crm_analytics.orchestration.definitions import incoming_files_sensor
from crm_analytics.settings import Settings
from crm_analytics.store import RefreshLog, ServingStore
from crm_analytics.tracking import configure
from crm_analytics.warehouse import Warehouse
from tests.conftest import project_env

pytestmark = pytest.mark.e2e
RESOURCES = {"crm": CrmResource()}


@dataclass
class Project:
    folder: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    folder = tmp_path_factory.mktemp("orchestrated")
    env = project_env(folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        for name, value in env.items():
            patch.setenv(name, value)
        result = CliRunner().invoke(cli, ["run", "--customers", "300"])  # ends with the first refresh
        assert result.exit_code == 0, result.output
    return Project(folder, env)


@pytest.fixture
def in_project(project: Project, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.chdir(project.folder)
    for name, value in project.env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def one_more_purchase(settings: Settings, day: str, name: str) -> None:
    """A new purchase by a known guest, in the raw contract, dropped into the incoming folder."""
    with Warehouse(settings.warehouse_url) as warehouse:
        known = warehouse.fetch(
            "SELECT customer_id, source, currency FROM transactions WHERE type = 'purchase' "
            "ORDER BY transaction_id LIMIT 1"
        )
    row = known.iloc[0]
    settings.incoming.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "transaction_id": [f"T-ORCH-{day}"],
            "customer_id": [row["customer_id"]],
            "source": [row["source"]],
            "timestamp": [f"{day} 10:30:00"],
            "amount": [180.0],
            "currency": [row["currency"]],
            "type": ["purchase"],
        }
    ).to_csv(settings.incoming / name, index=False)


def sensor(cursor: str | None) -> tuple[RunRequest | SkipReason, str | None]:
    context = build_sensor_context(cursor=cursor, resources=RESOURCES)
    result = incoming_files_sensor(context)
    assert isinstance(result, RunRequest | SkipReason)
    return result, context.cursor


def metadata(result: object, asset: str) -> dict[str, object]:
    events = result.asset_materializations_for_node(asset)  # type: ignore[attr-defined]
    assert len(events) == 1
    return {k: v.value for k, v in events[0].metadata.items()}


def test_sensor_then_graph_serve_the_new_day_and_record_the_run(in_project: Settings) -> None:
    _, cursor = sensor(None)  # the folder as `crm run` left it (empty)
    one_more_purchase(in_project, "2026-01-01", "transactions_pms_20260101.csv")
    request, cursor = sensor(cursor)
    assert isinstance(request, RunRequest)  # a new file: the sensor asks for a refresh

    result = materialize(ASSETS, resources=RESOURCES, tags=request.tags)  # the run it asked for
    assert result.success
    ingested = metadata(result, "raw_tables")
    assert (ingested["as_of"], ingested["files_new"], ingested["unchanged"]) == ("2026-01-01", 1, False)
    assert ingested["data_quality_breaches"] == 0  # the file was checked (`crm monitor` tells the rest)
    assert metadata(result, "profiles")["relinked"] is False  # no customer records came in
    assert metadata(result, "features")["as_of"] == "2026-01-01"
    scored = metadata(result, "scores")
    served = status(in_project)
    assert served.served is not None
    assert served.served["as_of"] == "2026-01-01"
    assert scored["snapshot_id"] == served.served["snapshot_id"]
    assert scored["customers"] == served.served["customers"] > 250
    assert scored["models/crm-clv"] == served.served["models"]["crm-clv"]
    assert metadata(result, "feedback")["refresh"] == "succeeded"
    last = served.refreshes[0]
    assert (last["run_id"], last["status"], last["as_of"]) == (
        history_id(result.run_id),
        "succeeded",
        "2026-01-01",
    )
    report = RefreshLog(ServingStore(in_project.serving_store_url).engine).runs(1)[0].report
    assert report is not None
    assert list(report) == [
        "ingest",
        "profiles",
        "features",
        "segments",
        "scores",
        "monitor",
        "feedback",
        "publish",
    ]

    assert isinstance(sensor(cursor)[0], SkipReason)  # the same folder again: no new run
    again = materialize(ASSETS, resources=RESOURCES)  # the schedule on the same day: nothing changes
    assert again.success
    assert metadata(again, "raw_tables")["unchanged"] is True
    for asset in ("profiles", "features", "segments", "scores"):  # left as they are
        assert "snapshot_id" not in metadata(again, asset)
        assert metadata(again, asset)["unchanged"] is True
    assert metadata(again, "feedback")["refresh"] == "unchanged"
    after = status(in_project)
    assert after.served == served.served  # the same snapshot still serves
    assert [r["status"] for r in after.refreshes[:2]] == ["unchanged", "succeeded"]


def test_a_stage_that_cannot_succeed_fails_at_once_and_is_recorded(in_project: Settings) -> None:
    client = configure(in_project)
    champion = client.get_model_version_by_alias("crm-clv", "champion").version
    client.delete_registered_model_alias("crm-clv", "champion")  # segments need it: a retry cannot help
    try:
        result = materialize(ASSETS, resources=RESOURCES, raise_on_error=False)
    finally:
        client.set_registered_model_alias("crm-clv", "champion", champion)
    assert not result.success
    assert [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"] == ["segments"]
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    last = status(in_project).refreshes[0]
    assert (last["run_id"], last["status"]) == (history_id(result.run_id), "failed")
    assert last["error"] == "segments: LookupError"  # the type only: a message could carry data
    assert status(in_project).served["as_of"] == "2026-01-01"  # the last snapshot still serves
