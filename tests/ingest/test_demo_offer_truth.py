"""Demo offer truth: offer units, and every option of every logged event under the true facts."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from crm_analytics.datasets.demo import DemoConfig, DemoData, catalogue, generate_demo
from crm_analytics.datasets.demo import offers as cat
from crm_analytics.ingest.contracts import OFFER_UNITS, contract_for
from crm_analytics.ingest.validate import validate_chunk

CONFIG = DemoConfig(customers=4_000, seed=11)


@pytest.fixture(scope="module")
def data() -> DemoData:
    return generate_demo(CONFIG)


@pytest.fixture(scope="module")
def events(data: DemoData) -> pd.DataFrame:
    """The offer log with the guest's true person index, allergy and CRM membership."""
    guests = data.truth["guests"]
    person = pd.Series(np.arange(len(guests)), index=guests["person_id"])
    acceptance = data.truth["offer_acceptance"]
    assert (acceptance["event_id"].to_numpy() == data.offer_log["event_id"].to_numpy()).all()
    people = person.loc[acceptance["person_id"]].to_numpy()
    return data.offer_log.assign(
        person=people,
        allergic=guests["allergic"].to_numpy()[people],
        crm_member=guests["crm_member"].to_numpy()[people],
        p_logged=acceptance["p_true"].to_numpy(),
    )


def _context(events: pd.DataFrame) -> cat.BookingDraws:
    """The booking context of each event, rebuilt from the offer log's columns."""
    hotels = [h.hotel_id for h in catalogue.HOTELS]
    return cat.BookingDraws(
        person=events["person"].to_numpy(),
        hotel=events["hotel_id"].map(hotels.index).to_numpy(),
        room=events["room_type"].map(catalogue.ROOM_TYPES.index).to_numpy(),
        nights=events["nights"].to_numpy(),
        party=events["guests"].to_numpy(),
        business=(events["purpose"] == "business").to_numpy(),
        upgrade_available=events["upgrade_available"].to_numpy(),
    )


def _booked_before(data: DemoData, events: pd.DataFrame) -> np.ndarray:
    """(event, offer) bool: extras on the event's bill that were not bought by accepting the logged offer."""
    items = data.transaction_items
    offer_ids = [o.offer_id for o in catalogue.OFFERS]
    extras = items[items["item_id"].isin(offer_ids)]
    position = pd.Series(np.arange(len(events)), index=events["transaction_id"])
    rows = position.reindex(extras["transaction_id"]).to_numpy()
    known = ~np.isnan(rows)
    booked = np.zeros((len(events), len(offer_ids)), dtype=bool)
    booked[rows[known].astype(np.int64), extras["item_id"].map(offer_ids.index).to_numpy()[known]] = True
    logged = events["offer_id"].map(offer_ids.index).to_numpy()
    accepted = np.flatnonzero(events["accepted"].to_numpy())
    booked[accepted, logged[accepted]] = False
    return booked


def test_options_are_exactly_the_offers_eligible_under_the_true_facts(
    data: DemoData, events: pd.DataFrame
) -> None:
    ctx = _context(events)
    rows = np.arange(len(events))
    booked = _booked_before(data, events)
    expected = cat.eligibility(ctx, rows, events["allergic"].to_numpy()) & ~booked
    expected[:, catalogue.IS_UPGRADE] &= ~booked[:, catalogue.IS_UPGRADE].any(axis=1, keepdims=True)
    event, offer = np.nonzero(expected)
    want = pd.DataFrame(
        {
            "event_id": events["event_id"].to_numpy()[event],
            "offer_id": np.array([o.offer_id for o in catalogue.OFFERS])[offer],
        }
    )
    options = data.truth["offer_options"]
    assert list(options.columns) == ["event_id", "offer_id", "p_true", "quantity", "margin_eur"]
    got = options[["event_id", "offer_id"]].astype(object)
    pd.testing.assert_frame_equal(got, want.astype(object))  # same rows, same order (event, then offer)
    # p_true is the sigmoid of the true utility of each option in its booking
    utility = cat.utility(offer, ctx, rows[event], _prefs(data), _allergic(data))
    np.testing.assert_allclose(options["p_true"].to_numpy(), cat.sigmoid(utility), rtol=1e-12)


def _prefs(data: DemoData) -> np.ndarray:
    guests = data.truth["guests"]
    return guests[[f"pref_{c}" for c in catalogue.CATEGORIES]].to_numpy()


def _allergic(data: DemoData) -> np.ndarray:
    return data.truth["guests"]["allergic"].to_numpy()


def test_logged_offer_is_an_option_with_its_logged_p_true_unless_the_true_facts_forbid_it(
    data: DemoData, events: pd.DataFrame
) -> None:
    options = data.truth["offer_options"]
    logged = events.merge(options, on=["event_id", "offer_id"], how="left", validate="one_to_one")
    found = logged["p_true"].notna()
    np.testing.assert_allclose(logged.loc[found, "p_true"], logged.loc[found, "p_logged"], rtol=1e-12)
    # missing only where the policy, going by the CRM, showed a carpeted upgrade to an allergic guest
    missing = logged[~found]
    carpeted = [o.offer_id for o in catalogue.OFFERS if o.carpeted]
    assert missing["offer_id"].isin(carpeted).all()
    assert missing["allergic"].all()
    assert (found | ~logged["crm_member"]).all()
    assert found.mean() > 0.99
    # every other event has at least one option
    assert events.loc[found, "event_id"].isin(options["event_id"]).all()


def test_acceptance_rate_matches_the_p_true_of_the_logged_options(
    data: DemoData, events: pd.DataFrame
) -> None:
    logged = events.merge(data.truth["offer_options"], on=["event_id", "offer_id"], validate="one_to_one")
    p = logged["p_true"].to_numpy()
    accepted = logged["accepted"].to_numpy(dtype=float)
    bound = 4.0 * np.sqrt((p * (1 - p)).sum()) / len(p)  # four binomial standard errors
    assert abs(accepted.mean() - p.mean()) < bound, (accepted.mean(), p.mean(), bound)
    assert 0.01 < bound < 0.02  # the bound is tight enough to mean something


def test_quantity_and_margin_follow_the_offer_unit(data: DemoData, events: pd.DataFrame) -> None:
    options = data.truth["offer_options"].merge(data.offers, on="offer_id", validate="many_to_one")
    context = events.set_index("event_id").loc[options["event_id"], ["nights", "guests"]]
    nights, party = context["nights"].to_numpy(), context["guests"].to_numpy()
    per_unit = {"stay": 1, "night": nights, "guest": party, "guest_night": nights * party}
    expected = np.select(
        [options["unit"] == u for u in OFFER_UNITS],
        [np.broadcast_to(per_unit[u], len(options)) for u in OFFER_UNITS],
    )
    assert (options["quantity"].to_numpy() == expected).all()
    assert (options["quantity"] >= 1).all()
    np.testing.assert_allclose(options["margin_eur"], options["margin"] * options["quantity"], rtol=1e-12)
    # an accepted logged offer is billed in exactly that quantity
    accepted = events[events["accepted"]].merge(data.truth["offer_options"], on=["event_id", "offer_id"])
    billed = data.transaction_items.set_index(["transaction_id", "item_id"])["quantity"]
    on_bill = billed.loc[list(zip(accepted["transaction_id"], accepted["offer_id"], strict=True))]
    assert len(accepted) > 100
    assert (on_bill.to_numpy() == accepted["quantity"].to_numpy()).all()


def test_offers_carry_a_valid_unit(data: DemoData) -> None:
    offers = data.offers
    assert list(offers.columns[4:7]) == ["margin", "unit", "hotel_ids"]
    assert offers["unit"].isin(OFFER_UNITS).all()
    assert offers["unit"].tolist() == [o.unit for o in catalogue.OFFERS]
    assert set(offers["unit"]) == set(OFFER_UNITS)  # the demo uses every unit
    contract_for("offers").schema.validate(offers)
    with pytest.raises(ValueError, match="unit must be one of"):
        catalogue.Offer("X", "x", "spa", 1.0, 0.5, "room", 0.0, 0.0)


def test_missing_unit_means_per_stay_and_an_unknown_unit_is_rejected() -> None:
    offer = {"offer_id": "O1", "name": "Breakfast", "category": "breakfast", "price": "20", "margin": "8"}
    rows = [offer, offer | {"offer_id": "O2", "unit": ""}, offer | {"offer_id": "O3", "unit": "night"}]
    rows.append(offer | {"offer_id": "O4", "unit": "room"})
    contract = contract_for("offers")
    now, tolerance = datetime(2025, 1, 1), timedelta(hours=24)
    without = pd.DataFrame([offer], dtype=object, index=pd.RangeIndex(1, 2))
    assert validate_chunk(without, contract, now, tolerance).valid["unit"].tolist() == ["stay"]
    result = validate_chunk(
        pd.DataFrame(rows, dtype=object, index=pd.RangeIndex(1, 5)), contract, now, tolerance
    )
    assert result.valid["unit"].tolist() == ["stay", "stay", "night"]
    assert result.rejections[["row_number", "column_name"]].values.tolist() == [[4, "unit"]]


# Fingerprints of the tables the generator wrote before the offer truth was added (recorded with pandas 3.1,
# numpy 2.4, pyarrow 25 before the change). Adding truth must not move the random stream: a changed
# fingerprint means existing outputs changed. Re-record only for a deliberate change of the generator or
# when a pandas upgrade changes hash_pandas_object.
FINGERPRINT_CONFIG = DemoConfig(customers=300, seed=3)
FINGERPRINTS = {
    "transactions": "bbd10d7a61624302",
    "transaction_items": "3c6e71c7055edef7",
    "offer_log": "5a5cafce9bca999d",
    "customers_crm": "b4dab26d62f4a03b",  # phones valid for libphonenumber (demo/phones.py)
    "customers_booking": "81a45b96d4592ea0",  # phones valid for libphonenumber (demo/phones.py)
    "customers_billing": "83c0fd3559fea9b3",  # phones valid for libphonenumber (demo/phones.py)
    "truth_guests": "738ed54fc57a0f65",
    "truth_identities": "f884f594f988f300",
    "truth_offer_acceptance": "3e19b37d0db5418d",  # p_true rounded to 12 decimals
    "offers_without_unit": "6b7806ac323b61e9",  # hotel_ids: explicit limits only (facilities in hotels)
}


def _fingerprint(frame: pd.DataFrame) -> str:
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(",".join(frame.columns).encode() + hashed.tobytes()).hexdigest()[:16]


def test_existing_outputs_are_unchanged_by_the_offer_truth() -> None:
    d = generate_demo(FINGERPRINT_CONFIG)
    frames = {
        "transactions": d.transactions,
        "transaction_items": d.transaction_items,
        "offer_log": d.offer_log,
        # the last version of each customer record is the record as it was before records got their
        # first version too (docs: datasets, windows)
        **{
            f"customers_{k}": v.drop_duplicates("source_customer_id", keep="last")
            for k, v in d.customers.items()
        },
        **{f"truth_{k}": v for k, v in d.truth.items() if k not in ("offer_options", "offer_acceptance")},
        # p_true is exp() of a utility: its last bits vary with the CPU's vector instructions, so it is
        # compared to 12 decimals (the draws it decides, in offer_log, are compared exactly)
        "truth_offer_acceptance": d.truth["offer_acceptance"].round({"p_true": 12}),
        "offers_without_unit": d.offers.drop(columns="unit"),
    }
    assert {name: _fingerprint(frame) for name, frame in frames.items()} == FINGERPRINTS
