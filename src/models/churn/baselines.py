"""Label-free churn baselines, the strongest we know, and our margin over the best with its interval.

Each purchase model (BG/NBD, MBG/NBD, Pareto/NBD) is fitted on the calibration data alone and gives
three risk scores: minus the expected purchases in the horizon, 1 - P(alive) and the closed-form
P(no purchase in the horizon) (the event churn *is*). Recency and minus frequency complete the set. A
purchase model that does not converge is left out with its reason. The margin of ours over the best
baseline (chosen on the holdout, which favours the baseline) comes with a paired bootstrap 95% interval
over customers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_analytics.models.clv.evaluation import fit_purchase_models
from crm_analytics.models.clv.model import CLVModel


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
