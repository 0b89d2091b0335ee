"""Read raw inputs in chunks: CSV, Parquet, or a SQL query against a database URL.

Every chunk's index holds the 1-based row number of each row in its source, so a rejected row can be
found again. CSV cells are read as text (ids keep their leading zeros); invalid UTF-8 bytes are kept
as surrogate escapes so validation can reject the row instead of the reader failing the whole file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import sqlalchemy

SUPPORTED_SUFFIXES = (".csv", ".parquet")
# file-name prefixes -> warehouse table; longer prefixes first so "offer_log" is not read as "offers"
TABLE_BY_PREFIX = (
    ("transaction_items", "transaction_items"),
    ("transactions", "transactions"),
    ("customer_records", "customer_records"),
    ("customers", "customer_records"),
    ("offer_log", "offer_log"),
    ("offers", "offers"),
    ("hotels", "hotels"),
)


def infer_table(path: Path) -> str:
    """The warehouse table a file belongs to, from its name (``customers_crm.csv`` -> customer_records)."""
    stem = path.name.split(".", 1)[0].lower()
    for prefix, table in TABLE_BY_PREFIX:
        if stem.startswith(prefix):
            return table
    known = ", ".join(prefix for prefix, _ in TABLE_BY_PREFIX)
    raise ValueError(
        f"{path.name}: cannot tell which table it is; name it after one of {known} or pass --table"
    )


def source_from_name(path: Path) -> str | None:
    """``customers_crm.csv`` -> ``crm``: the source system a customer file names, if any."""
    stem = path.name.split(".", 1)[0].lower()
    for prefix in ("customer_records_", "customers_"):
        if stem.startswith(prefix) and len(stem) > len(prefix):
            return stem[len(prefix) :]
    return None


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files as given, folders expanded to their CSV and Parquet files (not recursive), sorted."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in SUPPORTED_SUFFIXES))
        elif path.exists():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return files


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Yield chunks of a CSV or Parquet file with 1-based row numbers as the index."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        chunks: Iterator[pd.DataFrame] = pd.read_csv(
            path,
            dtype=object,
            keep_default_na=False,
            na_values=[""],
            encoding="utf-8",
            encoding_errors="surrogateescape",
            chunksize=chunk_rows,
        )
    elif suffix == ".parquet":
        batches = pq.ParquetFile(path).iter_batches(batch_size=chunk_rows)
        chunks = (batch.to_pandas() for batch in batches)
    else:
        raise ValueError(f"{path.name}: unsupported file type {suffix!r}; use .csv or .parquet")
    yield from _numbered(chunks)


def read_query(url: str, query: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Yield chunks of a SQL query's result (any SQLAlchemy URL) with 1-based row numbers."""
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            yield from _numbered(pd.read_sql_query(sqlalchemy.text(query), connection, chunksize=chunk_rows))
    finally:
        engine.dispose()


def _numbered(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    offset = 0
    for chunk in chunks:
        chunk.index = pd.RangeIndex(offset + 1, offset + len(chunk) + 1, name="row_number")
        offset += len(chunk)
        yield chunk
