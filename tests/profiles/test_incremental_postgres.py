"""An incremental day on a PostgreSQL warehouse: the same customers as a full rebuild, then no change."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_analytics.datasets.demo import DemoConfig, generate_demo
from crm_analytics.profiles.build import build_profiles
from crm_analytics.profiles.tables import MERGES
from crm_analytics.settings import Settings
from crm_analytics.warehouse import Warehouse
from tests.features.conftest import load
from tests.profiles.increment import split_day
from tests.profiles.test_incremental import links


@pytest.mark.postgres
@pytest.mark.slow  # whole runs: left to `make test`, out of the fast loop
def test_an_incremental_day_on_postgres_matches_a_full_rebuild(
    postgres_url: str, tmp_path: Path, settings: Settings
) -> None:
    data = generate_demo(DemoConfig(customers=300, seed=6))
    day = split_day(data.customers, data.truth["identities"], share=0.05, seed=2)
    day.write(tmp_path / "history", tmp_path / "day")
    with Warehouse(postgres_url) as warehouse:
        load(warehouse, tmp_path / "history")
        build_profiles(warehouse, settings, log_run=False)
        load(warehouse, tmp_path / "day")
        incremental = build_profiles(warehouse, settings, log_run=False, incremental=True)
        by_incremental = links(warehouse)
        again = build_profiles(warehouse, settings, log_run=False, incremental=True)
        assert links(warehouse).sort_index().equals(by_incremental.sort_index())
        build_profiles(warehouse, settings, log_run=False)
        by_full = links(warehouse)
        merges = warehouse.count(MERGES)

    assert incremental.incremental
    assert incremental.changed_records == sum(f["source_customer_id"].nunique() for f in day.day.values())
    assert (again.changed_records, again.relinked_records) == (0, 0)
    assert by_full.sort_index().equals(by_incremental.sort_index())
    assert merges == incremental.merges
