"""What the supervised models read: the numeric feature columns, checked the same way for each model."""

from __future__ import annotations

import numpy as np
import pandas as pd

NOT_FEATURES = ("customer_id", "as_of", "holdout_purchase_days", "holdout_spend", "churned")


def model_inputs(features: pd.DataFrame) -> pd.DataFrame:
    """The numeric feature columns a model reads (keys and labels removed)."""
    inputs = features.drop(columns=[c for c in NOT_FEATURES if c in features.columns])
    return inputs.astype(float)


def usable_columns(inputs: pd.DataFrame) -> list[str]:
    """Columns with at least one value: an all-empty one (e.g. stay features on retail data) says nothing."""
    return [c for c in inputs.columns if inputs[c].notna().any()]


def fitted_matrix(model: object, inputs: pd.DataFrame) -> np.ndarray:
    """The columns a fitted model was trained on, as a float matrix; clear errors if unfitted or missing."""
    names: list[str] | None = getattr(model, "feature_names_", None)
    if names is None:
        raise RuntimeError(f"this {type(model).__name__} is not fitted yet; call fit first")
    missing = [c for c in names if c not in inputs.columns]
    if missing:
        raise ValueError(f"missing column '{missing[0]}'")
    return inputs[names].to_numpy(float)
