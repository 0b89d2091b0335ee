"""Each defect in a raw row is rejected with a reason that names the field at fault."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import pandas as pd
import pytest

from crm_analytics.ingest.contracts import contract_for
from crm_analytics.ingest.validate import ContractError, validate_chunk
from tests.ingest.helpers import GOOD_TRANSACTION

NOW = datetime(2025, 1, 1)


def check(
    rows: Sequence[Mapping[str, object]], table: str = "transactions"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    raw = pd.DataFrame(rows, dtype=object, index=pd.RangeIndex(1, len(rows) + 1))
    result = validate_chunk(raw, contract_for(table), NOW, timedelta(hours=24))
    return result.valid, result.rejections


def test_valid_row_is_typed() -> None:
    valid, rejections = check([GOOD_TRANSACTION])
    assert rejections.empty
    row = valid.iloc[0]
    assert row["amount"] == 25.5
    assert row["timestamp"] == pd.Timestamp("2024-03-01 10:00:00")
    assert valid.index.tolist() == [1]


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("transaction_id", "", "missing value"),
        ("transaction_id", None, "missing value"),
        ("customer_id", "  ", "missing value"),
        ("customer_id", "C 17", "malformed id"),
        ("transaction_id", "T" * 129, "malformed id"),
        ("timestamp", "yesterday", "not an ISO 8601 date/time"),
        ("timestamp", "2024-02-30", "not an ISO 8601 date/time"),
        ("timestamp", "2031-01-01", "in the future"),
        ("amount", "12,50", "not a number"),
        ("amount", "-3", "a purchase must not be negative"),
        ("amount", "inf", "not a finite number"),
        ("nights", "2.5", "not an integer"),
        ("nights", "0", "must be >= 1"),
        ("currency", "EURO", "not an ISO 4217 currency code"),
        ("currency", "XYZ", "not an ISO 4217 currency code"),
        ("type", "sale", "not one of purchase, refund, cancellation"),
        ("channel", "caf\udce9", "not valid UTF-8 text"),
    ],
)
def test_defect_is_rejected_naming_the_field(column: str, value: object, reason: str) -> None:
    valid, rejections = check([GOOD_TRANSACTION, GOOD_TRANSACTION | {"transaction_id": "T2", column: value}])
    assert valid.index.tolist() == [1]
    assert rejections[["row_number", "column_name"]].values.tolist() == [[2, column]]
    assert reason in rejections["reason"].iloc[0]


def test_refund_must_be_negative_and_cancellation_not_positive() -> None:
    rows = [
        GOOD_TRANSACTION | {"transaction_id": "R1", "type": "refund", "amount": "-5"},
        GOOD_TRANSACTION | {"transaction_id": "R2", "type": "refund", "amount": "5"},
        GOOD_TRANSACTION | {"transaction_id": "X1", "type": "cancellation", "amount": "0"},
        GOOD_TRANSACTION | {"transaction_id": "X2", "type": "cancellation", "amount": "10"},
        GOOD_TRANSACTION | {"transaction_id": "P0", "amount": "0"},
    ]
    valid, rejections = check(rows)
    assert valid["transaction_id"].tolist() == ["R1", "X1", "P0"]
    assert rejections.set_index("row_number")["reason"].to_dict() == {
        2: "a refund must be negative",
        4: "a cancellation must not be positive",
    }


def test_every_problem_of_a_row_is_reported() -> None:
    _, rejections = check([GOOD_TRANSACTION | {"amount": "x", "currency": "EURO", "customer_id": ""}])
    assert sorted(rejections["column_name"]) == ["amount", "currency", "customer_id"]


def test_reasons_never_echo_the_value() -> None:
    secret = "jane.doe@example.com"
    _, rejections = check([GOOD_TRANSACTION | {"currency": secret, "timestamp": secret}])
    assert len(rejections) == 2
    assert not rejections["reason"].str.contains("jane").any()


def test_missing_required_column_names_it() -> None:
    row = {k: v for k, v in GOOD_TRANSACTION.items() if k != "customer_id"}
    with pytest.raises(ContractError, match="missing column 'customer_id'"):
        check([row])


def test_optional_columns_may_be_absent() -> None:
    row = {k: v for k, v in GOOD_TRANSACTION.items() if k != "channel"}
    valid, rejections = check([row])
    assert rejections.empty
    assert valid["channel"].isna().all()


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("email", "not-an-email", "malformed"),
        ("country", "Germany", "malformed"),
        ("marketing_consent", "maybe", "not true or false"),
        ("updated_at", "", "missing value"),
        ("birth_date", "31/12/1980", "not an ISO 8601 date/time"),
    ],
)
def test_customer_record_defects(column: str, value: str, reason: str) -> None:
    good = {
        "source": "crm",
        "source_customer_id": "C1",
        "first_name": "Ada",
        "last_name": "Byron",
        "email": "ada@example.org",
        "country": "GB",
        "birth_date": "1980-12-31",
        "updated_at": "2024-01-01",
        "marketing_consent": "yes",
        "allergies": "dust;feathers",
    }
    valid, rejections = check([good, good | {column: value}], table="customer_records")
    assert valid["marketing_consent"].tolist() == [True]
    assert rejections[["row_number", "column_name"]].values.tolist() == [[2, column]]
    assert reason in rejections["reason"].iloc[0]


def test_offer_margin_may_not_exceed_price() -> None:
    offer = {"offer_id": "O1", "name": "Breakfast", "category": "breakfast", "price": "20", "margin": "8"}
    _, rejections = check([offer, offer | {"offer_id": "O2", "margin": "25"}], table="offers")
    assert rejections[["row_number", "column_name", "reason"]].values.tolist() == [
        [2, "margin", "must not exceed the price"]
    ]


def test_offer_period_may_not_end_before_it_starts() -> None:
    offer = {
        "offer_id": "O1",
        "name": "Christmas dinner",
        "category": "dining",
        "price": "80",
        "margin": "30",
    }
    period = {"valid_from": "2025-12-20", "valid_until": "2025-12-27"}
    valid, rejections = check(
        [offer | period, offer | {"offer_id": "O2", "valid_from": "2025-12-27", "valid_until": "2025-12-20"}],
        table="offers",
    )
    assert valid["valid_until"].tolist() == [pd.Timestamp("2025-12-27")]
    assert rejections[["row_number", "column_name", "reason"]].values.tolist() == [
        [2, "valid_until", "must not be before valid_from"]
    ]
