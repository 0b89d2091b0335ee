"""Marketing consent per customer.

Once profiles are built, a customer is a unified customer and consent is the profile's surviving
``marketing_consent`` (the most recent answer from a source trusted for it, see
``profiles.survivorship``). Before that, a customer id is one source system's account and consent is
that account's most recent ``customer_records`` row. No record, or a missing value, means no consent.
"""

from __future__ import annotations

import ibis
import pandas as pd

from crm_analytics.ingest.warehouse import Warehouse
from crm_analytics.profiles.tables import PROFILES


def marketing_consent(warehouse: Warehouse, customer_ids: pd.Series) -> pd.Series:
    """True for each customer id whose consent on record is granted."""
    con = warehouse.ibis
    if warehouse.has_table(PROFILES):
        profiles = con.table(PROFILES).select("customer_id", "marketing_consent").execute()
        granted = profiles.set_index("customer_id")["marketing_consent"].fillna(False).astype(bool)
        return customer_ids.map(granted).fillna(False).astype(bool)
    if not warehouse.has_table("customer_records"):
        return pd.Series(False, index=customer_ids.index)
    transactions = con.table("transactions")
    accounts = transactions.select("customer_id", "source").distinct()
    records = con.table("customer_records")
    latest = records.mutate(
        rank=ibis.row_number().over(
            group_by=[records.source, records.source_customer_id], order_by=ibis.desc(records.updated_at)
        )
    ).filter(lambda t: t["rank"] == 0)
    joined = accounts.join(
        latest,
        [accounts.source == latest.source, accounts.customer_id == latest.source_customer_id],
    ).select(accounts.customer_id, consent=latest.marketing_consent.fill_null(False))
    granted = joined.group_by("customer_id").aggregate(consent=joined.consent.all()).execute()
    lookup = dict(zip(granted["customer_id"], granted["consent"].astype(bool), strict=True))
    return customer_ids.map(lambda cid: lookup.get(cid, False)).astype(bool)
