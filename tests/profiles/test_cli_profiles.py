"""`crm profiles build|show|lookup` and `crm erase` end to end on a small demo chain."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.test_cli import crm


@pytest.mark.slow  # a whole demo chain: in `make test`, not in the fast loop
def test_build_show_lookup_then_erase() -> None:
    assert crm("data", "demo", "--customers", "400", "--seed", "4", "--out", "demo")[0] == 0
    assert crm("ingest", "demo", "--json")[0] == 0

    code, build, _ = crm("profiles", "build", "--truth", "demo/truth", "--json")
    assert code == 0
    assert build["quality"]["f1"] >= 0.98
    assert build["run_id"]
    assert not build["incremental"]
    code, again, _ = crm("profiles", "build", "--incremental", "--json")
    assert code == 0
    assert (again["incremental"], again["changed_records"], again["customers"]) == (
        True,
        0,
        build["customers"],
    )
    assert crm("warehouse", "publish")[0] == 0  # show and lookup read the published copy

    billing = pd.read_parquet("demo/customers_billing.parquet").iloc[0]
    code, found, _ = crm("profiles", "lookup", "--email", billing["email"], "--json")
    assert code == 0
    (match,) = found["matches"]
    assert (match["confidence"], match["matched_by"]) == (1.0, "email")

    code, profile, _ = crm("profiles", "show", match["customer_id"], "--json")
    assert code == 0
    assert {"source": "billing", "source_customer_id": billing["source_customer_id"]}.items() <= next(
        r for r in profile["records"] if r["source"] == "billing"
    ).items()

    code, erased, _ = crm("erase", match["customer_id"], "--yes", "--json")
    assert code == 0
    assert erased["suppressions"] >= 1
    assert billing["email"] not in str(erased)

    code, _, stderr = crm("profiles", "show", match["customer_id"])
    assert code == 1
    assert "no profile" in stderr
    assert crm("profiles", "lookup", "--email", billing["email"], "--json")[1] == {"matches": []}
    code, again, _ = crm("ingest", "demo", "--json")
    assert code == 0
    assert again["totals"]["customer_records"]["rows_suppressed"] >= 1
    assert again["totals"]["customer_records"]["rows_new"] == 0


def test_lookup_without_enough_details_is_a_usage_error() -> None:
    assert crm("data", "demo", "--customers", "200", "--seed", "4", "--out", "demo")[0] == 0
    crm("ingest", "demo")
    crm("profiles", "build")
    crm("warehouse", "publish")
    code, _, stderr = crm("profiles", "lookup", "--first-name", "Anna", "--last-name", "Smith")
    assert code == 2
    assert "details: give an e-mail, a phone" in stderr


def test_erase_asks_before_erasing_and_unknown_ids_fail_cleanly() -> None:
    code, _, stderr = crm("erase", "U0000000000000000", "--yes")
    assert code == 1
    assert "no customer" in stderr
