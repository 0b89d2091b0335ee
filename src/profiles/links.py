"""One history per person: source-system accounts read as the unified customer they are linked to.

Transactions and offer-log rows carry their source system's account id; ``customer_links`` (written by
the profile build) maps each (source, account) to its unified customer, so one person's bookings under
two accounts form one history. Accounts without a link (or a warehouse without profiles) keep their
own id.
"""

from __future__ import annotations

import ibis.expr.types as ir
from ibis.backends import BaseBackend
from ibis.common.exceptions import TableNotFound

from crm_analytics.profiles.tables import LINKS


def customer_transactions(con: BaseBackend) -> ir.Table:
    """The ``transactions`` table with ``customer_id`` the unified customer once profiles are built."""
    return linked_to_customers(con, "transactions")


def linked_to_customers(con: BaseBackend, table: str) -> ir.Table:
    """A table keyed by (``source``, account ``customer_id``) with ``customer_id`` the unified customer."""
    rows = con.table(table)
    try:
        links = con.table(LINKS)
    except TableNotFound:
        return rows
    links = links.select(_source=links.source, _account=links.source_customer_id, _unified=links.customer_id)
    joined = rows.left_join(links, [rows.source == links._source, rows.customer_id == links._account])
    attributed = joined.mutate(customer_id=joined._unified.fill_null(joined.customer_id))
    return attributed.select(*rows.columns)
