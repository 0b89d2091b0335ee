"""Evaluate churn and value models on one calibration/holdout split, side by side with the baselines.

When the data cannot spare an earlier cutoff with a full horizon (CDNOW's 78 weeks hold exactly one
39-week calibration and one 39-week holdout), the supervised models are scored out of fold: k-fold over
customers at the same cutoff, so every customer is predicted by a model that never saw its label. The
BTYD model uses no labels at all, so it is fitted on every customer's calibration history. Every method
is scored on exactly the same rows.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from crm_analytics.features.rfm import DAYS_PER_UNIT
from crm_analytics.models.churn import ChurnModel, btyd_features, out_of_fold_churn
from crm_analytics.models.clv import CLVModel
from crm_analytics.models.evaluate import churn_metrics, value_metrics
from crm_analytics.models.inputs import model_inputs
from crm_analytics.models.spend import SpendModel, out_of_fold_spend


def evaluate_holdout(
    features: pd.DataFrame, horizon_days: int, time_unit: str, seed: int = 0
) -> dict[str, Any]:
    """Churn and holdout-spend metrics for our models and the baselines, with our margins over the best."""
    features = features.set_index("customer_id") if "customer_id" in features.columns else features
    horizon = horizon_days / DAYS_PER_UNIT[time_unit]
    clv_model = CLVModel(time_unit=time_unit).fit(features)
    btyd = btyd_features(clv_model, features, horizon)
    inputs = model_inputs(features.join(btyd))
    churned = features["churned"].astype(bool)
    spend = features["holdout_spend"].astype(float)
    value_at_risk = features["spend_total"].to_numpy(float)

    y = churned.to_numpy()
    churn = {
        "ours": churn_metrics(
            y, out_of_fold_churn(ChurnModel(seed=seed), inputs, churned), value_at_risk, True
        ),
        "bgnbd_expected_purchases": churn_metrics(
            y, -btyd["btyd_expected_purchases"].to_numpy(), value_at_risk, False
        ),
        "recency": churn_metrics(y, features["days_since_last"].to_numpy(float), value_at_risk, False),
    }
    expected_value = btyd["btyd_expected_purchases"].to_numpy() * clv_model.expected_spend(features)
    value = {
        "ours": value_metrics(spend.to_numpy(), out_of_fold_spend(SpendModel(seed=seed), inputs, spend)),
        "bgnbd_gamma_gamma": value_metrics(spend.to_numpy(), expected_value),
    }
    return {
        "customers": len(features),
        "churn_rate": float(y.mean()),
        "btyd_params": clv_model.params_,
        "churn": churn,
        "value": value,
        "margin": {
            "churn_roc_auc": churn["ours"]["roc_auc"]
            - max(m["roc_auc"] for k, m in churn.items() if k != "ours"),
            "value_spearman": value["ours"]["spearman"] - value["bgnbd_gamma_gamma"]["spearman"],
        },
    }
