"""The feature catalog stays in step with the code; stored feature tables are validated and idempotent."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pandera.pandas as pa
import pytest

from crm_analytics.features.build import FeatureConfig, feature_table
from crm_analytics.features.catalog import CATALOG, catalog_markdown
from crm_analytics.features.store import read_features, write_features
from crm_analytics.warehouse import Warehouse
from tests.features.conftest import load

DOCS = Path(__file__).resolve().parents[2] / "docs" / "features.md"
AS_OF = date(2025, 6, 30)


def test_docs_catalog_is_generated_from_the_code() -> None:
    assert DOCS.read_text() == catalog_markdown(), "run: crm features catalog --out docs/features.md"


def test_every_built_column_is_in_the_catalog(demo: Warehouse) -> None:
    built = feature_table(demo.ibis, FeatureConfig(as_of=AS_OF, horizon_days=90)).execute()
    documented = {f.name for f in CATALOG}
    patterns = [f.name.split("<")[0] for f in CATALOG if "<" in f.name]
    keys_and_labels = {"customer_id", "as_of", "holdout_purchase_days", "holdout_spend", "churned"}
    undocumented = [
        c
        for c in built.columns
        if c not in documented | keys_and_labels and not c.startswith(tuple(patterns))
    ]
    assert undocumented == []


def test_rebuilding_a_cutoff_replaces_it(demo_folder: Path, tmp_path: Path) -> None:
    built: dict[date, pd.DataFrame] = {}
    with Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}") as warehouse:
        load(warehouse, demo_folder)
        for as_of in (AS_OF, AS_OF, date(2025, 3, 31)):
            config = FeatureConfig(as_of=as_of, horizon_days=90).resolved(warehouse.ibis)
            built[as_of] = feature_table(warehouse.ibis, config).execute()
            write_features(warehouse, built[as_of], config)
        stored = read_features(warehouse, AS_OF)
        counts = warehouse.fetch("SELECT as_of, COUNT(*) AS n FROM features GROUP BY as_of ORDER BY as_of")

    assert counts["n"].tolist() == [len(built[date(2025, 3, 31)]), len(built[AS_OF])]
    assert list(stored.columns) == list(built[AS_OF].columns)
    pd.testing.assert_frame_equal(
        stored.drop(columns="as_of"), built[AS_OF].drop(columns="as_of"), check_dtype=False
    )


def test_a_table_breaking_the_contract_is_not_written(demo: Warehouse, tmp_path: Path) -> None:
    config = FeatureConfig(as_of=AS_OF).resolved(demo.ibis)
    frame = feature_table(demo.ibis, config).execute()
    frame.loc[0, "recency"] = frame.loc[0, "T"] + 1
    frame.loc[1, "share_channel_web"] = 1.5
    with (
        Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}") as empty,
        pytest.raises(pa.errors.SchemaErrors) as caught,
    ):
        write_features(empty, frame, config)
    message = str(caught.value)
    assert "recency: may not exceed T" in message
    assert "share_channel_web" in message


def test_reading_a_cutoff_that_was_never_built(demo: Warehouse) -> None:
    with pytest.raises(LookupError, match="no feature build for 2020-01-01"):
        read_features(demo, date(2020, 1, 1))
