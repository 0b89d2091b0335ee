"""The evaluation plots draw the right numbers: line and bar data checked against hand-computed values."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import matplotlib.dates as mdates
import mlflow
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from crm_analytics.models.metrics import churn_metrics
from crm_analytics.models.plots import (
    calibration_plot,
    conditional_expectations_plot,
    gains_and_lift_plot,
    log_figures,
    tracking_plot,
)

BUCKETS = ["0", "1", "2", "3", "4", "5", "6", "7+"]
CALIBRATION_END = pd.Timestamp("2024-03-31")


def _axes(fig: Figure, label: str) -> Axes:
    found = [ax for ax in fig.axes if ax.get_label() == label]
    assert len(found) == 1, [ax.get_label() for ax in fig.axes]
    return found[0]


def _line(ax: Axes, label: str) -> np.ndarray:
    found = [line for line in ax.lines if line.get_label() == label]
    assert len(found) == 1, [line.get_label() for line in ax.lines]
    return np.asarray(found[0].get_xydata(), dtype=float)


def _bars(ax: Axes, label: str) -> np.ndarray:
    found = [c for c in ax.containers if isinstance(c, BarContainer) and c.get_label() == label]
    assert len(found) == 1
    return np.array([patch.get_height() for patch in found[0].patches])


def _legend_labels(ax: Axes) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None
    return [text.get_text() for text in legend.get_texts()]


def _has_diagonal(ax: Axes) -> bool:
    return any(np.array_equal(np.asarray(line.get_xydata()), [[0, 0], [1, 1]]) for line in ax.lines)


# --- small deterministic inputs ---------------------------------------------------------------------


def _tables() -> pd.DataFrame:
    """Conditional expectations in a shuffled bucket order, with two models."""
    table = pd.DataFrame(
        {
            "customers": [500, 200, 100, 50, 30, 20, 10, 40],
            "actual": [0.2, 0.7, 1.4, 1.6, 2.5, 3.0, 3.9, 6.4],
            "bgnbd": [0.25, 0.8, 1.3, 1.9, 2.4, 3.1, 3.6, 6.2],
            "pareto": [0.22, 0.75, 1.35, 1.85, 2.45, 3.05, 3.55, 6.3],
        },
        index=pd.Index(BUCKETS, name="frequency"),
    )
    return table.iloc[[7, 2, 0, 5, 1, 6, 3, 4]]


def _weekly() -> pd.DataFrame:
    weeks = pd.date_range("2024-01-07", periods=20, freq="7D")
    increments = np.arange(1.0, 21.0)
    return pd.DataFrame(
        {"week": weeks, "actual": np.cumsum(increments), "expected": np.cumsum(increments * 0.9)}
    )


def _churn_case(n: int = 100, churners: int = 30) -> np.ndarray:
    churned = np.zeros(n)
    churned[np.random.default_rng(1).permutation(n)[:churners]] = 1.0
    return churned


# --- calibration ------------------------------------------------------------------------------------


def test_calibration_points_are_the_quantile_bins_on_hand_made_groups() -> None:
    levels = np.arange(0.05, 1.0, 0.1)  # 10 groups of 10 customers, group i has i churners
    probability = np.repeat(levels, 10)
    churned = np.concatenate([np.r_[np.ones(i), np.zeros(10 - i)] for i in range(10)])

    fig = calibration_plot(churned, probability)
    ax = _axes(fig, "reliability")
    points = _line(ax, "model (10 quantile bins)")
    np.testing.assert_allclose(points[:, 0], levels)
    np.testing.assert_allclose(points[:, 1], np.arange(10) / 10)
    assert _has_diagonal(ax)
    np.testing.assert_allclose(_line(ax, "overall churn rate")[:, 1], churned.mean())
    brier = np.mean((probability - churned) ** 2)
    assert f"Brier score = {brier:.4f}" in ax.texts[0].get_text()
    assert ax.get_ylabel() == "observed churn rate (%)"


def test_calibration_bins_are_quantiles_not_equal_widths() -> None:
    rng = np.random.default_rng(0)
    probability = rng.beta(1, 6, 1000)  # skewed: equal-width bins would be mostly empty at the top
    churned = (rng.random(1000) < probability).astype(float)
    order = np.argsort(probability)
    expected_x = [chunk.mean() for chunk in np.split(probability[order], 5)]
    expected_y = [chunk.mean() for chunk in np.split(churned[order], 5)]

    points = _line(
        _axes(calibration_plot(churned, probability, bins=5), "reliability"), "model (5 quantile bins)"
    )
    np.testing.assert_allclose(points[:, 0], expected_x)
    np.testing.assert_allclose(points[:, 1], expected_y)


def test_calibration_histogram_counts_every_customer() -> None:
    rng = np.random.default_rng(2)
    probability = rng.random(321)
    fig = calibration_plot((rng.random(321) < probability).astype(float), probability)
    hist = _axes(fig, "histogram")
    bars = [patch for patch in hist.patches if isinstance(patch, Rectangle)]
    assert len(bars) == 40
    assert sum(bar.get_height() for bar in bars) == 321
    assert hist.get_xlabel() == "predicted P(churn) (%)"
    assert hist.get_ylabel() == "customers"


@pytest.mark.parametrize(
    ("churned", "probability", "message"),
    [
        (np.array([0, 1, 1]), np.array([0.1, 0.5, 1.2]), "probability"),
        (np.array([0, 1, 2]), np.array([0.1, 0.5, 0.9]), "churned"),
        (np.array([0, 1, 1]), np.array([0.1, 0.5]), "probability"),
        (np.array([0, 1, 1]), np.array([0.1, np.nan, 0.3]), "probability"),
    ],
)
def test_calibration_rejects_bad_input(churned: np.ndarray, probability: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        calibration_plot(churned, probability)


# --- gains and lift ---------------------------------------------------------------------------------


def test_perfect_ranker_captures_every_churner_at_the_churn_rate() -> None:
    churned = _churn_case()
    fig = gains_and_lift_plot(churned, {"ours": churned + 0.0, "worst": -churned})
    gains = _axes(fig, "gains")
    ours = _line(gains, "ours")
    assert ours[0].tolist() == [0.0, 0.0]
    assert ours[-1].tolist() == [1.0, 1.0]
    np.testing.assert_allclose(ours[:, 0], np.arange(101) / 100)  # at whole percentages only
    at_rate = ours[np.isclose(ours[:, 0], 0.3)]
    assert at_rate[0, 1] == 1.0
    np.testing.assert_allclose(ours[:, 1], np.minimum(ours[:, 0] / 0.3, 1.0))
    np.testing.assert_allclose(_line(gains, "perfect ranking"), ours)
    worst = _line(gains, "worst")
    assert worst[np.isclose(worst[:, 0], 0.7), 1][0] == 0.0  # the 70% non-churners first
    assert np.all(np.diff(worst[:, 1]) >= 0)
    assert _has_diagonal(gains)
    assert "random targeting" in _legend_labels(gains)
    assert gains.get_ylabel() == "churners captured (%)"


def test_perfect_ranker_top_decile_lift_is_one_over_churn_rate() -> None:
    churned = _churn_case()
    fig = gains_and_lift_plot(churned, {"ours": churned + 0.0, "worst": -churned})
    lift = _axes(fig, "lift")
    np.testing.assert_allclose(_bars(lift, "ours"), [1 / 0.3] * 3 + [0.0] * 7)
    np.testing.assert_allclose(_bars(lift, "worst"), [0.0] * 7 + [1 / 0.3] * 3)
    np.testing.assert_allclose(_line(lift, "random = 1")[:, 1], 1.0)
    assert lift.get_ylabel() == "lift: rate in decile ÷ overall rate"


def test_top_decile_lift_matches_the_reported_metric() -> None:
    rng = np.random.default_rng(3)
    churned = (rng.random(1003) < 0.2).astype(float)
    risk = churned * 0.3 + rng.random(1003)
    fig = gains_and_lift_plot(churned, {"ours": risk})
    reported = churn_metrics(churned, risk, np.ones(1003), probability=False)["top_decile_lift"]
    assert _bars(_axes(fig, "lift"), "ours")[0] == pytest.approx(reported)


def test_ties_keep_input_order() -> None:
    churned = np.array([1.0] + [0.0] * 9)
    fig = gains_and_lift_plot(churned, {"first": np.zeros(10), "last": np.zeros(10)[::-1]})
    gains = _axes(fig, "gains")
    np.testing.assert_allclose(_line(gains, "first")[:, 1], [0.0] + [1.0] * 10)
    lift = _bars(_axes(fig, "lift"), "first")
    np.testing.assert_allclose(lift, [10.0] + [0.0] * 9)


def test_value_gains_capture_the_share_of_spend() -> None:
    spend = np.array([0.0, 50.0, 0.0, 30.0, 0.0, 0.0, 20.0, 0.0, 0.0, 100.0])
    score = np.array(
        [1.0, 9.0, 0.0, 5.0, 2.0, 3.0, 4.0, 6.0, 7.0, 8.0]
    )  # order: 1, 9, 8, 7, 3, 6, 5, 4, 0, 2
    fig = gains_and_lift_plot(spend, {"model": score}, target_label="holdout spend")
    gains = _axes(fig, "gains")
    captured = _line(gains, "model")[:, 1]
    np.testing.assert_allclose(captured, np.cumsum([0, 50, 100, 0, 0, 30, 20, 0, 0, 0, 0]) / 200)
    assert gains.get_ylabel() == "holdout spend captured (%)"
    np.testing.assert_allclose(
        _bars(_axes(fig, "lift"), "model"), np.array([50, 100, 0, 0, 30, 20, 0, 0, 0, 0]) / 20
    )
    assert _axes(fig, "lift").get_ylabel() == "lift: mean in decile ÷ overall mean"
    assert "holdout spend" in fig.get_suptitle()


def test_large_inputs_are_drawn_as_aggregates_only() -> None:
    rng = np.random.default_rng(4)
    churned = (rng.random(20_000) < 0.1).astype(float)
    fig = gains_and_lift_plot(churned, {"ours": rng.random(20_000)})
    assert all(len(np.asarray(line.get_xydata())) <= 101 for line in _axes(fig, "gains").lines)


@pytest.mark.parametrize(
    ("actual", "scores", "message"),
    [
        (np.array([1.0, -1.0] * 10), {"a": np.arange(20.0)}, "non-negative"),
        (np.zeros(20), {"a": np.arange(20.0)}, "sums to zero"),
        (np.ones(5), {"a": np.arange(5.0)}, "at least 10"),
        (np.ones(20), {"a": np.arange(19.0)}, "scores"),
        (np.ones(20), {}, "no method"),
    ],
)
def test_gains_rejects_bad_input(actual: np.ndarray, scores: dict[str, np.ndarray], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        gains_and_lift_plot(actual, scores)


# --- conditional expectations -----------------------------------------------------------------------


def test_conditional_expectations_one_point_per_bucket_in_bucket_order() -> None:
    table = _tables()
    ordered = table.loc[BUCKETS]
    fig = conditional_expectations_plot(table)
    ax = _axes(fig, "expectations")
    x = np.arange(8)
    for label, column in [("actual (holdout)", "actual"), ("bgnbd", "bgnbd"), ("pareto", "pareto")]:
        points = _line(ax, label)
        np.testing.assert_allclose(points[:, 0], x)
        np.testing.assert_allclose(points[:, 1], ordered[column])
    assert [t.get_text() for t in ax.get_xticklabels()] == BUCKETS
    np.testing.assert_allclose(_bars(_axes(fig, "customers"), "customers in bucket"), ordered["customers"])
    assert _legend_labels(ax) == ["actual (holdout)", "bgnbd", "pareto", "customers in bucket"]
    assert ax.get_xlabel() == "repeat purchases in calibration period"
    assert ax.get_ylabel() == "mean holdout purchases per customer"


def test_conditional_expectations_needs_a_prediction() -> None:
    with pytest.raises(ValueError, match="no prediction column"):
        conditional_expectations_plot(_tables()[["actual", "customers"]])
    with pytest.raises(ValueError, match="customers"):
        conditional_expectations_plot(_tables().drop(columns="customers"))


# --- tracking ---------------------------------------------------------------------------------------


def test_tracking_lines_and_the_calibration_marker() -> None:
    weekly = _weekly()
    fig = tracking_plot(weekly.iloc[::-1], CALIBRATION_END)  # sorted by week before plotting
    x = mdates.date2num(weekly["week"])
    cumulative = _axes(fig, "cumulative")
    np.testing.assert_allclose(_line(cumulative, "actual"), np.column_stack([x, weekly["actual"]]))
    np.testing.assert_allclose(_line(cumulative, "expected (model)")[:, 1], weekly["expected"])
    per_week = _axes(fig, "weekly")
    np.testing.assert_allclose(_line(per_week, "actual")[:, 1], np.arange(1.0, 21.0))
    np.testing.assert_allclose(_line(per_week, "expected (model)")[:, 1], np.arange(1.0, 21.0) * 0.9)
    for ax in (cumulative, per_week):
        marker = _line(ax, "end of calibration")
        np.testing.assert_allclose(marker[:, 0], mdates.date2num(CALIBRATION_END))
        assert x[0] < marker[0, 0] < x[-1]
    assert "end of calibration" in _legend_labels(cumulative)
    assert cumulative.get_ylabel() == "cumulative repeat purchases"
    assert per_week.get_xlabel() == "week ending"


# --- every figure -----------------------------------------------------------------------------------


def _all_figures() -> dict[str, Callable[[], Figure]]:
    churned = _churn_case()
    return {
        "calibration": lambda: calibration_plot(churned, np.linspace(0, 1, 100)),
        "gains": lambda: gains_and_lift_plot(churned, {"ours": churned + 0.0}),
        "conditional": lambda: conditional_expectations_plot(_tables()),
        "tracking": lambda: tracking_plot(_weekly(), CALIBRATION_END),
    }


@pytest.mark.parametrize("name", list(_all_figures()))
def test_figures_share_one_style_and_render(name: str) -> None:
    fig = _all_figures()[name]()
    assert fig.canvas.manager is None  # not a pyplot figure: nothing to close, no display needed
    assert tuple(fig.get_size_inches() * fig.dpi) == (800, 500)
    assert fig.get_suptitle()
    for ax in fig.axes:
        assert ax.get_ylabel()
    assert any(ax.get_xlabel() for ax in fig.axes)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert buffer.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


# --- MLflow -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A throwaway MLflow store (SQLite + artifact folder), made once for this module (its migrations are
    slow); yields (experiment id, artifact folder). The tracking URI is restored afterwards."""
    folder = tmp_path_factory.mktemp("mlflow")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{folder}/mlflow.db")
    try:
        yield mlflow.create_experiment("plots", artifact_location=(folder / "artifacts").as_uri()), folder
    finally:
        mlflow.set_tracking_uri(previous)


@pytest.fixture
def experiment(store: tuple[str, Path]) -> Iterator[str]:
    """The store's experiment, with its tracking URI current for this test (and no run left open)."""
    mlflow.set_tracking_uri(f"sqlite:///{store[1]}/mlflow.db")
    yield store[0]
    while mlflow.active_run() is not None:
        mlflow.end_run("FAILED")


def test_log_figures_writes_pngs_to_the_run(experiment: str, store: tuple[str, Path]) -> None:
    figures = {name: make() for name, make in _all_figures().items()}
    with mlflow.start_run(experiment_id=experiment) as run:
        log_figures(figures)
    artifacts = mlflow.MlflowClient().list_artifacts(run.info.run_id, "plots")
    assert sorted(a.path for a in artifacts) == sorted(f"plots/{name}.png" for name in figures)
    for name, fig in figures.items():
        path = store[1] / "artifacts" / run.info.run_id / "artifacts" / "plots" / f"{name}.png"
        content = path.read_bytes()
        assert content[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(content) > 10_000
        assert not fig.axes  # released after logging


def test_log_figures_needs_an_active_run_and_plain_names(experiment: str) -> None:
    with pytest.raises(RuntimeError, match="no active MLflow run"):
        log_figures({"calibration": Figure()})
    with mlflow.start_run(experiment_id=experiment), pytest.raises(ValueError, match="plain file name"):
        log_figures({"a/b": Figure()})
    assert mlflow.active_run() is None
