"""Realized performance: once a scored day's horizon has closed, what really happened against what was
served, per model version.

A cohort is every customer scored on a day (``customer_scores``); its horizon is the one the version that
scored it was trained for (the ``horizon_days`` of its MLflow run). When ``scored day + horizon`` is on or
before the refresh's day, its purchases in ``(scored day, scored day + horizon]`` (as the warehouse knows
them now) are the outcome:

- ``crm-churn``: ROC AUC (baseline: the version's own training figure; a breach when lower by more than
  ``CRM_REALIZED_MAX_AUC_DROP`` and unlikely by chance, Hanley and McNeil's standard error), Brier score,
  and the churn rate against the mean probability served (calibration in the large; a breach when the
  odds of churning seen and served differ by a factor beyond ``CRM_REALIZED_MAX_CHURN_ODDS_RATIO`` and the
  count is unlikely under the served probabilities: the number of churners of a calibrated model has
  mean sum(p) and variance sum(p(1 - p))), overall and per frequency group of the day's features (repeat
  purchases 0, 1-2, 3+), as the intervals are checked. Odds, not points: when 5% of a cohort is expected
  back within a short horizon, half of them staying away moves the churn rate by 2.5 points only;
- ``crm-clv``: expected purchases' mean absolute error and total error, the horizon's expected spend
  (expected purchases times expected spend per purchase): total error and top-decile capture of the
  realized spend. Reported, not judged: a total error has no calibrated noise
  model here.

One row per scored day, model and metric in ``monitoring_performance``, computed once (a matured day's
outcome does not change), so the trend is the rows in scored-day order.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import ibis
import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import brier_score_loss, roc_auc_score

from crm_analytics.features.labels import holdout_targets
from crm_analytics.models.clv.interval_levels import calibration_frequency_group
from crm_analytics.models.metrics import top_decile_capture
from crm_analytics.profiles.links import customer_transactions
from crm_analytics.settings import Settings
from crm_analytics.tracking import configure
from crm_analytics.warehouse import Warehouse

PERFORMANCE_TABLE = "monitoring_performance"
CHURN, CLV = "crm-churn", "crm-clv"
MAX_COHORTS = 31  # per refresh: a month of backlog; the rest on the next refreshes


@dataclass(frozen=True)
class Realized:
    """One metric of one matured cohort."""

    scored_as_of: str
    model: str
    version: str
    metric: str
    value: float
    baseline: float | None
    p_value: float | None
    rows: int
    horizon_days: int
    matured_on: str
    breach: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def record(warehouse: Warehouse, settings: Settings, as_of: date) -> list[Realized]:
    """Every cohort matured by ``as_of`` and not yet measured, measured and stored one by one (a killed
    refresh keeps what it measured); returns the new rows. Matured: its horizon closed at least
    ``CRM_MONITOR_LATE_DAYS`` before ``as_of``, so the rows that arrive late are in. At most
    ``MAX_COHORTS`` a refresh: a backlog (the first refresh after an upgrade) follows over the next ones."""
    scores = warehouse.ibis.table("customer_scores")
    done = warehouse.ibis.table(PERFORMANCE_TABLE)
    days = (
        scores.filter(scores.as_of < ibis.date(as_of))
        .group_by("as_of")
        .aggregate(models=scores.models.min())
        .order_by("as_of")
        .execute()
    )
    measured = done.select("scored_as_of", "model").distinct().execute()
    seen = {(pd.Timestamp(d).date(), m) for d, m in measured.itertuples(index=False)}
    runs = RunFacts(settings)
    grace = timedelta(days=settings.monitor_late_days)
    rows: list[Realized] = []
    cohorts = 0
    for day, models_json in days.itertuples(index=False):
        scored = pd.Timestamp(day).date()
        models = dict(json.loads(models_json))
        for model, measure in ((CHURN, churn_figures), (CLV, value_figures)):
            version = models.get(model)
            if version is None or (scored, model) in seen:
                continue
            horizon = runs.horizon_days(model, str(version))
            if horizon is None or scored + timedelta(days=horizon) + grace > as_of:
                continue
            if cohorts == MAX_COHORTS:
                return rows
            cohorts += 1
            cohort = Cohort(warehouse, scored, model, str(version), horizon)
            new = measured_or_why_not(cohort, measure, settings, runs)
            _store(warehouse, new)
            rows += new
    return rows


def measured_or_why_not(
    cohort: Cohort,
    measure: Callable[[Cohort, Settings, RunFacts], list[Realized]],
    settings: Settings,
    runs: RunFacts,
) -> list[Realized]:
    """The cohort's figures; one ``unmeasured`` row saying why when it cannot be measured (no scores,
    one class only), so it is not tried again every refresh."""
    try:
        figures = measure(cohort, settings, runs)
    except (ValueError, LookupError) as exc:
        return [cohort.row("unmeasured", 0.0, 0, detail=f"{type(exc).__name__}: {str(exc)[:200]}")]
    return figures or [cohort.row("unmeasured", 0.0, 0, detail="no customer with this model's scores")]


@dataclass(frozen=True)
class Cohort:
    """The customers scored on ``scored`` by ``model`` ``version``, with the outcome of its horizon."""

    warehouse: Warehouse
    scored: date
    model: str
    version: str
    horizon_days: int

    def frame(self) -> pd.DataFrame:
        """Per customer scored that day: the scores and the horizon's purchase days and spend (0 if none)."""
        con = self.warehouse.ibis
        scores = con.table("customer_scores")
        scores = scores.filter(scores.as_of == ibis.date(self.scored))
        targets = holdout_targets(customer_transactions(con), self.scored, self.horizon_days)
        joined = scores.left_join(targets, "customer_id").drop("customer_id_right").execute()
        joined["holdout_purchase_days"] = joined["holdout_purchase_days"].fillna(0).astype(float)
        joined["holdout_spend"] = joined["holdout_spend"].fillna(0.0).astype(float)
        return joined

    def row(self, metric: str, value: float, rows: int, **judged: Any) -> Realized:
        matured = self.scored + timedelta(days=self.horizon_days)
        return Realized(
            str(self.scored),
            self.model,
            self.version,
            metric,
            float(value),
            judged.get("baseline"),
            judged.get("p_value"),
            rows,
            self.horizon_days,
            str(matured),
            bool(judged.get("breach", False)),
            judged.get("detail", ""),
        )


def churn_figures(cohort: Cohort, settings: Settings, runs: RunFacts) -> list[Realized]:
    """ROC AUC against training, Brier, and the churn rate against the served probabilities, overall
    and per frequency group."""
    frame = cohort.frame().dropna(subset=["churn_probability"])
    if frame.empty:
        return []
    churned = (frame["holdout_purchase_days"] == 0).to_numpy()
    risk = frame["churn_probability"].to_numpy(float)
    out = [cohort.row("brier", brier_score_loss(churned, risk), len(frame))]
    if 0 < churned.sum() < len(churned):
        out.append(auc_row(cohort, churned, risk, runs.metric(CHURN, cohort.version, "roc_auc"), settings))
    out.append(calibration_row(cohort, "churn_rate", churned, risk, settings))
    groups = _frequency_groups(cohort, frame)
    for group in sorted(set(groups.dropna())):
        mask = (groups == group).to_numpy()
        out.append(calibration_row(cohort, f"churn_rate:{group}", churned[mask], risk[mask], settings))
    return out


def auc_row(
    cohort: Cohort, churned: np.ndarray, risk: np.ndarray, baseline: float | None, settings: Settings
) -> Realized:
    """Realized ROC AUC; a breach when below ``baseline`` by more than the Setting and unlikely."""
    auc = float(roc_auc_score(churned, risk))
    if baseline is None:
        return cohort.row("roc_auc", auc, len(churned), detail="no training figure to compare with")
    se = hanley_mcneil_se(auc, int(churned.sum()), int((~churned).sum()))
    p = float(stats.norm.cdf((auc - baseline) / se)) if se > 0 else float(auc < baseline)
    drop = baseline - auc
    breach = drop > settings.realized_max_auc_drop and p < settings.monitor_alpha
    detail = f"{auc:.3f} against {baseline:.3f} at training (SE {se:.3f}, p {p:.1e})"
    return cohort.row(
        "roc_auc", auc, len(churned), baseline=baseline, p_value=p, breach=breach, detail=detail
    )


def calibration_row(
    cohort: Cohort, metric: str, churned: np.ndarray, risk: np.ndarray, settings: Settings
) -> Realized:
    """The churn rate seen against the mean probability served, judged on their odds ratio; two-sided p
    of the count of churners under the served probabilities (normal approximation of the Poisson
    binomial)."""
    observed, served = float(churned.mean()), float(risk.mean())
    variance = float((risk * (1 - risk)).sum())
    z = (churned.sum() - risk.sum()) / math.sqrt(variance) if variance > 0 else 0.0
    p = float(2 * stats.norm.sf(abs(z)))
    ratio = odds_ratio(observed, served, len(churned))
    far = max(ratio, 1 / ratio) > settings.realized_max_churn_odds_ratio
    breach = far and p < settings.monitor_alpha
    detail = f"{observed:.1%} churned of {len(churned):,}, {served:.1%} served (odds x{ratio:.2f}, p {p:.1e})"
    return cohort.row(
        metric, observed, len(churned), baseline=served, p_value=p, breach=breach, detail=detail
    )


def odds_ratio(observed: float, served: float, rows: int) -> float:
    """The odds of ``observed`` over those of ``served``; both kept half a row from 0 and 1, so that a
    cohort where everyone (or no one) churned has a finite ratio."""
    edge = 0.5 / max(rows, 1)
    seen, expected = np.clip([observed, served], edge, 1 - edge)
    return float(seen / (1 - seen) / (expected / (1 - expected)))


def value_figures(cohort: Cohort, settings: Settings, runs: RunFacts) -> list[Realized]:
    """Expected purchases and spend over the horizon against what the cohort bought."""
    frame = cohort.frame().dropna(subset=["expected_purchases", "expected_spend"])
    if frame.empty:
        return []
    actual, predicted = frame["holdout_purchase_days"].to_numpy(), frame["expected_purchases"].to_numpy()
    # expected_spend is per purchase (Gamma-Gamma): the horizon's spend is it times the purchases
    spend, expected_spend = frame["holdout_spend"].to_numpy(), predicted * frame["expected_spend"].to_numpy()
    n = len(frame)
    out = [cohort.row("purchases_mae", np.abs(predicted - actual).mean(), n)]
    if actual.sum() > 0:  # a relative error of nothing bought is undefined: not reported
        detail = f"{predicted.sum():,.0f} purchases expected, {actual.sum():,.0f} made"
        out.append(cohort.row("purchases_total_error", predicted.sum() / actual.sum() - 1, n, detail=detail))
    if spend.sum() > 0:
        detail = f"{expected_spend.sum():,.0f} expected, {spend.sum():,.0f} spent"
        out.append(cohort.row("spend_total_error", expected_spend.sum() / spend.sum() - 1, n, detail=detail))
        out.append(cohort.row("spend_top_decile_capture", top_decile_capture(spend, expected_spend), n))
    return out


def hanley_mcneil_se(auc: float, positives: int, negatives: int) -> float:
    """Standard error of a ROC AUC (Hanley & McNeil 1982, exponential approximation): a closed form
    where a bootstrap of a 20,000-row cohort each day would cost seconds for the same figure."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)) / max(
        positives * negatives, 1
    )
    return math.sqrt(max(variance, 0.0))


class RunFacts:
    """A model version's training run, read once: its horizon and its metrics."""

    def __init__(self, settings: Settings) -> None:
        self.client = configure(settings)
        self._runs: dict[tuple[str, str], Any] = {}

    def _run(self, model: str, version: str) -> Any | None:
        key = (model, version)
        if key not in self._runs:
            try:
                run_id = self.client.get_model_version(model, version).run_id
                self._runs[key] = self.client.get_run(run_id) if run_id else None
            except Exception:  # a version deleted from the registry: nothing to measure it by
                self._runs[key] = None
        return self._runs[key]

    def horizon_days(self, model: str, version: str) -> int | None:
        run = self._run(model, version)
        value = run.data.params.get("horizon_days") if run else None
        return int(value) if value not in (None, "None") else None

    def metric(self, model: str, version: str, name: str) -> float | None:
        run = self._run(model, version)
        return run.data.metrics.get(name) if run else None


def latest(warehouse: Warehouse, per_model: int = 30) -> list[Realized]:
    """The most recent ``per_model`` matured days' rows of each model, oldest first (the trend); [] on a
    copy published before they existed."""
    if not warehouse.has_table(PERFORMANCE_TABLE):
        return []
    stored = warehouse.ibis.table(PERFORMANCE_TABLE)
    frame = stored.order_by(["model", "scored_as_of", "metric"]).execute()
    if frame.empty:
        return []
    frame["scored_as_of"] = pd.to_datetime(frame["scored_as_of"]).dt.date
    keep = frame.groupby("model")["scored_as_of"].transform(lambda d: d >= sorted(set(d))[-per_model:][0])
    return [_from_row(r) for r in frame[keep].to_dict(orient="records")]


def latest_cohorts(rows: list[Realized]) -> list[Realized]:
    """Of ``rows`` (oldest first, as ``latest`` gives them), each model's latest matured day's."""
    last = {r.model: r.scored_as_of for r in rows}
    return [r for r in rows if r.scored_as_of == last[r.model]]


def _from_row(r: dict[str, Any]) -> Realized:
    def number(v: Any) -> float | None:
        return None if v is None or pd.isna(v) else float(v)

    return Realized(
        str(r["scored_as_of"]),
        r["model"],
        r["version"],
        r["metric"],
        float(r["value"]),
        number(r["baseline"]),
        number(r["p_value"]),
        int(r["rows"]),
        int(r["horizon_days"]),
        str(pd.Timestamp(r["matured_on"]).date()),
        bool(r["breach"]),
        r["detail"],
    )


def _store(warehouse: Warehouse, rows: list[Realized]) -> None:
    if not rows:
        return
    now = datetime.now(UTC).replace(tzinfo=None)
    with warehouse.transaction() as execute:
        for r in rows:
            execute(
                f"DELETE FROM {PERFORMANCE_TABLE} WHERE scored_as_of = ? AND model = ? AND metric = ?",
                [date.fromisoformat(r.scored_as_of), r.model, r.metric],
            )
            values = [date.fromisoformat(r.scored_as_of), r.model, r.version, r.metric, r.value, r.baseline]
            values += [
                r.p_value,
                r.rows,
                r.horizon_days,
                date.fromisoformat(r.matured_on),
                r.breach,
                r.detail,
                now,
            ]
            execute(f"INSERT INTO {PERFORMANCE_TABLE} VALUES ({', '.join('?' * len(values))})", values)


def _frequency_groups(cohort: Cohort, frame: pd.DataFrame) -> pd.Series:
    """Each scored customer's frequency group from the day's features (NaN when the build is gone)."""
    table = cohort.warehouse.ibis.table("features")
    built = table.filter(table.as_of == ibis.date(cohort.scored)).select("customer_id", "frequency").execute()
    frequency = frame["customer_id"].map(built.set_index("customer_id")["frequency"])
    groups = pd.Series(calibration_frequency_group(frequency.fillna(0)), index=frame.index)
    return groups.where(frequency.notna())
