"""Evaluation plots that training runs log to MLflow, each built from plain arrays or frames.

Every function returns a ``matplotlib.figure.Figure`` made with the object-oriented API (no pyplot): no
display, backend or global figure registry is involved, and nothing global is changed. Figures are
800 x 500 px at their native dpi, with one style throughout (``STYLE``).

Only aggregates reach a plot: calibration bins and a histogram, gains at whole percentages of customers,
decile means, bucket means and weekly totals. No customer's row can be read back from a figure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Literal

import matplotlib.dates as mdates
import mlflow
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss

__all__ = [
    "STYLE",
    "calibration_plot",
    "conditional_expectations_plot",
    "gains_and_lift_plot",
    "log_figures",
    "tracking_plot",
]


@dataclass(frozen=True)
class Style:
    """Sizes and colours shared by every plot."""

    width_in: float = 8.0
    height_in: float = 5.0
    dpi: int = 100
    title_size: float = 12.0
    panel_title_size: float = 10.5
    label_size: float = 9.5
    tick_size: float = 8.5
    legend_size: float = 8.5
    actual: str = "#222222"
    reference: str = "#8c8c8c"
    faint: str = "#d9d9d9"
    palette: tuple[str, ...] = (
        "#1f77b4",  # blue
        "#d62728",  # red
        "#2ca02c",  # green
        "#ff7f0e",  # orange
        "#9467bd",  # purple
        "#8c564b",  # brown
        "#17becf",  # cyan
    )

    def colour(self, i: int) -> str:
        return self.palette[i % len(self.palette)]


STYLE = Style()
LegendLoc = Literal["upper left", "upper right", "lower right"]
GAINS_POINTS = 101  # the gains curve at 0%, 1%, ..., 100% of customers targeted
DECILES = 10


def _figure(title: str) -> Figure:
    fig = Figure(figsize=(STYLE.width_in, STYLE.height_in), dpi=STYLE.dpi, layout="constrained")
    fig.set_facecolor("white")
    fig.suptitle(title, fontsize=STYLE.title_size, fontweight="bold")
    return fig


def _style_axes(ax: Axes, xlabel: str, ylabel: str, title: str | None = None) -> None:
    ax.set_xlabel(xlabel, fontsize=STYLE.label_size)
    ax.set_ylabel(ylabel, fontsize=STYLE.label_size)
    if title:
        ax.set_title(title, fontsize=STYLE.panel_title_size, loc="left")
    ax.tick_params(labelsize=STYLE.tick_size)
    ax.grid(True, color=STYLE.faint, linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _legend(ax: Axes, loc: LegendLoc) -> None:
    ax.legend(loc=loc, fontsize=STYLE.legend_size, framealpha=0.9, edgecolor=STYLE.faint)


def _vector(name: str, values: np.ndarray, length: int | None = None) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d array, got shape {array.shape}")
    if len(array) == 0:
        raise ValueError(f"{name}: empty")
    if length is not None and len(array) != length:
        raise ValueError(f"{name}: {len(array)} values, expected {length}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return array


def calibration_plot(churned: np.ndarray, probability: np.ndarray, bins: int = 10) -> Figure:
    """Reliability diagram: observed churn rate against mean predicted P(churn) per quantile bin.

    The diagonal is perfect calibration; the panel below is the histogram of predicted probabilities.
    The Brier score (mean squared error of the probability) is annotated.
    """
    y = _vector("churned", churned)
    p = _vector("probability", probability, len(y))
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("churned: must be 0/1 or boolean")
    if ((p < 0) | (p > 1)).any():
        raise ValueError("probability: must lie in [0, 1]")
    if bins < 1:
        raise ValueError("bins: must be at least 1")
    observed, predicted = calibration_curve(y, p, n_bins=bins, strategy="quantile")
    brier = float(brier_score_loss(y, p))

    fig = _figure("Churn model calibration")
    grid = fig.add_gridspec(2, 1, height_ratios=(3, 1))
    ax = fig.add_subplot(grid[0], label="reliability")
    hist = fig.add_subplot(grid[1], sharex=ax, label="histogram")

    ax.plot([0, 1], [0, 1], linestyle="--", color=STYLE.reference, linewidth=1, label="perfectly calibrated")
    ax.plot(
        predicted,
        observed,
        marker="o",
        markersize=5,
        color=STYLE.colour(0),
        linewidth=1.8,
        label=f"model ({len(predicted)} quantile bin{'s' if len(predicted) > 1 else ''})",
    )
    ax.axhline(y.mean(), color=STYLE.colour(1), linestyle=":", linewidth=1, label="overall churn rate")
    ax.text(
        0.02,
        0.97,
        f"Brier score = {brier:.4f}\n{len(y):,} customers",
        transform=ax.transAxes,
        va="top",
        ha="left",
        fontsize=STYLE.legend_size,
        bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": STYLE.faint},
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    _style_axes(ax, "", "observed churn rate (%)")
    ax.tick_params(labelbottom=False)
    _legend(ax, loc="lower right")

    hist.hist(
        p,
        bins=np.linspace(0, 1, 41).tolist(),
        color=STYLE.colour(0),
        alpha=0.6,
        edgecolor="white",
        linewidth=0.5,
    )
    _style_axes(hist, "predicted P(churn) (%)", "customers")
    hist.yaxis.set_major_locator(MaxNLocator(3, integer=True))
    return fig


def _gains(actual: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Share of ``actual`` captured by the top k customers by score, at whole percentages of customers."""
    order = np.argsort(-score, kind="stable")  # ties keep their input order
    captured = np.concatenate(([0.0], np.cumsum(actual[order]))) / actual.sum()
    counts = np.unique(np.round(np.linspace(0, len(actual), GAINS_POINTS)).astype(int))
    return counts / len(actual), captured[counts]


def _decile_lift(actual: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Mean ``actual`` in each score decile (1 = highest scores) over the overall mean."""
    order = np.argsort(-score, kind="stable")
    bounds = np.round(np.arange(DECILES + 1) * len(actual) / DECILES).astype(int)
    ranked = actual[order]
    means = np.array([decile.mean() for decile in np.split(ranked, bounds[1:-1])])
    return means / actual.mean()


def gains_and_lift_plot(
    actual: np.ndarray, scores: Mapping[str, np.ndarray], target_label: str = "churners"
) -> Figure:
    """Cumulative gains and lift per score decile for each scoring method (higher score = target first).

    ``actual`` is any non-negative array: 0/1 churn labels (``target_label="churners"``) or a value such
    as holdout spend (``target_label="holdout spend"``). Left: share of the ``actual`` total captured
    against share of customers targeted in descending score order (ties in input order), with random
    targeting (the diagonal) and the best possible ranking. Right: each decile's mean over the overall
    mean; the top decile's lift is ``evaluate.churn_metrics``' ``top_decile_lift``.
    """
    target = _vector("actual", actual)
    if (target < 0).any():
        raise ValueError("actual: must be non-negative")
    if target.sum() <= 0:
        raise ValueError("actual: sums to zero, nothing to capture")
    if len(target) < DECILES:
        raise ValueError(f"actual: at least {DECILES} customers are needed for deciles")
    if not scores:
        raise ValueError("scores: no method to plot")
    ranked = {name: _vector(f"scores[{name!r}]", s, len(target)) for name, s in scores.items()}

    fig = _figure(f"Targeting by score: {target_label} captured")
    gains_ax, lift_ax = fig.subplots(1, 2, width_ratios=(1, 1.15))
    gains_ax.set_label("gains")
    lift_ax.set_label("lift")

    gains_ax.plot(
        [0, 1], [0, 1], linestyle="--", color=STYLE.reference, linewidth=1, label="random targeting"
    )
    x, best = _gains(target, target)
    gains_ax.plot(x, best, linestyle=":", color=STYLE.actual, linewidth=1, label="perfect ranking")
    for i, (name, score) in enumerate(ranked.items()):
        x, y = _gains(target, score)
        gains_ax.plot(x, y, color=STYLE.colour(i), linewidth=1.8, label=name)
    gains_ax.set_xlim(0, 1)
    gains_ax.set_ylim(0, 1.02)
    gains_ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    gains_ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    _style_axes(gains_ax, "customers targeted, highest score first (%)", f"{target_label} captured (%)")
    gains_ax.set_title("Cumulative gains", fontsize=STYLE.panel_title_size, loc="left")
    _legend(gains_ax, loc="lower right")

    width = 0.8 / len(ranked)
    deciles = np.arange(1, DECILES + 1)
    highest = 1.0
    for i, (name, score) in enumerate(ranked.items()):
        offset = (i - (len(ranked) - 1) / 2) * width
        lift = _decile_lift(target, score)
        highest = max(highest, float(lift.max()))
        lift_ax.bar(deciles + offset, lift, width, color=STYLE.colour(i), label=name)
    lift_ax.axhline(1.0, color=STYLE.reference, linestyle="--", linewidth=1, label="random = 1")
    lift_ax.set_xticks(deciles)
    lift_ax.set_ylim(0, highest * (1.1 + 0.07 * len(ranked)))  # headroom for the legend
    statistic = "rate" if np.isin(target, (0.0, 1.0)).all() else "mean"
    _style_axes(
        lift_ax, "score decile (1 = highest scores)", f"lift: {statistic} in decile ÷ overall {statistic}"
    )
    lift_ax.grid(False, axis="x")
    lift_ax.set_title("Lift by score decile", fontsize=STYLE.panel_title_size, loc="left")
    _legend(lift_ax, loc="upper right")
    return fig


_BUCKET = re.compile(r"^\d+\+?$")


def _bucket_order(labels: list[str]) -> list[str]:
    """Buckets "0", "1", ..., "7+" in numeric order ("7+" after "7"); other labels keep their order."""
    if not all(_BUCKET.match(label) for label in labels):
        return labels
    return sorted(labels, key=lambda label: (int(label.rstrip("+")), label.endswith("+")))


def conditional_expectations_plot(table: pd.DataFrame) -> Figure:
    """Actual and predicted mean holdout purchases per customer by calibration-frequency bucket.

    ``table``: index = buckets ("0", "1", ..., "6", "7+"), columns ``actual``, ``customers`` and one
    column per model with its mean conditional expectation (labelled by the column name). Customers per
    bucket are the faint bars on the right-hand axis.
    """
    for column in ("actual", "customers"):
        if column not in table.columns:
            raise ValueError(f"missing column '{column}'")
    models = [c for c in table.columns if c not in ("actual", "customers")]
    if not models:
        raise ValueError("no prediction column: add one column per model besides actual and customers")
    if len(table) == 0:
        raise ValueError("table: no buckets")
    labels = [str(b) for b in table.index]
    if len(set(labels)) != len(labels):
        raise ValueError("table: duplicate buckets")
    ordered = table.set_axis(labels).loc[_bucket_order(labels)]
    x = np.arange(len(ordered))

    fig = _figure("Conditional expectations: holdout purchases by calibration frequency")
    ax = fig.add_subplot(label="expectations")
    counts = ax.twinx()
    counts.set_label("customers")
    counts.bar(x, ordered["customers"].to_numpy(float), 0.6, color=STYLE.faint, label="customers in bucket")
    counts.set_ylabel("customers in bucket (bars)", fontsize=STYLE.label_size, color=STYLE.reference)
    counts.tick_params(labelsize=STYLE.tick_size, colors=STYLE.reference)
    counts.spines["top"].set_visible(False)
    counts.set_ylim(0, ordered["customers"].max() * 2.2)  # bars in the lower half, under the legend
    ax.set_zorder(counts.get_zorder() + 1)  # lines over the bars
    ax.patch.set_visible(False)

    ax.plot(
        x,
        ordered["actual"].to_numpy(float),
        color=STYLE.actual,
        marker="o",
        markersize=6,
        linewidth=2,
        label="actual (holdout)",
    )
    markers = ("s", "^", "D", "v", "P", "X", "*")
    for i, name in enumerate(models):
        ax.plot(
            x,
            ordered[name].to_numpy(float),
            color=STYLE.colour(i),
            marker=markers[i % len(markers)],
            markersize=5,
            linestyle="--",
            linewidth=1.5,
            label=str(name),
        )
    ax.set_xticks(x, ordered.index)
    ax.set_ylim(bottom=0)
    _style_axes(ax, "repeat purchases in calibration period", "mean holdout purchases per customer")
    ax.spines["right"].set_visible(True)
    handles, names = ax.get_legend_handles_labels()
    bars, bar_names = counts.get_legend_handles_labels()
    ax.legend(
        handles + bars,
        names + bar_names,
        loc="upper left",
        fontsize=STYLE.legend_size,
        framealpha=0.9,
        edgecolor=STYLE.faint,
    )
    return fig


def tracking_plot(weekly: pd.DataFrame, calibration_end: pd.Timestamp | date) -> Figure:
    """Cumulative repeat purchases per week, actual against the model's expectation, split at calibration end.

    ``weekly``: columns ``week`` (end of week), ``actual`` and ``expected`` (cumulative counts from the
    start of the calibration period). The lower panel shows the weekly increments (first week = its
    cumulative value). A dashed vertical line marks the end of calibration.
    """
    for column in ("week", "actual", "expected"):
        if column not in weekly.columns:
            raise ValueError(f"missing column '{column}'")
    if len(weekly) == 0:
        raise ValueError("weekly: no weeks")
    frame = weekly.sort_values("week", kind="stable")
    weeks = pd.to_datetime(frame["week"]).to_numpy()
    end = pd.Timestamp(calibration_end)
    actual = _vector("actual", frame["actual"].to_numpy())
    expected = _vector("expected", frame["expected"].to_numpy())

    fig = _figure("Tracking: repeat purchases, actual against expected")
    cumulative_ax, weekly_ax = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    cumulative_ax.set_label("cumulative")
    weekly_ax.set_label("weekly")
    panels = (
        (cumulative_ax, actual, expected, "cumulative repeat purchases", "Cumulative"),
        (
            weekly_ax,
            np.diff(actual, prepend=0.0),
            np.diff(expected, prepend=0.0),
            "repeat purchases / week",
            "Weekly",
        ),
    )
    for ax, act, exp, ylabel, title in panels:
        ax.plot(weeks, act, color=STYLE.actual, linewidth=1.8, label="actual")
        ax.plot(weeks, exp, color=STYLE.colour(0), linestyle="--", linewidth=1.8, label="expected (model)")
        ax.axvline(end, color=STYLE.colour(1), linestyle="--", linewidth=1.2, label="end of calibration")
        _style_axes(ax, "", ylabel, title)
        ax.set_ylim(bottom=0)
    cumulative_ax.tick_params(labelbottom=False)
    weekly_ax.set_xlabel("week ending", fontsize=STYLE.label_size)
    locator = mdates.AutoDateLocator()
    weekly_ax.xaxis.set_major_locator(locator)
    weekly_ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    _legend(cumulative_ax, loc="upper left")
    return fig


def log_figures(figures: Mapping[str, Figure], folder: str = "plots") -> None:
    """Log each figure to the active MLflow run as ``{folder}/{name}.png``, then clear it to free memory.

    Raises RuntimeError when no run is active (rather than letting MLflow start a stray run).
    """
    if mlflow.active_run() is None:
        raise RuntimeError("no active MLflow run: call log_figures inside mlflow.start_run()")
    for name in figures:
        if not name or "/" in name or "\\" in name:
            raise ValueError(f"figure name {name!r}: must be a plain file name")
    for name, fig in figures.items():
        mlflow.log_figure(fig, f"{folder}/{name}.png", save_kwargs={"dpi": fig.dpi, "facecolor": "white"})
        fig.clear()
