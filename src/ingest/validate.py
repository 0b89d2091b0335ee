"""Validate one chunk of raw rows against a contract: parse, check, and split into valid and rejected.

Parsing is done here (not by pandera's coercion) so each failure gets a plain reason: "not a number",
"not an ISO 8601 date/time", "not valid UTF-8 text". The pandera model then checks nullability, value
rules and cross-column rules lazily, so every failing cell of every row is reported at once.
Reasons never contain the offending value: they may be read by people who must not see personal data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pandera.pandas as pa

from crm_analytics.ingest.contracts import Contract

NOT_UTF8 = re.compile("[\udc80-\udcff]")
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0"})


class ContractError(ValueError):
    """The batch as a whole does not fit the contract (e.g. a required column is missing)."""


@dataclass
class ChunkResult:
    """Valid rows (typed, indexed by row number) and one rejection per (row, column, reason)."""

    valid: pd.DataFrame
    rejections: pd.DataFrame  # columns: row_number, column_name, reason


def check_columns(columns: list[str], contract: Contract) -> list[str]:
    """Raise ContractError naming the missing required columns; return unknown columns (ignored)."""
    missing = [c for c in contract.required_columns if c not in columns]
    if missing:
        names = ", ".join(f"'{c}'" for c in missing)
        raise ContractError(f"{contract.table}: missing column{'s' if len(missing) > 1 else ''} {names}")
    return [c for c in columns if c not in contract.columns]


def validate_chunk(
    raw: pd.DataFrame, contract: Contract, now: datetime, future_tolerance: timedelta
) -> ChunkResult:
    """Validate rows whose index holds their 1-based row number in the source."""
    frame = raw.rename(columns=lambda c: str(c).strip().lower())
    check_columns(list(frame.columns), contract)
    schema = contract.schema
    typed = pd.DataFrame(index=frame.index)
    problems: list[pd.DataFrame] = []
    for name, column in schema.columns.items():
        if name not in frame.columns:
            typed[name] = pd.Series(pd.NA, index=frame.index, dtype=_empty_dtype(column.dtype))
            continue
        values, failed, reason = _parse(frame[name], str(column.dtype))
        typed[name] = values
        if failed.any():
            problems.append(_rejections(frame.index[failed.to_numpy()], name, reason))
    limit = pd.Timestamp(now) + pd.Timedelta(future_tolerance)
    checked_schema = _with_future_checks(schema, contract.not_future, limit)
    parse_failures = pd.concat(problems, ignore_index=True) if problems else _rejections(pd.Index([]), "", "")
    try:
        checked_schema.validate(typed, lazy=True)
    except pa.errors.SchemaErrors as exc:
        check_failures = _pandera_rejections(exc.failure_cases, contract)
        # a cell that could not be parsed is reported once, not again as "missing value"
        already = check_failures.set_index(["row_number", "column_name"]).index.isin(
            parse_failures.set_index(["row_number", "column_name"]).index
        )
        problems.append(check_failures[~already])
    rejections = (
        pd.concat(problems, ignore_index=True).drop_duplicates(ignore_index=True)
        if problems
        else parse_failures
    )
    bad_rows = rejections["row_number"].unique()
    valid = typed.loc[~typed.index.isin(bad_rows)]
    return ChunkResult(valid=checked_schema.validate(valid) if len(valid) else valid, rejections=rejections)


def _empty_dtype(dtype: object) -> str:
    name = str(dtype)
    return {"int64": "Int64", "bool": "boolean"}.get(name.lower(), name if name != "str" else "str")


def _parse(raw: pd.Series, dtype: str) -> tuple[pd.Series, pd.Series, str]:
    """Parse one column to the contract dtype; returns values, a mask of unparseable cells, a reason."""
    kind = dtype.lower()
    if not (raw.dtype == object or pd.api.types.is_string_dtype(raw.dtype)):
        return raw, pd.Series(False, index=raw.index), ""
    text, broken = _as_text(raw)
    text = text.str.strip()
    text = text.where(text != "")
    if broken.any():
        return text, broken, "not valid UTF-8 text"
    present = text.notna()
    if kind.startswith("datetime"):
        values = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce").dt.tz_localize(None)
        return values, present & values.isna(), "not an ISO 8601 date/time"
    if kind.startswith("float"):
        values = pd.to_numeric(text, errors="coerce")
        return values.astype("float64"), present & values.isna(), "not a number"
    if kind.startswith("int"):
        numbers = pd.to_numeric(text, errors="coerce")
        integral = numbers.notna() & (np.floor(numbers) == numbers)
        return numbers.where(integral).astype("Int64"), present & ~integral, "not an integer"
    if kind in ("bool", "boolean"):
        lowered = text.str.lower()
        values = pd.Series(pd.NA, index=raw.index, dtype="boolean")
        values[lowered.isin(TRUE_WORDS)] = True
        values[lowered.isin(FALSE_WORDS)] = False
        return values, present & values.isna(), "not true or false"
    return text, pd.Series(False, index=raw.index), ""


def _as_text(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The column as text, and a mask of cells that held invalid UTF-8 (surrogate escapes), blanked.

    The fast path converts to Arrow strings, which refuse surrogates; only then are cells scanned.
    """
    try:
        return raw.astype("str"), pd.Series(False, index=raw.index)
    except UnicodeEncodeError:
        broken = raw.str.contains(NOT_UTF8, na=False)
        return raw.where(~broken).astype("str"), broken


def _with_future_checks(
    schema: pa.DataFrameSchema, columns: tuple[str, ...], limit: pd.Timestamp
) -> pa.DataFrameSchema:
    for name in columns:
        column = schema.columns[name]
        schema = schema.update_column(
            name, checks=[*column.checks, pa.Check.le(limit, error="in the future")]
        )
    return schema


def _rejections(rows: pd.Index, column: str, reason: str) -> pd.DataFrame:
    return pd.DataFrame(
        {"row_number": np.asarray(rows, dtype="int64"), "column_name": column, "reason": reason}
    )


def _pandera_rejections(failures: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    row_level = failures[failures["index"].notna()]
    whole = failures[failures["index"].isna()]
    if len(whole):
        checks = ", ".join(sorted(set(whole["check"].astype(str))))
        raise ContractError(f"{contract.table}: checks failed on the whole batch: {checks}")
    frame_check = row_level["schema_context"] == "DataFrameSchema"
    checks = row_level["check"].astype(str)
    # a cross-column check's error reads "<column>: <reason>"
    column_name = row_level["column"].astype(str)
    reason = checks.map(_describe)
    if frame_check.any():
        split = checks[frame_check].str.partition(":")
        column_name = column_name.mask(frame_check, split[0])
        reason = reason.mask(frame_check, split[2].str.strip())
    return pd.DataFrame(
        {"row_number": row_level["index"].astype("int64"), "column_name": column_name, "reason": reason}
    )


def _describe(check: str) -> str:
    """Turn a pandera check name into a reason a person can act on."""
    if check == "not_nullable":
        return "missing value"
    if check.startswith("str_length"):
        return "empty"
    if check.startswith("isin"):
        return "not one of " + check[len("isin(") : -1].strip("()[]").replace("'", "")
    if check.startswith("str_matches('^[^\\s"):
        return "malformed id (1-128 characters, no spaces)"
    if check.startswith("str_matches"):
        return "malformed"
    if check.startswith("greater_than_or_equal_to"):
        return "must be >= " + check[len("greater_than_or_equal_to(") : -1]
    if check.startswith("greater_than"):
        return "must be > " + check[len("greater_than(") : -1]
    if check.startswith("less_than_or_equal_to"):
        return "must be <= " + check[len("less_than_or_equal_to(") : -1]
    if check.startswith(("dtype", "coerce_dtype")):
        return "wrong type"
    return check
