"""The API's offer feedback into the warehouse's offer log, where retraining the offer models reads it.

The offer log takes what it weighs answers by from the service's own decision log, never from the
caller: a ``shown`` event's propensity and guest are those its ``/v1/offers`` answer logged (a showing
whose answer was never logged, or that did not make the offer, is never collected: ``no_decision``).
A ``shown`` event becomes one offer-log row once its answer window (``feedback_answer_days`` after we
received it) has closed: accepted or declined by the latest answer to the same offer of the same
``/v1/offers`` answer (``decision_id``) that reached us within the window, declined with no
``responded_at`` when none did. Windows are measured on our clock (``received_at``), so a row's content
does not depend on when it is collected, and a row once collected is never rebuilt (its event id is
skipped), so later changes to ``customer_links`` cannot turn it into a conflict. Rows go in through
the ingest pipeline (contract validation, quarantine with a reason, rows of erased customers dropped,
idempotent by ``event_id``). A batch is never refused for its share of bad rows (they are quarantined
with their reason): a bad event must not hold back the good ones forever.

The offer log names a guest by their account in a source system (``customer_links`` maps it to the
unified customer, as for the other sources): the guest's ``booking`` account when they have one, else
their first linked account. A customer the profiles do not link keeps our id under source ``api``; an
unknown guest has no id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from crm_analytics.ingest.pipeline import ingest_frame
from crm_analytics.jobs.common import open_store, open_warehouse
from crm_analytics.profiles.tables import LINKS
from crm_analytics.settings import Settings
from crm_analytics.store import Decision, ServingStore
from crm_analytics.warehouse import Warehouse

FEEDBACK_SOURCE = "api"
PREFERRED_SOURCES = ("booking",)  # the account that names a guest in the offer log, if they have one
BOOKING_FIELDS = ("hotel_id", "check_in", "nights", "guests", "room_type", "channel", "purpose")
ANSWERS = ("accepted", "declined")


@dataclass
class FeedbackReport:
    """What a collection did: counts only."""

    shown: int = 0
    no_decision: int = 0  # its /v1/offers answer was never logged (or did not make the offer): skipped
    collected_before: int = 0  # already in the offer log: skipped
    answered: int = 0  # settled by the guest's answer
    unanswered: int = 0  # settled as declined: no answer within the answer window
    waiting: int = 0  # answer window still open: left for a later run
    answers_unmatched: int = 0  # no shown event with that decision_id and offer_id
    answers_late: int = 0  # reached us after the answer window: the showing counts as declined
    ingest: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def collect(settings: Settings) -> FeedbackReport:
    """Settle the serving store's shown offers into the warehouse's offer log (``crm feedback collect``):
    run it any time, nothing is added twice. Then retrain with ``crm train offers``."""
    with open_warehouse(settings) as warehouse:
        return collect_feedback(open_store(settings), warehouse, settings)


def collect_feedback(
    store: ServingStore, warehouse: Warehouse, settings: Settings, *, now: datetime | None = None
) -> FeedbackReport:
    """Settle the store's shown offers into the warehouse's ``offer_log`` (see the module docstring)."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    events = store.feedback_events()
    report = FeedbackReport()
    collected = _collected(warehouse, [e["event_id"] for e in events if e["event"] == "shown"])
    rows = offer_log_rows(events, now, timedelta(days=settings.feedback_answer_days), report, collected)
    if not rows:
        return report
    frame = pd.DataFrame(rows)
    frame = attribute_accounts(warehouse, frame)
    never_refuse = settings.model_copy(update={"ingest_max_bad_ratio": 1.0})  # one bad row must not block
    batch = ingest_frame(warehouse, frame, never_refuse, table="offer_log", label="api:feedback", now=now)
    report.ingest = batch.as_dict()
    return report


def offer_log_rows(
    events: list[dict[str, Any]],
    now: datetime,
    window: timedelta,
    report: FeedbackReport,
    collected: set[str] | frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """Offer-log rows (customer still our id) for the ``shown`` events whose answer window has closed
    and that are not ``collected`` yet; counts into ``report``."""
    every_shown = [e for e in events if e["event"] == "shown"]
    shown = [e for e in every_shown if logged_propensity(e) is not None]
    report.shown += len(every_shown)
    report.no_decision += len(every_shown) - len(shown)
    closes = {(e["decision_id"], e["offer_id"]): e["received_at"] + window for e in shown}
    answers: dict[tuple[str, str], dict[str, Any]] = {}
    for answer in (e for e in events if e["event"] in ANSWERS):
        key = (answer["decision_id"], answer["offer_id"])
        if key not in closes:
            report.answers_unmatched += 1
        elif answer["received_at"] > closes[key]:
            report.answers_late += 1
        elif key not in answers or answer["occurred_at"] >= answers[key]["occurred_at"]:
            answers[key] = answer  # the latest answer in the window counts
    rows = []
    for event in shown:
        if event["event_id"] in collected:
            report.collected_before += 1
            continue
        if now < closes[(event["decision_id"], event["offer_id"])]:
            report.waiting += 1
            continue
        reply = answers.get((event["decision_id"], event["offer_id"]))
        report.answered += reply is not None
        report.unanswered += reply is None
        rows.append(_row(event, reply))
    return rows


def _collected(warehouse: Warehouse, event_ids: list[str]) -> set[str]:
    """The event ids already in the offer log."""
    if not event_ids or not warehouse.has_table("offer_log"):
        return set()
    log = warehouse.ibis.table("offer_log")
    return {str(e) for e in log.filter(log.event_id.isin(event_ids)).event_id.to_pandas()}


def logged_propensity(event: Mapping[str, Any]) -> float | None:
    """The propensity the event's logged decision gave its offer; None without one."""
    decision: Decision | None = event["decision"]
    return decision.propensities.get(event["offer_id"]) if decision is not None else None


def _row(shown: Mapping[str, Any], answer: Mapping[str, Any] | None) -> dict[str, Any]:
    booking = shown["context"] or {}
    return {
        "event_id": shown["event_id"],
        "shown_at": shown["occurred_at"],
        "customer_id": shown["decision"].customer_id,
        "source": FEEDBACK_SOURCE,
        "transaction_id": None,
        "offer_id": shown["offer_id"],
        **{name: booking.get(name) for name in BOOKING_FIELDS},
        "upgrade_available": booking.get("upgrade_available"),
        "propensity": logged_propensity(shown),
        "accepted": answer is not None and answer["event"] == "accepted",
        "responded_at": answer["occurred_at"] if answer is not None else None,
    }


def attribute_accounts(warehouse: Warehouse, frame: pd.DataFrame) -> pd.DataFrame:
    """Replace our customer ids by the guest's source account (see the module docstring)."""
    ids = sorted({str(c) for c in frame["customer_id"].dropna()})
    if not ids or not warehouse.has_table(LINKS):
        return frame
    links = warehouse.ibis.table(LINKS)
    found = (
        links.filter(links.customer_id.isin(ids))
        .select("customer_id", "source", "source_customer_id")
        .to_pandas()
    )
    found["preference"] = [
        PREFERRED_SOURCES.index(s) if s in PREFERRED_SOURCES else len(PREFERRED_SOURCES)
        for s in found["source"]
    ]
    first = found.sort_values(["customer_id", "preference", "source", "source_customer_id"]).drop_duplicates(
        "customer_id"
    )
    account = dict(
        zip(first["customer_id"], zip(first["source"], first["source_customer_id"], strict=True), strict=True)
    )
    mapped = [account.get(c) if isinstance(c, str) else None for c in frame["customer_id"]]
    return frame.assign(
        source=[m[0] if m else s for m, s in zip(mapped, frame["source"], strict=True)],
        customer_id=[m[1] if m else c for m, c in zip(mapped, frame["customer_id"], strict=True)],
    )
