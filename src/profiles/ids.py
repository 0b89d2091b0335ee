"""Stable customer ids: a re-link keeps the ids customers already have, and records merges and splits.

After clustering, each new cluster inherits the id of the previous customer whose records it holds
most of (ties: the smaller id). A previous customer whose records end up in several clusters keeps its
id in the part holding most of them; the other parts inherit another previous id they hold, or get a
new one. Candidates are taken greedily, largest share first, so both rules hold at once. A previous
id that no cluster inherits was merged: a ``merge`` row says which customer it went into. Records
that left a surviving customer for another one give a ``split`` row. Downstream tables (scores,
segment memberships) follow ``customer_merges`` from ``from_id`` to ``into_id``.

New ids are ``U`` + 16 hex digits of a hash of the cluster's smallest record key, as on the first
build, re-hashed in the rare case that id was used before (ids are never reused).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

MERGE_COLUMNS = ("from_id", "into_id", "merged_at", "reason")


@dataclass(frozen=True)
class Assigned:
    """Each record's customer id and the merges and splits since the previous build."""

    customer_ids: pd.Series  # index unique_id
    merges: pd.DataFrame  # from_id, into_id, merged_at, reason


def unified_id(smallest_member: str) -> str:
    """A new customer's id: ``U`` + 16 hex digits of a hash of its smallest record key (no personal
    data in it)."""
    return "U" + hashlib.sha256(smallest_member.encode()).hexdigest()[:16]


def assign_ids(clusters: pd.Series, previous: pd.Series, used: set[str], merged_at: datetime) -> Assigned:
    """Customer ids for ``clusters`` (record key -> cluster label) given ``previous`` (record key ->
    previous customer id, for records that had one); ``used``: every id given out before."""
    frame = pd.DataFrame({"unique_id": clusters.index, "cluster": clusters.to_numpy()})
    frame["previous"] = frame["unique_id"].map(previous)
    shares = (
        frame.dropna(subset=["previous"])
        .groupby(["cluster", "previous"], as_index=False)
        .size()
        .sort_values(["size", "previous", "cluster"], ascending=[False, True, True])
    )
    chosen: dict[str, str] = {}
    inherited: set[str] = set()
    for cluster, previous_id in zip(shares["cluster"], shares["previous"], strict=True):
        if cluster not in chosen and previous_id not in inherited:
            chosen[cluster] = previous_id
            inherited.add(previous_id)
    taken = used | inherited
    smallest = frame.groupby("cluster")["unique_id"].min()
    for cluster, member in smallest.items():
        if cluster not in chosen:
            chosen[str(cluster)] = _fresh_id(str(member), taken)
            taken.add(chosen[str(cluster)])
    customer_ids = frame["cluster"].map(chosen)
    customer_ids.index = frame["unique_id"].to_numpy()
    return Assigned(customer_ids, _merges(frame.assign(customer_id=customer_ids.to_numpy()), merged_at))


def _fresh_id(member: str, taken: set[str]) -> str:
    candidate, attempt = unified_id(member), 0
    while candidate in taken:
        attempt += 1
        candidate = unified_id(f"{member}#{attempt}")
    return candidate


def _merges(frame: pd.DataFrame, merged_at: datetime) -> pd.DataFrame:
    """A ``merge`` row per previous id no longer given out, into each customer holding its records; a
    ``split`` row per surviving previous id and each other customer that took some of its records."""
    moved = frame.dropna(subset=["previous"])
    moved = moved[moved["previous"] != moved["customer_id"]][["previous", "customer_id"]].drop_duplicates()
    surviving = set(frame["customer_id"])
    out = pd.DataFrame(
        {
            "from_id": moved["previous"].to_numpy(),
            "into_id": moved["customer_id"].to_numpy(),
            "merged_at": merged_at,
            "reason": ["split" if p in surviving else "merge" for p in moved["previous"]],
        },
        columns=list(MERGE_COLUMNS),
    )
    return out.sort_values(["from_id", "into_id"]).reset_index(drop=True)
