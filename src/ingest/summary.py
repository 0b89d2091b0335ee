"""What is in the warehouse, computed with Ibis so it runs on any backend."""

from __future__ import annotations

from typing import Any

from crm_analytics.ingest.contracts import CONTRACTS
from crm_analytics.warehouse import Warehouse


def warehouse_summary(warehouse: Warehouse) -> dict[str, Any]:
    """Row counts per table, the transactions at a glance, and quarantine counts by reason."""
    con = warehouse.ibis
    tables = {name: int(con.table(name).count().execute()) for name in [*CONTRACTS, "quarantine"]}
    tx = con.table("transactions")
    overview = tx.aggregate(
        customers=tx.customer_id.nunique(),
        sources=tx.source.nunique(),
        first=tx.timestamp.min(),
        last=tx.timestamp.max(),
    ).execute()
    by_type = tx.group_by([tx.type, tx.currency]).aggregate(rows=tx.count(), amount=tx.amount.sum()).execute()
    quarantine = con.table("quarantine")
    reasons = (
        quarantine.group_by([quarantine.table_name, quarantine.column_name, quarantine.reason])
        .aggregate(rows=quarantine.row_number.nunique())
        .order_by([quarantine.table_name, quarantine.column_name])
        .execute()
    )
    first, last = overview["first"].iloc[0], overview["last"].iloc[0]
    return {
        "warehouse": warehouse.backend,
        "tables": tables,
        "transactions": {
            "customers": int(overview["customers"].iloc[0]),
            "sources": int(overview["sources"].iloc[0]),
            "first": None if tables["transactions"] == 0 else str(first),
            "last": None if tables["transactions"] == 0 else str(last),
            "by_type": [
                {
                    "type": r.type,
                    "currency": r.currency,
                    "rows": int(r.rows),
                    "amount": round(float(r.amount), 2),
                }
                for r in by_type.sort_values(["type", "currency"]).itertuples()
            ],
        },
        "quarantine": [
            {"table": r.table_name, "column": r.column_name, "reason": r.reason, "rows": int(r.rows)}
            for r in reasons.itertuples()
        ],
    }
