"""Source customer records: read from the warehouse and normalised for matching.

Matching compares normalised values (accents and punctuation folded out of names, e-mail lower-cased,
phones reduced to ``+`` and digits, postcodes without spaces) so that formatting differences between
systems (billing stores phones without spaces, one system writes ``Müller``, another ``Muller``) never
decide a match. The original values stay in ``customer_records``; survivorship reads those.
"""

from __future__ import annotations

import unicodedata

import pandas as pd

from crm_analytics.warehouse import Warehouse

MATCH_COLUMNS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "loyalty_id",
    "birth_date",
    "street",
    "postcode",
    "city",
)


def read_records(warehouse: Warehouse) -> pd.DataFrame:
    """Every ``customer_records`` row (all versions), oldest first within a source record."""
    table = warehouse.ibis.table("customer_records")
    frame = table.order_by(["source", "source_customer_id", "updated_at"]).execute()
    return frame.drop(columns=["ingest_batch_id", "row_hash"], errors="ignore")


def latest_records(records: pd.DataFrame) -> pd.DataFrame:
    """The most recent version of each source record."""
    ordered = records.sort_values(["source", "source_customer_id", "updated_at"])
    return ordered.drop_duplicates(["source", "source_customer_id"], keep="last").reset_index(drop=True)


def record_key(source: pd.Series, source_customer_id: pd.Series) -> pd.Series:
    """The unique id of a source record across systems: ``source:source_customer_id``."""
    return source.astype(str) + ":" + source_customer_id.astype(str)


def fold_text(value: object) -> str | None:
    """Lower-case ASCII letters and digits only: ``O'Brien`` -> ``obrien``, ``Müller`` -> ``muller``."""
    if value is None or pd.isna(value):
        return None
    plain = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode()
    folded = "".join(ch for ch in plain.lower() if ch.isalnum())
    return folded or None


def normalise_email(value: object) -> str | None:
    """Trimmed, lower-case e-mail address, or None."""
    if value is None or pd.isna(value):
        return None
    text = str(value).strip().lower()
    return text or None


def normalise_phone(value: object) -> str | None:
    """``+`` and digits only, with an international ``00`` prefix written as ``+``: ``+44 20 1234 5678``
    and ``+442012345678`` compare equal. Fewer than six digits is no phone number."""
    if value is None or pd.isna(value):
        return None
    text = str(value).strip()
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) < 6:
        return None
    if text.startswith("+"):
        return "+" + digits
    return "+" + digits[2:] if digits.startswith("00") else digits


def normalise_code(value: object) -> str | None:
    """An identifier such as a loyalty number: trimmed and upper-case, or None."""
    if value is None or pd.isna(value):
        return None
    text = str(value).strip().upper()
    return text or None


def normalise_postcode(value: object) -> str | None:
    """Upper-case postcode without spaces, or None."""
    if value is None or pd.isna(value):
        return None
    text = "".join(str(value).upper().split())
    return text or None


def match_frame(latest: pd.DataFrame) -> pd.DataFrame:
    """One row per source record with the normalised columns the linkage model compares."""
    birth = pd.to_datetime(_column(latest, "birth_date"), errors="coerce")
    frame = pd.DataFrame(
        {
            "unique_id": record_key(latest["source"], latest["source_customer_id"]),
            "source": latest["source"].astype(str),
            "source_customer_id": latest["source_customer_id"].astype(str),
            "first_name": _column(latest, "first_name").map(fold_text),
            "last_name": _column(latest, "last_name").map(fold_text),
            "email": _column(latest, "email").map(normalise_email),
            "phone": _column(latest, "phone").map(normalise_phone),
            "loyalty_id": _column(latest, "loyalty_id").map(normalise_code),
            "birth_date": birth.dt.strftime("%Y-%m-%d"),
            "street": _column(latest, "street").map(fold_text),
            "postcode": _column(latest, "postcode").map(normalise_postcode),
            "city": _column(latest, "city").map(fold_text),
        }
    )
    return frame.astype(object).where(frame.notna(), None)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A column as objects, or all-missing when the source does not have it."""
    if name in frame:
        return frame[name].astype(object)
    return pd.Series([None] * len(frame), index=frame.index, dtype=object)
