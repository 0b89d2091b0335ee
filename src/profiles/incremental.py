"""Incremental linkage: re-link only the customers new or changed records touch.

A record is new or changed when the fingerprint of its versions in ``customer_records`` (ingest
appends a version per ``updated_at`` and never rewrites one) differs from the one stored in
``profile_records`` by the last build. Only candidate pairs involving such a record are scored, with
the stored linkage model (not retrained). A previous customer is touched when one of its records
changed or is linked to a changed one; the touched customers' records plus the new records are
re-clustered, with every pair among them scored: their old links may have gone through a changed
record. Customers not touched keep their rows: no pair between them and the re-clustered records
passes the threshold (it would have linked them before, or involve a changed record), so the result
is the partition a full build with the same model and threshold gives.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crm_analytics.profiles import linkage
from crm_analytics.profiles.records import MATCH_COLUMNS, latest_records, match_frame
from crm_analytics.profiles.tables import LINKS, MERGES, MODEL, RECORDS
from crm_analytics.warehouse import Warehouse


@dataclass(frozen=True)
class Previous:
    """What the last build stored: its records with customer ids and fingerprints, model, threshold."""

    records: pd.DataFrame  # profile_records
    links: pd.DataFrame  # customer_links
    model: dict[str, Any]
    threshold: float
    used_ids: set[str]  # every customer id given out so far (current and merged away)
    versions_known: bool  # False for records linked before versions were stored: no increment then

    @property
    def customer_of(self) -> pd.Series:
        return self.records.set_index("unique_id")["customer_id"]


@dataclass(frozen=True)
class Relink:
    """The records to re-cluster and their new clusters."""

    changed: int  # records new or changed since the last build
    touched: list[str]  # previous customers whose rows are replaced
    matchable: pd.DataFrame  # the re-clustered records' match columns
    clusters: linkage.Clusters


def fingerprints(history: pd.DataFrame) -> pd.Series:
    """Per record key (``unique_id``), a fingerprint of its versions: their number and a hash of their
    ``updated_at`` values. Ingest never rewrites a version (a key already stored with other values is
    quarantined), so a new version is the only way a record changes."""
    stamps = pd.to_datetime(history["updated_at"]).astype("datetime64[us]")
    hashes = pd.util.hash_pandas_object(stamps, index=False).to_numpy()
    order = np.argsort(history["unique_id"].to_numpy(), kind="stable")
    keys = history["unique_id"].to_numpy()[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    sums = np.add.reduceat(hashes[order], starts)  # uint64: wraps, order-free
    counts = np.diff(np.r_[starts, len(keys)])
    return pd.Series(
        [f"{n}:{s:016x}" for n, s in zip(counts, sums, strict=True)], index=keys[starts], dtype=object
    )


def load_previous(warehouse: Warehouse) -> Previous | None:
    """The last build's state, or None when there is no build (or no stored model)."""
    for table in (MODEL, RECORDS, LINKS):
        if not warehouse.has_table(table) or warehouse.count(table) == 0:
            return None
    records = warehouse.ibis.table(RECORDS).execute()
    known = "versions" in records and not records["versions"].isna().any()
    model = warehouse.ibis.table(MODEL).execute().iloc[-1]
    links = warehouse.ibis.table(LINKS).execute()
    used = set(links["customer_id"])
    if warehouse.has_table(MERGES):
        merges = warehouse.ibis.table(MERGES).select("from_id", "into_id").execute()
        used |= set(merges["from_id"]) | set(merges["into_id"])
    settings, threshold = json.loads(model["settings_json"]), float(model["threshold"])
    return Previous(records, links, settings, threshold, used, known)


def changes(previous: Previous, versions: pd.Series) -> tuple[pd.Index, pd.Index]:
    """Records new or changed since ``previous`` (their ``versions`` differ) and records gone."""
    stored = previous.records.set_index("unique_id")["versions"]
    return versions.index[versions.ne(stored.reindex(versions.index))], stored.index.difference(
        versions.index
    )


def relink(history: pd.DataFrame, previous: Previous, versions: pd.Series) -> Relink | None:
    """Re-cluster what changed since ``previous`` (``history`` carries ``unique_id``); None when no
    record is new, changed or gone."""
    changed_ids, gone_ids = changes(previous, versions)
    if len(changed_ids) == 0 and len(gone_ids) == 0:
        return None
    changed = match_frame(latest_records(history[history["unique_id"].isin(changed_ids)]))
    kept = previous.records[~previous.records["unique_id"].isin(changed_ids.union(gone_ids))]
    kept = kept[["unique_id", "source", "source_customer_id", *MATCH_COLUMNS]]
    model, threshold = previous.model, previous.threshold
    keyed = _involving(linkage.deterministic_pairs(pd.concat([kept, changed])), set(changed_ids))
    scored = linkage.pairs_involving(changed, kept, model, threshold)
    customer_of = previous.customer_of
    linked = {*keyed["unique_id_l"], *keyed["unique_id_r"], *scored["unique_id_l"], *scored["unique_id_r"]}
    touched = set(customer_of.reindex([*linked, *changed_ids, *gone_ids]).dropna())
    members = kept[kept["unique_id"].map(customer_of).isin(touched)]
    matchable = pd.concat([members, changed], ignore_index=True)
    scored = pd.concat([scored, linkage.pairs_within(members, model, threshold)], ignore_index=True)
    clusters = linkage.cluster_records(matchable, linkage.deterministic_pairs(matchable), scored, threshold)
    return Relink(len(changed_ids), sorted(touched), matchable, clusters)


def _involving(pairs: pd.DataFrame, ids: set[str]) -> pd.DataFrame:
    """Pairs with a record in ``ids``."""
    return pairs[pairs["unique_id_l"].isin(ids) | pairs["unique_id_r"].isin(ids)]
