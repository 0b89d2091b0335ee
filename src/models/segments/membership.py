"""Segment membership in the warehouse: who is in which segment, under which definition version.

``segment_membership`` holds one row per (customer, family): the family's segment (``rfm``,
``value_risk``, ``behaviour``), the registered definition it came from (``crm-segments-rfm/3``), the
feature cutoff, when it was scored and the CLV and churn scores marketing filters on. A rebuild of a
family replaces its rows in one transaction, so re-running never duplicates and readers never see half
a build; earlier definitions stay in the MLflow registry.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd

from crm_analytics.warehouse import Warehouse, migrations

TABLE = "segment_membership"
COLUMNS = {
    "customer_id": "TEXT",
    "family": "TEXT",
    "segment": "TEXT",
    "definition_version": "TEXT",
    "as_of": "DATE",
    "scored_at": "TIMESTAMP",
    "clv": "DOUBLE PRECISION",
    "churn_probability": "DOUBLE PRECISION",
}


def write_membership(
    warehouse: Warehouse, family: str, members: pd.DataFrame, definition_version: str, as_of: date
) -> int:
    """Replace ``family``'s membership with ``members`` (customer_id, segment, clv, churn_probability)."""
    return write_memberships(warehouse, [(family, members, definition_version)], as_of)


def write_memberships(
    warehouse: Warehouse, families: list[tuple[str, pd.DataFrame, str]], as_of: date
) -> int:
    """Replace several families' membership in one transaction: (family, members, definition version)."""
    scored_at = datetime.now(UTC).replace(tzinfo=None)
    frames = []
    for family, members, definition_version in families:
        for column in ("customer_id", "segment", "clv", "churn_probability"):
            if column not in members.columns:
                raise ValueError(f"missing column '{column}'")
        if members["customer_id"].duplicated().any():
            raise ValueError("customer_id: a customer may be in one segment per family")
        frames.append(
            members[["customer_id", "segment", "clv", "churn_probability"]].assign(
                family=family, definition_version=definition_version, as_of=as_of, scored_at=scored_at
            )
        )
    rows = pd.concat(frames, ignore_index=True)
    migrations.upgrade(warehouse)
    with warehouse.transaction() as execute:  # all or nothing
        if warehouse.backend == "duckdb":
            # DuckDB deletes from a primary-key index slowly: replacing 3M rows this way took 134 s at
            # 1M guests (benchmarks/refresh_days_1m.json), against 1.6 s to upsert them and delete the
            # few customers gone (stamped with an earlier ``scored_at``)
            warehouse.load_frame(TABLE, rows[list(COLUMNS)], upsert=True)
            for family, _, _ in families:
                execute(
                    f'DELETE FROM "{TABLE}" WHERE family = ? AND scored_at IS DISTINCT FROM ?',
                    [family, scored_at],
                )
        else:
            for family, _, _ in families:
                execute(f'DELETE FROM "{TABLE}" WHERE family = ?', [family])
            warehouse.load_frame(TABLE, rows[list(COLUMNS)])
    return len(rows)


def read_membership(warehouse: Warehouse, segment: str | None = None) -> pd.DataFrame:
    """Every membership row, or those of one segment (by name, in any family)."""
    if not warehouse.has_table(TABLE) or warehouse.count(TABLE) == 0:
        raise LookupError("no segments yet; run `crm segments build --as-of DATE` first")
    table = warehouse.ibis.table(TABLE)
    if segment is not None:
        table = table.filter(table.segment == segment)
    return table.order_by(["family", "segment", "customer_id"]).execute()


def segment_summary(membership: pd.DataFrame) -> pd.DataFrame:
    """Per family and segment: customers, share of the family, mean CLV and churn, definition, cutoff."""
    grouped = membership.groupby(["family", "segment"], sort=True)
    summary = grouped.agg(
        customers=("customer_id", "size"),
        mean_clv=("clv", "mean"),
        mean_churn_probability=("churn_probability", "mean"),
        definition_version=("definition_version", "first"),
        as_of=("as_of", "first"),
    ).reset_index()
    summary["share"] = summary["customers"] / summary.groupby("family")["customers"].transform("sum")
    return summary
