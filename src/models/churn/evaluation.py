"""Evaluate the churn model on one calibration/holdout split, side by side with the baselines.

Where the data allows, the model is trained on an earlier cutoff (its labels end at this cutoff) and
tested on this one: out of time, exactly how it is used. ``crm evaluate`` gives it one horizon earlier,
or, when the data cannot spare a full horizon (CDNOW's 78 weeks hold one 39-week calibration and one
39-week holdout), the validation window's cutoff with its shorter labels. Without any earlier table
the model is scored out of fold at the same cutoff (k-fold over customers: each customer predicted by a
model that never saw its label, but one that learns the holdout period's overall activity); with
``same_period`` both are reported, labelled. The baselines (``baselines.py``) use no labels; every
method is scored on exactly the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from crm_analytics.features.rfm import DAYS_PER_UNIT
from crm_analytics.models.churn.attempts import attempts
from crm_analytics.models.churn.baselines import baseline_scores
from crm_analytics.models.churn.model import ChurnModel, btyd_features, out_of_fold_churn
from crm_analytics.models.clv.evaluation import by_customer, supervised_validation
from crm_analytics.models.clv.model import CLVModel
from crm_analytics.models.inputs import model_inputs
from crm_analytics.models.metrics import BOOTSTRAP_SAMPLES, bootstrap_difference, churn_metrics


@dataclass
class ChurnEvaluation:
    """The JSON-ready report, and the scores and labels its plots are drawn from."""

    report: dict[str, Any]
    scores: dict[str, np.ndarray]
    churned: np.ndarray
    btyd: CLVModel  # BG/NBD on this cutoff's calibration data: the baseline, and what training reuses


def our_scores(
    features: pd.DataFrame,
    horizon: float,
    btyd: CLVModel,
    seed: int = 0,
    train_features: pd.DataFrame | None = None,
    template: ChurnModel | None = None,
) -> np.ndarray:
    """Our P(churn) per customer: from a model trained on ``train_features`` (an earlier cutoff), or out
    of fold at this cutoff. ``btyd``: BG/NBD fitted on ``features`` (no labels used). ``template``: the
    configuration to fit (a registered version's, for the promotion gate); default ``ChurnModel(seed)``."""
    configured = clone(template) if template is not None else ChurnModel(seed=seed)
    if train_features is None:
        inputs = model_inputs(features.join(btyd_features(btyd, features, horizon)))
        return out_of_fold_churn(configured, inputs, features["churned"].astype(bool))
    earlier = CLVModel(time_unit=btyd.time_unit).fit(train_features)
    train_inputs = model_inputs(train_features.join(btyd_features(earlier, train_features, horizon)))
    model = configured.fit(train_inputs, train_features["churned"].astype(bool))
    return model.predict_proba(model_inputs(features.join(btyd_features(earlier, features, horizon))))


def evaluate_churn(
    features: pd.DataFrame,
    horizon_days: int,
    time_unit: str,
    seed: int = 0,
    train_features: pd.DataFrame | None = None,
    same_period: bool = False,
    bootstrap_samples: int = BOOTSTRAP_SAMPLES,
) -> ChurnEvaluation:
    """Churn metrics for our model and every baseline on the same rows, with our margin over the best
    and its bootstrap 95% interval.

    ``train_features``: a labelled feature table at an earlier cutoff to train on (out of time);
    without it the model is scored out of fold at this cutoff. ``same_period``: with an earlier table,
    also report the out-of-fold scores at this cutoff (``same_period_folds``), labelled as such.
    """
    features = by_customer(features)
    train_features = None if train_features is None else by_customer(train_features)
    horizon = horizon_days / DAYS_PER_UNIT[time_unit]
    baselines, fitted, left_out = baseline_scores(features, horizon, time_unit)
    btyd = fitted.get("bgnbd") or CLVModel(time_unit=time_unit).fit(features)
    scores = {"ours": our_scores(features, horizon, btyd, seed, train_features), **baselines}
    churned = features["churned"].to_numpy(bool)
    value_at_risk = features["spend_total"].to_numpy(float)
    metrics = {
        name: churn_metrics(churned, score, value_at_risk, probability=name == "ours")
        for name, score in scores.items()
    }
    best_baseline = max(baselines, key=lambda name: metrics[name]["roc_auc"])
    margin = bootstrap_difference(
        churned, scores["ours"], scores[best_baseline], samples=bootstrap_samples, seed=seed
    )
    report: dict[str, Any] = {
        "customers": len(features),
        "churn_rate": float(churned.mean()),
        "validation": supervised_validation(features, train_features, horizon_days),
        "metrics": metrics,
        "best_baseline": best_baseline,
        "margin_roc_auc": margin["difference"],
        "margin_roc_auc_interval": [margin["low"], margin["high"]],
        "baselines_left_out": left_out,
    }
    if same_period and train_features is not None:
        report["attempts"] = attempts(train_features, horizon, time_unit, seed)
        folds = our_scores(features, horizon, btyd, seed)
        report["same_period_folds"] = {
            "note": "5-fold out of fold at this cutoff: the model learns the holdout period's activity",
            "metrics": churn_metrics(churned, folds, value_at_risk, probability=True),
        }
    return ChurnEvaluation(report, scores, churned, btyd)
