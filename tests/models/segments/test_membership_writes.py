"""Writing a day's segment membership replaces the families written, whole: members updated, customers
gone removed, other families untouched, all or nothing (DuckDB upserts, PostgreSQL deletes and copies)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from crm_analytics.models.segments.membership import read_membership, write_memberships
from crm_analytics.warehouse import Warehouse

DAY = date(2025, 12, 2)


def members(ids: list[str], segment: str, clv: float) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": ids, "segment": segment, "clv": clv, "churn_probability": 0.25})


def test_write_memberships_replaces_the_families_written(warehouse: Warehouse) -> None:
    write_memberships(
        warehouse,
        [
            ("rfm", members(["A", "B", "C"], "old", 1.0), "crm-segments-rfm/1"),
            ("behaviour", members(["A", "B", "C"], "kept", 1.0), "crm-segments-behaviour/1"),
        ],
        date(2025, 12, 1),
    )
    written = write_memberships(
        warehouse, [("rfm", members(["B", "C", "D"], "new", 2.0), "crm-segments-rfm/2")], DAY
    )

    assert written == 3
    rows = read_membership(warehouse).set_index(["family", "customer_id"]).sort_index()
    rfm = rows.loc["rfm"]
    assert list(rfm.index) == ["B", "C", "D"]  # A left the family, D joined
    assert set(rfm["segment"]) == {"new"}
    assert set(rfm["definition_version"]) == {"crm-segments-rfm/2"}
    assert {pd.Timestamp(d).date() for d in rfm["as_of"]} == {DAY}
    assert rfm["clv"].eq(2.0).all()
    behaviour = rows.loc["behaviour"]
    assert list(behaviour.index) == ["A", "B", "C"]
    assert set(behaviour["segment"]) == {"kept"}


def test_write_memberships_refuses_a_customer_twice_and_keeps_the_old_rows(warehouse: Warehouse) -> None:
    write_memberships(warehouse, [("rfm", members(["A", "B"], "old", 1.0), "crm-segments-rfm/1")], DAY)
    with pytest.raises(ValueError, match="one segment per family"):
        write_memberships(warehouse, [("rfm", members(["C", "C"], "new", 2.0), "crm-segments-rfm/2")], DAY)
    assert sorted(read_membership(warehouse)["customer_id"]) == ["A", "B"]
