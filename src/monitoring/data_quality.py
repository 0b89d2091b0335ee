"""Data quality of what each refresh ingested, per table and source, against a trailing baseline.

Checks, for the batches a refresh ingested (``ingest_batches``):

- per table (source ``*``): ``rejected_share``, rows quarantined over rows read, and
  ``rejected_share:<reason>`` per reason (the contracts' range and format checks: out-of-range values
  are quarantined with their reason);
- per table and source system (the rows' ``source``: a CRM and a booking system fill different
  columns): ``rows_new``; ``null_rate:<column>`` for each column of the contract; ``late_share``, new
  rows whose event time (``EVENT_TIMES``) lies more than ``CRM_MONITOR_LATE_DAYS`` before the day.

Over the previous ``CRM_MONITOR_BASELINE_REFRESHES`` refreshes that measured a check, its baseline is
the median count (``rows_new``) or the pooled share; with fewer than ``CRM_MONITOR_MIN_HISTORY`` there
is none yet and no breach. A breach is large and unlikely at once: ``rows_new`` outside [baseline / r,
baseline x r] (r = ``CRM_MONITOR_VOLUME_RATIO``) with a one-sided quasi-Poisson p (the dispersion read
off the history) below ``CRM_MONITOR_ALPHA``,
or a share above its baseline by more than ``CRM_MONITOR_SHARE_INCREASE`` with a binomial p below it.

One row per refresh day and check in ``monitoring_data_quality``; the batches a day covered are kept in
``monitoring_batches``, so a second refresh of the same day with new files recomputes that day over all
its batches, and one with nothing new changes nothing. Counts and shares only: no row of any source.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import ibis
import pandas as pd
from scipy import stats

from crm_analytics.ingest.contracts import CONTRACTS, EVENT_TIMES
from crm_analytics.ingest.tables import LINEAGE_COLUMNS, contract_columns
from crm_analytics.settings import Settings
from crm_analytics.warehouse import Warehouse

QUALITY_TABLE = "monitoring_data_quality"
BATCHES_TABLE = "monitoring_batches"


SOURCE_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
ALL_SOURCES = "*"  # a table-level check (the batch log and the quarantine know tables, not sources)
Measured = dict[tuple[str, str, str], tuple[float, int]]  # (table, source, check) -> (value, rows)


@dataclass(frozen=True)
class QualityCheck:
    """One check of one table (and source) on one refresh day."""

    as_of: str
    table_name: str
    source: str
    check_name: str
    value: float
    rows: int  # what a share is out of (rows read or new); for rows_new the count itself
    baseline: float | None
    breach: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def record(warehouse: Warehouse, settings: Settings, as_of: date) -> list[QualityCheck]:
    """Check the day ``as_of`` over the ingested batches no day has covered yet (wherever they came
    from: a refresh, ``crm ingest``, a refresh killed before its check) and those the day covered
    before; store the rows (replacing the day's) and return them. Nothing new: nothing written, []."""
    con = warehouse.ibis
    recorded = con.table(BATCHES_TABLE)
    log = con.table("ingest_batches")
    new = list(log.filter(~log.batch_id.isin(recorded.batch_id)).batch_id.execute())
    if not new:
        return []
    earlier = recorded.filter(recorded.as_of == ibis.date(as_of)).batch_id.execute()
    batches = [*earlier, *new]
    measured = measure(warehouse, batches, as_of, settings.monitor_late_days)
    stored = con.table(QUALITY_TABLE)
    history = (  # breached days stay out of every baseline: one bad day does not become the norm
        stored.filter((stored.as_of < ibis.date(as_of)) & ~stored.breach)
        .select("as_of", "table_name", "source", "check_name", "value", "rows")
        .order_by("as_of")
        .execute()
    )
    recent = history[
        history["as_of"].isin(sorted(set(history["as_of"]))[-settings.monitor_baseline_refreshes :])
    ]
    for table, source in recent.loc[recent["check_name"] == "rows_new", ["table_name", "source"]].itertuples(
        index=False
    ):
        measured.setdefault((table, source, "rows_new"), (0.0, 0))  # a source that stopped delivering
    day = str(as_of)
    checks = [
        judge(day, key, value, rows, history, settings) for key, (value, rows) in sorted(measured.items())
    ]
    with warehouse.transaction() as execute:
        execute(f"DELETE FROM {QUALITY_TABLE} WHERE as_of = ?", [as_of])
        now = datetime.now(UTC).replace(tzinfo=None)
        for c in checks:
            execute(
                f"INSERT INTO {QUALITY_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    as_of,
                    c.table_name,
                    c.source,
                    c.check_name,
                    c.value,
                    c.rows,
                    c.baseline,
                    c.breach,
                    c.detail,
                    now,
                ],
            )
        for batch in new:
            execute(f"INSERT INTO {BATCHES_TABLE} VALUES (?, ?)", [batch, as_of])
    return checks


def measure(warehouse: Warehouse, batches: Sequence[str], as_of: date, late_days: int) -> Measured:
    """(table, source, check) -> (value, rows) for what the ``batches`` brought."""
    con = warehouse.ibis
    log = con.table("ingest_batches")
    log = log.filter(log.batch_id.isin(list(batches)))
    counts = log.group_by("table_name").aggregate(
        read=log.rows_read.sum(), new=log.rows_new.sum(), rejected=log.rows_rejected.sum()
    )
    quarantine = con.table("quarantine")
    quarantine = quarantine.filter(quarantine.batch_id.isin(list(batches)))
    rejected = quarantine.select("table_name", "reason", "batch_id", "row_number").distinct()
    reasons_frame = rejected.execute()
    # one check per kind of reason: "duplicate key ... than row 12" and "... row 40" are one kind
    reasons_frame["reason"] = reasons_frame["reason"].astype(str).str.replace(r"\d+", "N", regex=True)
    reasons_frame = reasons_frame.groupby(["table_name", "reason"], as_index=False).size()
    values: Measured = {}
    for row in counts.execute().itertuples(index=False):
        read = int(row.read)
        values[(row.table_name, ALL_SOURCES, "rejected_share")] = (float(row.rejected) / max(read, 1), read)
        for reason in reasons_frame[reasons_frame["table_name"] == row.table_name].itertuples(index=False):
            share = float(reason.size) / max(read, 1)
            values[(row.table_name, ALL_SOURCES, f"rejected_share:{reason.reason}")] = (share, read)
        if row.new > 0 and row.table_name in CONTRACTS:
            values |= _new_row_checks(warehouse, row.table_name, batches, as_of, late_days)
    return values


def _new_row_checks(
    warehouse: Warehouse, table: str, batches: Sequence[str], as_of: date, late_days: int
) -> Measured:
    """Per source: new rows, the null rate of each contract column and the late share, over the rows
    the batches added to ``table``."""
    rows = warehouse.ibis.table(table)
    rows = rows.filter(rows.ingest_batch_id.isin(list(batches)))
    columns = [c for c in contract_columns(CONTRACTS[table]) if c not in LINEAGE_COLUMNS]
    # a CASE, not a cast: PostgreSQL casts no boolean to a number
    measures = {f"null_rate:{c}": ibis.ifelse(rows[c].isnull(), 1.0, 0.0).mean() for c in columns}
    event = EVENT_TIMES.get(table)
    if event:
        limit = ibis.timestamp(datetime.combine(as_of - timedelta(days=late_days), datetime.min.time()))
        measures["late_share"] = ibis.ifelse(rows[event] < limit, 1.0, 0.0).mean()
    by = [rows.source] if "source" in columns else []
    frame = (
        rows.group_by(by).aggregate(rows_new=rows.count(), **measures).execute()
        if by
        else (rows.aggregate(rows_new=rows.count(), **measures).execute().assign(source=ALL_SOURCES))
    )
    out: Measured = {}
    for record_ in frame.to_dict(orient="records"):
        source, n = source_label(record_.pop("source")), int(record_.pop("rows_new"))
        out[(table, source, "rows_new")] = (float(n), n)
        out |= {(table, source, name): (float(v), n) for name, v in record_.items() if pd.notna(v)}
    return out


def source_label(source: object) -> str:
    """A source system's name as checks are kept under; a value that is no system name (a shifted
    column's e-mail or name) is folded into ``other``, never stored."""
    text = str(source)
    return text if SOURCE_NAME.fullmatch(text) else "other"


def judge(
    day: str,
    key: tuple[str, str, str],
    value: float,
    rows: int,
    history: pd.DataFrame,
    settings: Settings,
) -> QualityCheck:
    """The check against its trailing baseline: a breach must be both large (the ratio or the share
    increase of the Settings) and unlikely under the baseline (quasi-Poisson for counts, binomial for shares,
    one-sided p below ``CRM_MONITOR_ALPHA``), so a day of 11 records is not an alarm for being 11."""
    table, source, check = key
    mine = history[(history["table_name"] == table) & (history["source"] == source)]
    past = mine[mine["check_name"] == check].set_index("as_of")[["value", "rows"]]
    if check.startswith("rejected_share:"):  # a reason absent on a refreshed day was 0 that day
        days = mine.loc[mine["check_name"] == "rejected_share"].set_index("as_of")["rows"]
        past = past.reindex(days.index).assign(rows=days, value=lambda f: f["value"].fillna(0.0))
    past = past.tail(settings.monitor_baseline_refreshes)
    if len(past) < settings.monitor_min_history:
        return QualityCheck(
            day, table, source, check, value, rows, None, False, f"learning ({len(past)} refreshes so far)"
        )
    alpha = settings.monitor_alpha
    if check == "rows_new":
        counts = past["value"]
        baseline = float(counts.median())
        ratio = settings.monitor_volume_ratio
        # quasi-Poisson: daily volumes vary more than Poisson's (weekdays); the history's robust
        # variance (from the median absolute deviation: a big first load does not inflate it) over its
        # median scales the counts down to Poisson's
        spread = (1.4826 * float((counts - baseline).abs().median())) ** 2 / baseline if baseline > 0 else 1.0
        scale = max(1.0, spread)
        scaled, expected = value / scale, baseline / scale
        low, high = stats.poisson.cdf(scaled, expected), stats.poisson.sf(scaled - 1, expected)
        large = not baseline / ratio <= value <= baseline * ratio
        breach = baseline > 0 and large and min(low, high) < alpha
        detail = f"{value:,.0f} rows, baseline {baseline:,.0f} (x{ratio:g} either way)"
    else:
        # pooled over the days behind it, each day weighing its rows up to the median day's (a first
        # load of years of old rows, all late, does not swamp it); Laplace: no share is certain
        weight = past["rows"].clip(upper=float(past["rows"].median()))
        baseline = (float((past["value"] * weight).sum()) + 1) / (float(weight.sum()) + 2)
        count = round(value * rows)
        p = stats.binom.sf(count - 1, rows, baseline) if rows else 1.0
        breach = value > baseline + settings.monitor_share_increase and p < alpha
        detail = (
            f"{value:.2%} of {rows:,}, baseline {baseline:.2%} "
            f"(+{settings.monitor_share_increase:.0%} and p < {alpha:g} to breach)"
        )
    return QualityCheck(day, table, source, check, value, rows, baseline, bool(breach), detail)


def latest(warehouse: Warehouse) -> list[QualityCheck]:
    """The checks of the latest refresh day that has any."""
    stored = warehouse.ibis.table(QUALITY_TABLE)
    last = stored.as_of.max().execute()
    if last is None or pd.isna(last):
        return []
    day = pd.Timestamp(last).date()
    order = ["table_name", "source", "check_name"]
    rows = stored.filter(stored.as_of == ibis.date(day)).order_by(order).execute()
    return [
        QualityCheck(
            str(day),
            r.table_name,
            r.source,
            r.check_name,
            float(r.value),
            int(r.rows),
            None if pd.isna(r.baseline) else float(r.baseline),
            bool(r.breach),
            r.detail,
        )
        for r in rows.itertuples(index=False)
    ]
