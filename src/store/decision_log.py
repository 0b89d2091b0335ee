"""The decision log: every ``/v1/offers`` answer (decision id, guest, offers shown with their
propensities, model versions, time, key), committed before the answer is sent. Feedback must name a
logged decision, and the offer log takes its propensities from here, never from the caller.

``DecisionWriter`` is a group commit: answers being made at the same time wait for one shared
transaction instead of one commit (one fsync on SQLite, one round trip on PostgreSQL) each. One thread
per process writes: it takes every decision queued while the previous commit ran, inserts them in one
transaction, commits, then releases each waiting answer on its own event loop (an error is raised in
each of them, so no answer leaves unlogged).

The API uses it on PostgreSQL (and on an in-memory SQLite store); a SQLite store in a file is logged
by the event loop itself (``store.sqlite_decision_log``), which avoids this writer's thread hand-offs.
Measured (``benchmarks/decision_log.py``, 2 busy cores): at 16 answers in flight on SQLite, one commit
per answer in a thread gave p99 568 ms and 373 answers/s, this writer 55 ms and 539/s; on PostgreSQL,
which merges concurrent commits' WAL flushes itself, a commit per answer in a thread did as well or
better.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import RowMapping

log = logging.getLogger("crm_analytics.store")
Done = Callable[[BaseException | None], None]


@dataclass(frozen=True)
class Decision:
    """One ``/v1/offers`` answer as logged."""

    decision_id: str
    customer_id: str | None  # our pseudonymous id of the recognised guest (also when matched by name)
    decided_at: datetime  # naive UTC
    offers: tuple[tuple[str, float], ...]  # (offer id, propensity), in the order shown
    models: Mapping[str, str] = field(default_factory=dict)
    key_id: str = ""
    hotel_id: str | None = None  # the booking's hotel
    matched_by: str | None = None  # how the guest was recognised; None: unknown guest

    @property
    def propensities(self) -> dict[str, float]:
        """Offer id -> the policy's probability of showing it in this answer."""
        return dict(self.offers)

    def row(self) -> dict[str, Any]:
        """The ``serving_decisions`` row."""
        return {
            "decision_id": self.decision_id,
            "customer_id": self.customer_id,
            "decided_at": self.decided_at,
            "offers": json.dumps([{"offer_id": o, "propensity": p} for o, p in self.offers]),
            "models": json.dumps(dict(self.models)),
            "key_id": self.key_id,
            "hotel_id": self.hotel_id,
            "matched_by": self.matched_by,
        }

    @classmethod
    def from_row(cls, row: RowMapping | Mapping[str, Any]) -> Decision:
        offers = tuple((o["offer_id"], float(o["propensity"])) for o in json.loads(row["offers"]))
        return cls(
            row["decision_id"],
            row["customer_id"],
            row["decided_at"],
            offers,
            json.loads(row["models"]),
            row["key_id"],
            row.get("hotel_id"),
            row.get("matched_by"),
        )


class DecisionSink(Protocol):
    def record_decisions(self, decisions: Sequence[Decision]) -> None: ...


class DecisionWriter:
    """Group commit of decisions into ``sink`` (a ``ServingStore``): ``await record(decision)`` returns
    once the decision is committed. ``close`` stops the thread after the queued decisions are written."""

    def __init__(self, sink: DecisionSink, max_batch: int = 500) -> None:
        self.sink = sink
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[Decision, Done] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.commits = 0  # transactions committed (decisions / commits = the group size achieved)

    async def record(self, decision: Decision) -> None:
        """Queue ``decision`` and wait until its transaction has committed (or raise why it did not)."""
        loop = asyncio.get_running_loop()
        committed: asyncio.Future[None] = loop.create_future()

        def done(error: BaseException | None) -> None:
            loop.call_soon_threadsafe(_settle, committed, error)

        self.submit(decision, done)
        await committed

    def submit(self, decision: Decision, done: Done) -> None:
        """Queue ``decision``; ``done(None)`` is called from the writer thread after the commit, or
        ``done(error)`` when it failed."""
        self._start()
        self._queue.put((decision, done))

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop the thread."""
        with self._start_lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def _start(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="decision-log", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while (first := self._queue.get()) is not None:
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._write(batch)
            if stop:
                return

    def _write(self, batch: list[tuple[Decision, Done]]) -> None:
        error: BaseException | None = None
        try:
            self.sink.record_decisions([decision for decision, _ in batch])
            self.commits += 1
        except Exception as exc:  # every waiting answer fails with it: none leaves unlogged
            log.error("decision log: %s writing %d decisions", type(exc).__name__, len(batch))
            error = exc
        for _, done in batch:
            with contextlib.suppress(RuntimeError):  # the answer's event loop has closed: nobody to tell
                done(error)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():  # the request was cancelled (the client went away): the decision is logged anyway
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
