"""Eligibility rules: each rule has a scenario only it excludes, and the meta-test proves each is needed."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from functools import partial

import numpy as np
import pandas as pd
import pytest

from crm_analytics.datasets.demo import offers as demo_offers
from crm_analytics.datasets.demo.catalogue import HOTELS, ROOM_TYPES, hotels_frame, offers_frame
from crm_analytics.models.offers import eligibility as elig
from crm_analytics.models.offers.eligibility import (
    CONTEXT_COLUMNS,
    OFFER_COLUMNS,
    RULES,
    BookingContext,
    GuestFacts,
)

DEMO = offers_frame()
DEMO_HOTELS = hotels_frame()
# every check here runs with the demo chain's hotels catalogue (facilities), as scoring and serving do
eligible = partial(elig.eligible, hotels=DEMO_HOTELS)
eligibility_matrix = partial(elig.eligibility_matrix, hotels=DEMO_HOTELS)
BOOKING = BookingContext("H01", date(2024, 5, 1), 3, 2, "standard", "web", "leisure", upgrade_available=True)
ALLERGIC = GuestFacts(allergies=("dust mites",))


def handmade(**columns: object) -> pd.DataFrame:
    """A one-offer catalogue sold everywhere, to every room, with the given columns overridden."""
    row: dict[str, object] = {
        "offer_id": "X1",
        "name": "Hand-made",
        "category": "dining",
        "price": 10.0,
        "margin": 5.0,
        "hotel_ids": None,
        "room_types": None,
        "min_nights": 1,
        "carpeted": False,
        "hypoallergenic": False,
    }
    return pd.DataFrame([{**row, **columns}])


@dataclass(frozen=True)
class Scenario:
    """A booking where ``rule`` (and only it) excludes ``offer_id``."""

    rule: str
    label: str
    offers: pd.DataFrame
    context: BookingContext
    facts: GuestFacts
    offer_id: str


SCENARIOS = (
    Scenario(
        "hotel",
        "rooftop dinner outside its hotels",
        DEMO,
        replace(BOOKING, hotel_id="H03"),
        GuestFacts(),
        "O11",
    ),
    Scenario("hotel", "hand-made list", handmade(hotel_ids="H02; H03"), BOOKING, GuestFacts(), "X1"),
    Scenario(
        "facilities",
        "spa package at a hotel without a spa",
        DEMO,
        replace(BOOKING, hotel_id="H04"),
        GuestFacts(),
        "O02",
    ),
    Scenario(
        "facilities",
        "airport transfer at a hotel missing from the catalogue",
        DEMO,
        replace(BOOKING, hotel_id="H99"),
        GuestFacts(),
        "O05",
    ),
    Scenario(
        "facilities", "hand-made parking offer", handmade(requires_parking=True), BOOKING, GuestFacts(), "X1"
    ),
    Scenario(
        "room_type",
        "deluxe upgrade from deluxe",
        DEMO,
        replace(BOOKING, room_type="deluxe"),
        GuestFacts(),
        "O06",
    ),
    Scenario(
        "min_nights", "spa day for two, one night", DEMO, replace(BOOKING, nights=1), GuestFacts(), "O12"
    ),
    Scenario("dates", "offer ended", handmade(valid_until=date(2024, 4, 30)), BOOKING, GuestFacts(), "X1"),
    Scenario(
        "dates", "offer starts later", handmade(valid_from=date(2024, 5, 2)), BOOKING, GuestFacts(), "X1"
    ),
    Scenario(
        "dates",
        "last night after the offer ends",
        handmade(valid_from=date(2024, 5, 1), valid_until=date(2024, 5, 2)),
        BOOKING,
        GuestFacts(),
        "X1",
    ),
    Scenario(
        "upgrade_available",
        "no upgrade free",
        DEMO,
        replace(BOOKING, upgrade_available=False),
        GuestFacts(),
        "O08",
    ),
    Scenario(
        "not_already_bought", "bought", DEMO, BOOKING, GuestFacts(bought_this_stay=frozenset({"O01"})), "O01"
    ),
    Scenario(
        "not_already_bought",
        "second upgrade",
        DEMO,
        BOOKING,
        GuestFacts(bought_this_stay=frozenset({"O06"})),
        "O08",
    ),
    Scenario("allergy", "carpeted upgrade", DEMO, BOOKING, ALLERGIC, "O07"),
    Scenario("allergy", "carpeted extra", handmade(carpeted=True), BOOKING, ALLERGIC, "X1"),
    Scenario(
        "allergy",
        "upgrade to a room that is not hypoallergenic",
        handmade(category=" Upgrade"),
        BOOKING,
        ALLERGIC,
        "X1",
    ),
    Scenario("contact_cap", "three offers shown", DEMO, BOOKING, GuestFacts(offers_shown_recently=3), "O01"),
)
RULE_NAMES = [rule.name for rule in RULES]


def verdict(scenario: Scenario) -> pd.Series:
    result = eligible(scenario.offers, scenario.context, scenario.facts)
    return result.set_index("offer_id").loc[scenario.offer_id]


def as_frames(context: BookingContext, facts: GuestFacts) -> tuple[pd.DataFrame, pd.DataFrame]:
    contexts = pd.DataFrame([{c: getattr(context, c) for c in CONTEXT_COLUMNS}])
    guest = {
        "has_allergy": bool(facts.allergies),
        "bought_this_stay": ";".join(sorted(facts.bought_this_stay)),
        "offers_shown_recently": facts.offers_shown_recently,
    }
    return contexts, pd.DataFrame([guest])


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: f"{s.rule}-{s.label}")
def test_scenario_is_excluded_by_its_rule(scenario: Scenario) -> None:
    row = verdict(scenario)
    assert not row["eligible"]
    assert row["excluded_by"] == scenario.rule


@pytest.mark.parametrize("name", RULE_NAMES)
def test_removing_a_rule_wrongly_allows_its_scenarios(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    scenarios = [s for s in SCENARIOS if s.rule == name]
    assert scenarios, f"rule {name!r} has no scenario"
    monkeypatch.setattr(elig, "RULES", tuple(rule for rule in RULES if rule.name != name))
    for scenario in scenarios:
        assert verdict(scenario)["eligible"], scenario.label
        contexts, facts = as_frames(scenario.context, scenario.facts)
        position = scenario.offers["offer_id"].tolist().index(scenario.offer_id)
        assert eligibility_matrix(scenario.offers, contexts, facts)[0, position], scenario.label


def test_every_scenario_names_a_rule_and_rules_are_unique() -> None:
    assert {s.rule for s in SCENARIOS} == set(RULE_NAMES)
    assert len(set(RULE_NAMES)) == len(RULE_NAMES)
    assert elig.rules_table()["name"].tolist() == RULE_NAMES
    assert all(rule.description for rule in RULES)


def test_dust_allergy_never_gets_carpeted_upgrades_but_may_get_hypoallergenic_room() -> None:
    result = eligible(DEMO, BOOKING, ALLERGIC).set_index("name")
    for carpeted in ("Upgrade to deluxe", "Upgrade to suite"):
        assert not result.loc[carpeted, "eligible"]
        assert result.loc[carpeted, "excluded_by"] == "allergy"
    assert result.loc["Upgrade to hypoallergenic room", "eligible"]
    unknown = eligible(DEMO, BOOKING, GuestFacts()).set_index("name")
    assert unknown.loc[["Upgrade to deluxe", "Upgrade to suite"], "eligible"].all()


def test_eligible_keeps_the_catalogue_and_marks_allowed_offers() -> None:
    result = eligible(DEMO, BOOKING, GuestFacts())
    pd.testing.assert_frame_equal(result[DEMO.columns], DEMO)
    assert "eligible" not in DEMO.columns
    allowed = result[result["eligible"]]
    assert allowed["excluded_by"].isna().all()
    assert set(allowed["offer_id"]) == {"O01", "O02", "O03", "O06", "O07", "O08", "O09", "O10", "O11", "O12"}


def test_an_offer_needing_a_facility_is_only_eligible_where_the_hotel_has_it() -> None:
    """The demo catalogue limits no offer to hotels for its facilities: the hotels catalogue decides."""
    spa = DEMO.loc[DEMO["requires_spa"], "offer_id"].tolist()
    assert spa == ["O02", "O12"]
    assert DEMO.set_index("offer_id").loc[spa, "hotel_ids"].isna().all()
    with_spa = DEMO_HOTELS["facilities"].fillna("").str.contains("spa")
    for hotel, has_spa in zip(DEMO_HOTELS["hotel_id"], with_spa, strict=True):
        result = eligible(DEMO, replace(BOOKING, hotel_id=hotel), GuestFacts()).set_index("offer_id")
        assert result.loc[spa, "eligible"].tolist() == [has_spa] * 2, hotel
    without_catalogue = elig.eligible(DEMO, BOOKING, GuestFacts()).set_index("offer_id")
    needs = DEMO.set_index("offer_id")[list(elig.REQUIRED_FACILITIES)].any(axis=1)
    assert (without_catalogue.loc[needs, "excluded_by"] == "facilities").all()
    assert without_catalogue.loc[~needs, "excluded_by"].ne("facilities").all()


def test_contact_cap_is_a_parameter() -> None:
    two = GuestFacts(offers_shown_recently=2)
    assert eligible(DEMO, BOOKING, two)["eligible"].any()
    assert not eligible(DEMO, BOOKING, two, contact_cap=2)["eligible"].any()
    assert eligible(DEMO, BOOKING, GuestFacts(offers_shown_recently=3), contact_cap=5)["eligible"].any()
    with pytest.raises(ValueError, match="contact_cap"):
        eligible(DEMO, BOOKING, two, contact_cap=-1)


def test_null_flags_are_false_and_null_lists_mean_any() -> None:
    offers = handmade(category="upgrade", carpeted=pd.NA, hypoallergenic=pd.NA, min_nights=pd.NA)
    offers = pd.concat([offers, handmade(offer_id="X2", carpeted=pd.NA, hotel_ids="")], ignore_index=True)
    offers[["carpeted", "hypoallergenic"]] = offers[["carpeted", "hypoallergenic"]].astype("boolean")
    one_night = replace(BOOKING, nights=1, room_type="family", hotel_id="H99")
    result = eligible(offers, one_night, ALLERGIC).set_index("offer_id")
    assert result.loc["X1", "excluded_by"] == "allergy"  # null hypoallergenic: not hypoallergenic
    assert result.loc["X2", "eligible"]  # null carpeted: not carpeted; blank hotel list: every hotel


def test_lists_are_trimmed_and_an_unknown_hotel_or_room_gets_only_unrestricted_offers() -> None:
    assert eligible(handmade(hotel_ids="H02; H03"), replace(BOOKING, hotel_id="H03"), GuestFacts())[
        "eligible"
    ][0]
    unknown = replace(BOOKING, hotel_id=None, room_type=None)
    result = eligible(DEMO, unknown, GuestFacts()).set_index("offer_id")
    assert result.loc["O01", "eligible"]
    assert result.loc["O11", "excluded_by"] == "hotel"
    assert result.loc["O08", "excluded_by"] == "room_type"


@pytest.mark.parametrize("column", OFFER_COLUMNS)
def test_missing_catalogue_column_is_named(column: str) -> None:
    with pytest.raises(ValueError, match=f"offers: missing column '{column}'"):
        eligible(DEMO.drop(columns=column), BOOKING, GuestFacts())


@pytest.mark.parametrize("column", ["nights", "has_allergy"])
def test_missing_event_column_is_named(column: str) -> None:
    contexts, facts = as_frames(BOOKING, GuestFacts())
    with pytest.raises(ValueError, match=f"missing column '{column}'"):
        eligibility_matrix(
            DEMO, contexts.drop(columns=column, errors="ignore"), facts.drop(columns=column, errors="ignore")
        )


def random_events(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Contexts and facts over the demo hotels and rooms plus unknown ones; purchases in three encodings."""
    hotels = [h.hotel_id for h in HOTELS] + ["H99"]
    rooms = [*ROOM_TYPES, "family"]
    ids = DEMO["offer_id"].to_numpy()
    contexts = pd.DataFrame(
        {
            "hotel_id": rng.choice(hotels, n),
            "check_in": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D"),
            "nights": rng.integers(1, 5, n),
            "guests": rng.integers(1, 4, n),
            "room_type": rng.choice(rooms, n),
            "channel": rng.choice(["web", "phone", "agent"], n),
            "purpose": rng.choice(["business", "leisure"], n),
            "upgrade_available": rng.random(n) < 0.5,
        }
    )
    bought = [list(ids[rng.random(len(ids)) < 0.1]) for _ in range(n)]
    encoded = [b if i % 3 == 0 else tuple(b) if i % 3 == 1 else ";".join(b) for i, b in enumerate(bought)]
    facts = pd.DataFrame(
        {
            "has_allergy": rng.random(n) < 0.3,
            "bought_this_stay": pd.Series(encoded, dtype=object),
            "offers_shown_recently": rng.integers(0, 5, n),
        }
    )
    return contexts, facts


def test_matrix_agrees_with_eligible_row_by_row() -> None:
    offers = pd.concat(
        [DEMO, handmade(category="upgrade"), handmade(offer_id="X2", carpeted=True)], ignore_index=True
    )
    contexts, facts = random_events(np.random.default_rng(7), 500)
    matrix = eligibility_matrix(offers, contexts, facts)
    assert matrix.shape == (500, len(offers))
    assert 0.1 < matrix.mean() < 0.9
    for i, (context, fact) in enumerate(
        zip(contexts.itertuples(index=False), facts.itertuples(index=False), strict=True)
    ):
        booking = BookingContext(**context._asdict())
        bought = fact.bought_this_stay
        guest = GuestFacts(
            allergies=("dust mites",) if fact.has_allergy else (),
            bought_this_stay=frozenset(bought.split(";") if isinstance(bought, str) else bought) - {""},
            offers_shown_recently=int(fact.offers_shown_recently),
        )
        np.testing.assert_array_equal(
            eligible(offers, booking, guest)["eligible"].to_numpy(), matrix[i], str(i)
        )


def generator_bookings(n: int) -> tuple[demo_offers.BookingDraws, np.ndarray, pd.DataFrame]:
    """Random bookings as the demo generator holds them (indices) and as our contexts (ids)."""
    rng = np.random.default_rng(11)
    hotel, room = rng.integers(0, len(HOTELS), n), rng.integers(0, len(ROOM_TYPES), n)
    generator = demo_offers.BookingDraws(
        person=np.arange(n),
        hotel=hotel,
        room=room,
        nights=rng.integers(1, 5, n),
        party=rng.integers(1, 4, n),
        business=rng.random(n) < 0.4,
        upgrade_available=rng.random(n) < 0.5,
    )
    contexts = pd.DataFrame(
        {
            "hotel_id": [HOTELS[h].hotel_id for h in hotel],
            "check_in": date(2024, 5, 1),
            "nights": generator.nights,
            "guests": generator.party,
            "room_type": [ROOM_TYPES[r] for r in room],
            "channel": "web",
            "purpose": np.where(generator.business, "business", "leisure"),
            "upgrade_available": generator.upgrade_available,
        }
    )
    return generator, rng.random(n) < 0.3, contexts


def test_matrix_agrees_with_the_demo_generator() -> None:
    generator, allergic, contexts = generator_bookings(2000)
    expected = demo_offers.eligibility(generator, np.arange(2000), allergic)
    facts = pd.DataFrame({"has_allergy": allergic, "bought_this_stay": None, "offers_shown_recently": 0})
    assert 0.1 < expected.mean() < 0.9
    np.testing.assert_array_equal(eligibility_matrix(DEMO, contexts, facts), expected)


def test_matrix_agrees_with_the_generator_candidates_after_purchases() -> None:
    generator, allergic, contexts = generator_bookings(2000)
    booked = np.random.default_rng(3).random((2000, len(DEMO))) < 0.15
    expected = demo_offers.candidates(generator, np.arange(2000), booked, allergic)
    ids = DEMO["offer_id"].to_numpy()
    facts = pd.DataFrame(
        {
            "has_allergy": allergic,
            "bought_this_stay": [list(ids[row]) for row in booked],
            "offers_shown_recently": 0,
        }
    )
    np.testing.assert_array_equal(eligibility_matrix(DEMO, contexts, facts), expected)


def test_a_stay_inside_the_offer_period_is_allowed() -> None:
    """BOOKING: three nights from 2024-05-01, so 05-01..05-03 is exactly inside."""
    period = handmade(valid_from=pd.Timestamp("2024-05-01"), valid_until=pd.Timestamp("2024-05-03"))
    assert eligible(period, BOOKING, GuestFacts())["eligible"].tolist() == [True]
    open_ended = handmade(valid_from=None, valid_until=None)
    assert eligible(open_ended, BOOKING, GuestFacts())["eligible"].tolist() == [True]
