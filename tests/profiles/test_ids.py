"""Stable id assignment on hand-made clusters: inheritance, ties, splits, merges, no reuse."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from crm_analytics.profiles.ids import assign_ids, unified_id

AT = datetime(2026, 1, 2, 9)


def assign(
    clusters: dict[str, str], previous: dict[str, str], used: set[str] | None = None
) -> tuple[dict, list]:
    done = assign_ids(
        pd.Series(clusters), pd.Series(previous, dtype=object), used or set(previous.values()), AT
    )
    merges = done.merges[["from_id", "into_id", "reason"]].to_dict("records")
    assert (done.merges["merged_at"] == AT).all()
    return done.customer_ids.to_dict(), merges


def test_first_build_ids_hash_the_smallest_record_key() -> None:
    ids, merges = assign({"crm:C2": "k1", "billing:A9": "k1", "crm:C1": "k2"}, {}, set())
    assert ids == {
        "crm:C2": unified_id("billing:A9"),
        "billing:A9": unified_id("billing:A9"),
        "crm:C1": unified_id("crm:C1"),
    }
    assert merges == []


def test_a_cluster_inherits_the_id_holding_most_of_its_records_ties_to_the_smaller() -> None:
    previous = {"a": "U2", "b": "U2", "c": "U1", "d": "U9", "e": "U3"}
    ids, merges = assign({"a": "k", "b": "k", "c": "k", "d": "m", "e": "m"}, previous)
    assert {ids["a"], ids["c"]} == {"U2"}  # two records of U2 beat one of U1
    assert ids["d"] == ids["e"] == "U3"  # one each: the smaller id
    assert merges == [
        {"from_id": "U1", "into_id": "U2", "reason": "merge"},
        {"from_id": "U9", "into_id": "U3", "reason": "merge"},
    ]


def test_a_split_customer_keeps_its_id_in_the_larger_part_the_other_gets_a_new_one() -> None:
    # the smaller part holds the record whose key made the id: its new id must not be the old one
    old = unified_id("a")
    ids, merges = assign({"a": "k1", "b": "k2", "c": "k2", "x": "k3"}, {"a": old, "b": old, "c": old})
    assert ids["b"] == ids["c"] == old
    assert ids["a"] not in {old, ids["x"]}
    assert ids["a"].startswith("U")
    assert ids["x"] == unified_id("x")
    assert merges == [{"from_id": old, "into_id": ids["a"], "reason": "split"}]


def test_retired_ids_are_never_given_out_again() -> None:
    ids, _ = assign({"a": "k"}, {}, used={unified_id("a")})
    assert ids["a"] != unified_id("a")
