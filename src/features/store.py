"""Feature tables in the warehouse: validated, keyed by (customer_id, as_of), rebuilt idempotently.

``features`` holds every build, wide; a build for a cutoff replaces that cutoff's rows in one
transaction. ``feature_builds`` records each build's config and columns (the channel and category
columns differ between cutoffs), so an export returns exactly the columns of its build.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd

from crm_analytics.features.build import FeatureConfig
from crm_analytics.features.contract import FeatureTable
from crm_analytics.warehouse import IdRange, Warehouse, migrations, sql_type


def validate_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Check a feature table against its contract; raises pandera's SchemaErrors naming the columns."""
    return FeatureTable.validate(frame, lazy=True)


def write_features(warehouse: Warehouse, frame: pd.DataFrame, config: FeatureConfig) -> int:
    """Validate and store a feature table, replacing any earlier build for the same cutoff."""
    frame = validate_features(frame)
    columns = {name: sql_type(dtype) for name, dtype in frame.dtypes.items()} | {"as_of": "DATE"}
    migrations.upgrade(warehouse)
    with warehouse.transaction() as execute:
        # the feature columns come from the data (channels, categories): added as builds bring them
        for name, kind in columns.items():
            execute(f'ALTER TABLE features ADD COLUMN IF NOT EXISTS "{name}" {kind}')
        execute("DELETE FROM features WHERE as_of = ?", [config.as_of])
        execute("DELETE FROM feature_builds WHERE as_of = ?", [config.as_of])
        warehouse.load_frame("features", frame.assign(as_of=frame["as_of"].dt.date))
        execute(
            "INSERT INTO feature_builds VALUES (?, ?, ?, ?, ?)",
            [
                config.as_of,
                json.dumps(asdict(config), default=str),
                json.dumps(list(frame.columns)),
                len(frame),
                datetime.now(UTC).replace(tzinfo=None),
            ],
        )
    return len(frame)


def build_record(warehouse: Warehouse, as_of: date) -> dict[str, Any]:
    """The stored build of a cutoff: its config and columns, or a LookupError saying what to run."""
    match = None
    if warehouse.has_table("feature_builds"):
        builds = warehouse.fetch("SELECT * FROM feature_builds")
        match = builds[pd.to_datetime(builds["as_of"]).dt.date == as_of]
    if match is None or match.empty:
        raise LookupError(
            f"as_of: no feature build for {as_of}; run `crm features build --as-of {as_of}` first"
        )
    row = match.iloc[0]
    return {"config": json.loads(row["config"]), "columns": json.loads(row["columns"])}


def has_labelled_build(warehouse: Warehouse, as_of: date, horizon_days: int, time_unit: str) -> bool:
    """Whether the stored build at ``as_of`` has labels over this horizon in this time unit."""
    try:
        config = build_record(warehouse, as_of)["config"]
    except LookupError:
        return False
    return (config["horizon_days"], config["time_unit"]) == (horizon_days, time_unit)


def read_features(warehouse: Warehouse, as_of: date, customers: IdRange | None = None) -> pd.DataFrame:
    """The stored feature table of one cutoff (of a range of ``customers``), with exactly the columns
    of its build, in customer order."""
    columns = ", ".join(f'"{c}"' for c in build_record(warehouse, as_of)["columns"])
    within = (customers or IdRange()).sql()
    return warehouse.fetch(
        f"SELECT {columns} FROM features WHERE as_of = DATE '{as_of.isoformat()}' AND {within} "
        "ORDER BY customer_id"
    )
