"""The warehouse connection: Ibis for reads, the backend's own transactions for writes.

Reads go through Ibis (``warehouse.ibis``) so the same expressions run on DuckDB, PostgreSQL or Spark.
Writes (staging loads, the atomic merge) use the backend's native connection, because they need a
transaction: DuckDB's ``begin/commit`` or psycopg's ``transaction()``.

DuckDB URLs follow SQLAlchemy's convention: ``duckdb:///relative/path.duckdb``,
``duckdb:////absolute/path.duckdb`` and ``duckdb:///:memory:``. Opening a warehouse runs no DDL: the
schema comes from ``warehouse.migrations``, applied by the jobs and by ingest before they write.
A DuckDB file has one read-write process at a time: an opener waits for it (``warehouse.locks``), and
readers open the published copy instead (``warehouse.read_copy``).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import ibis
import ibis.expr.types as ir
import pandas as pd

from crm_analytics.warehouse.locks import retry_locked
from crm_analytics.warehouse.private_files import PRIVATE

Execute = Callable[..., int]
READ_ONLY_CATALOG = "warehouse_read_only"  # the catalog name a read-only DuckDB file is attached as


@dataclass(frozen=True)
class IdRange:
    """Customers with ``low <= customer_id < high`` (None: open end), for working through a large
    table in chunks that cover every row exactly once."""

    low: str | None = None
    high: str | None = None

    def sql(self, column: str = "customer_id") -> str:
        """The range as a SQL condition (``TRUE`` for the whole table)."""
        conditions = [f'"{column}" >= {_quote(self.low)}'] if self.low is not None else []
        conditions += [f'"{column}" < {_quote(self.high)}'] if self.high is not None else []
        return " AND ".join(conditions) or "TRUE"

    def filter(self, table: ir.Table, column: str = "customer_id") -> ir.Table:
        """``table`` restricted to this range of ``column``."""
        if self.low is not None:
            table = table.filter(table[column] >= self.low)
        if self.high is not None:
            table = table.filter(table[column] < self.high)
        return table


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def id_ranges(sorted_ids: Sequence[str], per_range: int) -> list[IdRange]:
    """Consecutive ranges of about ``per_range`` of ``sorted_ids`` each; the first and last are open,
    so together they also cover ids that are not in ``sorted_ids``."""
    if per_range < 1:
        raise ValueError(f"per_range: must be >= 1, got {per_range}")
    starts = list(sorted_ids[per_range::per_range])
    bounds: list[str | None] = [None, *starts, None]
    return [IdRange(low, high) for low, high in itertools.pairwise(bounds)]


def sql_type(dtype: object) -> str:
    """The portable SQL type (DuckDB and PostgreSQL) of a pandera column dtype."""
    name = str(dtype).lower()
    if name.startswith("datetime"):
        return "TIMESTAMP"
    if name.startswith("float"):
        return "DOUBLE PRECISION"
    if name.startswith("int"):
        return "BIGINT"
    if name in ("bool", "boolean"):
        return "BOOLEAN"
    return "TEXT"


def create_table_sql(table: str, columns: dict[str, str], key: Sequence[str] = ()) -> str:
    body = ", ".join(f'"{name}" {kind}' for name, kind in columns.items())
    if key:
        body += ", PRIMARY KEY (" + ", ".join(f'"{k}"' for k in key) + ")"
    return f'CREATE TABLE IF NOT EXISTS "{table}" ({body})'


def parse_warehouse_url(url: str) -> tuple[str, str]:
    """Split a warehouse URL into (backend, target): a DuckDB path or a PostgreSQL URL for Ibis."""
    scheme, _, rest = url.partition("://")
    if scheme == "duckdb":
        path = rest[1:] if rest.startswith("/") else rest
        return "duckdb", path or ":memory:"
    if scheme in ("postgres", "postgresql"):
        return "postgres", "postgres://" + rest
    raise ValueError(f"warehouse_url: unsupported scheme {scheme!r} (use duckdb:// or postgresql://)")


class Warehouse:
    """An open warehouse: Ibis for reads, a native connection for transactional writes.

    ``lock_timeout``: seconds to wait for a DuckDB file another process holds (then a ``BusyError``
    naming it). ``read_only`` opens a DuckDB file through a fresh in-memory database that attaches it
    read-only, so each reader sees the file as it is now even when this process still has an older
    version of it open (``duckdb.connect`` would hand back its cached instance of the old one).
    """

    def __init__(self, url: str, *, read_only: bool = False, lock_timeout: float = 0.0) -> None:
        self.url = url
        self.read_only = read_only
        self.backend, target = parse_warehouse_url(url)
        if self.backend == "duckdb":
            creating = target != ":memory:" and not read_only and not Path(target).exists()
            if creating:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
            self.ibis = retry_locked(lambda: _open_duckdb(target, read_only), target, lock_timeout)
            if creating:  # DuckDB refuses an empty file, so the new one is made private once it exists
                Path(target).chmod(PRIVATE)
            # a library must not draw on stdout; in Jupyter without ipywidgets DuckDB refuses the
            # setting (duckdb#7590) and keeps the bar off anyway
            with contextlib.suppress(duckdb.InvalidInputException):
                self.ibis.con.execute("SET enable_progress_bar = false")
        else:
            self.ibis = ibis.connect(target)
        self._native: Any = self.ibis.con

    def close(self) -> None:
        self.ibis.disconnect()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Execute]:
        """Run statements atomically; yields ``execute(sql, params=None) -> affected row count``."""
        if self.backend == "duckdb":
            con = self._native
            con.begin()
            try:
                yield lambda sql, params=None: _duckdb_rowcount(con.execute(sql, params))
            except BaseException:
                con.rollback()
                raise
            con.commit()
        else:
            with self._native.transaction(), self._native.cursor() as cursor:

                def execute(sql: str, params: Sequence[Any] | None = None) -> int:
                    cursor.execute(sql.replace("?", "%s") if params else sql, params)
                    return max(cursor.rowcount, 0)

                yield execute

    def fetch(self, sql: str) -> pd.DataFrame:
        """Run a query and return its result as a DataFrame."""
        if self.backend == "duckdb":
            return self._native.execute(sql).df()
        with self._native.cursor() as cursor:
            cursor.execute(sql)
            columns = [d.name for d in cursor.description]
            return pd.DataFrame(cursor.fetchall(), columns=columns)

    def load_frame(self, table: str, frame: pd.DataFrame, *, upsert: bool = False) -> None:
        """Append a DataFrame to an existing table (bulk: DuckDB scan or PostgreSQL COPY). ``upsert``
        (DuckDB only): rows whose primary key is there replace those rows."""
        if frame.empty:
            return
        columns = ", ".join(f'"{c}"' for c in frame.columns)
        if upsert and self.backend != "duckdb":  # no key columns here for PostgreSQL's ON CONFLICT
            raise ValueError("upsert: DuckDB only; on PostgreSQL delete the rows, then load them")
        if self.backend == "duckdb":
            insert = "INSERT OR REPLACE" if upsert else "INSERT"
            self._native.register("_incoming_frame", frame)
            try:
                self._native.execute(
                    f'{insert} INTO "{table}" ({columns}) SELECT {columns} FROM _incoming_frame'
                )
            finally:
                self._native.unregister("_incoming_frame")
            return
        rows = frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None)
        copy_sql = f'COPY "{table}" ({columns}) FROM STDIN'
        with self._native.transaction(), self._native.cursor() as cursor, cursor.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row(row)

    def checkpoint(self) -> None:
        """Fold DuckDB's write-ahead log into the file, so the file alone holds every commit (no-op on
        PostgreSQL)."""
        if self.backend == "duckdb":
            self._native.execute("CHECKPOINT")

    def drop_table(self, table: str) -> None:
        with self.transaction() as execute:
            execute(f'DROP TABLE IF EXISTS "{table}"')

    def has_table(self, table: str) -> bool:
        found = self.fetch(
            f"SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_name = '{table}'"
        )
        return bool(found["n"].iloc[0])

    def count(self, table: str) -> int:
        return int(self.ibis.table(table).count().execute())


def _duckdb_rowcount(result: Any) -> int:
    """DuckDB returns the affected row count of DML as a one-cell result; DDL returns nothing."""
    try:
        row = result.fetchone()
    except Exception:
        return 0
    return int(row[0]) if row and isinstance(row[0], int) else 0


def _open_duckdb(path: str, read_only: bool) -> Any:
    """A DuckDB file opened read-write, or attached read-only to a fresh in-memory database."""
    if not read_only:
        return ibis.duckdb.connect(path)
    if not Path(path).is_file():
        raise FileNotFoundError(f"warehouse: no DuckDB file at {path}")
    con = ibis.duckdb.connect()
    try:
        con.con.execute(f"ATTACH {_quote(path)} AS {READ_ONLY_CATALOG} (READ_ONLY)")
        con.con.execute(f"USE {READ_ONLY_CATALOG}")
    except BaseException:
        con.disconnect()
        raise
    return con
