"""One unified customer as ``crm profiles show`` (and later the API) presents it."""

from __future__ import annotations

from typing import Any

import pandas as pd

from crm_analytics.profiles.links import customer_transactions
from crm_analytics.profiles.store import read_table
from crm_analytics.profiles.tables import CONFLICTS, FIELD_GROUPS, LINKS, PROFILES, SERVICE_FACTS
from crm_analytics.warehouse import Warehouse


def customer_profile(warehouse: Warehouse, customer_id: str) -> dict[str, Any]:
    """Surviving fields with provenance, service facts, linked records, open conflicts and a purchase
    summary; a LookupError when there is no such customer."""
    profiles = read_table(warehouse, PROFILES, customer_id=customer_id)
    if profiles.empty:
        raise LookupError(f"customer_id: no profile {customer_id!r}; see `crm profiles lookup`")
    row = profiles.iloc[0]
    fields = {
        group: {
            "value": " ".join(_text(row[c]) for c in columns if _text(row[c])) or None,
            "source": _text(row[f"{group}_source"]) or None,
            "updated_at": _text(row[f"{group}_updated_at"]) or None,
        }
        for group, columns in FIELD_GROUPS.items()
    }
    facts = read_table(warehouse, SERVICE_FACTS, customer_id=customer_id).sort_values(["fact", "value"])
    links = read_table(warehouse, LINKS, customer_id=customer_id).sort_values(
        ["source", "source_customer_id"]
    )
    conflicts = read_table(warehouse, CONFLICTS, customer_id=customer_id)
    return {
        "customer_id": customer_id,
        "fields": fields,
        "service_facts": _records(facts[["fact", "value", "source", "last_confirmed"]]),
        "records": _records(links[["source", "source_customer_id", "match_probability", "matched_by"]]),
        "conflicts": _records(conflicts[["field", "reason", "candidates"]]),
        "history": _history(warehouse, customer_id),
    }


def _history(warehouse: Warehouse, customer_id: str) -> dict[str, Any]:
    """Purchases across every linked account: count, first and last date, total amount by currency."""
    transactions = customer_transactions(warehouse.ibis)
    mine = transactions.filter((transactions.customer_id == customer_id) & (transactions.type == "purchase"))
    frame = mine.select("timestamp", "amount", "currency").execute()
    if frame.empty:
        return {"purchases": 0, "first": None, "last": None, "spend": {}}
    spend = frame.groupby("currency")["amount"].sum().round(2)
    return {
        "purchases": len(frame),
        "first": str(frame["timestamp"].min()),
        "last": str(frame["timestamp"].max()),
        "spend": {str(k): float(v) for k, v in spend.items()},
    }


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: _text(v) if not isinstance(v, float) else v for k, v in r.items()}
        for r in frame.to_dict("records")
    ]


def _text(value: object) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat() if value == value.normalize() else value.isoformat(sep=" ")
    return str(value)
