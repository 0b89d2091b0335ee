"""A chain that delivers transactions only (no CRM, booking or billing records): the refresh's profile
stage has nothing to link and says so, instead of failing the day; the features follow the sources' ids."""

from __future__ import annotations

from pathlib import Path

from crm_analytics.jobs import data, ingest
from crm_analytics.jobs.common import open_store, open_warehouse
from crm_analytics.jobs.refresh import Day, features_stage, profiles_stage
from crm_analytics.settings import Settings


def test_profiles_stage_skips_a_chain_without_customer_records(settings: Settings, tmp_path: Path) -> None:
    data.cdnow_data(tmp_path / "cdnow", "sample")
    report = ingest.ingest(settings, [tmp_path / "cdnow"])
    assert report.as_dict()["totals"]["transactions"]["rows_new"] == 6_919

    with open_warehouse(settings) as warehouse:
        day = Day(settings, warehouse, open_store(settings), as_of=None)
        assert profiles_stage(day) == {"relinked": False, "customer_records": 0}
        assert warehouse.count("customer_links") == 0
        built = features_stage(day)

    assert built["rows"] == 2_357  # CDNOW's sample: every buyer, by the source's own id
