"""BG/BB judged on later occasions: fitted on the occasions up to a cutoff (``features.occasions``),
compared with what each customer did at the next ones, beside the naive "same rate as before"
baseline; the tables for its plots (conditional expectations by calibration frequency, and purchases
per holdout occasion, actual against the model)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score

from crm_analytics.errors import NotReadyError
from crm_analytics.features.occasions import OCCASION_COLUMNS
from crm_analytics.models.clv.bgbb import PARAMETERS, BGBBModel
from crm_analytics.models.clv.evaluation import conditional_expectations
from crm_analytics.models.plots import STYLE, conditional_expectations_plot

MIN_CUSTOMERS = 20  # fewer customers with a past occasion cannot pin down four parameters


@dataclass
class BGBBEvaluation:
    """The JSON-ready report, the fitted model and the tables its plots are drawn from."""

    report: dict[str, Any]
    model: BGBBModel
    conditional: pd.DataFrame  # holdout purchases by calibration-frequency bucket
    tracking: pd.DataFrame  # per holdout occasion: actual and model purchases


def evaluate_bgbb(
    summary: pd.DataFrame, holdout_occasions: int, purchasers: pd.Series | None = None
) -> BGBBEvaluation:
    """Fit BG/BB on ``summary`` (``occasion_summary`` with labels) and judge it on the next
    ``holdout_occasions``: per-customer error, total, and who bought at all, beside the past rate.
    ``purchasers``: the cohort's customers buying at each holdout occasion (``occasion_purchasers``)."""
    if "holdout_purchases" not in summary.columns:
        raise ValueError("missing column 'holdout_purchases': build the summary with holdout occasions")
    if holdout_occasions < 1:
        raise ValueError(f"holdout_occasions: must be at least 1, got {holdout_occasions}")
    cohort = summary[summary["n_periods"] >= 1]
    if len(cohort) < MIN_CUSTOMERS:
        raise NotReadyError(
            f"as_of: {len(cohort)} customers bought before the cutoff's occasion; BG/BB needs at least "
            f"{MIN_CUSTOMERS} (an earlier cutoff or shorter occasions)"
        )
    model = BGBBModel().fit(cohort[list(OCCASION_COLUMNS)])
    actual = cohort["holdout_purchases"].to_numpy(float)
    predicted = model.expected_purchases(cohort, holdout_occasions)
    past_rate = (cohort["frequency"] / cohort["n_periods"]).to_numpy(float) * holdout_occasions
    judged = {"bgbb": predicted, "past_rate": past_rate}
    conditional = conditional_expectations(cohort["frequency"].to_numpy(), actual, judged)
    tracking = occasion_tracking(model, cohort, holdout_occasions, purchasers)
    summary_table = model.summary
    report = {
        "model": "bgbb",
        "customers": len(cohort),
        "left_out_new": int(len(summary) - len(cohort)),  # first bought in the cutoff's own occasion
        "holdout_occasions": holdout_occasions,
        "parameters": {
            name: {
                "estimate": float(summary_table.loc[name, "coef"]),
                "se": float(summary_table.loc[name, "se(coef)"]),
            }
            for name in PARAMETERS
        },
        "log_likelihood": model.log_likelihood(),
        "holdout": {name: _errors(actual, values) for name, values in judged.items()},
        "holdout_purchases_actual": float(actual.sum()),
        "conditional_expectations": conditional.reset_index().to_dict(orient="records"),
        "tracking": tracking.reset_index().to_dict(orient="records"),
    }
    return BGBBEvaluation(report, model, conditional, tracking)


def _errors(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    bought = actual > 0
    errors = {
        "purchases_rmse": float(np.sqrt(np.mean((predicted - actual) ** 2))),
        "purchases_mae": float(np.mean(np.abs(predicted - actual))),
        "purchases_total": float(predicted.sum()),
    }
    if 0 < bought.mean() < 1:  # who buys at all, ranked by expected purchases
        errors["any_purchase_roc_auc"] = float(roc_auc_score(bought, predicted))
    return errors


def occasion_tracking(
    model: BGBBModel, cohort: pd.DataFrame, holdout_occasions: int, purchasers: pd.Series | None = None
) -> pd.DataFrame:
    """Expected purchasers at each holdout occasion (the increments of the cumulative expectation),
    summed over the cohort, beside the actual ones (``purchasers``: customers buying, by occasion)."""
    cumulative = [np.zeros(len(cohort))]
    cumulative += [model.expected_purchases(cohort, k) for k in range(1, holdout_occasions + 1)]
    expected = [float((cumulative[k] - cumulative[k - 1]).sum()) for k in range(1, holdout_occasions + 1)]
    occasions = pd.RangeIndex(1, holdout_occasions + 1, name="occasion")
    table = pd.DataFrame({"model": expected}, index=occasions)
    if purchasers is not None:
        table.insert(0, "actual", purchasers.reindex(occasions, fill_value=0).to_numpy(float))
    return table


def bgbb_figures(evaluation: BGBBEvaluation) -> dict[str, Figure]:
    """The plots training logs: conditional expectations, and purchases per holdout occasion."""
    figures = {"conditional_expectations": conditional_expectations_plot(evaluation.conditional)}
    if "actual" in evaluation.tracking.columns:
        figures["occasion_tracking"] = occasion_tracking_plot(evaluation.tracking)
    return figures


def occasion_tracking_plot(tracking: pd.DataFrame) -> Figure:
    """Customers buying at each holdout occasion: actual bars beside the model's expectation."""
    fig = Figure(figsize=(STYLE.width_in, STYLE.height_in), dpi=STYLE.dpi, layout="constrained")
    fig.set_facecolor("white")
    fig.suptitle("BG/BB: customers buying at each occasion after the cutoff", fontsize=STYLE.title_size)
    ax = fig.add_subplot()
    x = np.arange(len(tracking))
    ax.bar(x - 0.2, tracking["actual"], width=0.4, color=STYLE.actual, label="actual")
    ax.bar(x + 0.2, tracking["model"], width=0.4, color=STYLE.colour(0), label="BG/BB expected")
    ax.set_xticks(x, [str(k) for k in tracking.index])
    ax.set_xlabel("occasion after the cutoff", fontsize=STYLE.label_size)
    ax.set_ylabel("customers buying", fontsize=STYLE.label_size)
    ax.tick_params(labelsize=STYLE.tick_size)
    ax.legend(fontsize=STYLE.legend_size)
    return fig
