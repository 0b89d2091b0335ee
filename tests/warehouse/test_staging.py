"""A killed run's staging tables (raw rows, scores) are dropped when the next ingest or scoring run
starts; other tables stay, however close their names."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from crm_analytics.ingest.pipeline import ingest_file
from crm_analytics.jobs.score_table import ScoreTable
from crm_analytics.settings import Settings
from crm_analytics.warehouse import Warehouse
from crm_analytics.warehouse.staging import drop_staging_tables, staging_tables
from tests.ingest.helpers import transactions, write_csv

KILLED = ("_stage_0123abcd", "_stage_0123abcd_q", "_stage_scores_4567ef")
NOT_STAGING = ("_stageless", "my_stage_notes")  # "_" in LIKE matches any character: escaped


def leave_tables(warehouse: Warehouse, names: tuple[str, ...]) -> None:
    with warehouse.transaction() as execute:
        for name in names:
            execute(f"CREATE TABLE \"{name}\" AS SELECT 'G0000042' AS customer_id, 1.0 AS clv")


def tables(warehouse: Warehouse) -> set[str]:
    listing = warehouse.fetch("SELECT table_name FROM information_schema.tables")
    return {str(t) for t in listing["table_name"]}


def test_ingest_drops_a_killed_runs_staging_tables_when_it_starts(
    warehouse: Warehouse, settings: Settings, tmp_path: Path
) -> None:
    leave_tables(warehouse, KILLED + NOT_STAGING)
    assert staging_tables(warehouse) == sorted(KILLED)

    report = ingest_file(warehouse, write_csv(tmp_path / "transactions.csv", transactions(3)), settings)

    assert report.rows_new == 3
    assert not set(KILLED) & tables(warehouse)
    assert set(NOT_STAGING) <= tables(warehouse)
    assert staging_tables(warehouse) == []  # and its own are gone once it has merged


def test_scoring_drops_a_killed_runs_staging_tables_when_it_starts(warehouse: Warehouse) -> None:
    leave_tables(warehouse, KILLED)

    scores = ScoreTable(warehouse, date(2025, 6, 30), {"crm-clv": "1"}, {"clv": "DOUBLE"})

    assert staging_tables(warehouse) == [scores.stage]  # only the run's own
    scores.add(pd.DataFrame({"clv": [1.0]}, index=pd.Index(["U1"])))
    scores.commit()
    assert staging_tables(warehouse) == []


def test_drop_staging_tables_names_what_it_dropped(warehouse: Warehouse) -> None:
    leave_tables(warehouse, KILLED)
    assert drop_staging_tables(warehouse) == sorted(KILLED)
    assert drop_staging_tables(warehouse) == []
