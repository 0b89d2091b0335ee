"""Evaluate the churn model on one calibration/holdout split, side by side with the baselines.

Where the data is long enough, the model is trained on an earlier cutoff (its labels end at this
cutoff) and tested on this one: exactly how it is used. When the data cannot spare an earlier cutoff
with a full horizon (CDNOW's 78 weeks hold exactly one 39-week calibration and one 39-week holdout),
it is scored out of fold instead: k-fold over customers at the same cutoff, so every customer is
predicted by a model that never saw its label. The baselines (BG/NBD expected purchases, recency) use
no labels; every method is scored on exactly the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crm_analytics.features.rfm import DAYS_PER_UNIT
from crm_analytics.models.churn.model import ChurnModel, btyd_features, out_of_fold_churn
from crm_analytics.models.clv.evaluation import by_customer
from crm_analytics.models.clv.model import CLVModel
from crm_analytics.models.inputs import model_inputs
from crm_analytics.models.metrics import churn_metrics

BASELINES = ("bgnbd_expected_purchases", "recency")


@dataclass
class ChurnEvaluation:
    """The JSON-ready report, and the scores and labels its plots are drawn from."""

    report: dict[str, Any]
    scores: dict[str, np.ndarray]
    churned: np.ndarray
    btyd: CLVModel  # BG/NBD on this cutoff's calibration data: the baseline, and what training reuses


def churn_scores(
    features: pd.DataFrame,
    horizon_days: int,
    baseline_btyd: CLVModel,
    seed: int = 0,
    train_features: pd.DataFrame | None = None,
) -> dict[str, np.ndarray]:
    """Risk scores per customer (higher = likelier to churn): ours (a probability) and the baselines.

    ``baseline_btyd``: BG/NBD fitted on ``features`` (no labels used).
    """
    features = by_customer(features)
    time_unit = baseline_btyd.time_unit
    horizon = horizon_days / DAYS_PER_UNIT[time_unit]
    if train_features is None:
        inputs = model_inputs(features.join(btyd_features(baseline_btyd, features, horizon)))
        ours = out_of_fold_churn(ChurnModel(seed=seed), inputs, features["churned"].astype(bool))
    else:
        train_features = by_customer(train_features)
        btyd = CLVModel(time_unit=time_unit).fit(train_features)
        train_inputs = model_inputs(train_features.join(btyd_features(btyd, train_features, horizon)))
        model = ChurnModel(seed=seed).fit(train_inputs, train_features["churned"].astype(bool))
        ours = model.predict_proba(model_inputs(features.join(btyd_features(btyd, features, horizon))))
    return {
        "ours": ours,
        "bgnbd_expected_purchases": -baseline_btyd.expected_purchases(features, horizon),
        "recency": features["days_since_last"].to_numpy(float),
    }


def evaluate_churn(
    features: pd.DataFrame,
    horizon_days: int,
    time_unit: str,
    seed: int = 0,
    train_features: pd.DataFrame | None = None,
) -> ChurnEvaluation:
    """Churn metrics for our model and the baselines on the same rows, with our margin over the best.

    ``train_features``: a labelled feature table at an earlier cutoff to train on; without it the
    model is scored out of fold at this cutoff.
    """
    features = by_customer(features)
    btyd = CLVModel(time_unit=time_unit).fit(features)
    scores = churn_scores(features, horizon_days, btyd, seed, train_features)
    churned = features["churned"].to_numpy(bool)
    value_at_risk = features["spend_total"].to_numpy(float)
    metrics = {
        name: churn_metrics(churned, score, value_at_risk, probability=name == "ours")
        for name, score in scores.items()
    }
    best_baseline = max(BASELINES, key=lambda name: metrics[name]["roc_auc"])
    report = {
        "customers": len(features),
        "churn_rate": float(churned.mean()),
        "validation": "earlier cutoff" if train_features is not None else "5-fold out of fold",
        "metrics": metrics,
        "best_baseline": best_baseline,
        "margin_roc_auc": metrics["ours"]["roc_auc"] - metrics[best_baseline]["roc_auc"],
    }
    return ChurnEvaluation(report, scores, churned, btyd)
