"""Source customer records: read from the warehouse and normalised for matching.

Matching compares normalised values (accents and punctuation folded out of names, e-mail addresses
checked and lower-cased by ``email-validator``, phones in E.164 by ``phonenumbers``, Google's
libphonenumber, read in the record's country, postcodes without spaces) so that formatting differences
between systems (billing stores phones without spaces, the desk types the national ``01 62 55 24 99``
or ``+33 (0)1 62 55 24 99``, one system writes ``Müller``, another ``Muller``) never decide a match.
The original values stay in ``customer_records``; survivorship reads those.
"""

from __future__ import annotations

import unicodedata

import pandas as pd
import phonenumbers
from email_validator import EmailNotValidError, validate_email

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
    """The address lower-cased if its syntax is valid (``email-validator``, no DNS look-up), else None."""
    if value is None or pd.isna(value):
        return None
    try:
        checked = validate_email(str(value).strip(), check_deliverability=False)
    except EmailNotValidError:
        return None
    return str(checked.normalized).lower()


def normalise_phone(value: object, country: object = None) -> str | None:
    """The number in E.164 (``+33162552499``) if it is a valid number, else None.

    ``country`` (ISO 3166 alpha-2) is the region a national number (``01 62 55 24 99``) is read in, and
    its international prefix (``00`` in most countries) is understood; a number written with ``+``
    needs none. Without a country, a leading ``00`` is read as ``+`` (the ITU-recommended prefix).
    """
    if value is None or pd.isna(value):
        return None
    text = str(value).strip()
    region = str(country).strip().upper() if isinstance(country, str) and country.strip() else None
    if region is None and text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


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
            "phone": pd.Series(
                map(normalise_phone, _column(latest, "phone"), _column(latest, "country")),
                index=latest.index,
                dtype=object,
            ),
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
