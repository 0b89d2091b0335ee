"""What the supervised models read: the numeric feature columns, checked the same way for each model."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

NOT_FEATURES = ("customer_id", "as_of", "holdout_purchase_days", "holdout_spend", "churned")
# check_is_fitted's message for every model here: sklearn's NotFittedError, naming the class
NOT_FITTED = "this %(name)s is not fitted yet; call fit first"


def check_frame(frame: object, name: str) -> None:
    """A TypeError unless ``frame`` is a DataFrame: these models read columns by name, not by position."""
    if not isinstance(frame, pd.DataFrame):
        kind = f"{type(frame).__module__}.{type(frame).__qualname__}"
        raise TypeError(f"{name}: expected a pandas DataFrame with named columns, got {kind}")


def model_inputs(features: pd.DataFrame) -> pd.DataFrame:
    """The numeric feature columns a model reads (keys and labels removed)."""
    inputs = features.drop(columns=[c for c in NOT_FEATURES if c in features.columns])
    return inputs.astype(float)


def usable_columns(inputs: pd.DataFrame) -> list[str]:
    """Columns with at least one value: an all-empty one (e.g. stay features on retail data) says nothing."""
    return [c for c in inputs.columns if inputs[c].notna().any()]


def fitted_matrix(model: BaseEstimator, inputs: pd.DataFrame) -> np.ndarray:
    """The columns a fitted model was trained on, as a float matrix; clear errors if unfitted or missing."""
    check_is_fitted(model, "feature_names_", msg=NOT_FITTED)
    names: list[str] = model.feature_names_
    missing = [c for c in names if c not in inputs.columns]
    if missing:
        raise ValueError(f"missing column '{missing[0]}'")
    return inputs[names].to_numpy(float)
