"""Batch scoring (``crm score``): every customer's scores, segments, guest brief and profile from the
warehouse and the ``@champion`` models into the serving store, as one atomic snapshot.

A customer is anyone with a feature row at the cutoff (scores, history) or a unified profile (brief,
profile, contact details for look-ups); a guest with a profile but no purchases yet gets a brief and no
scores. The CLV interval is simulated here, once per run, so the API only reads it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from crm_analytics.features.store import read_features
from crm_analytics.ingest.warehouse import Warehouse
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
from crm_analytics.serving.store import ServingStore, Snapshot, now
from crm_analytics.settings import Settings
from crm_analytics.tracking import configure

BTYD_COLUMNS = ("frequency", "recency", "T", "monetary_value")
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
    settings: Settings, warehouse: Warehouse, store: ServingStore, as_of: date | None = None
) -> ScoreReport:
    """Score every customer as of ``as_of`` (default: the latest feature build) and switch the store."""
    as_of = as_of or latest_cutoff(warehouse)
    # in id order: the CLV interval's random streams follow row positions, so a run is reproducible
    features = read_features(warehouse, as_of).set_index("customer_id").sort_index()
    models, loaded = _champions(settings)
    scores = _scores(loaded, features)
    history_columns = list(loaded[OFFERS_NAME].unwrap_python_model().full.customer_columns_)
    history = features.reindex(columns=history_columns)
    membership = _membership(warehouse)
    segments = _segments(membership)
    briefs = _briefs(warehouse)
    profiles = _profiles(warehouse)
    ids = sorted(set(features.index) | set(profiles))
    consent = marketing_consent(warehouse, pd.Series(ids, index=ids))
    rows = [
        {
            "customer_id": cid,
            "scores": _json(scores.get(cid)),
            "segments": _json(segments.get(cid, {})),
            "history": _json(_clean(history.loc[cid].to_dict()) if cid in history.index else None),
            "brief": _json(briefs.get(cid, [])),
            "profile": _json(profiles.get(cid)),
            "consent": bool(consent[cid]),
        }
        for cid in ids
    ]
    members = _members(membership, consent)
    catalogue = warehouse.ibis.table("offers").order_by("offer_id").execute()
    catalogue = catalogue.drop(columns=["ingest_batch_id", "row_hash"], errors="ignore")
    offers = [_clean(row) for row in catalogue.to_dict(orient="records")]
    snapshot = Snapshot(uuid.uuid4().hex, now(), str(as_of), models, len(rows), offers)
    lookup_rows, linkage = _name_lookup(warehouse)
    store.write_snapshot(
        snapshot, rows, members, _contacts(warehouse), lookup_rows=lookup_rows, linkage=linkage
    )
    return ScoreReport(
        snapshot.snapshot_id, str(as_of), len(rows), len(scores), len(briefs), len(members), models
    )


def _champions(settings: Settings) -> tuple[dict[str, str], dict[str, Any]]:
    """The @champion version and loaded pyfunc of the CLV, churn and offer models."""
    found = champion_versions(configure(settings))
    loaded = {
        name: mlflow.pyfunc.load_model(f"models:/{name}/{version}") for name, (version, _) in found.items()
    }
    return {name: version for name, (version, _) in found.items()}, loaded


def _scores(loaded: dict[str, Any], features: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per customer: churn probability, expected purchases, CLV and its 90% interval, P(alive)."""
    if features.empty:
        return {}
    clv = loaded[CLV_NAME].predict(features[list(BTYD_COLUMNS)].reset_index(drop=True))
    churn = loaded[CHURN_NAME].predict(model_inputs(features.reset_index()).reset_index(drop=True))
    frame = pd.concat([clv, churn], axis=1)
    frame.index = features.index
    return {cid: _clean(row) for cid, row in frame.round(6).to_dict(orient="index").items()}


def _membership(warehouse: Warehouse) -> pd.DataFrame:
    """Every segment membership row (none before `crm segments build`)."""
    if not warehouse.has_table(MEMBERSHIP):
        return pd.DataFrame(columns=["customer_id", "family", "segment", "clv", "churn_probability"])
    return warehouse.ibis.table(MEMBERSHIP).execute()


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


def _briefs(warehouse: Warehouse) -> dict[str, list[dict[str, Any]]]:
    """Per customer: every service fact with its source and last-confirmed date."""
    facts = read_table(warehouse, SERVICE_FACTS).sort_values(["customer_id", "fact", "value", "source"])
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


def _profiles(warehouse: Warehouse) -> dict[str, dict[str, Any]]:
    """Per customer: surviving field groups with value, source and date (personal data)."""
    frame = read_table(warehouse, PROFILES)
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


def _contacts(warehouse: Warehouse) -> list[dict[str, Any]]:
    """Normalised e-mail addresses and phones of every linked record, for look-ups by guest details."""
    records = read_table(warehouse, RECORDS)
    rows = []
    for kind in ("email", "phone"):
        part = records[["customer_id", kind]].dropna().drop_duplicates()
        rows += [{"kind": kind, "value": v, "customer_id": c} for c, v in part.itertuples(index=False)]
    return rows


def _name_lookup(warehouse: Warehouse) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The normalised records and the latest linkage model, for finding a guest by name; nothing
    before profiles are built."""
    models = read_table(warehouse, MODEL)
    if models.empty:
        return [], None
    latest = models.sort_values("built_at").iloc[-1]
    records = read_table(warehouse, RECORDS)[["unique_id", "customer_id", *MATCH_COLUMNS]]
    rows = records.astype(object).where(records.notna(), None).to_dict(orient="records")
    return rows, {"settings": latest["settings_json"], "threshold": float(latest["threshold"])}


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
