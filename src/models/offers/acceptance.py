"""P(accept | customer, booking context, offer), learned from the offer log.

One row per shown offer: the customer's purchase-history features as of a cutoff before the event
(point in time: a guest's later behaviour never explains an earlier answer), the booking context and the
offer's attributes; the label is ``accepted``. A gradient-boosted classifier with native categorical
handling (hotel, room type, channel, purpose, offer), its probabilities calibrated (isotonic).

Guests with no purchase history before the cutoff are scored by a second, context-only model trained on
the same events without the customer columns, so an unknown guest still gets sensible offers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from crm_analytics.features.behaviour import column_suffix
from crm_analytics.models.inputs import NOT_FITTED
from crm_analytics.models.offers.compiled import CompiledForest, compile_calibrated

CONTEXT_CATEGORIES = ("hotel_id", "room_type", "channel", "purpose", "offer_id", "category")
CONTEXT_NUMBERS = ("nights", "guests", "lead_days", "upgrade_available", "price", "margin")
CUSTOMER_COLUMNS_PREFIXES = ("extras_rate_", "share_channel_")
OWN_UPTAKE = "own_category_uptake"
CUSTOMER_COLUMNS = (
    "frequency",
    "days_since_last",
    "spend_total",
    "nights_mean",
    "guests_mean",
    "lead_time_days_mean",
    "business_share",
)


def event_frame(events: pd.DataFrame, offers: pd.DataFrame) -> pd.DataFrame:
    """Shown offers with their context and the offer's attributes (category, price, margin), one row each."""
    for column in ("offer_id", "shown_at", "check_in", "hotel_id", "room_type", "nights", "guests"):
        if column not in events.columns:
            raise ValueError(f"missing column '{column}'")
    frame = events.merge(offers[["offer_id", "category", "price", "margin"]], on="offer_id", how="left")
    if frame["category"].isna().any():
        raise ValueError("offer_id: an event names an offer that is not in the catalogue")
    shown, check_in = pd.to_datetime(frame["shown_at"]), pd.to_datetime(frame["check_in"])
    return frame.assign(
        lead_days=(check_in.dt.normalize() - shown.dt.normalize()).dt.days.clip(lower=0),
        upgrade_available=frame["upgrade_available"].fillna(False).astype(float),
    )


def customer_columns(features: pd.DataFrame) -> list[str]:
    """The purchase-history columns the acceptance model reads (those present in this feature table)."""
    picked = [c for c in CUSTOMER_COLUMNS if c in features.columns]
    picked += [c for c in features.columns if c.startswith(CUSTOMER_COLUMNS_PREFIXES)]
    return picked


def own_category_uptake(frame: pd.DataFrame) -> np.ndarray:
    """Per row, the guest's past uptake of the offer's own category (``extras_rate_<category>``): the
    single strongest sign of a guest's taste, which trees would otherwise have to find per category."""
    uptake = np.full(len(frame), np.nan)
    for category in frame["category"].dropna().unique():
        column = f"extras_rate_{column_suffix(str(category))}"
        rows = (frame["category"] == category).to_numpy()
        if column in frame.columns:
            uptake[rows] = frame.loc[rows, column].to_numpy(float)
    return uptake


class AcceptanceModel(BaseEstimator):
    """Calibrated HistGradientBoosting on context (+ customer history when ``with_customer``)."""

    classifier_: CalibratedClassifierCV
    customer_columns_: list[str]
    categories_: dict[str, list[str]]
    _compiled: CompiledForest | None

    def __init__(self, with_customer: bool = True, seed: int = 0, max_iter: int = 200) -> None:
        self.with_customer = with_customer
        self.seed = seed
        self.max_iter = max_iter

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "classifier_")

    def __getstate__(self) -> dict[str, object]:
        """Pickled (logged to MLflow) without the compiled cache: it is rebuilt from the folds on use."""
        state = dict(super().__getstate__())  # a copy: Python 3.11 hands over the live __dict__
        state.pop("_compiled", None)
        return state

    def __repr__(self) -> str:
        state = "fitted" if self.__sklearn_is_fitted__() else "not fitted"
        return f"AcceptanceModel(with_customer={self.with_customer}, {state})"

    @property
    def matrix_columns(self) -> list[str]:
        """The model's input columns in order: category codes first (the trees' categorical features),
        then the numbers, the guest's history and, with history, ``own_category_uptake``."""
        uptake = [OWN_UPTAKE] if self.customer_columns_ else []
        return [*CONTEXT_CATEGORIES, *CONTEXT_NUMBERS, *self.customer_columns_, *uptake]

    def codes(self, column: str, values: Any) -> np.ndarray:
        """Category values as their code in the fitted categories (unknown -> NaN, which the trees
        treat as missing)."""
        series = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
        codes = pd.Index(self.categories_[column]).get_indexer(series.astype("str"))
        return np.where(codes < 0, np.nan, codes).astype(float)

    def _matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """A float matrix in :attr:`matrix_columns` order. Plain numpy keeps one prediction cheap."""
        missing = [c for c in self.matrix_columns if c not in frame.columns and c != OWN_UPTAKE]
        if missing:
            raise ValueError(f"missing column '{missing[0]}'")
        parts = [self.codes(c, frame[c]) for c in CONTEXT_CATEGORIES]
        numbers = [*CONTEXT_NUMBERS, *self.customer_columns_]
        parts += [frame[c].to_numpy(dtype=float, na_value=np.nan) for c in numbers]
        if self.customer_columns_:
            parts.append(own_category_uptake(frame))
        return np.column_stack(parts)

    def compiled(self) -> CompiledForest:
        """The fitted folds as flat arrays (:mod:`.compiled`): the same probabilities for a booking's
        few rows in a fraction of a millisecond. Compiled once, on first use."""
        check_is_fitted(self, msg=NOT_FITTED)
        compiled: CompiledForest | None = getattr(self, "_compiled", None)  # a cache, not a parameter
        if compiled is None:
            n_codes = [len(self.categories_[c]) for c in CONTEXT_CATEGORIES]
            compiled = self._compiled = compile_calibrated(self.classifier_, n_codes)
        return compiled

    def fit(self, frame: pd.DataFrame, accepted: pd.Series) -> AcceptanceModel:
        """``frame``: ``event_frame`` rows joined with the customer's features (when ``with_customer``)."""
        self.customer_columns_ = customer_columns(frame) if self.with_customer else []
        self.categories_ = {
            c: sorted(frame[c].astype("str").dropna().unique()) for c in CONTEXT_CATEGORIES if c in frame
        }
        matrix = self._matrix(frame)
        boosted = HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=0.05,
            max_leaf_nodes=15,
            l2_regularization=1.0,
            categorical_features=list(range(len(CONTEXT_CATEGORIES))),  # the leading code columns
            early_stopping=True,
            random_state=self.seed,
        )
        folds = StratifiedKFold(3, shuffle=True, random_state=self.seed)
        self._compiled = None
        self.classifier_ = CalibratedClassifierCV(boosted, method="isotonic", cv=folds).fit(
            matrix, accepted.astype(bool).to_numpy()
        )
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """P(accept) per row."""
        check_is_fitted(self, msg=NOT_FITTED)
        return self.classifier_.predict_proba(self._matrix(frame))[:, 1]
