"""Ingest one batch (a file or a query result) into the warehouse: validate, quarantine, merge atomically.

A batch is staged chunk by chunk (bounded memory), then merged in one transaction: new rows go to the
contract's table, invalid rows and key conflicts to ``quarantine`` with a reason, and the batch to
``ingest_batches``. Re-ingesting the same rows adds nothing: rows are keyed by the contract's natural
key, and quarantine entries by (table, row hash, column, reason). A batch whose share of invalid rows
exceeds ``ingest_max_bad_ratio`` is refused and leaves the warehouse untouched. Rows of customers erased
on request (see ``suppression``) are dropped before validation: counted, never stored or quarantined.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from crm_analytics.errors import RefusedError
from crm_analytics.ingest.contracts import Contract, contract_for
from crm_analytics.ingest.readers import file_sha256, infer_table, read_chunks, read_query, source_from_name
from crm_analytics.ingest.suppression import REASON as SUPPRESSED_REASON
from crm_analytics.ingest.suppression import Suppressions, load_suppressions, suppressed_mask
from crm_analytics.ingest.tables import QUARANTINE_COLUMNS, QUARANTINE_KEY, contract_columns
from crm_analytics.ingest.validate import validate_chunk
from crm_analytics.settings import Settings
from crm_analytics.warehouse import Execute, Warehouse, create_table_sql, migrations
from crm_analytics.warehouse.staging import STAGE_PREFIX, drop_staging_tables

OnRows = Callable[[int], None]


@dataclass
class BatchReport:
    """What one batch did. Carries row numbers and reasons, never row contents."""

    table: str
    source_file: str
    batch_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    status: str = "accepted"
    rows_read: int = 0
    rows_new: int = 0
    rows_duplicate: int = 0
    rows_rejected: int = 0
    rows_suppressed: int = 0  # erased on request: dropped, neither stored nor quarantined
    rejections_by_reason: dict[str, int] = field(default_factory=dict)
    message: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class BatchRefusedError(RefusedError):
    """The batch had too many invalid rows; nothing was written."""

    def __init__(self, report: BatchReport) -> None:
        super().__init__(report.message)
        self.report = report


def ingest_file(
    warehouse: Warehouse,
    path: Path,
    settings: Settings,
    *,
    table: str | None = None,
    source: str | None = None,
    now: datetime | None = None,
    on_rows: OnRows | None = None,
) -> BatchReport:
    """Ingest a CSV or Parquet file; the table is inferred from the file name unless given."""
    contract = contract_for(table or infer_table(path))
    source = source or source_from_name(path)
    report = BatchReport(table=contract.table, source_file=str(path))
    chunks = read_chunks(path, settings.ingest_chunk_rows)
    return _ingest(warehouse, contract, chunks, report, file_sha256(path), settings, source, now, on_rows)


def ingest_query(
    warehouse: Warehouse,
    db_url: str,
    query: str,
    settings: Settings,
    *,
    table: str,
    source: str | None = None,
    now: datetime | None = None,
    on_rows: OnRows | None = None,
) -> BatchReport:
    """Ingest the result of a SQL query against any SQLAlchemy database URL."""
    contract = contract_for(table)
    label = "sql:" + hashlib.sha256(query.encode()).hexdigest()[:12]
    report = BatchReport(table=contract.table, source_file=label)
    chunks = read_query(db_url, query, settings.ingest_chunk_rows)
    digest = hashlib.sha256(f"{db_url}\n{query}".encode()).hexdigest()
    return _ingest(warehouse, contract, chunks, report, digest, settings, source, now, on_rows)


def ingest_frame(
    warehouse: Warehouse,
    frame: pd.DataFrame,
    settings: Settings,
    *,
    table: str,
    label: str,
    now: datetime | None = None,
) -> BatchReport:
    """Ingest rows built in code (e.g. the API's feedback) exactly as a file's: ``label`` names the batch
    in ``ingest_batches`` and quarantine."""
    contract = contract_for(table)
    report = BatchReport(table=contract.table, source_file=label)
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()
    return _ingest(
        warehouse, contract, [frame.reset_index(drop=True)], report, digest, settings, None, now, None
    )


def _ingest(
    warehouse: Warehouse,
    contract: Contract,
    chunks: Iterable[pd.DataFrame],
    report: BatchReport,
    sha256: str,
    settings: Settings,
    source: str | None,
    now: datetime | None,
    on_rows: OnRows | None,
) -> BatchReport:
    migrations.upgrade(warehouse)  # ingest is the first writer: the tables exist from here on
    drop_staging_tables(warehouse)  # a killed run's leftovers hold raw rows
    started_at = datetime.now(UTC).replace(tzinfo=None)
    stage = f"{STAGE_PREFIX}{report.batch_id}"
    with warehouse.transaction() as execute:
        execute(_stage_table_sql(stage, contract))
    try:
        rejected = _stage_chunks(
            warehouse, stage, contract, chunks, report, settings, source, now or started_at, on_rows
        )
        _refuse_if_too_bad(report, rejected, settings.ingest_max_bad_ratio)
        conflicts = _key_conflicts(warehouse, stage, contract, report)
        rejected = pd.concat([rejected, conflicts], ignore_index=True)
        report.rows_rejected += len(conflicts)
        _commit(warehouse, stage, contract, rejected, report, sha256, started_at)
    finally:
        warehouse.drop_table(stage)
        warehouse.drop_table(stage + "_q")
    reasons = rejected["column_name"] + ": " + rejected["reason"]
    report.rejections_by_reason = {str(k): int(v) for k, v in reasons.value_counts().items()}
    if report.rows_suppressed:
        report.message = f"{report.rows_suppressed} rows dropped: {SUPPRESSED_REASON}"
    return report


def _stage_chunks(
    warehouse: Warehouse,
    stage: str,
    contract: Contract,
    chunks: Iterable[pd.DataFrame],
    report: BatchReport,
    settings: Settings,
    source: str | None,
    now: datetime,
    on_rows: OnRows | None,
) -> pd.DataFrame:
    """Validate chunk by chunk, load valid rows into the stage table; return the rejections.

    Rows of erased customers are dropped first, before anything could quarantine them.
    """
    tolerance = timedelta(hours=settings.ingest_future_tolerance_hours)
    suppressions = load_suppressions(warehouse, settings)  # once per batch; None when nobody was erased
    quarantined: list[pd.DataFrame] = []
    for raw in chunks:
        if source is not None and "source" in contract.columns and "source" not in raw.columns:
            raw["source"] = source
        read = len(raw)
        if suppressions is not None:
            raw = _drop_suppressed(raw, contract.table, suppressions, report)
        checked = validate_chunk(raw, contract, now, tolerance)
        report.rows_read += read
        if len(checked.rejections):
            quarantined.append(_quarantine_rows(raw, checked.rejections, report))
        valid = checked.valid.assign(_row_number=checked.valid.index.astype("int64"))
        warehouse.load_frame(stage, valid.assign(row_hash=row_hashes(checked.valid)))
        if on_rows:
            on_rows(read)
    rejected = pd.concat(quarantined, ignore_index=True) if quarantined else _empty_quarantine()
    report.rows_rejected = int(rejected["row_number"].nunique())
    return rejected


def _drop_suppressed(
    raw: pd.DataFrame, table: str, suppressions: Suppressions, report: BatchReport
) -> pd.DataFrame:
    erased = suppressed_mask(raw, table, suppressions)
    report.rows_suppressed += int(erased.sum())
    return raw.loc[~erased.to_numpy()]


def row_hashes(frame: pd.DataFrame) -> pd.Series:
    """A 64-bit content hash per row, stable across chunks: equal rows hash equal."""
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy().view(np.int64)
    return pd.Series(hashed, index=frame.index)


def _stage_table_sql(stage: str, contract: Contract) -> str:
    columns = {k: v for k, v in contract_columns(contract).items() if k != "ingest_batch_id"}
    return create_table_sql(stage, columns | {"_row_number": "BIGINT"})


def _quarantine_rows(raw: pd.DataFrame, rejections: pd.DataFrame, report: BatchReport) -> pd.DataFrame:
    """Rejected rows with their raw content as JSON (invalid UTF-8 escaped), one row per problem."""
    rows = raw.loc[rejections["row_number"].unique()]
    payloads = {
        number: json.dumps(record, default=str, ensure_ascii=False)
        .encode("utf-8", "backslashreplace")
        .decode()
        for number, record in zip(
            rows.index, rows.astype(object).where(rows.notna(), None).to_dict("records"), strict=True
        )
    }
    entries = rejections.assign(
        batch_id=report.batch_id,
        table_name=report.table,
        source_file=report.source_file,
        payload=rejections["row_number"].map(payloads),
    )
    return entries.assign(row_hash=entries["payload"].map(_text_hash))


def _text_hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big", signed=True)


def _empty_quarantine() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype="object") for name in QUARANTINE_COLUMNS}).astype(
        {"row_number": "int64", "row_hash": "int64"}
    )


def _refuse_if_too_bad(report: BatchReport, rejected: pd.DataFrame, max_ratio: float) -> None:
    if report.rows_read and report.rows_rejected / report.rows_read > max_ratio:
        report.status = "refused"
        counts = (rejected["column_name"] + ": " + rejected["reason"]).value_counts().head(3)
        top = "; ".join(f"{what} ({n} rows)" for what, n in counts.items())
        report.message = (
            f"{report.source_file}: refused, {report.rows_rejected} of {report.rows_read} rows invalid "
            f"({report.rows_rejected / report.rows_read:.1%} > CRM_INGEST_MAX_BAD_RATIO={max_ratio:.1%}); "
            f"nothing was written. Most common: {top}"
        )
        raise BatchRefusedError(report)


def _ranked(stage: str, contract: Contract) -> str:
    key = ", ".join(f'"{k}"' for k in contract.key)
    window = f"OVER (PARTITION BY {key} ORDER BY _row_number)"
    return (
        f"SELECT *, ROW_NUMBER() {window} AS _rank, FIRST_VALUE(row_hash) {window} AS _first_hash, "
        f'FIRST_VALUE(_row_number) {window} AS _first_row FROM "{stage}"'
    )


def _key_match(contract: Contract, left: str, right: str) -> str:
    return " AND ".join(f'{left}."{k}" = {right}."{k}"' for k in contract.key)


def _key_conflicts(warehouse: Warehouse, stage: str, contract: Contract, report: BatchReport) -> pd.DataFrame:
    """Rows whose key repeats with other values, in this batch or against the warehouse."""
    columns = ", ".join(f's."{c}"' for c in contract.columns)
    found = warehouse.fetch(
        f"SELECT {columns}, s._row_number, s._first_row, "
        f"CASE WHEN s._rank > 1 THEN 'in_batch' ELSE 'in_warehouse' END AS _where "
        f"FROM ({_ranked(stage, contract)}) s "
        f"WHERE (s._rank > 1 AND s.row_hash <> s._first_hash) OR (s._rank = 1 AND EXISTS ("
        f'SELECT 1 FROM "{contract.table}" t WHERE {_key_match(contract, "t", "s")} '
        f"AND t.row_hash <> s.row_hash))"
    )
    if found.empty:
        return _empty_quarantine()
    reasons = np.where(
        found["_where"] == "in_batch",
        "duplicate key with other values than row " + found["_first_row"].astype(str),
        "key already in the warehouse with other values",
    )
    rows = found[contract.columns]
    payloads = [
        json.dumps(r, default=str, ensure_ascii=False)
        for r in rows.astype(object).where(rows.notna(), None).to_dict("records")
    ]
    entries = pd.DataFrame(
        {
            "row_number": found["_row_number"].astype("int64"),
            "column_name": ",".join(contract.key),
            "reason": reasons,
            "batch_id": report.batch_id,
            "table_name": report.table,
            "source_file": report.source_file,
            "payload": payloads,
        }
    )
    return entries.assign(row_hash=entries["payload"].map(_text_hash))


def _commit(
    warehouse: Warehouse,
    stage: str,
    contract: Contract,
    rejected: pd.DataFrame,
    report: BatchReport,
    sha256: str,
    started_at: datetime,
) -> None:
    """One transaction: new rows, new quarantine entries, the batch record."""
    quarantine_stage = stage + "_q"
    with warehouse.transaction() as execute:
        execute(create_table_sql(quarantine_stage, QUARANTINE_COLUMNS))
    now = datetime.now(UTC).replace(tzinfo=None)
    warehouse.load_frame(quarantine_stage, rejected.assign(quarantined_at=now)[list(QUARANTINE_COLUMNS)])
    with warehouse.transaction() as execute:
        report.rows_new = insert_new_rows(execute, stage, contract, report.batch_id)
        dropped = report.rows_rejected + report.rows_suppressed
        report.rows_duplicate = report.rows_read - report.rows_new - dropped  # valid, key known
        insert_new_quarantine(execute, quarantine_stage)
        execute(
            "INSERT INTO ingest_batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                report.batch_id,
                report.table,
                report.source_file,
                sha256,
                report.rows_read,
                report.rows_new,
                report.rows_duplicate,
                report.rows_rejected,
                started_at,
                datetime.now(UTC).replace(tzinfo=None),
            ],
        )


def insert_new_rows(execute: Execute, stage: str, contract: Contract, batch_id: str) -> int:
    """Insert the first occurrence of each key not yet in the table; returns the number inserted.

    Key conflicts are left out by construction: a later occurrence has rank > 1, and a key already in
    the table fails NOT EXISTS.
    """
    columns = ", ".join(f'"{c}"' for c in contract.columns)
    return execute(
        f'INSERT INTO "{contract.table}" ({columns}, ingest_batch_id, row_hash) '
        f"SELECT {columns}, '{batch_id}', row_hash FROM ({_ranked(stage, contract)}) s "
        f"WHERE s._rank = 1 AND NOT EXISTS "
        f'(SELECT 1 FROM "{contract.table}" t WHERE {_key_match(contract, "t", "s")})'
    )


def insert_new_quarantine(execute: Execute, quarantine_stage: str) -> int:
    """Insert quarantine entries not already recorded (same table, row content, column and reason)."""
    key = ", ".join(f'"{k}"' for k in QUARANTINE_KEY)
    columns = ", ".join(f'"{c}"' for c in QUARANTINE_COLUMNS)
    match = " AND ".join(f'q."{k}" = s."{k}"' for k in QUARANTINE_KEY)
    return execute(
        f"INSERT INTO quarantine ({columns}) SELECT {columns} FROM ("
        f"SELECT *, ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY row_number) AS _rank "
        f'FROM "{quarantine_stage}") s WHERE s._rank = 1 AND NOT EXISTS '
        f"(SELECT 1 FROM quarantine q WHERE {match})"
    )
