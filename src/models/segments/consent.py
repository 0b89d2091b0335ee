"""Marketing consent per customer, as the customer's own source system last recorded it.

Until unified profiles land (issue #6), a customer id is the id of one source system's account (the
``source`` of its transactions): consent is that account's ``marketing_consent`` in its most recent
``customer_records`` row. No record, or a missing value, means no consent. Profiles will replace this
with the surviving consent across every system.
"""

from __future__ import annotations

import ibis
import pandas as pd

from crm_analytics.ingest.warehouse import Warehouse


def marketing_consent(warehouse: Warehouse, customer_ids: pd.Series) -> pd.Series:
    """True for each customer id whose latest own-source record grants marketing consent."""
    con = warehouse.ibis
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
