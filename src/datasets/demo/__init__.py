"""Synthetic hotel-chain demo dataset, deterministic given a seed.

Generative process
------------------
Guests (persons) ``i = 1..N`` make a first booking at a time uniform over
``[start, start + first_stay_span_days)``. Their later stays follow a BG/NBD process in days:
``lambda_i ~ Gamma(shape=r, rate=alpha)``, ``p_i ~ Beta(a, b)``; while alive, inter-booking times are
``Exponential(lambda_i)``; after each repeat stay the guest drops out with probability ``p_i`` (as in
BG/NBD and ``lifetimes.BetaGeoFitter``, the first stay itself never ends the relationship). Events after
``end`` are cut. The defaults r=0.9, alpha=28, a=0.8, b=5 (about one booking a month while alive, mean
dropout 0.14) give about 9.0 stays and 10.2 transaction rows (purchases, cancellations, refunds) per
guest: 1M guests give 10.2M transactions.

Each event is a *booking*; its timestamp is the booking time and the guest checks in ``lead_time`` days
later (possibly after ``end``). A booking has a hotel (12 hotels H01..H12: the guest's favourite or a
popularity-weighted one; H01 London bills in GBP, the others in EUR), a purpose (business with a
per-guest propensity, else leisure), a channel, a party size, a room type (allergic guests prefer
hypoallergenic rooms) and a number of nights. Room revenue follows Gamma-Gamma:
``nu_i ~ Gamma(shape=q, rate=gamma)`` and each stay's room revenue ``z ~ Gamma(shape=p, rate=nu_i)`` EUR
(defaults p=6, q=4, gamma=150: 300 EUR on average; 0.86 GBP per EUR at H01). The nights are ``z`` over
a nightly rate that depends on purpose, room type and hotel, so business guests stay shorter.

Extras (breakfast, spa, late checkout, parking, airport transfer, upgrades, champagne, early check-in,
dinner: see ``demo_offers.OFFERS``) are bought with probability ``sigmoid(u - 1.5)``, where the utility
``u`` is the guest's latent preference for the category (one standard-normal logit per category and
guest) + category and offer intercepts + effects of purpose, log(nights) and party size + an allergy
effect (carpeted upgrades -3, the hypoallergenic room +2). Only eligible extras are bought: the hotel has
the facility (spa, parking, airport), room type and minimum nights fit, an upgrade is available (drawn
per booking) and at most one upgrade is taken. The amount is room revenue plus extras, in cents; the line
items are the room (item_id = room type, quantity = nights, unit price = revenue / nights rounded to
cents, which makes the items sum exactly to the amount) and each extra (item_id = offer id).

Besides the BG/NBD stays, ``cancel_rate`` of all bookings are extra bookings within 30 days of one of
the guest's stays, cancelled hours to days later (a ``cancellation`` row with ``reference_id``, amount 0
or minus a 20% deposit); ``refund_rate`` of stays get a partial ``refund`` (negative amount) within two
weeks of check-out.

Offer log: on ``offer_log_rate`` of bookings a randomised policy shows one offer drawn from the eligible
ones (rules above, not already booked, and no carpeted upgrade for guests whose CRM record lists an
allergy) with probability proportional to ``exp(popularity)``, logged as ``propensity``. It is accepted
with probability ``p_true = sigmoid(u)`` (the utility above without the unprompted-purchase shift);
accepted offers become line items of the booking. The catalogue (``offers``) gives each offer's price and
margin in EUR per ``unit``: per stay, night, guest or guest-night (the line item's quantity).

Offer truth, for evaluating offer policies offline against an oracle: ``truth/offer_acceptance`` has the
``p_true`` of each logged offer; ``truth/offer_options`` has one row per logged event (``event_id``) and
offer the booking could take under the *true* facts: the rules above with the guest's true allergy (not
the CRM's), not already booked, no second upgrade. Each row carries ``p_true`` (sigmoid of the true
utility of that offer in that booking), ``quantity`` (by the unit: 1, nights, party size or both) and
``margin_eur`` (catalogue margin x quantity, in EUR whatever the hotel's currency). These rows alone give
the oracle (per event the option maximising ``p_true * margin_eur``, or ``p_true``) and the true value of
any policy (sum over options of its choice probability x ``p_true * margin_eur``); join ``offer_log`` on
``event_id`` to restrict to a later, held-out period and to compare with off-policy estimates from
``propensity`` and ``accepted``. The logged offer is among its event's options, with the same ``p_true``,
unless it was a carpeted upgrade shown to an allergic guest whose allergy the CRM lacks (about 0.05% of
events at the defaults): the true facts forbid it, so it has no row there and the event keeps only its
other options (in principle none).

Identities and planted problems: every guest has a booking-system account (``G...``); about 3% also
have a second one (an OTA relay profile with another e-mail and often no phone) that carries 30-70% of
their bookings. About 70% have a CRM record (``C...``, loyalty id ``L...``, which 60% of them also gave
the booking system); every guest has a billing account (``A...``). About 10% moved: billing holds the
new address and the latest ``updated_at``, CRM and booking the old one. About 5% have a name typo
(dropped or swapped letter) in one source; 15% of booking records lack an e-mail; billing stores phones
without spaces; marketing consent differs between two sources for about 18% of guests. Allergies (5% of
guests), accessibility needs and room preferences are recorded in the CRM only. Account numbers are
shuffled, so ids carry no person information. Ground truth (latent parameters, the identity map and
the offer truth) is returned under ``truth`` and written to ``truth/`` for evaluation only.

Timestamps are naive UTC. Fitting lifetimes' models on the stays of each person recovers the parameters
(see ``tests/ingest/test_demo_generator.py``); at daily resolution lifetimes merges same-day bookings
(about 2.3% of stays), which makes alpha come out 6-8% high.
"""

from __future__ import annotations

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
from crm_analytics.datasets.demo.stays import draw_bookings, draw_guests, simulate_stays
from crm_analytics.datasets.demo.transactions import offer_log_and_truth, transactions_and_items

__all__ = ["DemoConfig", "DemoData", "generate_demo", "write_demo"]
DATE_COLUMNS = frozenset({"check_in", "birth_date"})


def generate_demo(config: DemoConfig, progress: Callable[[str, float], None] | None = None) -> DemoData:
    """Generate the demo dataset (see the module docstring); ``progress(stage, fraction)`` reports stages."""

    def report(stage: str, fraction: float) -> None:
        if progress is not None:
            progress(stage, fraction)

    c = config
    rngs = [np.random.Generator(np.random.PCG64(s)) for s in np.random.SeedSequence(c.seed).spawn(7)]
    window = float((c.end - c.start).days + 1)
    last_s = int(window) * 86_400 - 1
    # progress(stage starting now, share of the work done), shares measured at 1M guests
    report("simulating stays", 0.0)
    g = draw_guests(rngs[0], c)
    person, day, n_stays, alive = simulate_stays(rngs[1], g, window)
    report("drawing bookings", 0.03)
    accounts = draw_accounts(rngs[2], c.customers, c.duplicate_account_rate, c.crm_rate)
    bk = draw_bookings(rngs[3], c, g, person, day, accounts, window)
    report("choosing extras and offers", 0.12)
    extras = cat.choose_extras(rngs[4], bk.ctx, g.prefs, g.allergic)
    in_crm = np.zeros(c.customers, dtype=bool)
    in_crm[accounts.crm_person] = True
    known_allergy = g.allergic & in_crm
    events = cat.log_offers(rngs[4], bk.ctx, extras, g.prefs, g.allergic, known_allergy, c.offer_log_rate)
    events = events.take(np.argsort(bk.ts[events.booking], kind="stable"))  # booking order -> time order
    report("assembling transactions", 0.37)
    transactions, items, purchase_pos, txn_ids = transactions_and_items(rngs[5], c, bk, extras, last_s)
    options = cat.offer_options(bk.ctx, events, extras, g.prefs, g.allergic)
    del extras
    offer_log, acceptance, option_truth = offer_log_and_truth(
        rngs[5], c, bk, events, options, purchase_pos, txn_ids, last_s
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
            "alive_at_end": alive,
            "n_stays": n_stays.astype(np.int64),
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
    """Write the frames to ``out_dir`` (truth always as parquet under ``truth/``); return the paths."""
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"unknown format {fmt!r}")
    out_dir = Path(out_dir)
    (out_dir / "truth").mkdir(parents=True, exist_ok=True)
    frames = {
        "transactions": data.transactions,
        "transaction_items": data.transaction_items,
        **{f"customers_{s}": data.customers[s] for s in ("crm", "booking", "billing")},
        "offers": data.offers,
        "offer_log": data.offer_log,
    }
    paths = []
    for name, frame in frames.items():
        paths.append(out_dir / f"{name}.{fmt}")
        _write_table(frame, paths[-1], fmt)
    for name, frame in data.truth.items():
        paths.append(out_dir / "truth" / f"{name}.parquet")
        _write_table(frame, paths[-1], "parquet")
    return paths
