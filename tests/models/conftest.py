"""The CDNOW_sample summary built through our own pipeline: raw file -> ingest -> features."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from crm_analytics.datasets.cdnow import write_cdnow
from crm_analytics.features.rfm import btyd_summary
from crm_analytics.warehouse import Warehouse
from tests.features.conftest import load

CALIBRATION_END = date(1997, 9, 30)


@pytest.fixture(scope="session")
def cdnow_weeks(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    folder: Path = tmp_path_factory.mktemp("cdnow_models")
    write_cdnow("sample", folder / "raw")
    with Warehouse(f"duckdb:///{folder / 'warehouse.duckdb'}") as warehouse:
        load(warehouse, folder / "raw")
        summary = btyd_summary(warehouse.ibis.table("transactions"), CALIBRATION_END, "weeks").execute()
    return summary.set_index("customer_id").sort_index()
