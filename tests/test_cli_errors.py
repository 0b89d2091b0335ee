"""The ``crm`` console script as a user meets it: a mistake is one line on stderr and exit code 1
(refused or failed) or 2 (bad usage), never a Python traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from crm_analytics.models.segments.membership import write_memberships
from crm_analytics.warehouse import Warehouse
from tests.conftest import project_env


def crm(folder: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **project_env(folder), "COLUMNS": "200", **extra_env}
    return subprocess.run(
        [sys.executable, "-m", "crm_analytics.cli", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_one_line(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_bad_date_is_one_usage_line(tmp_path: Path) -> None:
    result = crm(tmp_path, "score", "--as-of", "2025-13-01")
    assert_one_line(result, 2, "crm score", "--as-of", "expected a date as YYYY-MM-DD, got '2025-13-01'")


def test_unknown_option_and_command_are_usage_errors(tmp_path: Path) -> None:
    assert_one_line(crm(tmp_path, "score", "--bogus"), 2, "No such option: --bogus")
    assert_one_line(crm(tmp_path, "nothing"), 2, "No such command 'nothing'")


@pytest.mark.slow  # whole runs: left to `make test`, out of the fast loop
def test_nothing_to_score_says_what_to_run(tmp_path: Path) -> None:
    assert_one_line(crm(tmp_path, "score"), 1, "no feature build yet; run `crm features build")


@pytest.mark.slow  # a whole demo chain: in `make test`, not in the fast loop
def test_export_into_an_unwritable_place_fails_cleanly(tmp_path: Path) -> None:
    url = project_env(tmp_path)["CRM_WAREHOUSE_URL"]
    members = pd.DataFrame(
        {"customer_id": ["C1"], "segment": ["At risk"], "clv": [10.0], "churn_probability": [0.7]}
    )
    with Warehouse(url) as warehouse:
        write_memberships(warehouse, [("rfm", members, "crm-segments-rfm/1")], date(2025, 6, 30))
    assert crm(tmp_path, "warehouse", "publish").returncode == 0
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = crm(tmp_path, "segments", "export", "At risk", "--out", str(blocker / "list.csv"))
    assert_one_line(result, 1, "a-file")


def test_a_locked_warehouse_is_one_line_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "data" / "warehouse.duckdb"
    path.parent.mkdir(parents=True)
    with duckdb.connect(str(path)):  # another process holds the file (DuckDB: one writer process)
        result = crm(tmp_path, "warehouse", "publish", CRM_WAREHOUSE_LOCK_TIMEOUT="0")
    assert_one_line(result, 1, "warehouse:", f"in use by another process (PID {os.getpid()}", "waited 0 s")


def test_a_bad_setting_names_it(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("CRM_WAREHOUSE_URL=oracle://nope\n")
    result = subprocess.run(
        [sys.executable, "-m", "crm_analytics.cli", "warehouse", "summary"],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("CRM_")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert_one_line(result, 2, "CRM_WAREHOUSE_URL")
