"""The code location loads as `dagster dev` loads it: one asset per stage in the refresh's order, the
job over them, the daily schedule, the sensor on the incoming folder and its cursor."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    Backoff,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    SkipReason,
    build_sensor_context,
)

from crm_analytics.jobs.refresh import STAGES
from crm_analytics.orchestration import defs
from crm_analytics.orchestration.assets import STAGE_OF, CrmResource, history_id
from crm_analytics.orchestration.definitions import incoming_files_sensor

CHAIN = ["raw_tables", "profiles", "features", "segments", "scores", "monitor", "feedback"]


def test_definitions_load_the_job_over_one_asset_per_stage() -> None:
    job = defs.resolve_job_def("daily_refresh")
    assert {node.name for node in job.graph.nodes} == set(CHAIN)
    # every stage of `crm refresh` is an asset, but publish: `feedback` ends with it, as the refresh does
    assert {STAGE_OF.get(name, name) for name in CHAIN} | {"publish"} == set(STAGES)
    graph = defs.resolve_asset_graph()
    for upstream, downstream in itertools.pairwise(CHAIN):
        assert graph.get(AssetKey(downstream)).parent_keys == {AssetKey(upstream)}
    for name in CHAIN:
        policy = graph.assets_def_for_key(AssetKey(name)).op.retry_policy
        assert policy is not None
        assert (policy.max_retries, policy.backoff) == (3, Backoff.EXPONENTIAL)


def test_definitions_schedule_daily_and_watch_the_incoming_folder() -> None:
    schedule = defs.resolve_schedule_def("daily_refresh_schedule")
    assert schedule.cron_schedule == "0 3 * * *"
    assert schedule.job_name == "daily_refresh"
    assert schedule.default_status == DefaultScheduleStatus.RUNNING
    sensor = defs.resolve_sensor_def("incoming_files_sensor")
    assert sensor.job_name == "daily_refresh"
    assert sensor.default_status == DefaultSensorStatus.RUNNING


def evaluate(cursor: str | None) -> tuple[RunRequest | SkipReason, str | None]:
    context = build_sensor_context(cursor=cursor, resources={"crm": CrmResource()})
    result = incoming_files_sensor(context)
    assert isinstance(result, RunRequest | SkipReason)
    return result, context.cursor


def test_sensor_requests_a_run_when_the_incoming_folder_changes(isolated: Path) -> None:
    result, cursor = evaluate(None)  # no folder yet
    assert isinstance(result, SkipReason)
    assert evaluate(cursor)[0] == SkipReason("the incoming folder has not changed")

    incoming = isolated / "data" / "incoming"
    incoming.mkdir(parents=True)
    first = incoming / "transactions_pms_1.csv"
    first.write_text("transaction_id\n")
    result, cursor = evaluate(cursor)
    assert isinstance(result, RunRequest)
    assert result.tags["crm/trigger"] == "incoming"
    assert isinstance(evaluate(cursor)[0], SkipReason)  # the same folder again: no new run

    (incoming / "notes.txt").write_text("not a data file")  # ignored, as the ingest ignores it
    assert isinstance(evaluate(cursor)[0], SkipReason)

    first.write_text("transaction_id,customer_id\n")  # rewritten: another size and time
    changed, after = evaluate(cursor)
    assert isinstance(changed, RunRequest)
    assert changed.run_key != result.run_key
    os.utime(first, ns=(0, 0))  # only the time moves: still a change
    assert isinstance(evaluate(after)[0], RunRequest)


def test_sensor_first_sight_of_files_requests_a_run(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    incoming = isolated / "drop"
    incoming.mkdir()
    (incoming / "customers_crm.parquet").write_bytes(b"x")
    monkeypatch.setenv("CRM_INCOMING_DIR", str(incoming))
    assert isinstance(evaluate(None)[0], RunRequest)


def test_history_id_fits_the_refresh_history() -> None:
    assert history_id("0f8fad5b-d9cb-469f-a165-70867728950e") == "0f8fad5bd9cb469fa16570867728950e"


def test_the_code_location_loads_whole() -> None:
    defs.get_repository_def().load_all_definitions()  # what `dagster dev` does: names clash here


def test_retraining_is_its_own_job_checked_every_night_after_the_refresh() -> None:
    job = defs.resolve_job_def("retrain")
    assert {node.name for node in job.graph.nodes} == {"retraining"}
    assert "retraining" not in {node.name for node in defs.resolve_job_def("daily_refresh").graph.nodes}
    schedule = defs.resolve_schedule_def("retraining_schedule")
    assert (schedule.cron_schedule, schedule.job_name) == ("0 5 * * *", "retrain")
    assert schedule.default_status == DefaultScheduleStatus.RUNNING
