"""Batch scoring (``crm score``): every customer's scores, segments, guest brief and profile from the
warehouse and the ``@champion`` models into the serving store, as one atomic snapshot.

A customer is anyone with a feature row at the cutoff (scores, history) or a unified profile (brief,
profile, contact details for look-ups); a guest with a profile but no purchases yet gets a brief and no
scores. The CLV interval is simulated here, once per run, so the API only reads it. Customers go in id
ranges (``chunk_customers``), so memory stays bounded for millions of them; the CLV interval's random
streams follow row positions within a chunk, so a run is reproducible for a given chunk size. The
scores also go to the warehouse's ``customer_scores`` (``score_table``), replaced for the cutoff once
the store has switched.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from crm_analytics.features.store import build_record, read_features
from crm_analytics.ingest.warehouse import IdRange, Warehouse, id_ranges
from crm_analytics.models.inputs import model_inputs
from crm_analytics.models.offers.train import OFFERS_NAME
from crm_analytics.models.segments.consent import marketing_consent
from crm_analytics.models.segments.membership import TABLE as MEMBERSHIP
from crm_analytics.models.segments.value_risk import SEGMENTS as VALUE_RISK_SEGMENTS
from crm_analytics.models.train import CHURN_NAME, CLV_NAME
from crm_analytics.profiles.records import MATCH_COLUMNS
from crm_analytics.profiles.store import read_table
from crm_analytics.profiles.tables import FIELD_GROUPS, MODEL, PROFILES, RECORDS, SERVICE_FACTS
from crm_analytics.serving.models import champion_versions
from crm_analytics.serving.score_table import ScoreTable
from crm_analytics.serving.spark_scoring import SparkScores, read_scores
from crm_analytics.serving.store import ServingStore, Snapshot, now
from crm_analytics.settings import Settings
from crm_analytics.tracking import configure

BTYD_COLUMNS = ("frequency", "recency", "T", "monetary_value")
Progress = Callable[[int, int], None]
TIERS = {name: tier for tier, name in VALUE_RISK_SEGMENTS.items()}  # segment name -> (value, risk)


@dataclass(frozen=True)
class ScoreReport:
    """What a scoring run wrote (counts and versions only)."""

    snapshot_id: str
    as_of: str
    customers: int
    scored: int
    with_brief: int
    segment_rows: int
    models: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def latest_cutoff(warehouse: Warehouse) -> date:
    """The most recent feature build's cutoff; a LookupError saying what to run when there is none."""
    if not warehouse.has_table("feature_builds") or warehouse.count("feature_builds") == 0:
        raise LookupError("features: no feature build yet; run `crm features build --as-of DATE` first")
    return pd.Timestamp(warehouse.fetch("SELECT MAX(as_of) AS as_of FROM feature_builds")["as_of"][0]).date()


def score_all(
    settings: Settings,
    warehouse: Warehouse,
    store: ServingStore,
    as_of: date | None = None,
    *,
    chunk_customers: int = 50_000,
    progress: Progress | None = None,
    spark_scores: SparkScores | None = None,
) -> ScoreReport:
    """Score every customer as of ``as_of`` (default: the latest feature build) and switch the store.

    Customers are read, scored and written in id ranges of about ``chunk_customers``, so memory stays
    bounded by one chunk whatever the number of customers; the rows of all chunks and the switch commit
    in one transaction. ``progress`` is called with (customers done, customers) after each chunk.
    ``spark_scores``: CLV and churn scores already computed on Spark (``spark_scoring``), read range by
    range instead of predicted here.
    """
    as_of = as_of or latest_cutoff(warehouse)
    models, loaded = _champions(settings)
    if spark_scores is not None and spark_scores.models != {k: models[k] for k in spark_scores.models}:
        raise RuntimeError("a champion moved while Spark was scoring; run `crm score` again")
    history_columns = list(loaded[OFFERS_NAME].unwrap_python_model().full.customer_columns_)
    ids = _customer_ids(warehouse, as_of)
    ranges = id_ranges(ids, chunk_customers)
    counts = {"scored": 0, "with_brief": 0, "segment_rows": 0}
    table = ScoreTable(warehouse, as_of, models)  # the scores in the warehouse too, once switched

    def customer_rows() -> Iterator[dict[str, Any]]:
        done = 0
        for within in ranges:
            # in id order: the CLV interval's random streams follow row positions within a chunk
            features = read_features(warehouse, as_of, within).set_index("customer_id")
            frame = (
                read_scores(spark_scores, list(features.index))
                if spark_scores
                else _predict(loaded, features)
            )
            table.add(frame)
            scores = _score_rows(frame)
            history = features.reindex(columns=history_columns)
            segments = _segments(_membership(warehouse, within))
            briefs = _briefs(warehouse, within)
            profiles = _profiles(warehouse, within)
            chunk_ids = sorted(set(features.index) | set(profiles))
            consent = marketing_consent(warehouse, pd.Series(chunk_ids, index=chunk_ids), within)
            counts["scored"] += len(scores)
            counts["with_brief"] += len(briefs)
            for cid in chunk_ids:
                yield {
                    "customer_id": cid,
                    "scores": _json(scores.get(cid)),
                    "segments": _json(segments.get(cid, {})),
                    "history": _json(_clean(history.loc[cid].to_dict()) if cid in history.index else None),
                    "brief": _json(briefs.get(cid, [])),
                    "profile": _json(profiles.get(cid)),
                    "consent": bool(consent[cid]),
                }
            done += len(chunk_ids)
            if progress is not None:
                progress(done, len(ids))

    def member_rows() -> Iterator[dict[str, Any]]:
        for within in ranges:
            membership = _membership(warehouse, within)
            members = pd.Series(membership["customer_id"].unique())
            consent = marketing_consent(warehouse, pd.Series(members.to_numpy(), index=members), within)
            rows = _members(membership, consent)
            counts["segment_rows"] += len(rows)
            yield from rows

    try:
        catalogue = warehouse.ibis.table("offers").order_by("offer_id").execute()
        catalogue = catalogue.drop(columns=["ingest_batch_id", "row_hash"], errors="ignore")
        offers = [_clean(row) for row in catalogue.to_dict(orient="records")]
        snapshot = Snapshot(uuid.uuid4().hex, now(), str(as_of), models, len(ids), offers)
        store.write_snapshot(
            snapshot,
            customer_rows(),
            member_rows(),
            (row for within in ranges for row in _contacts(warehouse, within)),
            lookup_rows=(row for within in ranges for row in _lookup_records(warehouse, within)),
            linkage=_linkage(warehouse),
        )
    except BaseException:
        table.discard()
        raise
    table.commit()
    return ScoreReport(
        snapshot.snapshot_id,
        str(as_of),
        len(ids),
        counts["scored"],
        counts["with_brief"],
        counts["segment_rows"],
        models,
    )


def _champions(settings: Settings) -> tuple[dict[str, str], dict[str, Any]]:
    """The @champion version and loaded pyfunc of the CLV, churn and offer models."""
    found = champion_versions(configure(settings))
    loaded = {
        name: mlflow.pyfunc.load_model(f"models:/{name}/{version}") for name, (version, _) in found.items()
    }
    return {name: version for name, (version, _) in found.items()}, loaded


def _predict(loaded: dict[str, Any], features: pd.DataFrame) -> pd.DataFrame:
    """The CLV and churn champions' outputs (P(alive), expected purchases and spend, CLV and its 90%
    interval, churn probability), indexed by customer id."""
    if features.empty:
        return pd.DataFrame(index=features.index)
    clv = loaded[CLV_NAME].predict(features[list(BTYD_COLUMNS)].reset_index(drop=True))
    churn = loaded[CHURN_NAME].predict(model_inputs(features.reset_index()).reset_index(drop=True))
    frame = pd.concat([clv, churn], axis=1)
    frame.index = features.index
    return frame


def _score_rows(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Scores by customer id (the frame's index), rounded to 6 decimals, JSON-ready."""
    return {cid: _clean(row) for cid, row in frame.round(6).to_dict(orient="index").items()}


def _membership(warehouse: Warehouse, within: IdRange) -> pd.DataFrame:
    """The range's segment membership rows (none before `crm segments build`)."""
    if not warehouse.has_table(MEMBERSHIP):
        return pd.DataFrame(columns=["customer_id", "family", "segment", "clv", "churn_probability"])
    return within.filter(warehouse.ibis.table(MEMBERSHIP)).execute()


def _in_range(warehouse: Warehouse, table: str, within: IdRange) -> pd.DataFrame:
    """A profile table's rows of the range (empty, with its columns, before profiles are built)."""
    if not warehouse.has_table(table):
        return read_table(warehouse, table)
    return within.filter(warehouse.ibis.table(table)).execute()


def _customer_ids(warehouse: Warehouse, as_of: date) -> list[str]:
    """Everyone with features at ``as_of`` or a profile, in the warehouse's own order of ids, so the
    ranges cut from them agree with its comparisons whatever its collation."""
    build_record(warehouse, as_of)  # a LookupError saying what to run when there is no build
    query = f"SELECT customer_id FROM features WHERE as_of = DATE '{as_of.isoformat()}'"
    if warehouse.has_table(PROFILES):
        query += f" UNION SELECT customer_id FROM {PROFILES}"
    return [
        str(c)
        for c in warehouse.fetch(f"SELECT customer_id FROM ({query}) ids ORDER BY customer_id")["customer_id"]
    ]


def _segments(membership: pd.DataFrame) -> dict[str, dict[str, str]]:
    """Per customer: family -> segment, plus value tier and churn risk from the value-and-risk family."""
    out: dict[str, dict[str, str]] = {}
    for cid, family, segment in membership[["customer_id", "family", "segment"]].itertuples(index=False):
        out.setdefault(cid, {})[family] = segment
        if family == "value_risk" and segment in TIERS:
            out[cid]["value_tier"], out[cid]["churn_risk"] = TIERS[segment]
    return out


def _members(membership: pd.DataFrame, consent: pd.Series) -> list[dict[str, Any]]:
    """Segment membership rows with the consent flag the marketing endpoints filter on."""
    granted = membership["customer_id"].map(consent).fillna(False).astype(bool)
    frame = membership.assign(consent=granted)[
        ["customer_id", "family", "segment", "clv", "churn_probability", "consent"]
    ]
    frame = frame.astype(object).where(frame.notna(), None)
    return frame.to_dict(orient="records")


def _briefs(warehouse: Warehouse, within: IdRange) -> dict[str, list[dict[str, Any]]]:
    """Per customer of the range: every service fact with its source and last-confirmed date."""
    facts = _in_range(warehouse, SERVICE_FACTS, within).sort_values(
        ["customer_id", "fact", "value", "source"]
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for row in facts.itertuples(index=False):
        out.setdefault(row.customer_id, []).append(
            {
                "fact": row.fact,
                "value": row.value,
                "source": row.source,
                "last_confirmed": pd.Timestamp(row.last_confirmed).date().isoformat(),
            }
        )
    return out


def _profiles(warehouse: Warehouse, within: IdRange) -> dict[str, dict[str, Any]]:
    """Per customer of the range: surviving field groups with value, source and date (personal data)."""
    frame = _in_range(warehouse, PROFILES, within)
    out = {}
    for row in frame.to_dict(orient="records"):
        out[row["customer_id"]] = {
            group: {
                "value": {c: _plain(row[c]) for c in columns},
                "source": _plain(row[f"{group}_source"]),
                "updated_at": _plain(row[f"{group}_updated_at"]),
            }
            for group, columns in FIELD_GROUPS.items()
        } | {"sources": row["sources"]}
    return out


def _contacts(warehouse: Warehouse, within: IdRange) -> list[dict[str, Any]]:
    """Normalised e-mail addresses and phones of the range's linked records, for look-ups by guest
    details."""
    records = _in_range(warehouse, RECORDS, within)
    rows = []
    for kind in ("email", "phone"):
        part = records[["customer_id", kind]].dropna().drop_duplicates()
        rows += [{"kind": kind, "value": v, "customer_id": c} for c, v in part.itertuples(index=False)]
    return rows


def _lookup_records(warehouse: Warehouse, within: IdRange) -> list[dict[str, Any]]:
    """The range's normalised records, for finding a guest by name."""
    records = _in_range(warehouse, RECORDS, within)[["unique_id", "customer_id", *MATCH_COLUMNS]]
    return list(records.astype(object).where(records.notna(), None).to_dict(orient="records"))


def _linkage(warehouse: Warehouse) -> dict[str, Any] | None:
    """The latest linkage model and its threshold (None before profiles are built)."""
    models = read_table(warehouse, MODEL)
    if models.empty:
        return None
    latest = models.sort_values("built_at").iloc[-1]
    return {"settings": latest["settings_json"], "threshold": float(latest["threshold"])}


def _plain(value: Any) -> Any:
    """JSON-ready: timestamps as ISO text, missing values as None, numpy scalars as Python ones."""
    if value is None or (not isinstance(value, str | bool | dict | list) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    return {str(k): _plain(v) for k, v in row.items()}


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str)
