"""Supervised value model: holdout spend predicted by gradient boosting with a Poisson loss.

It sits beside the BTYD CLV model and reads the same feature table plus the BTYD outputs; the
evaluation on a holdout decides which one to trust for ranking customers by future value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import KFold

from crm_analytics.models.inputs import fitted_matrix, usable_columns


class SpendModel(BaseEstimator):
    """HistGradientBoosting with a Poisson loss on non-negative holdout spend."""

    def __init__(
        self, seed: int = 0, learning_rate: float = 0.05, max_iter: int = 300, min_samples_leaf: int = 100
    ) -> None:
        self.seed = seed
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.min_samples_leaf = min_samples_leaf

    def __repr__(self) -> str:
        return f"SpendModel(seed={self.seed}, {'fitted' if hasattr(self, 'regressor_') else 'not fitted'})"

    def fit(self, inputs: pd.DataFrame, spend: pd.Series) -> SpendModel:
        """Learn expected holdout spend from the usable feature columns."""
        if (spend < 0).any():
            raise ValueError("spend: must be non-negative for a Poisson loss")
        self.feature_names_ = usable_columns(inputs)
        self.regressor_ = HistGradientBoostingRegressor(
            loss="poisson",
            learning_rate=self.learning_rate,
            max_iter=self.max_iter,
            max_leaf_nodes=15,
            min_samples_leaf=self.min_samples_leaf,
            random_state=self.seed,
        ).fit(inputs[self.feature_names_].to_numpy(float), spend.to_numpy(float))
        return self

    def predict(self, inputs: pd.DataFrame) -> np.ndarray:
        """Expected spend in the horizon per row."""
        matrix = fitted_matrix(self, inputs)  # checks fitted and columns first
        return self.regressor_.predict(matrix)


def out_of_fold_spend(
    model: SpendModel, inputs: pd.DataFrame, spend: pd.Series, folds: int = 5
) -> np.ndarray:
    """Predicted spend for every row from a model that never saw that row's target."""
    predictions = np.empty(len(inputs))
    for train, test in KFold(folds, shuffle=True, random_state=model.seed).split(inputs):
        fold_model: SpendModel = clone(model)
        predictions[test] = fold_model.fit(inputs.iloc[train], spend.iloc[train]).predict(inputs.iloc[test])
    return predictions
