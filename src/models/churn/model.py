"""Churn: a calibrated gradient-boosting classifier on the feature table plus the BTYD model's outputs.

Label: ``churned`` = no purchase in the horizon after the cutoff (see ``features.labels``). The BTYD
outputs (P(alive), expected purchases and P(no purchase) over the horizon, CLV) are features: the
classifier learns where the probabilistic model is right and where behaviour says otherwise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold

from crm_analytics.models.clv.model import CLVModel
from crm_analytics.models.inputs import fitted_matrix, usable_columns


def btyd_features(clv_model: CLVModel, summary: pd.DataFrame, horizon_periods: float) -> pd.DataFrame:
    """The CLV model's view of each customer, as feature columns."""
    return pd.DataFrame(
        {
            "btyd_p_alive": clv_model.probability_alive(summary),
            "btyd_expected_purchases": clv_model.expected_purchases(summary, horizon_periods),
            "btyd_p_no_purchase": clv_model.probability_no_purchase(summary, horizon_periods),
            "btyd_clv": clv_model.clv(summary),
        },
        index=summary.index,
    )


class ChurnModel(BaseEstimator):
    """Calibrated HistGradientBoosting on feature columns; ``predict_proba`` gives P(churn)."""

    def __init__(
        self,
        seed: int = 0,
        learning_rate: float = 0.05,
        max_iter: int = 300,
        max_leaf_nodes: int = 15,
        l2_regularization: float = 1.0,
        calibration_folds: int = 3,
    ) -> None:
        self.seed = seed
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.l2_regularization = l2_regularization
        self.calibration_folds = calibration_folds

    def __repr__(self) -> str:
        return f"ChurnModel(seed={self.seed}, {'fitted' if hasattr(self, 'classifier_') else 'not fitted'})"

    def boosted(self) -> HistGradientBoostingClassifier:
        """The unfitted gradient-boosting classifier the calibration wraps."""
        return HistGradientBoostingClassifier(
            learning_rate=self.learning_rate,
            max_iter=self.max_iter,
            max_leaf_nodes=self.max_leaf_nodes,
            l2_regularization=self.l2_regularization,
            early_stopping=True,
            random_state=self.seed,
        )

    def _classifier(self) -> CalibratedClassifierCV:
        folds = StratifiedKFold(self.calibration_folds, shuffle=True, random_state=self.seed)
        return CalibratedClassifierCV(self.boosted(), method="isotonic", cv=folds)

    def fit(self, inputs: pd.DataFrame, churned: pd.Series) -> ChurnModel:
        """Learn P(churn) from the usable feature columns."""
        if len(inputs) != len(churned):
            raise ValueError(f"churned: {len(churned)} labels for {len(inputs)} rows")
        self.feature_names_ = usable_columns(inputs)
        self.classifier_ = self._classifier().fit(
            inputs[self.feature_names_].to_numpy(float), churned.to_numpy(bool)
        )
        return self

    def predict_proba(self, inputs: pd.DataFrame) -> np.ndarray:
        """P(churn) per row."""
        matrix = fitted_matrix(self, inputs)  # checks fitted and columns first
        return self.classifier_.predict_proba(matrix)[:, 1]


def out_of_fold_churn(
    model: ChurnModel, inputs: pd.DataFrame, churned: pd.Series, folds: int = 5
) -> np.ndarray:
    """P(churn) for every row from a model that never saw that row's label (k-fold over customers)."""
    predictions = np.empty(len(inputs))
    splitter = StratifiedKFold(folds, shuffle=True, random_state=model.seed)
    for train, test in splitter.split(inputs, churned):
        fold_model: ChurnModel = clone(model)
        fold_model.fit(inputs.iloc[train], churned.iloc[train])
        predictions[test] = fold_model.predict_proba(inputs.iloc[test])
    return predictions
