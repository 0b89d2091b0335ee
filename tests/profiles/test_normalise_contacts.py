"""Contacts normalised by maintained libraries: phonenumbers (E.164 in the record's country) and
email-validator (syntax only)."""

from __future__ import annotations

import pytest

from crm_analytics.profiles.records import normalise_email, normalise_phone


@pytest.mark.parametrize(
    ("written", "country"),
    [
        ("+33 1 62 55 24 99", None),
        ("+33 (0)1 62 55 24 99", None),
        ("0033 1 62 55 24 99", None),
        ("0033 1 62 55 24 99", "FR"),
        ("01 62 55 24 99", "FR"),
        ("01.62.55.24.99", "fr"),
        ("01-62-55-24-99", "FR"),
        ("0162552499", "FR"),
        ("+33 1 62 55 24 99", "GB"),  # written internationally: the country does not matter
    ],
)
def test_every_way_of_writing_a_french_number_is_one_e164(written: str, country: str | None) -> None:
    assert normalise_phone(written, country) == "+33162552499"


@pytest.mark.parametrize(
    ("written", "country"),
    [
        ("01 62 55 24 99", None),  # national, and no country to read it in
        ("12", "FR"),
        ("+33 1 23", None),
        ("not a phone", "FR"),
        ("+44 20 5123 4567", None),  # no London number starts 020 5
        ("", "FR"),
        (None, "FR"),
        (float("nan"), None),
        ("+33 1 62 55 24 99", "XX"),  # an unknown country is ignored for an international number
    ],
)
def test_an_invalid_or_unreadable_number_is_none(written: object, country: str | None) -> None:
    expected = "+33162552499" if written == "+33 1 62 55 24 99" else None
    assert normalise_phone(written, country) == expected


def test_e_mail_syntax_is_checked_and_the_address_lower_cased() -> None:
    assert normalise_email(" Grace.Okafor@Example.ORG ") == "grace.okafor@example.org"
    for invalid in ("grace@", "grace okafor@example.org", "@example.org", "grace@localhost", "", None):
        assert normalise_email(invalid) is None
