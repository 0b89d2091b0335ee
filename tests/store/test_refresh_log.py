"""The refresh history in the serving store: runs recorded, a run left running by a killed refresh
marked interrupted by the next, stages recorded as they finish, the last successful run found; and the
commands that read and write it (`crm status`, `crm refresh`) on an empty project."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_analytics.store import RefreshLog, ServingStore
from tests.test_cli import crm


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> RefreshLog:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'serving.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    return RefreshLog(ServingStore(url).upgrade().engine)


def test_a_refresh_is_recorded_from_start_to_finish(log: RefreshLog) -> None:
    log.start("r1", "2025-12-01", {"as_of": "2025-12-01"})
    log.progress("r1", {"ingest": {"files_new": 7}})
    running = log.runs()[0]
    assert (running.status, running.finished_at, running.report) == (
        "running",
        None,
        {"ingest": {"files_new": 7}},
    )
    assert log.last_succeeded() is None
    log.finish("r1", "succeeded", {"ingest": {}, "scores": {}}, fingerprint={"as_of": "2025-12-01", "x": 1})
    done = log.runs()[0]
    assert done.status == "succeeded"
    assert done.finished_at is not None
    assert done.fingerprint == {"as_of": "2025-12-01", "x": 1}  # what the next run of the day compares
    assert log.last_succeeded() == done


def test_a_run_left_running_is_interrupted_by_the_next(log: RefreshLog) -> None:
    log.start("killed", "2025-12-02", {})
    log.start("next", "2025-12-02", {})
    log.finish("next", "failed", None, error="scores: no @champion for crm-churn")
    by_id = {run.run_id: run for run in log.runs()}
    assert by_id["killed"].status == "interrupted"
    assert (by_id["next"].status, by_id["next"].error) == ("failed", "scores: no @champion for crm-churn")
    with pytest.raises(ValueError, match="status: expected one of"):
        log.finish("next", "running", None)


def test_status_and_refresh_on_an_empty_project() -> None:
    code, status, _ = crm("status", "--json")
    assert code == 0
    assert (status["served"], status["refreshes"], status["last_refresh"]) == (None, [], None)
    code, _, stderr = crm("refresh")
    assert code == 1
    assert stderr.strip() == "warehouse: no transactions or customer records yet; ingest some first"
    code, _, stderr = crm("refresh", "--as-of", "2025-02-30")
    assert code == 2
    assert "expected a date as YYYY-MM-DD" in stderr
