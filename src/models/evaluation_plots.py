"""The plots of a CLV or churn evaluation by name: logged to MLflow by training, saved by ``crm evaluate``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from crm_analytics.features.rfm import DAYS_PER_UNIT
from crm_analytics.models.churn.evaluation import ChurnEvaluation
from crm_analytics.models.clv.calibration import pit_histogram
from crm_analytics.models.clv.diagnostics import alive_and_expected_matrices
from crm_analytics.models.clv.evaluation import CLVEvaluation
from crm_analytics.models.clv.interval_levels import calibration_frequency_group
from crm_analytics.models.clv.predictive_checks import predictive_checks_plot
from crm_analytics.models.plots import (
    calibration_plot,
    conditional_expectations_plot,
    gains_and_lift_plot,
    tracking_plot,
)

LABELS = {
    "bgnbd": "BG/NBD",
    "pareto": "Pareto/NBD",
    "mbgnbd": "MBG/NBD",
    "ours": "ours",
    "bgnbd_expected_purchases": "BG/NBD expected purchases",
    "recency": "recency",
    "frequency": "frequency",
    "btyd_gamma_gamma": "BTYD x Gamma-Gamma",
    "supervised": "supervised (Poisson GBM)",
    "supervised_same_period_folds": "supervised, same-period folds",
}


SCORE_LABELS = {
    "expected_purchases": "expected purchases",
    "p_alive": "P(alive)",
    "p_no_purchase": "P(no purchase)",
}


def clv_figures(evaluation: CLVEvaluation, features: pd.DataFrame) -> dict[str, Figure]:
    """Conditional expectations, the weekly tracking plot (when daily counts were given), spend gains,
    the selected model's P(alive) and expected-purchases matrices, predictive checks and holdout PIT
    histogram."""
    report = evaluation.report
    calibration_end = pd.Timestamp(report["calibration_end"])
    horizon_days = (pd.Timestamp(report["holdout_end"]) - calibration_end).days
    unit = report["time_unit"]
    figures = {
        "conditional_expectations": conditional_expectations_plot(
            evaluation.conditional.rename(columns=LABELS)
        ),
        "holdout_spend_gains": gains_and_lift_plot(
            features["holdout_spend"].to_numpy(float),
            {LABELS[k]: v for k, v in evaluation.holdout_spend_predictions.items()},
            target_label="holdout spend",
        ),
    }
    if evaluation.tracking is not None:
        figures["tracking"] = tracking_plot(evaluation.tracking, calibration_end)
    selected = evaluation.models[evaluation.selected]
    horizon = horizon_days / DAYS_PER_UNIT[unit]
    figures["alive_and_expected_matrices"] = alive_and_expected_matrices(selected, features, horizon, unit)[0]
    if evaluation.predictive_checks:
        checks = evaluation.predictive_checks
        figures["predictive_checks"] = predictive_checks_plot(
            checks["calibration_repeat_purchases"], checks["holdout_purchases"], selected.purchase_model
        )
    if evaluation.holdout_pit is not None:
        groups = calibration_frequency_group(features["frequency"])
        level = report["intervals"]["level"]
        figures["holdout_spend_pit"] = pit_histogram(evaluation.holdout_pit, groups, level)
    return figures


def churn_figures(evaluation: ChurnEvaluation) -> dict[str, Figure]:
    """The calibration curve of our probabilities and the gains/lift chart against the best baseline
    and recency."""
    shown = dict.fromkeys(("ours", evaluation.report["best_baseline"], "recency"))
    return {
        "calibration": calibration_plot(evaluation.churned, evaluation.scores["ours"]),
        "churn_gains_and_lift": gains_and_lift_plot(
            evaluation.churned.astype(float),
            {baseline_label(k): evaluation.scores[k] for k in shown},
            target_label="churners",
        ),
    }


def baseline_label(name: str) -> str:
    """A score's name for people: 'pareto_p_no_purchase' -> 'Pareto/NBD P(no purchase)'."""
    if name in LABELS:
        return LABELS[name]
    model, _, score = name.partition("_")
    return f"{LABELS.get(model, model)} {SCORE_LABELS.get(score, score)}"


def save_figures(figures: dict[str, Figure], folder: Path) -> list[str]:
    """Write each figure as ``folder/<name>.png``; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, figure in figures.items():
        path = folder / f"{name}.png"
        figure.savefig(path, dpi=100, facecolor="white")
        figure.clear()
        paths.append(str(path))
    return paths
