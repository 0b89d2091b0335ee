"""Offline evaluation of offer policies on the later, held-out part of the offer log.

Events are taken in 30-day windows, each with customer features as of the window's start (what a
monthly batch scoring would serve at booking time; the features never see the window itself). The
acceptance models learn from the windows in (train_from, split]; the policies are judged on the windows
in (split, end].
Four policies side by side: random (uniform over the eligible offers), popularity (the offer accepted
most often in training, among the eligible), ours (highest P(accept) x margin) and the oracle (highest
true acceptance probability x margin, from the demo generator's truth folder, which only this
evaluation reads). Each policy's value (expected margin per booking, EUR) is estimated two ways:

- inverse propensity scoring from the log, clipped and self-normalised (SNIPS): the importance weight
  w = pi(logged offer | event) / propensity is capped at ``MAX_IMPORTANCE_WEIGHT``, and the value is
  sum(w x the logged margin earned) / sum(w). Clipping bounds what one row can weigh (one row logged
  with a propensity of 1e-40 would otherwise outweigh the whole log); self-normalising removes the
  estimate's dependence on the weights' scale, at a small bias that vanishes as the log grows;
- exactly, from the truth: mean over events of sum_offer pi(offer | event) x p_true x margin.

Service facts come from the unified profiles (an allergy any system records forbids carpeted
upgrades). A guest whose allergy no system records can still be offered what the true facts forbid:
such choices earn nothing in the exact value and are counted as ``violations``;
``violations_of_recorded_facts`` counts those where the allergy was on record, and must be zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from ibis.backends import BaseBackend
from ibis.common.exceptions import TableNotFound
from sklearn.metrics import brier_score_loss, roc_auc_score

from crm_analytics.features.build import FeatureConfig
from crm_analytics.features.cutoffs import feature_frames
from crm_analytics.models.offers.acceptance import (
    CONTEXT_CATEGORIES,
    CONTEXT_NUMBERS,
    AcceptanceModel,
    customer_columns,
    event_frame,
)
from crm_analytics.models.offers.eligibility import CONTACT_WINDOW_DAYS, eligibility_matrix
from crm_analytics.models.offers.policy import best_offer, margins
from crm_analytics.profiles.links import linked_to_customers
from crm_analytics.profiles.tables import SERVICE_FACTS

MAX_IMPORTANCE_WEIGHT = 100.0
"""The cap on pi / propensity: a logged propensity below 1% counts as 1% for a policy that would surely
show the offer. Legitimate weights stay below it: the demo's logging policy gives every eligible offer
at least 5.5% (weights <= 18), and the API's exploration (5%, 3 of 12 offers) at least 1.25% (<= 80)."""


@dataclass
class OfferSplit:
    """Logged events of one window with their context, customer features and the known-guest flag."""

    events: pd.DataFrame
    known: np.ndarray


def window(
    con: BaseBackend, offers: pd.DataFrame, start: date, end: date, features: pd.DataFrame
) -> OfferSplit:
    """Events shown in (start, end], joined with customer ``features`` as of ``start``."""
    log = linked_to_customers(con, "offer_log")
    shown = log.filter((log.shown_at >= start + timedelta(days=1)) & (log.shown_at < end + timedelta(days=1)))
    events = event_frame(shown.order_by("event_id").execute(), offers)
    columns = customer_columns(features)
    joined = events.merge(features[["customer_id", *columns]], on="customer_id", how="left")
    return OfferSplit(joined, joined["customer_id"].isin(features["customer_id"]).to_numpy())


def rolling_windows(
    con: BaseBackend, offers: pd.DataFrame, start: date, end: date, config: FeatureConfig, days: int = 30
) -> OfferSplit:
    """Events in (start, end] in windows of ``days``, each with features as of its own start (columns
    of ``config``, resolved), so a guest's history is never more than one window old when their answer
    is learned from or judged."""
    starts = [start + timedelta(days=days * k) for k in range(max(0, -(-(end - start).days // days)))]
    tables = feature_frames(con, config, starts)
    parts = [
        window(con, offers, cutoff, min(cutoff + timedelta(days=days), end), features)
        for cutoff, features in zip(starts, tables, strict=True)
    ]
    return OfferSplit(
        pd.concat([p.events for p in parts], ignore_index=True), np.concatenate([p.known for p in parts])
    )


def fit_models(train: OfferSplit, seed: int) -> tuple[AcceptanceModel, AcceptanceModel]:
    """The full model on known guests' events and the context-only model on every event."""
    accepted = train.events["accepted"].astype(bool)
    full = AcceptanceModel(with_customer=True, seed=seed).fit(
        train.events[train.known], accepted[train.known]
    )
    context = AcceptanceModel(with_customer=False, seed=seed).fit(train.events, accepted)
    return full, context


def acceptance_matrix(
    split: OfferSplit, offers: pd.DataFrame, full: AcceptanceModel, context: AcceptanceModel
) -> np.ndarray:
    """(events x offers) P(accept) of every catalogue offer in every event's booking."""
    n, k = len(split.events), len(offers)
    repeated = split.events.loc[np.repeat(np.arange(n), k)].reset_index(drop=True)
    repeated["offer_id"] = np.tile(offers["offer_id"].to_numpy(), n)
    frame = event_frame(repeated.drop(columns=["category", "price", "margin"]), offers)
    known = np.repeat(split.known, k)
    p = np.empty(n * k)
    if known.any():
        p[known] = full.predict_proba(frame[known])
    if (~known).any():
        p[~known] = context.predict_proba(frame[~known])
    return p.reshape(n, k)


def guest_facts(con: BaseBackend, events: pd.DataFrame) -> pd.DataFrame:
    """Per event: an allergy on the guest's unified profile (any source), offers bought for the stay
    before this one was shown, and offers shown to the guest in the contact window before it.

    Extras are line items of the booking's own transaction, recorded with the booking, so they are known
    when the offer is shown; only the logged offer itself, when accepted, is removed (it was bought
    because of this offer)."""
    items = con.table("transaction_items").select("transaction_id", "item_id").execute()
    bought = items.groupby("transaction_id")["item_id"].agg(set)
    before = [
        (bought.get(tx, set()) - ({offer} if accepted else set())) if isinstance(tx, str) else set()
        for tx, offer, accepted in zip(
            events["transaction_id"], events["offer_id"], events["accepted"].astype(bool), strict=True
        )
    ]
    log = linked_to_customers(con, "offer_log").select("customer_id", "shown_at").execute()
    shown = log.groupby("customer_id")["shown_at"].apply(lambda s: np.sort(s.to_numpy()))
    recent = []
    for customer, at in zip(events["customer_id"], pd.to_datetime(events["shown_at"]), strict=True):
        times = shown.get(customer, np.array([], dtype="datetime64[ns]"))
        start = np.datetime64(at - timedelta(days=CONTACT_WINDOW_DAYS))
        recent.append(int(np.searchsorted(times, np.datetime64(at)) - np.searchsorted(times, start)))
    allergic = allergic_customers(con)
    return pd.DataFrame(
        {
            "has_allergy": events["customer_id"].isin(allergic).to_numpy(),
            "bought_this_stay": [tuple(b) for b in before],
            "offers_shown_recently": recent,
        }
    )


def hotels_catalogue(con: BaseBackend) -> pd.DataFrame | None:
    """The hotels catalogue (their facilities decide offers that require one); None before it is ingested."""
    try:
        return con.table("hotels").execute()
    except TableNotFound:
        return None


def allergic_customers(con: BaseBackend) -> set[str]:
    """Unified customers with an allergy recorded by any source (empty before profiles are built)."""
    try:
        facts = con.table(SERVICE_FACTS)
    except TableNotFound:
        return set()
    allergies = facts.filter(facts.fact == "allergy").select("customer_id").distinct().execute()
    return set(allergies["customer_id"])


def truth_matrices(truth_dir: Path, events: pd.DataFrame, offers: pd.DataFrame) -> tuple[np.ndarray, ...]:
    """(events x offers) true acceptance probability, margin (EUR) and whether the true facts allow it."""
    options = pd.read_parquet(truth_dir / "offer_options.parquet")
    rows = pd.Series(np.arange(len(events)), index=events["event_id"].to_numpy())
    cols = pd.Series(np.arange(len(offers)), index=offers["offer_id"].to_numpy())
    options = options[options["event_id"].isin(rows.index)]
    i, j = rows[options["event_id"]].to_numpy(), cols[options["offer_id"]].to_numpy()
    p_true, margin, allowed = (np.zeros((len(events), len(offers))) for _ in range(3))
    p_true[i, j], margin[i, j], allowed[i, j] = options["p_true"], options["margin_eur"], 1.0
    return p_true, margin, allowed.astype(bool)


def one_hot(choice: np.ndarray, k: int) -> np.ndarray:
    policy = np.zeros((len(choice), k))
    chosen = choice >= 0
    policy[np.flatnonzero(chosen), choice[chosen]] = 1.0
    return policy


def policy_values(
    policy: np.ndarray,
    logged: np.ndarray,
    events: pd.DataFrame,
    reward: np.ndarray,
    true_value: np.ndarray | None,
    max_weight: float = MAX_IMPORTANCE_WEIGHT,
) -> dict[str, float]:
    """The clipped, self-normalised IPS value (``ips``) of a (events x offers) policy, with its
    standard error (delta method), the weights' effective sample size and how many were clipped; and
    the exact value when the truth is known."""
    raw = policy[np.arange(len(events)), logged] / events["propensity"].to_numpy(float)
    weight = np.minimum(raw, max_weight)
    total = float(weight.sum())
    value = float(weight @ reward / total) if total > 0 else 0.0  # no overlap with the log: no evidence
    spread = float(np.sqrt(np.sum((weight * (reward - value)) ** 2)) / total) if total > 0 else 0.0
    values = {
        "ips": value,
        "ips_standard_error": spread,
        "effective_sample_size": total**2 / float(weight @ weight) if total > 0 else 0.0,
        "clipped_weights": int((raw > max_weight).sum()),
    }
    if true_value is not None:
        values["exact"] = float((policy * true_value).sum(axis=1).mean())
    return values


def evaluate_offers(
    con: BaseBackend,
    truth_dir: Path | None,
    split: date,
    end: date,
    train_days: int = 730,
    seed: int = 0,
) -> dict[str, Any]:
    """Random, popularity, ours (and the oracle, with a truth folder) on the events in (split, end]."""
    return fit_and_evaluate(con, truth_dir, split, end, train_days, seed).report


@dataclass
class OfferEvaluation:
    """The report and the acceptance models it judged (trained on the log up to the split)."""

    report: dict[str, Any]
    full: AcceptanceModel
    context: AcceptanceModel
    example: pd.DataFrame  # model input columns, for a logged model's signature (no customer's row)


def fit_and_evaluate(
    con: BaseBackend,
    truth_dir: Path | None,
    split: date,
    end: date,
    train_days: int = 730,
    seed: int = 0,
) -> OfferEvaluation:
    """``evaluate_offers``, keeping the trained models."""
    offers = con.table("offers").order_by("offer_id").execute()
    config = FeatureConfig(as_of=split).resolved(con)  # one set of columns for every window
    train = rolling_windows(con, offers, split - timedelta(days=train_days), split, config)
    test = rolling_windows(con, offers, split, end, config)
    if len(train.events) < 100 or len(test.events) < 100:
        raise ValueError(
            f"split: too few logged offers ({len(train.events)} before, {len(test.events)} after)"
        )
    full, context = fit_models(train, seed)
    events = test.events
    rows = np.arange(len(events))
    p_accept = acceptance_matrix(test, offers, full, context)
    margin = margins(offers, events["nights"].to_numpy(), events["guests"].to_numpy())
    facts = guest_facts(con, events)
    allowed = eligibility_matrix(offers, events, facts, hotels=hotels_catalogue(con))
    logged = pd.Series(np.arange(len(offers)), index=offers["offer_id"])[events["offer_id"]].to_numpy()
    reward = events["accepted"].astype(float).to_numpy() * margin[rows, logged]
    popularity = train.events.groupby("offer_id")["accepted"].sum().reindex(offers["offer_id"]).fillna(0)
    ours = best_offer(p_accept * margin, allowed)
    policies = {
        "random": allowed / np.maximum(allowed.sum(axis=1, keepdims=True), 1),
        "popularity": one_hot(
            best_offer(np.tile(popularity.to_numpy(float), (len(events), 1)), allowed), len(offers)
        ),
        "ours": one_hot(ours, len(offers)),
    }
    true_value = None
    report: dict[str, Any] = {}
    if truth_dir is not None:
        p_true, true_margin, truly_allowed = truth_matrices(truth_dir, events, offers)
        true_value = p_true * true_margin
        # the oracle knows the true facts, and keeps our other rules (contact cap, already bought): the
        # comparison is about choosing, not about rules the others must follow
        policies["oracle"] = one_hot(best_offer(true_value, truly_allowed & allowed), len(offers))
        broken = (ours >= 0) & ~truly_allowed[rows, np.maximum(ours, 0)]
        report["violations"] = int(broken.sum())
        # a rule can only be kept for facts some system records: these must be zero
        report["violations_of_recorded_facts"] = int((broken & facts["has_allergy"].to_numpy()).sum())
    values = {name: policy_values(pi, logged, events, reward, true_value) for name, pi in policies.items()}
    if "oracle" in values:
        for value in values.values():
            value["share_of_oracle"] = value["exact"] / values["oracle"]["exact"]
    logged_p = p_accept[rows, logged]
    accepted = events["accepted"].astype(bool).to_numpy()
    report_all = {
        "split": str(split),
        "end": str(end),
        "train_events": len(train.events),
        "test_events": len(events),
        "known_guests_share": float(test.known.mean()),
        "policies": values,
        "acceptance": {
            "roc_auc": float(roc_auc_score(accepted, logged_p)),
            "brier": float(brier_score_loss(accepted, logged_p)),
            "mean_predicted": float(logged_p.mean()),
            "acceptance_rate": float(accepted.mean()),
        },
        **report,
    }
    return OfferEvaluation(report_all, full, context, input_example(test.events, full))


def input_example(events: pd.DataFrame, full: AcceptanceModel) -> pd.DataFrame:
    """Three synthetic rows: the 25/50/75% quantiles of every number, the most common category of each
    categorical column; made of no single event or customer."""
    columns = [*CONTEXT_CATEGORIES, *CONTEXT_NUMBERS, *full.customer_columns_]
    numbers = [c for c in columns if c not in CONTEXT_CATEGORIES]
    example = events[numbers].astype(float).quantile([0.25, 0.5, 0.75]).reset_index(drop=True)
    for column in CONTEXT_CATEGORIES:
        example[column] = str(events[column].astype("str").mode().iloc[0])
    return example[columns]
