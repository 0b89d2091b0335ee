"""The feature table's contract, checked before a feature table is written to the warehouse."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

SLACK = 1e-9  # floating-point room on bounded ratios


def _ratio(nullable: bool = True) -> object:
    return pa.Field(ge=0.0, le=1.0 + SLACK, nullable=nullable)


class FeatureTable(pa.DataFrameModel):
    """One row per customer and cutoff; labels only when a horizon was given."""

    customer_id: Series[str] = pa.Field(str_length={"min_value": 1})
    as_of: Series[pd.Timestamp]
    frequency: Series[float] = pa.Field(ge=0)
    recency: Series[float] = pa.Field(ge=0)
    T: Series[float] = pa.Field(ge=0)
    monetary_value: Series[float] = pa.Field(ge=0)
    days_since_last: Series[float] = pa.Field(ge=0)
    gap_mean_days: Series[float] = pa.Field(ge=0, nullable=True)
    gap_std_days: Series[float] = pa.Field(ge=0, nullable=True)
    overdue_ratio: Series[float] = pa.Field(ge=0, nullable=True)
    seasonality_strength: Series[float] = _ratio()  # type: ignore[assignment]
    spend_total: Series[float] = pa.Field(ge=0)
    spend_trend: Series[float] = pa.Field(ge=-1 - SLACK, le=1 + SLACK, nullable=True)
    lead_time_days_mean: Series[float] = pa.Field(nullable=True)
    nights_mean: Series[float] = pa.Field(ge=0, nullable=True)
    guests_mean: Series[float] = pa.Field(ge=0, nullable=True)
    business_share: Series[float] = _ratio()  # type: ignore[assignment]
    cancellation_rate: Series[float] = pa.Field(ge=0, nullable=True)
    refund_rate: Series[float] = pa.Field(ge=0, nullable=True)
    share_channel: Series[float] = pa.Field(alias="^share_channel_", regex=True, ge=0, le=1 + SLACK)
    extras_rate: Series[float] = pa.Field(alias="^extras_rate_", regex=True, ge=0, le=1 + SLACK)
    holdout_purchase_days: Series[int] | None = pa.Field(ge=0)
    holdout_spend: Series[float] | None
    churned: Series[bool] | None

    @pa.dataframe_check(error="recency: may not exceed T")
    def _recency_within_tenure(cls, df: pd.DataFrame) -> pd.Series:
        return df["recency"] <= df["T"]

    @pa.dataframe_check(error="customer_id: one row per customer and as_of")
    def _unique_key(cls, df: pd.DataFrame) -> pd.Series:
        return ~df.duplicated(["customer_id", "as_of"], keep=False)

    class Config:
        coerce = True
