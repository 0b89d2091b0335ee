"""Synthetic hotel-chain demo dataset, deterministic given a seed.

Guests book stays by a BG/NBD process in days with Gamma-Gamma room spend, buy extras by latent
preferences, are recorded in three systems (CRM, booking, billing) with planted data problems, and are
shown offers by a randomised logging policy. The full generative process, its defaults and the ground
truth written to ``truth/`` are described in docs/datasets.md; the parameters are in ``config.py``.
``shifts.py`` plants changes from a date on; ``windows.py`` cuts the world into a daily feed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from crm_analytics.datasets.demo import catalogue
from crm_analytics.datasets.demo import offers as cat
from crm_analytics.datasets.demo.config import DemoConfig, DemoData
from crm_analytics.datasets.demo.people import (
    build_customers,
    draw_accounts,
    format_ids,
    id_width,
    text,
    to_datetime,
)
from crm_analytics.datasets.demo.shifts import Shift, churn_limits, parse_shift
from crm_analytics.datasets.demo.stays import draw_bookings, draw_guests, shift_bookings, simulate_stays
from crm_analytics.datasets.demo.transactions import offer_log_and_truth, transactions_and_items
from crm_analytics.datasets.demo.windows import check_window, window

__all__ = [
    "DemoConfig",
    "DemoData",
    "Shift",
    "check_window",
    "generate_demo",
    "parse_shift",
    "window",
    "write_demo",
]
DATE_COLUMNS = frozenset({"check_in", "birth_date"})


def generate_demo(config: DemoConfig, progress: Callable[[str, float], None] | None = None) -> DemoData:
    """Generate the demo dataset (see the module docstring); ``progress(stage, fraction)`` reports stages."""

    def report(stage: str, fraction: float) -> None:
        if progress is not None:
            progress(stage, fraction)

    c = config
    # the eighth stream serves the shifts only: the other seven draw the same numbers with or without them
    rngs = [np.random.Generator(np.random.PCG64(s)) for s in np.random.SeedSequence(c.seed).spawn(8)]
    days = float((c.end - c.start).days + 1)
    last_s = int(days) * 86_400 - 1
    # progress(stage starting now, share of the work done), shares measured at 1M guests
    report("simulating stays", 0.0)
    g = draw_guests(rngs[0], c)
    stays = simulate_stays(rngs[1], g, days)
    report("drawing bookings", 0.03)
    accounts = draw_accounts(rngs[2], c.customers, c.duplicate_account_rate, c.crm_rate)
    bk = draw_bookings(rngs[3], c, g, stays.person, stays.day, accounts, days)
    repeat = slice(c.customers, None)
    limit = churn_limits(
        rngs[7], c.shifts, c.start, stays.person[repeat], stays.day[repeat], stays.dropout_after
    )
    bk, kept = shift_bookings(c, bk, stays, limit)
    report("choosing extras and offers", 0.12)
    extras = cat.choose_extras(rngs[4], bk.ctx, g.prefs, g.allergic)
    in_crm = np.zeros(c.customers, dtype=bool)
    in_crm[accounts.crm_person] = True
    known_allergy = g.allergic & in_crm
    events = cat.log_offers(rngs[4], bk.ctx, extras, g.prefs, g.allergic, known_allergy, c.offer_log_rate)
    events = events.take(np.argsort(bk.ts[events.booking], kind="stable"))  # booking order -> time order
    report("assembling transactions", 0.37)
    transactions, items, purchase_pos, txn_ids = transactions_and_items(rngs[5], c, bk, extras, last_s, kept)
    options = cat.offer_options(bk.ctx, events, extras, g.prefs, g.allergic)
    del extras
    offer_log, acceptance, option_truth = offer_log_and_truth(
        rngs[5], c, bk, events, options, purchase_pos, txn_ids, last_s, kept
    )
    report("rendering customer records", 0.93)
    customers, identities = build_customers(rngs[6], accounts, bk.ts[: c.customers], g.allergic, c)
    on_dup = np.zeros(c.customers, dtype=bool)
    on_dup[accounts.dup_person] = True
    guests = pd.DataFrame(
        {
            "person_id": text(format_ids("P", np.arange(1, c.customers + 1), id_width(c.customers))),
            "first_stay_at": to_datetime(np.datetime64(c.start, "s"), bk.ts[: c.customers]),
            "lambda": g.lam,
            "p_dropout": g.p_dropout,
            "nu": g.nu,
            "business_propensity": g.business,
            **{f"pref_{name}": g.prefs[:, i] for i, name in enumerate(catalogue.CATEGORIES)},
            "allergic": g.allergic,
            "crm_member": in_crm,
            "duplicate_account": on_dup,
            "alive_at_end": stays.arrivals < limit,
            "n_stays": 1 + np.minimum(limit, stays.arrivals).astype(np.int64),
        }
    )
    report("done", 1.0)
    return DemoData(
        transactions=transactions,
        transaction_items=items,
        customers=customers,
        offers=catalogue.offers_frame(),
        offer_log=offer_log,
        truth={
            "guests": guests,
            "identities": identities,
            "offer_acceptance": acceptance,
            "offer_options": option_truth,
        },
        shifts=c.shifts,
        hotels=catalogue.hotels_frame(),
    )


def _write_table(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    """Write one frame as parquet, or as CSV with ISO 8601 dates and timestamps."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if fmt == "parquet":
        pq.write_table(table, path)
        return
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            pattern = "%Y-%m-%d" if field.name in DATE_COLUMNS else "%Y-%m-%dT%H:%M:%S"
            iso = pc.strftime(table.column(i).cast(pa.timestamp("s")), format=pattern)
            table = table.set_column(i, field.name, iso)
    pacsv.write_csv(table, path)


def write_demo(data: DemoData, out_dir: Path, fmt: Literal["parquet", "csv"] = "parquet") -> list[Path]:
    """Write the frames to ``out_dir`` (truth always as parquet under ``truth/``, the shifts in effect as
    ``truth/shifts.json``); return the paths."""
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"unknown format {fmt!r}")
    out_dir = Path(out_dir)
    (out_dir / "truth").mkdir(parents=True, exist_ok=True)
    frames = {
        "transactions": data.transactions,
        "transaction_items": data.transaction_items,
        **{f"customers_{s}": data.customers[s] for s in ("crm", "booking", "billing")},
        "offers": data.offers,
        "hotels": data.hotels,
        "offer_log": data.offer_log,
    }
    paths = []
    for name, frame in frames.items():
        if frame.empty and not len(frame.columns):  # no hotels catalogue (a DemoData built without one)
            continue
        paths.append(out_dir / f"{name}.{fmt}")
        _write_table(frame, paths[-1], fmt)
    for name, frame in data.truth.items():
        paths.append(out_dir / "truth" / f"{name}.parquet")
        _write_table(frame, paths[-1], "parquet")
    paths.append(out_dir / "truth" / "shifts.json")
    paths[-1].write_text(json.dumps([s.as_dict() for s in data.shifts], indent=2) + "\n")
    return paths
