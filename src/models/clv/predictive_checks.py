"""Predictive checks of a fitted purchase model, as lifetimes and pymc-marketing users expect them:

- calibration period: how many customers made 0, 1, ..., 6, 7+ repeat purchases, actual against the
  model's expectation for customers observed as long as each one was (lifetimes'
  ``plot_period_transactions``): each customer's count is drawn from the fitted population (the prior),
  over their own T, ``replicates`` times;
- holdout (the posterior-predictive check): the same histogram of holdout purchases, actual against the
  model's given each customer's history (the posterior simulation of ``uncertainty``).

Both are tables of expected customers per bucket and a two-panel figure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from crm_analytics.models.clv.draws import Horizon
from crm_analytics.models.clv.model import PERIODS_PER_MONTH, CLVModel
from crm_analytics.models.clv.uncertainty import simulate_chunks
from crm_analytics.models.plots import STYLE

BUCKETS = ("0", "1", "2", "3", "4", "5", "6", "7+")
NAMES = {"bgnbd": "BG/NBD", "pareto": "Pareto/NBD", "mbgnbd": "MBG/NBD"}


def bucket_counts(counts: np.ndarray) -> np.ndarray:
    """How many of ``counts`` (any shape) fall in each of 0..6 and 7+."""
    capped = np.minimum(np.asarray(counts, dtype=np.int64).ravel(), len(BUCKETS) - 1)
    return np.bincount(capped, minlength=len(BUCKETS)).astype(float)


def prior_repeat_purchases(model: CLVModel, T: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Repeat purchases of new customers observed for ``T`` time units each, drawn from the fitted
    population: BG/NBD and MBG/NBD buy at rate lambda until they drop out (after a purchase with
    probability p; MBG/NBD also at the first one), Pareto/NBD until an exponential lifetime ends."""
    params = model.purchases_.params_
    T = np.asarray(T, dtype=float)
    rate = rng.gamma(params["r"], 1 / params["alpha"], size=len(T))
    if model.purchase_model == "pareto":
        lifetime = rng.exponential(size=len(T)) / rng.gamma(params["s"], 1 / params["beta"], size=len(T))
        return rng.poisson(rate * np.minimum(lifetime, T))
    dropout = np.maximum(rng.beta(params["a"], params["b"], size=len(T)), 1e-12)
    made_before_dying = rng.geometric(dropout) - (1 if model.purchase_model == "mbgnbd" else 0)
    return np.minimum(rng.poisson(rate * T), made_before_dying)


def repeat_purchase_histogram(
    model: CLVModel, summary: pd.DataFrame, replicates: int = 20, seed: int = 0
) -> pd.DataFrame:
    """Customers per calibration-period repeat-purchase bucket: actual and the model's expectation."""
    rng = np.random.default_rng(seed)
    T = summary["T"].to_numpy(float)
    expected = sum(bucket_counts(prior_repeat_purchases(model, T, rng)) for _ in range(replicates))
    return _table(summary["frequency"].to_numpy(), np.asarray(expected) / replicates)


def holdout_purchase_histogram(
    model: CLVModel,
    summary: pd.DataFrame,
    horizon_periods: float,
    observed: np.ndarray,
    draws: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """Customers per holdout-purchase bucket: actual (``observed``) and the model's expectation given
    each customer's history."""
    horizon = Horizon.of(horizon_periods, PERIODS_PER_MONTH[model.time_unit], 0.0)
    expected = np.zeros(len(BUCKETS))
    for _, purchases, _ in simulate_chunks(model, summary, horizon, draws, seed, 20_000):
        expected += bucket_counts(purchases) / draws
    return _table(np.asarray(observed), expected)


def _table(actual: np.ndarray, expected: np.ndarray) -> pd.DataFrame:
    table = pd.DataFrame({"actual": bucket_counts(actual), "model": expected}, index=list(BUCKETS))
    table.index.name = "purchases"
    return table


def predictive_checks_plot(calibration: pd.DataFrame, holdout: pd.DataFrame, purchase_model: str) -> Figure:
    """Two panels of grouped bars: calibration-period repeat purchases and holdout purchases, actual
    against the model."""
    fig = Figure(figsize=(STYLE.width_in * 1.6, STYLE.height_in), dpi=STYLE.dpi, layout="constrained")
    fig.set_facecolor("white")
    fig.suptitle(
        f"{NAMES.get(purchase_model, purchase_model)}: customers by number of purchases, actual and model",
        fontsize=STYLE.title_size,
        fontweight="bold",
    )
    panels = (
        (calibration, "calibration period: repeat purchases (model: fitted population)"),
        (holdout, "holdout: purchases (model: given each history)"),
    )
    x = np.arange(len(BUCKETS))
    for position, (table, title) in enumerate(panels, start=1):
        ax = fig.add_subplot(1, 2, position, label=f"panel{position}")
        ax.bar(x - 0.2, table["actual"], width=0.4, color=STYLE.actual, label="actual")
        ax.bar(x + 0.2, table["model"], width=0.4, color=STYLE.colour(0), label="model")
        ax.set_xticks(x, list(table.index))
        ax.set_title(title, fontsize=STYLE.panel_title_size, loc="left")
        ax.set_xlabel("purchases", fontsize=STYLE.label_size)
        ax.set_ylabel("customers", fontsize=STYLE.label_size)
        ax.tick_params(labelsize=STYLE.tick_size)
        ax.legend(fontsize=STYLE.legend_size)
    return fig
