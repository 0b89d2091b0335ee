"""Whether the CLV intervals hold: the randomized PIT of each customer's holdout spend, coverage of the
interval by groups known before the holdout, and a recalibration fitted on a validation window.

Most customers spend exactly 0 in a holdout, a point mass, so an inclusive interval covers more than its
level whatever the model, and how much more says nothing about calibration. The randomized probability
integral transform (Czado, Gneiting & Held, Biometrics 2009) handles atoms: u = P(Y < y) + V P(Y = y),
V ~ Uniform(0, 1), read off the customer's simulated draws. Under a calibrated model u is uniform, so
the interval at level L covers y when u lies in [(1 - L) / 2, (1 + L) / 2]: exactly L in expectation,
for any mix of atoms and continuous spend. Groups are calibration-period frequencies 0, 1-2 and 3+
(known at the cutoff; never the holdout's own outcome).

Recalibration (quantile recalibration, Kuleshov, Fenner & Ermon, ICML 2018): the selected purchase model
is refitted on the calibration period up to a validation cutoff and judged on the weeks after it (still
inside the calibration period). Each group's validation PITs give the levels (tau_low, tau_high) with a
share (1 - L) / 2 of PITs below and above; the recalibrated interval is the simulated quantiles at those
levels. The holdout is judged with levels fitted on the validation window only, and training stores
them with the model, so the intervals ``crm score`` serves are the recalibrated ones (``interval_levels``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import ibis
import numpy as np
import pandas as pd
from ibis.backends import BaseBackend
from matplotlib.figure import Figure

from crm_analytics.features.labels import with_labels
from crm_analytics.features.rfm import DAYS_PER_UNIT, TimeUnit, btyd_summary
from crm_analytics.models.clv.draws import Horizon
from crm_analytics.models.clv.interval_levels import GROUPS, IntervalLevels, calibration_frequency_group
from crm_analytics.models.clv.model import PERIODS_PER_MONTH, CLVModel
from crm_analytics.models.clv.uncertainty import simulate_chunks
from crm_analytics.models.plots import STYLE
from crm_analytics.profiles.links import customer_transactions

MIN_VALIDATION_DAYS = 28  # a shorter window cannot tell calibrated intervals from lucky ones
PIT_BINS = 20
_PIT_STREAM = 7  # spawn key of the V draws, apart from the simulation's streams
_VALIDATION_STREAM = 11  # spawn key of the validation window's seed, apart from the holdout's


@dataclass(frozen=True)
class ValidationWindow:
    """A labelled table at a cutoff inside the calibration period whose labels end where the calibration
    period ends: what recalibration is fitted on."""

    features: pd.DataFrame  # indexed by customer, with holdout_spend over the window
    horizon_days: int
    cutoff: str  # ISO; the window's labels cover the days after it, to the calibration period's end


def validation_window(
    con: BaseBackend, calibration_end: date, horizon_days: int, time_unit: TimeUnit
) -> ValidationWindow | None:
    """The calibration period's last third (at most one horizon) as a labelled BTYD summary at its first
    day; None when that is shorter than ``MIN_VALIDATION_DAYS`` or nobody had bought by then."""
    transactions = customer_transactions(con)
    first_day = pd.Timestamp(transactions.timestamp.min().execute()).date()
    days = min(horizon_days, (calibration_end - first_day).days // 3)
    if days < MIN_VALIDATION_DAYS:
        return None
    cutoff = calibration_end - timedelta(days=days)
    summary = btyd_summary(transactions, cutoff, time_unit).mutate(as_of=ibis.date(cutoff))
    table = with_labels(summary, transactions, cutoff, days).order_by("customer_id").execute()
    return ValidationWindow(table.set_index("customer_id"), days, str(cutoff)) if len(table) else None


def holdout_pit(
    model: CLVModel,
    summary: pd.DataFrame,
    horizon_periods: float,
    observed: np.ndarray,
    draws: int = 1000,
    seed: int = 0,
    chunk_customers: int = 20_000,
) -> np.ndarray:
    """The randomized PIT of ``observed`` (undiscounted spend over the next ``horizon_periods``) under each
    customer's simulated distribution; the same draws as ``holdout_distribution`` with the same seed."""
    spend = np.asarray(observed, dtype=float)
    if spend.shape != (len(summary),) or not np.isfinite(spend).all():
        raise ValueError("observed: one finite spend per customer of the summary")
    horizon = Horizon.of(horizon_periods, PERIODS_PER_MONTH[model.time_unit], 0.0)
    jitter = np.random.default_rng(np.random.SeedSequence([seed, _PIT_STREAM])).random(len(summary))
    pit = np.empty(len(summary))
    for rows, _, value in simulate_chunks(model, summary, horizon, draws, seed, chunk_customers):
        y = spend[rows, None]
        pit[rows] = (value < y).mean(axis=1) + jitter[rows] * (value == y).mean(axis=1)
    return pit


def validation_levels(
    model: CLVModel,
    window: ValidationWindow,
    level: float,
    seed: int = 0,
    refitted: CLVModel | None = None,
) -> IntervalLevels:
    """Levels fitted on ``window``: ``model``'s purchase and spend models refitted on the data before the
    window's cutoff (``refitted`` when already done), their PITs of the window's spend."""
    if refitted is None:
        refitted = CLVModel(purchase_model=model.purchase_model, time_unit=model.time_unit)
        refitted.fit(window.features)
    horizon = window.horizon_days / DAYS_PER_UNIT[model.time_unit]
    spend = window.features["holdout_spend"].to_numpy(float)
    # streams of their own: with the holdout's seed, a customer's jitter and draws would repeat in both
    # windows and the levels would be judged on nearly the numbers they were fitted on
    own_seed = int(np.random.SeedSequence([seed, _VALIDATION_STREAM]).generate_state(1)[0])
    pit = holdout_pit(refitted, window.features, horizon, spend, seed=own_seed)
    return IntervalLevels.fit(pit, calibration_frequency_group(window.features["frequency"]), level)


def coverage_by_group(
    pit: np.ndarray, groups: np.ndarray, level: float, recalibrated: IntervalLevels | None = None
) -> dict[str, dict[str, float]]:
    """Per group and ``all``: customers, coverage of the nominal interval (with the shares below and
    above it) and, given validation-fitted levels, of the recalibrated one."""
    nominal = IntervalLevels.nominal(level)
    low, high = (1 - level) / 2, (1 + level) / 2
    inside = nominal.covered(pit, groups)
    inside_recalibrated = recalibrated.covered(pit, groups) if recalibrated else None
    out = {}
    for group in (*GROUPS, "all"):
        members = np.ones(len(pit), bool) if group == "all" else groups == group
        if not members.any():
            continue
        row = {
            "customers": int(members.sum()),
            "coverage": float(inside[members].mean()),
            "below": float((pit[members] < low).mean()),
            "above": float((pit[members] > high).mean()),
        }
        if inside_recalibrated is not None:
            row["recalibrated_coverage"] = float(inside_recalibrated[members].mean())
        out[group] = row
    return out


def pit_histogram(pit: np.ndarray, groups: np.ndarray, level: float) -> Figure:
    """The holdout's randomized PITs: overall as bars, each group as a line; flat at 1 is calibrated,
    a rise at the right means spend above what the intervals allow."""
    fig = Figure(figsize=(STYLE.width_in, STYLE.height_in), dpi=STYLE.dpi, layout="constrained")
    fig.set_facecolor("white")
    ax = fig.add_subplot(label="pit")
    edges = np.linspace(0, 1, PIT_BINS + 1)
    ax.hist(
        pit, bins=list(edges), density=True, color=STYLE.colour(0), alpha=0.35, label=f"all ({len(pit):,})"
    )
    centres = (edges[:-1] + edges[1:]) / 2
    for k, group in enumerate(GROUPS, start=1):
        members = pit[groups == group]
        if len(members):
            density = np.histogram(members, bins=edges, density=True)[0]
            label = f"{group} ({len(members):,})"
            ax.plot(centres, density, color=STYLE.colour(k), linewidth=1.6, label=label)
    ax.axhline(1.0, color=STYLE.reference, linestyle="--", linewidth=1, label="calibrated")
    for edge in ((1 - level) / 2, (1 + level) / 2):
        ax.axvline(edge, color=STYLE.faint, linestyle=":", linewidth=1)
    central = float(((pit >= (1 - level) / 2) & (pit <= (1 + level) / 2)).mean())
    ax.set_title(
        f"Randomized PIT of holdout spend: {central:.1%} inside the central {level:.0%}",
        fontsize=STYLE.title_size,
        fontweight="bold",
        loc="left",
    )
    ax.set_xlabel("PIT (share of simulated spend below the actual)", fontsize=STYLE.label_size)
    ax.set_ylabel("density", fontsize=STYLE.label_size)
    ax.tick_params(labelsize=STYLE.tick_size)
    ax.legend(title="calibration-period repeat purchases", fontsize=STYLE.legend_size, loc="upper center")
    return fig
