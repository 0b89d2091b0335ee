"""Windows of the demo world: the rows that happened between two dates, as a daily feed delivers them.

A window filters one generated world, so the windows of a seed partition its full run: ingesting
``[start, D0]`` and then ``[D0 + 1, D1]``, ``[D1 + 1, D2]``, ... leaves the warehouse with exactly the
rows of the full run. Each row is dated by when it happened: a transaction by ``timestamp`` (its line
items with it), an offer-log row by ``responded_at`` (it is complete once the guest answered), a
customer-record version by ``updated_at``. The offer and hotel catalogues are in every window
(re-ingesting them adds nothing). The truth covers everything emitted up to ``until``.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crm_analytics.datasets.demo.config import DemoConfig, DemoData


def check_window(
    config: DemoConfig, start: date | None, until: date | None, names: tuple[str, str] = ("start", "until")
) -> tuple[date, date]:
    """The window ``[start, until]``, the demo's own start and end by default; a ValueError naming the
    parameter (as ``names`` calls them) when the window is empty or leaves the demo's dates."""
    first, last = start or config.start, until or config.end
    for name, day in zip(names, (first, last), strict=True):
        if not config.start <= day <= config.end:
            raise ValueError(f"{name}: {day} is outside the demo's dates {config.start} to {config.end}")
    if first > last:
        raise ValueError(f"{names[0]}: {first} is after {names[1]} {last}")
    return first, last


def window(data: DemoData, config: DemoConfig, start: date | None, until: date | None) -> DemoData:
    """The rows of ``data`` (generated from ``config``) dated within ``[start, until]``, whole days."""
    first, last = check_window(config, start, until)
    if (first, last) == (config.start, config.end):
        return data
    low, high = pd.Timestamp(first), pd.Timestamp(last + timedelta(days=1))

    def inside(stamp: pd.Series) -> np.ndarray:
        return ((stamp >= low) & (stamp < high)).to_numpy()

    transactions = _rows(data.transactions, inside(data.transactions["timestamp"]))
    items = data.transaction_items
    log = data.offer_log
    emitted = pd.concat([f[f["updated_at"] < high] for f in data.customers.values()])
    events = log.loc[(log["responded_at"] < high).to_numpy(), "event_id"]
    guests = data.truth["guests"]
    truth = {
        "guests": _rows(guests, (guests["first_stay_at"] < high).to_numpy()),
        "identities": _rows(data.truth["identities"], _isin(_key(data.truth["identities"]), _key(emitted))),
        **{
            name: _rows(data.truth[name], _isin(data.truth[name]["event_id"], events))
            for name in ("offer_acceptance", "offer_options")
        },
    }
    return DemoData(
        transactions=transactions,
        transaction_items=_rows(items, _isin(items["transaction_id"], transactions["transaction_id"])),
        customers={s: _rows(f, inside(f["updated_at"])) for s, f in data.customers.items()},
        offers=data.offers,
        offer_log=_rows(log, inside(log["responded_at"])),
        truth=truth,
        shifts=tuple(s for s in data.shifts if s.date <= last),
        hotels=data.hotels,
    )


def _rows(frame: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    return frame[keep].reset_index(drop=True)


def _key(records: pd.DataFrame) -> pa.ChunkedArray:
    """``source:source_customer_id`` per record."""
    parts = [_arrow(records[c]) for c in ("source", "source_customer_id")]
    return pc.binary_join_element_wise(*parts, pa.scalar(":", pa.large_string()))


def _arrow(values: pd.Series | pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Text as Arrow ``large_string`` (what pandas' ``str`` columns hold: no copy)."""
    array = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values.array)
    return array.cast(pa.large_string())


def _isin(values: pd.Series | pa.ChunkedArray, wanted: pd.Series | pa.ChunkedArray) -> np.ndarray:
    """A bool mask of ``values`` found in ``wanted``, by Arrow (pandas' string ``isin`` loops in Python)."""
    found = pc.is_in(_arrow(values), value_set=_arrow(wanted))
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)
