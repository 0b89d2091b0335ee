"""Drift per refresh day, in three views, each compared so that a stable world raises no alarm:

- ``recent``: the purchases of the last ``CRM_DRIFT_RECENT_DAYS`` days against the
  ``CRM_DRIFT_REFERENCE_DAYS`` before them: amount per night (the amount where nights are unknown),
  channel, room type and purpose. A change of prices or channels shows here at once; the cumulative
  features below take months to move.
- ``feature``: every numeric feature of the day's build against the previous snapshot's (the latest
  scored day within ``CRM_DRIFT_RECENT_DAYS``; none after a longer pause). Against a fixed training
  reference, age-like features (T, recency, frequency) would drift by construction as the cutoff
  moves; a day apart they move by a day.
- ``prediction``: the served scores (churn probability, CLV, expected purchases, P(alive)) against the
  previous snapshot's, and each segmentation's shares against the previous day's (kept per day in
  ``monitoring_segment_counts``). A change of champion between the two moves scores by design: reported,
  never a breach.

Each check is a ``distributions.Comparison``; a breach is large and unlikely at once: distance (KS D or
total variation) at least ``CRM_DRIFT_MIN_DISTANCE`` and p below ``CRM_MONITOR_ALPHA``. Checks with fewer
than ``CRM_DRIFT_MIN_ROWS`` rows on a side are skipped. One row per day, view and name in
``monitoring_drift``; a day recomputed replaces its rows. Aggregates only, never a customer's row.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import ibis
import pandas as pd

from crm_analytics.features.store import read_features
from crm_analytics.monitoring.distributions import Comparison, compare_categories, compare_numbers
from crm_analytics.settings import Settings
from crm_analytics.warehouse import Warehouse

DRIFT_TABLE = "monitoring_drift"
SEGMENT_TABLE = "monitoring_segment_counts"
NOT_FEATURES = {"customer_id", "as_of", "holdout_purchase_days", "holdout_spend", "churned"}
SCORES = ("churn_probability", "clv", "expected_purchases", "p_alive")
PURCHASE_CATEGORIES = ("channel", "room_type", "purpose")


@dataclass(frozen=True)
class DriftCheck:
    """One quantity on one refresh day against its reference."""

    as_of: str
    view: str  # recent | feature | prediction
    name: str
    reference: str  # what it was compared with: a day, or a window of days
    comparison: Comparison
    breach: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        figures = asdict(self.comparison)
        for bulky in ("labels", "reference_shares", "current_shares"):
            figures.pop(bulky)
        return {k: v for k, v in asdict(self).items() if k != "comparison"} | figures


def record(warehouse: Warehouse, settings: Settings, as_of: date) -> list[DriftCheck]:
    """Every view's checks for ``as_of``, stored (replacing the day's) and returned."""
    counts = segment_counts(warehouse, as_of)
    checks = [
        *recent_checks(warehouse, settings, as_of),
        *feature_checks(warehouse, settings, as_of),
        *prediction_checks(warehouse, settings, as_of, counts),
    ]
    now = datetime.now(UTC).replace(tzinfo=None)
    with warehouse.transaction() as execute:
        execute(f"DELETE FROM {DRIFT_TABLE} WHERE as_of = ?", [as_of])
        if not counts.empty:  # membership keeps the latest day only: an older day's counts stay
            execute(f"DELETE FROM {SEGMENT_TABLE} WHERE as_of = ?", [as_of])
        for c in checks:
            m = c.comparison
            execute(
                f"INSERT INTO {DRIFT_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    as_of,
                    c.view,
                    c.name,
                    m.kind,
                    c.reference,
                    m.distance,
                    m.p_value,
                    m.psi,
                    m.rows,
                    m.reference_rows,
                    c.breach,
                    c.detail,
                    json.dumps(_shares(m)),
                    now,
                ],
            )
        for row in counts.itertuples(index=False):
            execute(
                f"INSERT INTO {SEGMENT_TABLE} VALUES (?, ?, ?, ?)", [as_of, row.family, row.segment, row.n]
            )
    return checks


def judged(
    as_of: date,
    view: str,
    name: str,
    reference: str,
    comparison: Comparison,
    settings: Settings,
    note: str = "",
) -> DriftCheck:
    """The check with its verdict: distance >= ``drift_min_distance`` and p < ``monitor_alpha``."""
    large = comparison.distance >= settings.drift_min_distance
    unlikely = comparison.p_value < settings.monitor_alpha
    measure = "D" if comparison.kind == "continuous" else "TV"
    detail = (
        f"{measure} {comparison.distance:.3f} (p {comparison.p_value:.1e}), PSI {comparison.psi:.3f}; "
        f"{comparison.rows:,} rows against {comparison.reference_rows:,}"
    )
    breach = large and unlikely and not note
    return DriftCheck(str(as_of), view, name, reference, comparison, breach, f"{detail}{note}")


def recent_checks(warehouse: Warehouse, settings: Settings, as_of: date) -> list[DriftCheck]:
    """The last ``drift_recent_days`` days' purchases against the ``drift_reference_days`` before."""
    if not warehouse.has_table("transactions"):
        return []
    split = as_of - timedelta(days=settings.drift_recent_days)
    start = split - timedelta(days=settings.drift_reference_days)
    t = warehouse.ibis.table("transactions")
    t = t.filter(
        (t.type == "purchase")
        & (t.timestamp >= ibis.timestamp(_midnight(start + timedelta(days=1))))
        & (t.timestamp < ibis.timestamp(_midnight(as_of + timedelta(days=1))))
    )
    per_night = ibis.ifelse(
        t.nights.notnull() & (t.nights > 0), t.amount / t.nights.cast("float64"), t.amount
    )
    frame = t.select(
        recent=t.timestamp >= ibis.timestamp(_midnight(split + timedelta(days=1))),
        amount_per_night=per_night,
        **{c: t[c] for c in PURCHASE_CATEGORIES},
    ).execute()
    reference = f"{start + timedelta(days=1)}..{split}"
    recent, past = frame[frame["recent"]], frame[~frame["recent"]]
    checks = []
    if _enough(recent["amount_per_night"], past["amount_per_night"], settings):
        compared = compare_numbers(past["amount_per_night"].to_numpy(), recent["amount_per_night"].to_numpy())
        checks.append(judged(as_of, "recent", "amount_per_night", reference, compared, settings))
    for column in PURCHASE_CATEGORIES:
        if _enough(recent[column], past[column], settings):
            compared = compare_categories(past[column].value_counts(), recent[column].value_counts())
            checks.append(judged(as_of, "recent", column, reference, compared, settings))
    return checks


def feature_checks(warehouse: Warehouse, settings: Settings, as_of: date) -> list[DriftCheck]:
    """Each numeric feature of the build at ``as_of`` against the previous snapshot's build."""
    previous = previous_snapshot(warehouse, settings, as_of)
    if previous is None or not _built(warehouse, as_of) or not _built(warehouse, previous):
        return []
    current, past = read_features(warehouse, as_of), read_features(warehouse, previous)
    checks = []
    for column in sorted(set(current.columns) & set(past.columns) - NOT_FEATURES):
        if not pd.api.types.is_numeric_dtype(current[column]) or current[column].dtype == bool:
            continue
        if _enough(current[column], past[column], settings):
            compared = compare_numbers(past[column].to_numpy(float), current[column].to_numpy(float))
            checks.append(judged(as_of, "feature", column, str(previous), compared, settings))
    return checks


def previous_snapshot(warehouse: Warehouse, settings: Settings, as_of: date) -> date | None:
    """The latest scored day before ``as_of`` within ``drift_recent_days`` (training builds are no
    snapshots; after a longer pause age-like features have moved by the pause, and the recent window
    of purchases is the view that stays comparable), or None."""
    scores = warehouse.ibis.table("customer_scores")
    since = as_of - timedelta(days=settings.drift_recent_days)
    window = (scores.as_of < ibis.date(as_of)) & (scores.as_of >= ibis.date(since))
    before = scores.filter(window).as_of.max().execute()
    return None if before is None or pd.isna(before) else pd.Timestamp(before).date()


def prediction_checks(
    warehouse: Warehouse, settings: Settings, as_of: date, counts: pd.DataFrame
) -> list[DriftCheck]:
    """The day's scores and segment shares against the previous scored day's."""
    checks: list[DriftCheck] = []
    previous = previous_snapshot(warehouse, settings, as_of)
    if previous is not None:
        current, past = _scores(warehouse, as_of), _scores(warehouse, previous)
        note = ""
        if not current.empty and not past.empty and _models(current) != _models(past):
            note = f"; champions changed ({_models(past)} -> {_models(current)}): expected, not a breach"
        for column in SCORES:
            if column in current and column in past and _enough(current[column], past[column], settings):
                compared = compare_numbers(past[column].to_numpy(float), current[column].to_numpy(float))
                checks.append(judged(as_of, "prediction", column, str(previous), compared, settings, note))
    stored = warehouse.ibis.table(SEGMENT_TABLE)
    since = ibis.date(as_of - timedelta(days=settings.drift_recent_days))
    last = stored.filter((stored.as_of < ibis.date(as_of)) & (stored.as_of >= since)).as_of.max().execute()
    if last is None or pd.isna(last) or counts.empty:
        return checks
    previous = pd.Timestamp(last).date()
    past_counts = stored.filter(stored.as_of == ibis.date(previous)).execute()
    for family, mine in counts.groupby("family"):
        theirs = past_counts[past_counts["family"] == family]
        if theirs.empty:
            continue
        compared = compare_categories(
            theirs.set_index("segment")["customers"], mine.set_index("segment")["n"].rename("customers")
        )
        checks.append(judged(as_of, "prediction", f"segments:{family}", str(previous), compared, settings))
    return checks


def segment_counts(warehouse: Warehouse, as_of: date) -> pd.DataFrame:
    """Customers per family and segment assigned as of ``as_of`` (columns family, segment, n)."""
    if not warehouse.has_table("segment_membership"):
        return pd.DataFrame(columns=["family", "segment", "n"])
    m = warehouse.ibis.table("segment_membership")
    m = m.filter(m.as_of == ibis.date(as_of))
    return m.group_by(["family", "segment"]).aggregate(n=m.count()).order_by(["family", "segment"]).execute()


def _scores(warehouse: Warehouse, as_of: date) -> pd.DataFrame:
    s = warehouse.ibis.table("customer_scores")
    available = [c for c in SCORES if c in s.columns]
    return s.filter(s.as_of == ibis.date(as_of)).select("models", *available).execute()


def _models(scores: pd.DataFrame) -> dict[str, str]:
    """The champions a scored day was made with (one run per day: the first row says)."""
    return dict(json.loads(scores["models"].iloc[0]))


def _built(warehouse: Warehouse, as_of: date) -> bool:
    builds = warehouse.ibis.table("feature_builds")
    return int(builds.filter(builds.as_of == ibis.date(as_of)).count().execute()) > 0


def _enough(current: pd.Series, reference: pd.Series, settings: Settings) -> bool:
    return min(int(current.notna().sum()), int(reference.notna().sum())) >= settings.drift_min_rows


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time())


def _shares(comparison: Comparison) -> dict[str, list[Any]]:
    """What the report plots: the reference bins (or categories) and both sides' shares."""
    return {
        "labels": list(comparison.labels),
        "reference": [round(s, 6) for s in comparison.reference_shares],
        "current": [round(s, 6) for s in comparison.current_shares],
    }


def latest(warehouse: Warehouse) -> list[DriftCheck]:
    """The checks of the latest day that has any ([] on a copy published before they existed)."""
    if not warehouse.has_table(DRIFT_TABLE):
        return []
    stored = warehouse.ibis.table(DRIFT_TABLE)
    last = stored.as_of.max().execute()
    if last is None or pd.isna(last):
        return []
    day = pd.Timestamp(last).date()
    rows = stored.filter(stored.as_of == ibis.date(day)).order_by(["view", "name"]).execute()
    return [_from_row(r) for r in rows.to_dict(orient="records")]


def _from_row(row: dict[str, Any]) -> DriftCheck:
    shares = json.loads(row["shares"])
    comparison = Comparison(
        row["kind"],
        float(row["distance"]),
        float(row["p_value"]),
        float(row["psi"]),
        int(row["rows"]),
        int(row["reference_rows"]),
        tuple(shares["labels"]),
        tuple(shares["reference"]),
        tuple(shares["current"]),
    )
    day = str(pd.Timestamp(row["as_of"]).date())
    return DriftCheck(
        day, row["view"], row["name"], row["reference"], comparison, bool(row["breach"]), row["detail"]
    )
