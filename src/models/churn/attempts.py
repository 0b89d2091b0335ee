"""Attempts to improve the churn model, judged before the holdout: on the earlier cutoff's table only
(5-fold out of fold over its customers; the holdout's labels are never read).

- ``ours``: the model as trained (the feature table plus BG/NBD's view of each customer);
- ``with every purchase model``: MBG/NBD's and Pareto/NBD's views too (expected purchases, P(alive),
  the closed-form P(no purchase in the horizon), CLV), the strongest label-free baselines as features;
- ``uncalibrated``: ours without the isotonic calibration (one boosted model on all rows), to see what
  calibration costs in ranking.

Each reports its validation ROC AUC and its gain over ``ours``; the evaluation keeps ``ours`` and states
what an attempt would gain, so a change of model is a decision made on these figures.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from crm_analytics.models.churn.model import ChurnModel, btyd_features, out_of_fold_churn
from crm_analytics.models.clv.evaluation import fit_purchase_models
from crm_analytics.models.inputs import model_inputs, usable_columns


def attempts(train_features: pd.DataFrame, horizon: float, time_unit: str, seed: int = 0) -> dict[str, Any]:
    """Validation ROC AUC of each attempt on ``train_features`` (labelled, indexed by customer)."""
    churned = train_features["churned"].astype(bool)
    fitted, _ = fit_purchase_models(train_features, time_unit, must_fit=False)
    if "bgnbd" not in fitted:
        return {}
    ours = model_inputs(train_features.join(btyd_features(fitted["bgnbd"], train_features, horizon)))
    views = [
        btyd_features(model, train_features, horizon).add_prefix(f"{name}_")
        for name, model in fitted.items()
        if name != "bgnbd"
    ]
    every = ours.join(pd.concat(views, axis=1)) if views else None
    scores = {"ours": out_of_fold_churn(ChurnModel(seed=seed), ours, churned)}
    if every is not None:
        scores["with every purchase model"] = out_of_fold_churn(ChurnModel(seed=seed), every, churned)
    scores["uncalibrated"] = _uncalibrated(ours, churned, seed)
    auc = {name: float(roc_auc_score(churned, score)) for name, score in scores.items()}
    return {
        "validated_on": "5-fold out of fold on the earlier cutoff's table",
        "roc_auc": auc,
        "gain_over_ours": {name: value - auc["ours"] for name, value in auc.items() if name != "ours"},
    }


def _uncalibrated(inputs: pd.DataFrame, churned: pd.Series, seed: int) -> Any:
    """Out-of-fold P(churn) of ours without its isotonic calibration."""
    matrix = inputs[usable_columns(inputs)].to_numpy(float)
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    boosted = ChurnModel(seed=seed).boosted()
    return cross_val_predict(boosted, matrix, churned.to_numpy(bool), cv=folds, method="predict_proba")[:, 1]
