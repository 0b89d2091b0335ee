"""The booking-time ranker: compiled trees equal scikit-learn's, ranks equal the training path's scores,
and the rules hold."""

from __future__ import annotations

import pickle
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from crm_analytics.models.offers.acceptance import CONTEXT_CATEGORIES, AcceptanceModel, event_frame
from crm_analytics.models.offers.eligibility import BookingContext, GuestFacts, eligible
from crm_analytics.models.offers.ranker import OfferRanker
from tests.models.offers.conftest import Fitted

pytestmark = pytest.mark.slow  # fits the acceptance models on a 5,000-guest demo chain

BOOKING = BookingContext("H01", date(2025, 9, 1), 3, 2, "standard", "web", "leisure", True)


@pytest.mark.parametrize("which", ["full", "context"])
def test_compiled_trees_equal_scikit_learn(models: Fitted, which: str) -> None:
    model: AcceptanceModel = getattr(models, which)
    real = model._matrix(models.train.head(3_000))
    rng = np.random.default_rng(0)
    odd = real[rng.integers(0, len(real), 3_000)].copy()
    odd[rng.random(odd.shape) < 0.15] = np.nan  # missing values anywhere
    for j, column in enumerate(CONTEXT_CATEGORIES):  # codes the model never saw, and negative ones
        n = len(model.categories_[column])
        odd[rng.random(len(odd)) < 0.1, j] = rng.integers(-2, n + 3)
    odd[:, len(CONTEXT_CATEGORIES) :] *= rng.choice(
        [0.5, 1.0, 2.0], size=odd[:, len(CONTEXT_CATEGORIES) :].shape
    )
    for matrix in (real, odd):
        expected = model.classifier_.predict_proba(matrix)[:, 1]
        np.testing.assert_allclose(model.compiled().predict_proba(matrix), expected, rtol=0, atol=1e-12)


def test_pickling_leaves_out_the_compiled_trees_without_dropping_them(models: Fitted) -> None:
    """What MLflow logs holds no compiled cache (it is rebuilt from the folds), and pickling a model in
    use does not throw its cache away."""
    model = models.full
    compiled = model.compiled()
    restored = pickle.loads(pickle.dumps(model))
    assert model.compiled() is compiled
    assert "_compiled" not in vars(restored)
    matrix = model._matrix(models.train.head(200))
    np.testing.assert_array_equal(restored.compiled().predict_proba(matrix), compiled.predict_proba(matrix))


def _training_path(
    models: Fitted,
    booking: BookingContext,
    facts: GuestFacts,
    history: dict[str, float] | None,
    shown: datetime,
) -> dict[str, float]:
    """P(accept) of every eligible offer the way training scores events: frames through sklearn."""
    verdicts = eligible(models.offers, booking, facts, hotels=models.hotels)
    allowed = verdicts[verdicts["eligible"]]
    events = pd.DataFrame(
        {
            "offer_id": allowed["offer_id"].to_numpy(),
            "shown_at": pd.Timestamp(shown),
            "check_in": pd.Timestamp(booking.check_in),
            **{c: getattr(booking, c) for c in ("hotel_id", "room_type", "nights", "guests", "channel")},
            "purpose": booking.purpose,
            "upgrade_available": booking.upgrade_available,
        }
    )
    frame = event_frame(events, models.offers)
    model = models.full if history else models.context
    if history:
        frame = frame.assign(**{c: history.get(c, np.nan) for c in model.customer_columns_})
    return dict(zip(allowed["offer_id"], model.predict_proba(frame), strict=True))


def test_ranker_scores_what_the_training_path_scores(models: Fitted) -> None:
    ranker = OfferRanker(models.full, models.context, models.offers, models.hotels)
    history_columns = models.full.customer_columns_
    guests = models.train.drop_duplicates("customer_id").head(40)
    rng = np.random.default_rng(1)
    compared = 0
    for i in range(120):
        booking = BookingContext(
            str(rng.choice(["H01", "H02", "H03", "H05", "H99"])),  # H99: a hotel no model has seen
            date(2025, 7, 1) + timedelta(days=int(rng.integers(0, 300))),
            int(rng.integers(1, 8)),
            int(rng.integers(1, 5)),
            str(rng.choice(["standard", "deluxe", "suite", "family"])),
            str(rng.choice(["web", "ota", "phone", "new-channel"])),
            None if i % 7 == 0 else str(rng.choice(["business", "leisure"])),
            bool(rng.integers(0, 2)),
        )
        facts = GuestFacts(allergies=("dust mites",) if i % 5 == 0 else ())
        row = guests.iloc[i % len(guests)]
        history = {c: float(row[c]) for c in history_columns if pd.notna(row[c])} if i % 3 else None
        shown = datetime(2025, 6, 30, 9) + timedelta(hours=int(rng.integers(0, 48)))
        expected = _training_path(models, booking, facts, history, shown)
        ranked = ranker.rank(booking, facts, history, shown_at=shown, top_k=50)
        assert {r.offer_id for r in ranked} == set(expected)
        for offer in ranked:
            assert offer.p_accept == pytest.approx(expected[offer.offer_id], abs=1e-12)
        values = [r.expected_value for r in ranked]
        assert values == sorted(values, reverse=True)
        compared += len(ranked)
    assert compared > 500


def test_ranking_for_a_booking_respects_the_rules(models: Fitted) -> None:
    ranker = OfferRanker(models.full, models.context, models.offers, models.hotels)
    unknown = ranker.rank(BOOKING, GuestFacts(), top_k=12)
    assert len(unknown) > 3
    assert {"O06", "O07"} & {r.offer_id for r in unknown}  # carpeted upgrades are fine for this guest
    allergic = ranker.rank(BOOKING, GuestFacts(allergies=("dust mites",)), top_k=12)
    assert not {"O06", "O07"} & {r.offer_id for r in allergic}  # never a carpeted upgrade
    assert "O08" in {r.offer_id for r in allergic}  # the hypoallergenic room may be offered
    regular = {c: 0.0 for c in models.full.customer_columns_} | {"frequency": 4.0, "extras_rate_spa": 1.0}
    known = ranker.rank(BOOKING, GuestFacts(), regular, top_k=3)
    assert len(known) == 3
    assert all(0 <= r.p_accept <= 1 for r in known)
    top = ranker.rank(BOOKING, GuestFacts(), regular, top_k=12)
    spa = [r for r in top if r.offer_id in ("O02", "O12")]
    assert spa
    assert all(r.reason == "took spa on 5 of 5 stays" for r in spa)
    no_spa = OfferRanker(models.full, models.context, models.offers, models.hotels.assign(facilities=None))
    assert not {"O02", "O12"} & {r.offer_id for r in no_spa.rank(BOOKING, GuestFacts(), regular, top_k=12)}
    nothing = ranker.rank(BOOKING, GuestFacts(offers_shown_recently=3))  # the contact cap is reached
    assert nothing == []


def test_ranker_names_a_missing_catalogue_column(models: Fitted) -> None:
    with pytest.raises(ValueError, match="offers: missing column 'margin'"):
        OfferRanker(models.full, models.context, models.offers.drop(columns=["margin"]))


def test_compiling_needs_a_fitted_model() -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        AcceptanceModel().compiled()


def test_exploration_shows_random_eligible_offers_with_their_true_propensity(models: Fitted) -> None:
    ranker = OfferRanker(models.full, models.context, models.offers, models.hotels)
    greedy = ranker.rank(BOOKING, GuestFacts(), top_k=2)
    assert all(r.propensity == 1.0 for r in greedy)  # no exploration: the list is certain
    rng = np.random.default_rng(7)
    draws = 4_000
    seen: dict[str, int] = {}
    propensity: dict[str, float] = {}
    for _ in range(draws):
        for offer in ranker.rank(BOOKING, GuestFacts(), top_k=2, explore=0.3, rng=rng):
            seen[offer.offer_id] = seen.get(offer.offer_id, 0) + 1
            propensity[offer.offer_id] = offer.propensity
    eligible_ids = {r.offer_id for r in ranker.rank(BOOKING, GuestFacts(), top_k=50)}
    assert set(seen) == eligible_ids  # exploring reaches every eligible offer, and only those
    for offer_id, count in seen.items():  # each offer is shown as often as its propensity says
        p = propensity[offer_id]
        assert abs(count / draws - p) < 4 * np.sqrt(p * (1 - p) / draws) + 1e-9, offer_id
    with pytest.raises(ValueError, match="explore"):
        ranker.rank(BOOKING, GuestFacts(), explore=1.0)
