"""The demo chain's offer log and the acceptance models fitted on it, shared by this package's tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import pytest

from crm_analytics.datasets.demo import DemoConfig, generate_demo, write_demo
from crm_analytics.features.build import FeatureConfig
from crm_analytics.models.offers.acceptance import AcceptanceModel
from crm_analytics.models.offers.evaluation import fit_models, rolling_windows
from crm_analytics.profiles.build import build_profiles
from crm_analytics.settings import load_settings
from crm_analytics.warehouse import Warehouse
from tests.features.conftest import load

SPLIT, END = date(2025, 6, 30), date(2025, 12, 31)


class Fitted(NamedTuple):
    """The full and context-only acceptance models, the catalogue and the known guests' training events,
    and the hotels catalogue (facilities)."""

    full: AcceptanceModel
    context: AcceptanceModel
    offers: pd.DataFrame
    train: pd.DataFrame
    hotels: pd.DataFrame


@pytest.fixture(scope="package")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Warehouse, Path]]:
    folder = tmp_path_factory.mktemp("offers")
    write_demo(generate_demo(DemoConfig(customers=5_000, seed=7)), folder / "raw")
    with Warehouse(f"duckdb:///{folder / 'w.duckdb'}") as warehouse:
        load(warehouse, folder / "raw")
        build_profiles(warehouse, load_settings(), log_run=False)  # allergies reach the booking accounts
        yield warehouse, folder / "raw" / "truth"


@pytest.fixture(scope="package")
def models(demo: tuple[Warehouse, Path]) -> Fitted:
    warehouse, _ = demo
    con = warehouse.ibis
    offers = con.table("offers").order_by("offer_id").execute()
    config = FeatureConfig(as_of=SPLIT).resolved(con)
    train = rolling_windows(con, offers, SPLIT - timedelta(days=365), SPLIT, config, days=91)
    full, context = fit_models(train, seed=0)
    hotels = con.table("hotels").execute()
    return Fitted(full, context, offers, train.events[train.known], hotels)
