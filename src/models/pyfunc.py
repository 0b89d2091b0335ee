"""The models as MLflow pyfunc models: what the registry stores and serving loads."""

from __future__ import annotations

from typing import Any

import pandas as pd
from mlflow.pyfunc import PythonModel

from crm_analytics.models.churn import ChurnModel, btyd_features
from crm_analytics.models.clv import CLVModel
from crm_analytics.models.inputs import model_inputs
from crm_analytics.models.uncertainty import value_distribution

INTERVAL_LEVEL = 0.9


class CLVPyfunc(PythonModel):
    """Input: frequency, recency, T, monetary_value. Output: P(alive), expected purchases and spend over the
    training horizon, 12-month CLV (1% monthly discount) with its 90% interval (``models.uncertainty``)."""

    def __init__(self, model: CLVModel, horizon_periods: float) -> None:
        self.model = model
        self.horizon_periods = horizon_periods

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        interval = value_distribution(self.model, model_input.reset_index(drop=True), level=INTERVAL_LEVEL)
        return pd.DataFrame(
            {
                "p_alive": self.model.probability_alive(model_input),
                "expected_purchases": self.model.expected_purchases(model_input, self.horizon_periods),
                "expected_spend": self.model.expected_spend(model_input),
                "clv": self.model.clv(model_input),
                "clv_low": interval["clv_low"].to_numpy(),
                "clv_high": interval["clv_high"].to_numpy(),
            }
        )


class ChurnPyfunc(PythonModel):
    """Input: a feature table's rows (no ids needed). Output: P(churn) over the training horizon."""

    def __init__(self, clv_model: CLVModel, churn_model: ChurnModel, horizon_periods: float) -> None:
        self.clv_model = clv_model
        self.churn_model = churn_model
        self.horizon_periods = horizon_periods

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        btyd = btyd_features(self.clv_model, model_input, self.horizon_periods)
        inputs = model_inputs(
            pd.concat([model_input.reset_index(drop=True), btyd.reset_index(drop=True)], axis=1)
        )
        return pd.DataFrame({"churn_probability": self.churn_model.predict_proba(inputs)})
