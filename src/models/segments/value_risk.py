"""Value-and-risk segments: the CLV and churn scores in four quadrants.

``fit`` learns one number, the CLV threshold: the ``value_quantile`` quantile (linear interpolation) of
the fitted ``clv`` column, stored as an absolute amount in ``value_threshold_``, so customers scored later
are judged against the same amount whoever else is scored. The churn threshold is a parameter (a
probability needs no population to be read).

Boundaries: both are inclusive on the "high" side. ``clv >= value_threshold_`` is high value and
``churn_probability >= churn_threshold`` is at risk, so a customer exactly on a threshold counts as high
value, and at risk (with the defaults, a customer at the 80% CLV quantile is high value; at P(churn) = 0.5
is at risk).

| value_tier | churn_risk | value_risk_segment |
|---|---|---|
| high | at risk | High value, at risk |
| high | safe | High value, safe |
| low | at risk | Low value, at risk |
| low | safe | Low value, safe |
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from crm_analytics.models.inputs import NOT_FITTED, check_frame

SCHEME_VERSION = 1  # bump when the columns, boundaries or segment names change
SEGMENTS: dict[tuple[str, str], str] = {
    ("high", "at risk"): "High value, at risk",
    ("high", "safe"): "High value, safe",
    ("low", "at risk"): "Low value, at risk",
    ("low", "safe"): "Low value, safe",
}
SEGMENT_NAMES: tuple[str, ...] = tuple(SEGMENTS.values())
INPUT_COLUMNS = ("clv", "churn_probability")


class ValueRiskSegmenter(TransformerMixin, BaseEstimator):
    """High/low value (CLV against a fitted quantile) by at risk/safe (P(churn) against a threshold)."""

    def __init__(self, value_quantile: float = 0.8, churn_threshold: float = 0.5) -> None:
        self.value_quantile = value_quantile
        self.churn_threshold = churn_threshold

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "value_threshold_")

    def __repr__(self) -> str:
        state = "fitted" if self.__sklearn_is_fitted__() else "not fitted"
        return (
            f"ValueRiskSegmenter(value_quantile={self.value_quantile}, "
            f"churn_threshold={self.churn_threshold}, {state})"
        )

    def _check_parameters(self) -> None:
        for name in ("value_quantile", "churn_threshold"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
                raise ValueError(f"{name}: must be a number strictly between 0 and 1, got {value!r}")

    def fit(self, scores: pd.DataFrame, y: None = None) -> ValueRiskSegmenter:
        """Learn the CLV threshold from the ``clv`` column (the only column fit reads; ``y`` is ignored)."""
        self._check_parameters()
        clv = _column(scores, "clv")
        if len(clv) == 0:
            raise ValueError("scores: no rows to fit on")
        self.value_threshold_ = float(np.quantile(clv, self.value_quantile))
        self.columns_ = list(INPUT_COLUMNS)
        self.n_customers_ = len(clv)
        return self

    def transform(self, scores: pd.DataFrame) -> pd.DataFrame:
        """value_tier, churn_risk and value_risk_segment per row (index preserved)."""
        check_is_fitted(self, msg=NOT_FITTED)
        self._check_parameters()
        clv = _column(scores, "clv")
        churn = _column(scores, "churn_probability")
        if ((churn < 0) | (churn > 1)).any():
            bad = churn[(churn < 0) | (churn > 1)][0]
            raise ValueError(f"column 'churn_probability': probabilities must be in [0, 1], got {bad}")
        tier = np.where(clv >= self.value_threshold_, "high", "low")
        risk = np.where(churn >= self.churn_threshold, "at risk", "safe")
        segment = np.empty(len(tier), dtype=object)
        for (t, r), name in SEGMENTS.items():
            segment[(tier == t) & (risk == r)] = name
        return pd.DataFrame(
            {"value_tier": tier, "churn_risk": risk, "value_risk_segment": segment}, index=scores.index
        )

    def definition(self) -> dict[str, Any]:
        """The fitted definition, JSON-able, for logging with the model."""
        check_is_fitted(self, msg=NOT_FITTED)
        return {
            "family": "value_risk",
            "scheme_version": SCHEME_VERSION,
            "value_quantile": self.value_quantile,
            "churn_threshold": self.churn_threshold,
            "value_threshold": self.value_threshold_,
            "value_tier": "high where clv >= value_threshold, else low",
            "churn_risk": "at risk where churn_probability >= churn_threshold, else safe",
            "segments": [
                {"value_tier": tier, "churn_risk": risk, "segment": name}
                for (tier, risk), name in SEGMENTS.items()
            ],
            "fitted_customers": self.n_customers_,
        }


def _column(scores: pd.DataFrame, column: str) -> np.ndarray:
    """One input column as floats; a ValueError naming it when missing, not numeric or with NaN."""
    check_frame(scores, "scores")
    if column not in scores.columns:
        raise ValueError(f"missing column '{column}'")
    try:
        values = scores[column].to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError):
        raise ValueError(f"column '{column}': expected numbers, got {scores[column].dtype}") from None
    if np.isnan(values).any():
        raise ValueError(f"column '{column}': {int(np.isnan(values).sum())} missing values (NaN)")
    if np.isinf(values).any():
        raise ValueError(f"column '{column}': infinite values")
    return values
