"""Marketing consent per unified customer, read fresh from the source records at export time.

Consent follows the profiles' survivorship rule for ``marketing_consent`` (the most recent answer from
a source trusted for it, see ``profiles.survivorship``), applied to every ``customer_records`` row of
the customer's linked accounts. Reading the records rather than the last profile build means a
withdrawal counts as soon as it is ingested. No linked record, or no answer, means no consent; before
profiles are built nobody has consent on record.
"""

from __future__ import annotations

import pandas as pd

from crm_analytics.profiles.survivorship import surviving_values
from crm_analytics.profiles.tables import LINKS
from crm_analytics.warehouse import IdRange, Warehouse


def marketing_consent(
    warehouse: Warehouse, customer_ids: pd.Series, within: IdRange | None = None
) -> pd.Series:
    """True for each customer id whose surviving consent is granted (``within``: the ids' range, so
    only those customers' records are read)."""
    if not (warehouse.has_table(LINKS) and warehouse.has_table("customer_records")):
        return pd.Series(False, index=customer_ids.index)
    con = warehouse.ibis
    records = con.table("customer_records")
    links = within.filter(con.table(LINKS)) if within is not None else con.table(LINKS)
    joined = records.join(
        links,
        [records.source == links.source, records.source_customer_id == links.source_customer_id],
    ).select(
        links.customer_id,
        records.source,
        records.source_customer_id,
        records.updated_at,
        records.marketing_consent,
    )
    frame = joined.execute()
    if frame.empty:
        return pd.Series(False, index=customer_ids.index)
    survivors = surviving_values(frame, "marketing_consent").set_index("customer_id")["marketing_consent"]
    granted = survivors.astype("boolean").fillna(False).astype(bool)
    return customer_ids.map(granted).fillna(False).astype(bool)
