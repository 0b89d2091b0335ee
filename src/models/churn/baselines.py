"""Label-free churn baselines, the strongest we know, and our margin over the best with its interval.

Each purchase model (BG/NBD, MBG/NBD, Pareto/NBD) is fitted on the calibration data alone and gives
three risk scores: minus the expected purchases in the horizon, 1 - P(alive) and the closed-form
P(no purchase in the horizon) (the event churn *is*). Recency and minus frequency complete the set. A
purchase model that does not converge is left out with its reason. The margin of ours over the best
baseline (chosen on the holdout, which favours the baseline) comes with a paired bootstrap 95% interval
over customers.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from crm_analytics.models.clv.evaluation import fit_purchase_models
from crm_analytics.models.clv.model import CLVModel

BOOTSTRAP_SAMPLES = 1000
Metric = Callable[[np.ndarray, np.ndarray], float]


def baseline_scores(
    features: pd.DataFrame, horizon: float, time_unit: str
) -> tuple[dict[str, np.ndarray], dict[str, CLVModel], dict[str, str]]:
    """Risk scores per customer (higher = likelier to churn) by name, the purchase models fitted and the
    ones left out (with why)."""
    fitted, failed = fit_purchase_models(features, time_unit, must_fit=False)
    scores: dict[str, np.ndarray] = {}
    for name, model in fitted.items():
        scores[f"{name}_expected_purchases"] = -model.expected_purchases(features, horizon)
        scores[f"{name}_p_alive"] = 1 - model.probability_alive(features)
        scores[f"{name}_p_no_purchase"] = model.probability_no_purchase(features, horizon)
    scores["recency"] = features["days_since_last"].to_numpy(float)
    scores["frequency"] = -features["frequency"].to_numpy(float)
    usable = {name: s for name, s in scores.items() if np.isfinite(s).all()}
    failed |= {name: "its scores are not finite" for name in scores if name not in usable}
    return usable, fitted, failed


def bootstrap_difference(
    labels: np.ndarray,
    ours: np.ndarray,
    other: np.ndarray,
    metric: Metric = roc_auc_score,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
) -> dict[str, float]:
    """``metric(ours) - metric(other)`` on the same customers, with the 2.5% and 97.5% percentiles of the
    difference over ``samples`` resamples of the customers (paired: both scored on each resample; a
    resample with one class only is drawn again). Needs both classes in ``labels``."""
    if labels.min() == labels.max():
        raise ValueError("labels: the bootstrap needs both churners and buyers")
    rng = np.random.default_rng(seed)
    differences = np.empty(samples)
    k = 0
    while k < samples:
        rows = rng.integers(0, len(labels), len(labels))
        if labels[rows].min() == labels[rows].max():  # one class only: no ROC AUC; draw again
            continue
        differences[k] = metric(labels[rows], ours[rows]) - metric(labels[rows], other[rows])
        k += 1
    low, high = np.percentile(differences, [2.5, 97.5])
    return {
        "difference": float(metric(labels, ours) - metric(labels, other)),
        "low": float(low),
        "high": float(high),
    }
