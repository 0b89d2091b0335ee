"""Metrics shared by the churn and CLV evaluations, each a plain function of arrays."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

TOP = 0.10  # the top decile
BOOTSTRAP_SAMPLES = 1000
Metric = Callable[[np.ndarray, np.ndarray], float]


def top_share(score: np.ndarray, top: float = TOP) -> np.ndarray:
    """A mask of the ``top`` share of rows by score (ties broken by position, deterministic)."""
    n = max(1, round(len(score) * top))
    order = np.argsort(-score, kind="stable")
    mask = np.zeros(len(score), dtype=bool)
    mask[order[:n]] = True
    return mask


def churn_metrics(
    churned: np.ndarray, risk: np.ndarray, value: np.ndarray, probability: bool
) -> dict[str, float]:
    """How well ``risk`` ranks churners.

    - roc_auc, pr_auc: ranking quality (pr_auc's baseline is the churn rate);
    - brier: mean squared error of the probability (only when ``risk`` is a probability);
    - top_decile_lift: churn rate among the 10% riskiest / overall churn rate;
    - top_decile_value_capture: share of churners' value (e.g. past spend) held by the churners in the
      riskiest 10%, i.e. how much of the money walking out a campaign on that decile could reach.
    """
    churned = churned.astype(bool)
    top = top_share(risk)
    metrics = {
        "roc_auc": float(roc_auc_score(churned, risk)),
        "pr_auc": float(average_precision_score(churned, risk)),
        "top_decile_lift": top_decile_lift(churned, risk),
        "top_decile_value_capture": float(value[top & churned].sum() / value[churned].sum()),
    }
    if probability:
        metrics["brier"] = float(brier_score_loss(churned, risk))
    return metrics


def value_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """How well predicted value matches the holdout: rank correlation, error, top-decile capture."""
    return {
        "spearman": spearman(actual, predicted),
        "mae": float(np.abs(predicted - actual).mean()),
        "top_decile_capture": top_decile_capture(actual, predicted),
    }


def top_decile_lift(churned: np.ndarray, risk: np.ndarray) -> float:
    """Churn rate among the 10% riskiest over the overall churn rate."""
    churned = churned.astype(bool)
    return float(churned[top_share(risk)].mean() / churned.mean())


def top_decile_capture(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Share of the actual total held by the 10% with the highest prediction."""
    return float(actual[top_share(predicted)].sum() / actual.sum())


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
    resample whose labels are all equal is drawn again). Needs two distinct values in ``labels``."""
    if labels.min() == labels.max():
        raise ValueError("labels: the bootstrap needs two distinct values (both churners and buyers)")
    rng = np.random.default_rng(seed)
    differences = np.empty(samples)
    k = 0
    while k < samples:
        rows = rng.integers(0, len(labels), len(labels))
        if labels[rows].min() == labels[rows].max():  # one value only: no ROC AUC or rank; draw again
            continue
        differences[k] = metric(labels[rows], ours[rows]) - metric(labels[rows], other[rows])
        k += 1
    low, high = np.percentile(differences, [2.5, 97.5])
    return {
        "difference": float(metric(labels, ours) - metric(labels, other)),
        "low": float(low),
        "high": float(high),
    }


def spearman(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Spearman's rank correlation of ``predicted`` with ``actual``."""
    return float(spearmanr(predicted, actual).statistic)
