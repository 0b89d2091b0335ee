"""Raw input contracts: one pandera model per warehouse table, plus the table's natural key.

A contract is the single description of a table: its columns and types (which also give the warehouse
DDL), which columns may be missing or empty, the value rules a row must pass, and the key that makes
ingest idempotent. Cross-column rules are dataframe checks whose error starts with ``"<column>: "`` so a
rejected row names the field at fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import pandera.pandas as pa
import pycountry
from pandera.typing import Series

from crm_analytics.ingest.currencies import ISO_4217

TRANSACTION_TYPES = ("purchase", "refund", "cancellation")
ISO_3166_ALPHA_2 = frozenset(country.alpha_2 for country in pycountry.countries)
OFFER_UNITS = ("stay", "night", "guest", "guest_night")
NAME_LIST = r"^[a-z0-9_]+(;[a-z0-9_]+)*$"  # a ;-separated list of lower-case names


def non_empty() -> Any:
    """A required text field that may not be empty."""
    return pa.Field(str_length={"min_value": 1})


def identifier() -> Any:
    """A required id: 1 to 128 characters, no whitespace or control characters."""
    return pa.Field(str_matches=r"^[^\s\x00-\x1f\x7f]{1,128}$")


class Transactions(pa.DataFrameModel):
    """One money movement: a purchase (booking, order), a refund or a cancellation.

    Sign convention: purchases are >= 0 (a $0 purchase is a real, free purchase occasion, as in
    CDNOW_master), refunds < 0, cancellations <= 0 (0 when nothing had been paid).
    """

    transaction_id: Series[str] = identifier()
    customer_id: Series[str] = identifier()
    source: Series[str] = non_empty()
    timestamp: Series[pd.Timestamp]
    amount: Series[float]
    currency: Series[str]
    type: Series[str] = pa.Field(isin=TRANSACTION_TYPES)
    channel: Series[str] | None = pa.Field(nullable=True)
    reference_id: Series[str] | None = pa.Field(nullable=True)
    hotel_id: Series[str] | None = pa.Field(nullable=True)
    check_in: Series[pd.Timestamp] | None = pa.Field(nullable=True)
    nights: Series[pd.Int64Dtype] | None = pa.Field(nullable=True, ge=1)
    guests: Series[pd.Int64Dtype] | None = pa.Field(nullable=True, ge=1)
    room_type: Series[str] | None = pa.Field(nullable=True)
    purpose: Series[str] | None = pa.Field(nullable=True, isin=("business", "leisure"))

    @pa.check("currency", error="not an ISO 4217 currency code (three capital letters, e.g. EUR)")
    def _iso_currency(cls, currency: Series[str]) -> pd.Series:
        return currency.isin(ISO_4217)

    @pa.check("amount", error="not a finite number")
    def _finite_amount(cls, amount: Series[float]) -> pd.Series:
        return amount.abs() < float("inf")

    @pa.dataframe_check(error="amount: a purchase must not be negative")
    def _purchase_sign(cls, df: pd.DataFrame) -> pd.Series:
        return ~((df["type"] == "purchase") & (df["amount"] < 0))

    @pa.dataframe_check(error="amount: a refund must be negative")
    def _refund_sign(cls, df: pd.DataFrame) -> pd.Series:
        return ~((df["type"] == "refund") & (df["amount"] >= 0))

    @pa.dataframe_check(error="amount: a cancellation must not be positive")
    def _cancellation_sign(cls, df: pd.DataFrame) -> pd.Series:
        return ~((df["type"] == "cancellation") & (df["amount"] > 0))

    class Config:
        coerce = True


class TransactionItems(pa.DataFrameModel):
    """A line of a purchase: a product, room or offer with quantity and unit price."""

    source: Series[str] = non_empty()
    transaction_id: Series[str] = identifier()
    line_no: Series[pd.Int64Dtype] = pa.Field(ge=1)
    item_id: Series[str] = non_empty()
    category: Series[str] = pa.Field(nullable=True)
    quantity: Series[pd.Int64Dtype] = pa.Field(ge=1)
    unit_price: Series[float] = pa.Field(ge=0)

    class Config:
        coerce = True


class CustomerRecords(pa.DataFrameModel):
    """A customer as one source system (CRM, booking, billing, ...) knows them at ``updated_at``.

    Service facts (``allergies``, ``accessibility_needs``, ``room_preferences``) are ``;``-separated
    lists, present only where the source records them. A missing ``marketing_consent`` means no consent.
    """

    source: Series[str] = non_empty()
    source_customer_id: Series[str] = identifier()
    first_name: Series[str] | None = pa.Field(nullable=True)
    last_name: Series[str] | None = pa.Field(nullable=True)
    email: Series[str] | None = pa.Field(nullable=True, str_matches=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    phone: Series[str] | None = pa.Field(nullable=True, str_matches=r"^\+?[0-9 ()./-]{6,}$")
    street: Series[str] | None = pa.Field(nullable=True)
    city: Series[str] | None = pa.Field(nullable=True)
    postcode: Series[str] | None = pa.Field(nullable=True)
    country: Series[str] | None = pa.Field(nullable=True, str_matches=r"^[A-Z]{2}$")
    birth_date: Series[pd.Timestamp] | None = pa.Field(nullable=True)
    updated_at: Series[pd.Timestamp]
    marketing_consent: Series[pd.BooleanDtype] | None = pa.Field(nullable=True)
    loyalty_id: Series[str] | None = pa.Field(nullable=True)
    allergies: Series[str] | None = pa.Field(nullable=True)
    accessibility_needs: Series[str] | None = pa.Field(nullable=True)
    room_preferences: Series[str] | None = pa.Field(nullable=True)

    class Config:
        coerce = True


class Offers(pa.DataFrameModel):
    """An offer that can be suggested at booking time, with its eligibility attributes.

    ``price`` and ``margin`` are per ``unit``: per ``stay`` (once per booking), per ``night``, per
    ``guest`` or per ``guest_night`` (guests x nights), so the margin of a sale is ``margin`` times the
    quantity the unit implies for the booking. A missing or empty ``unit`` means ``stay``: validation
    fills it in for new rows; rows stored before the column existed hold NULL, which the offer models
    read as ``stay`` too. ``valid_from`` / ``valid_until`` (optional dates) limit the stays the offer is
    sold for: every night of the stay must lie within them.
    """

    offer_id: Series[str] = identifier()
    name: Series[str] = non_empty()
    category: Series[str] = non_empty()
    price: Series[float] = pa.Field(ge=0)
    margin: Series[float]
    unit: Series[str] | None = pa.Field(nullable=True, isin=OFFER_UNITS, default="stay")
    hotel_ids: Series[str] | None = pa.Field(nullable=True)
    requires_spa: Series[pd.BooleanDtype] | None = pa.Field(nullable=True)
    requires_parking: Series[pd.BooleanDtype] | None = pa.Field(nullable=True)
    requires_airport: Series[pd.BooleanDtype] | None = pa.Field(nullable=True)
    room_types: Series[str] | None = pa.Field(nullable=True)
    min_nights: Series[pd.Int64Dtype] | None = pa.Field(nullable=True, ge=1)
    carpeted: Series[pd.BooleanDtype] | None = pa.Field(nullable=True)
    hypoallergenic: Series[pd.BooleanDtype] | None = pa.Field(nullable=True)
    valid_from: Series[pd.Timestamp] | None = pa.Field(nullable=True)
    valid_until: Series[pd.Timestamp] | None = pa.Field(nullable=True)

    @pa.dataframe_check(error="valid_until: must not be before valid_from")
    def _valid_period(cls, df: pd.DataFrame) -> pd.Series:
        if "valid_from" not in df or "valid_until" not in df:
            return pd.Series(True, index=df.index)
        return df["valid_from"].isna() | df["valid_until"].isna() | (df["valid_until"] >= df["valid_from"])

    @pa.dataframe_check(error="margin: must not exceed the price")
    def _margin_within_price(cls, df: pd.DataFrame) -> pd.Series:
        return df["margin"] <= df["price"]

    class Config:
        coerce = True


class Hotels(pa.DataFrameModel):
    """A hotel of the chain: where it is (``country`` gives the phone numbers typed at its desk their
    region), the room types it sells and its facilities.

    ``room_types`` and ``facilities`` are ``;``-separated lists of lower-case names (letters, digits and
    ``_``). The facilities the offers' ``requires_*`` flags ask for are ``spa``, ``parking`` and
    ``airport_transfer``; others (``pool``, ``gym``, ...) may be listed and are kept.
    """

    hotel_id: Series[str] = identifier()
    name: Series[str] = non_empty()
    city: Series[str] | None = pa.Field(nullable=True)
    country: Series[str]
    currency: Series[str] | None = pa.Field(nullable=True)
    room_types: Series[str] = pa.Field(str_matches=NAME_LIST)
    facilities: Series[str] | None = pa.Field(nullable=True, str_matches=NAME_LIST)

    @pa.check("country", error="not an ISO 3166-1 alpha-2 country code (two capital letters, e.g. FR)")
    def _iso_country(cls, country: Series[str]) -> pd.Series:
        return country.isin(ISO_3166_ALPHA_2)

    @pa.check("currency", error="not an ISO 4217 currency code (three capital letters, e.g. EUR)")
    def _iso_currency(cls, currency: Series[str]) -> pd.Series:
        return currency.isna() | currency.isin(ISO_4217)

    class Config:
        coerce = True


class OfferLog(pa.DataFrameModel):
    """An offer shown at booking time, the logging policy's propensity, and the guest's answer."""

    event_id: Series[str] = identifier()
    shown_at: Series[pd.Timestamp]
    customer_id: Series[str] = pa.Field(nullable=True)
    source: Series[str] = non_empty()
    transaction_id: Series[str] | None = pa.Field(nullable=True)
    offer_id: Series[str] = identifier()
    hotel_id: Series[str] | None = pa.Field(nullable=True)
    check_in: Series[pd.Timestamp] | None = pa.Field(nullable=True)
    nights: Series[pd.Int64Dtype] | None = pa.Field(nullable=True, ge=1)
    guests: Series[pd.Int64Dtype] | None = pa.Field(nullable=True, ge=1)
    room_type: Series[str] | None = pa.Field(nullable=True)
    channel: Series[str] | None = pa.Field(nullable=True)
    purpose: Series[str] | None = pa.Field(nullable=True, isin=("business", "leisure"))
    upgrade_available: Series[pd.BooleanDtype] | None = pa.Field(nullable=True)
    propensity: Series[float] = pa.Field(gt=0, le=1)
    accepted: Series[pd.BooleanDtype] = pa.Field(nullable=True)
    responded_at: Series[pd.Timestamp] = pa.Field(nullable=True)

    @pa.dataframe_check(error="responded_at: must not be before shown_at")
    def _response_after_offer(cls, df: pd.DataFrame) -> pd.Series:
        return df["responded_at"].isna() | (df["responded_at"] >= df["shown_at"])

    class Config:
        coerce = True


@dataclass(frozen=True)
class Contract:
    """A warehouse table: its pandera model, natural key and the time columns that may not be future."""

    table: str
    model: type[pa.DataFrameModel]
    key: tuple[str, ...]
    not_future: tuple[str, ...] = ()

    @property
    def schema(self) -> pa.DataFrameSchema:
        return self.model.to_schema()

    @property
    def columns(self) -> list[str]:
        return list(self.schema.columns)

    @property
    def required_columns(self) -> list[str]:
        return [name for name, column in self.schema.columns.items() if column.required]


CONTRACTS: dict[str, Contract] = {
    c.table: c
    for c in (
        Contract("transactions", Transactions, ("source", "transaction_id"), ("timestamp",)),
        Contract("transaction_items", TransactionItems, ("source", "transaction_id", "line_no")),
        Contract(
            "customer_records",
            CustomerRecords,
            ("source", "source_customer_id", "updated_at"),
            ("updated_at",),
        ),
        Contract("offers", Offers, ("offer_id",)),
        Contract("hotels", Hotels, ("hotel_id",)),
        Contract("offer_log", OfferLog, ("event_id",), ("shown_at",)),
    )
}


# the column that dates each row of the tables that date the data (the refresh's day, late rows)
EVENT_TIMES = {"transactions": "timestamp", "customer_records": "updated_at"}


def contract_for(table: str) -> Contract:
    """The contract of a warehouse table, or a ValueError listing the known tables."""
    try:
        return CONTRACTS[table]
    except KeyError:
        raise ValueError(f"unknown table {table!r}; expected one of {', '.join(CONTRACTS)}") from None
