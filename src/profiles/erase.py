"""Erase one customer on request (GDPR art. 17): every row about them, and a suppression for re-ingest.

``erase_customer`` resolves the person's source records (``customer_links`` for a unified id, else the
id as a source account id in every source that carries it), collects their transactions and the
identifying values of their records, then in one transaction deletes their rows from every table in
``PER_CUSTOMER_TABLES`` and the quarantined rows that mention them, and records a keyed hash of each
account and transaction in ``erasure_suppressions`` (see ``ingest.suppression``) so a later ingest of
the same source rows drops them.

``PER_CUSTOMER_TABLES`` is the one list of tables holding rows about a customer and the columns that tie
a row to them. A new table with per-customer rows is one more line there. The serving store, a database
of its own, is cleared by ``crm erase`` through ``ServingStore.erase`` (its own list of per-customer
tables). Table names of later layers (features, segments) are spelled out here rather than imported,
so this layer does not import from the layers below it.

Rows are matched by id, not by content: a customer id in a ``customer_id`` column, a (source, account)
or a (source, transaction) pair. Quarantined rows are found by their JSON payload containing one of the
person's ids as a field value (``"customer_id": "G0000042"``) or, quoted, their e-mail, phone or loyalty
id. Run erasures while no ingest is running: rows ingested concurrently may escape the collected ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import ibis
import ibis.expr.types as ir

from crm_analytics.ingest.suppression import Kind, erasure_key, record_suppressions
from crm_analytics.profiles.tables import CONFLICTS, LINKS, MERGES, PROFILES, RECORDS, SERVICE_FACTS
from crm_analytics.settings import Settings
from crm_analytics.warehouse import Execute, Warehouse, migrations

Pair = tuple[str, str]  # (source, id)
_IDS_PER_STATEMENT = 500
_NEEDLES_PER_STATEMENT = 100


@dataclass(frozen=True)
class PerCustomerTable:
    """A warehouse table with rows about one customer, and the columns that tie a row to them.

    ``customer``: a column (or several) holding a unified or an account customer id; ``account``: a
    column holding a source account id (paired with ``source``); ``transaction``: a transaction id
    (paired with ``source``). A row matching any of them is deleted.
    """

    table: str
    customer: str | tuple[str, ...] | None = None
    account: str | None = None
    transaction: str | None = None


PER_CUSTOMER_TABLES: tuple[PerCustomerTable, ...] = (
    PerCustomerTable("customer_records", account="source_customer_id"),
    PerCustomerTable("transactions", account="customer_id", transaction="transaction_id"),
    PerCustomerTable("transaction_items", transaction="transaction_id"),
    PerCustomerTable("offer_log", account="customer_id", transaction="transaction_id"),
    PerCustomerTable(LINKS, customer="customer_id", account="source_customer_id"),
    PerCustomerTable(PROFILES, customer="customer_id"),
    PerCustomerTable(SERVICE_FACTS, customer="customer_id"),
    PerCustomerTable(CONFLICTS, customer="customer_id"),
    PerCustomerTable(RECORDS, customer="customer_id", account="source_customer_id"),
    PerCustomerTable(MERGES, customer=("from_id", "into_id")),
    PerCustomerTable("features", customer="customer_id"),
    PerCustomerTable("segment_membership", customer="customer_id"),
    PerCustomerTable("customer_scores", customer="customer_id"),
)
QUARANTINE = "quarantine"
# where a source account id appears in the raw tables
ACCOUNT_COLUMNS = (
    ("customer_records", "source_customer_id"),
    ("transactions", "customer_id"),
    ("offer_log", "customer_id"),
)
IDENTIFYING_COLUMNS = ("email", "phone", "loyalty_id")  # searched for in quarantined payloads


@dataclass
class ErasureReport:
    """What an erasure removed: counts only, never personal values."""

    customer_id: str
    accounts: int
    transactions: int
    rows_deleted: dict[str, int] = field(default_factory=dict)
    suppressions: int = 0
    erased_at: datetime | None = None
    # every id the person had here (unified and account ids), for clearing other stores; not reported
    person_ids: frozenset[str] = field(default_factory=frozenset, repr=False)

    def as_dict(self) -> dict[str, object]:
        counts = {k: v for k, v in asdict(self).items() if k != "person_ids"}
        return counts | {"erased_at": str(self.erased_at)}


@dataclass
class _Person:
    """Everything that identifies the person in the warehouse, collected before anything is deleted."""

    customer_ids: set[str]
    accounts: set[Pair]
    transactions: set[Pair]
    identifiers: set[str]


def erase_customer(
    warehouse: Warehouse, customer_id: str, settings: Settings, *, now: datetime | None = None
) -> ErasureReport:
    """Delete every row about ``customer_id`` (a unified or a source account id) and suppress re-ingest.

    Raises LookupError when the warehouse holds nothing about the id (including after an erasure).
    """
    person = _resolve(warehouse, customer_id)
    migrations.upgrade(warehouse)
    key = erasure_key(settings)
    erased_at = now or datetime.now(UTC).replace(tzinfo=None)
    report = ErasureReport(
        customer_id,
        len(person.accounts),
        len(person.transactions),
        erased_at=erased_at,
        person_ids=frozenset(person.customer_ids),
    )
    with warehouse.transaction() as execute:
        for spec in PER_CUSTOMER_TABLES:
            if warehouse.has_table(spec.table):
                report.rows_deleted[spec.table] = _delete_rows(execute, spec, person)
        report.rows_deleted[QUARANTINE] = _delete_quarantined(execute, _needles(person))
        subjects: list[tuple[Kind, str, str]] = [
            *(("account", s, a) for s, a in person.accounts),
            *(("transaction", s, t) for s, t in person.transactions),
        ]
        report.suppressions = record_suppressions(execute, key, subjects, erased_at)
    return report


def _resolve(warehouse: Warehouse, customer_id: str) -> _Person:
    """The person's ids, their transactions and identifying values; LookupError for an unknown id."""
    unified, accounts = _accounts(warehouse, customer_id)
    customer_ids = {customer_id} | _merged_into(warehouse, unified) | {account for _, account in accounts}
    if not accounts and not _mentioned(warehouse, customer_ids):
        raise LookupError(f"customer_id: no customer {customer_id} in the warehouse")
    transactions: set[Pair] = set()
    if accounts:
        rows = warehouse.ibis.table("transactions")
        transactions = _pairs(rows.filter(_pair_filter(rows, "customer_id", accounts)), "transaction_id")
    return _Person(customer_ids, accounts, transactions, _identifiers(warehouse, accounts, unified))


def _accounts(warehouse: Warehouse, customer_id: str) -> tuple[set[str], set[Pair]]:
    """Unified ids and (source, account) pairs of the person: by unified id through the links, else the
    id as a source account id in any source; an account that profiles linked stands for its customer.
    The id itself is an account too where a source carries our ids (API feedback in the offer log)."""
    con = warehouse.ibis
    accounts = _accounts_named(warehouse, {customer_id})
    links = con.table(LINKS) if warehouse.has_table(LINKS) else None
    if links is not None:
        linked_accounts = _pairs(links.filter(links.customer_id == customer_id), "source_customer_id")
        if linked_accounts:
            return {customer_id}, linked_accounts | accounts
    if not accounts or links is None:
        return set(), accounts
    linked = links.filter(_pair_filter(links, "source_customer_id", accounts)).customer_id
    unified = {str(u) for u in linked.to_pandas().dropna()}
    if unified:
        accounts |= _pairs(links.filter(links.customer_id.isin(sorted(unified))), "source_customer_id")
        accounts |= _accounts_named(warehouse, unified)
    return unified, accounts


def _merged_into(warehouse: Warehouse, unified: set[str]) -> set[str]:
    """``unified`` and every id merged into them (``customer_merges``, followed back): rows of later
    layers may still carry an id from before a merge. Not split rows: the id split from is another
    person's."""
    if not unified or not warehouse.has_table(MERGES):
        return set(unified)
    merges = warehouse.ibis.table(MERGES)
    merged = merges.filter(merges.reason == "merge").select("from_id", "into_id").to_pandas()
    found, frontier = set(unified), set(unified)
    while frontier:
        frontier = set(merged.loc[merged["into_id"].isin(frontier), "from_id"]) - found
        found |= frontier
    return found


def _accounts_named(warehouse: Warehouse, ids: set[str]) -> set[Pair]:
    """(source, account) pairs whose account id is one of ``ids`` in any raw table."""
    accounts: set[Pair] = set()
    for table, column in ACCOUNT_COLUMNS:
        rows = warehouse.ibis.table(table)
        accounts |= _pairs(rows.filter(rows[column].isin(sorted(ids))), column)
    return accounts


def _pairs(rows: ir.Table, column: str) -> set[Pair]:
    found = rows.select("source", column).distinct().to_pandas().dropna()
    return {(str(s), str(i)) for s, i in found.itertuples(index=False, name=None)}


def _pair_filter(table: ir.Table, column: str, pairs: set[Pair]) -> ir.BooleanValue:
    """``(source, column)`` is one of ``pairs``: one IN list per source."""
    by_source = _by_source(pairs)
    return ibis.or_(*[(table.source == s) & table[column].isin(ids) for s, ids in by_source.items()])


def _by_source(pairs: Iterable[Pair]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for source, value in sorted(pairs):
        grouped.setdefault(source, []).append(value)
    return grouped


def _mentioned(warehouse: Warehouse, customer_ids: set[str]) -> bool:
    """Whether a table keyed by customer id still holds the id (e.g. features after raw rows are gone)."""
    for spec in PER_CUSTOMER_TABLES:
        if not warehouse.has_table(spec.table):
            continue
        rows = warehouse.ibis.table(spec.table)
        for column in _columns(spec.customer):
            if rows.filter(rows[column].isin(sorted(customer_ids))).count().to_pandas() > 0:
                return True
    return False


def _columns(customer: str | tuple[str, ...] | None) -> tuple[str, ...]:
    if customer is None:
        return ()
    return (customer,) if isinstance(customer, str) else customer


def _identifiers(warehouse: Warehouse, accounts: set[Pair], unified: set[str]) -> set[str]:
    """E-mails, phones and loyalty ids of the person: as recorded and as profiles normalised them."""
    frames = []
    if accounts:
        records = warehouse.ibis.table("customer_records")
        frames.append(records.filter(_pair_filter(records, "source_customer_id", accounts)))
    for table in (RECORDS, PROFILES):
        if unified and warehouse.has_table(table):
            rows = warehouse.ibis.table(table)
            frames.append(rows.filter(rows.customer_id.isin(sorted(unified))))
    values: set[str] = set()
    for rows in frames:
        found = rows.select(*IDENTIFYING_COLUMNS).to_pandas()
        for column in IDENTIFYING_COLUMNS:
            values |= {str(v) for v in found[column].dropna() if str(v).strip()}
    return values


def _delete_rows(execute: Execute, spec: PerCustomerTable, person: _Person) -> int:
    deleted = 0
    for customer in _columns(spec.customer):
        for ids in _chunks(sorted(person.customer_ids)):
            deleted += execute(f'DELETE FROM "{spec.table}" WHERE "{customer}" IN ({_marks(ids)})', ids)
    for column, pairs in ((spec.account, person.accounts), (spec.transaction, person.transactions)):
        if not column:
            continue
        for source, ids in _by_source(pairs).items():
            for chunk in _chunks(ids):
                deleted += execute(
                    f'DELETE FROM "{spec.table}" WHERE "source" = ? AND "{column}" IN ({_marks(chunk)})',
                    [source, *chunk],
                )
    return deleted


def _needles(person: _Person) -> set[str]:
    """JSON fragments that mark a quarantined payload as the person's."""

    def field_value(name: str, value: str) -> str:
        return f"{json.dumps(name)}: {json.dumps(value, ensure_ascii=False)}"

    needles = {json.dumps(value, ensure_ascii=False) for value in person.identifiers}
    for _, account in person.accounts:
        needles |= {field_value("customer_id", account), field_value("source_customer_id", account)}
    needles |= {field_value("transaction_id", transaction) for _, transaction in person.transactions}
    return needles


def _delete_quarantined(execute: Execute, needles: set[str]) -> int:
    deleted = 0
    for chunk in _chunks(sorted(needles), _NEEDLES_PER_STATEMENT):
        match = " OR ".join(["strpos(payload, ?) > 0"] * len(chunk))
        deleted += execute(f'DELETE FROM "{QUARANTINE}" WHERE {match}', chunk)
    return deleted


def _chunks(values: list[str], size: int = _IDS_PER_STATEMENT) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _marks(values: list[str]) -> str:
    return ", ".join(["?"] * len(values))
