"""What logging every ``/v1/offers`` answer before it leaves costs: group commit vs one commit per answer.

Each ``/v1/offers`` answer is committed to the decision log (``store.decision_log``) before it is sent.
Contenders, each run as the API runs them (async handlers on one event loop, ``--concurrency``
answers in flight, each first spending ``--work-ms`` of CPU as the handler's ranking does):

- ``none``: no logging (the floor);
- ``group``: ``DecisionWriter`` (ours): a writer thread commits every queued decision in one
  transaction and releases the waiting answers after it;
- ``each_thread``: one transaction per answer in the event loop's default thread pool
  (``asyncio.to_thread``), as a sync route would;
- ``each_on_loop``: one transaction per answer on the event loop itself (blocks every other answer
  while it commits).

Stores: SQLite in WAL mode with ``synchronous=FULL`` (the serving default: the commit is on disk
before the answer) in a temporary folder, and PostgreSQL (a scratch database created on the server of
``--postgres``, the admin URL, and dropped after). Reported per store, contender and concurrency: answers/s,
p50/p99 latency (work + logging, ms) and decisions per commit.

    .venv/bin/python benchmarks/decision_log.py                 # writes benchmarks/decision_log.json
    .venv/bin/python benchmarks/decision_log.py --seconds 1 --out /tmp/d.json   # a look
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from crm_analytics.store import Decision, DecisionWriter, ServingStore

CONTENDERS = ("none", "group", "each_thread", "each_on_loop")
OFFERS = (("O01", 0.9625), ("O05", 0.9625), ("O12", 0.0125))  # three offers, as an answer has
MODELS = {"crm-churn": "4", "crm-clv": "4", "crm-offers": "7", "crm-segments-rfm": "2"}


class CountingStore:
    """The store, counting its commits (decisions per commit = the group size reached)."""

    def __init__(self, store: ServingStore) -> None:
        self.store = store
        self.commits = 0
        self.decisions = 0

    def record_decisions(self, logged: Sequence[Decision]) -> None:
        self.store.record_decisions(logged)
        self.commits += 1
        self.decisions += len(logged)


def a_decision() -> Decision:
    now = datetime.now(UTC).replace(tzinfo=None)
    return Decision(uuid.uuid4().hex, f"U{uuid.uuid4().hex[:16]}", now, OFFERS, MODELS, "k_bench")


def spin(ms: float) -> None:
    """Busy CPU for ``ms``, as the handler's ranking is."""
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        pass


def logger_for(contender: str, sink: CountingStore) -> tuple[Callable[[Decision], Awaitable[None]], Any]:
    """The coroutine that logs one decision under ``contender``, and what to close after."""
    if contender == "group":
        writer = DecisionWriter(sink)
        return writer.record, writer

    async def none(decision: Decision) -> None:
        return None

    async def each_thread(decision: Decision) -> None:
        await asyncio.to_thread(sink.record_decisions, [decision])

    async def each_on_loop(decision: Decision) -> None:
        sink.record_decisions([decision])

    return {"none": none, "each_thread": each_thread, "each_on_loop": each_on_loop}[contender], None


async def drive(
    log: Callable[[Decision], Awaitable[None]],
    concurrency: int,
    work_ms: float,
    warmup: float,
    seconds: float,
) -> tuple[list[float], int]:
    """``concurrency`` answer loops for ``warmup`` + ``seconds``; latencies of the measured window's
    answers and how many were measured."""
    latencies: list[float] = []
    measure_from = time.perf_counter() + warmup
    end = measure_from + seconds

    async def answers() -> None:
        while (started := time.perf_counter()) < end:
            spin(work_ms)
            await log(a_decision())
            await asyncio.sleep(0)  # let the others in, as the server does between requests
            if started >= measure_from:
                latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(answers() for _ in range(concurrency)))
    return latencies, len(latencies)


def measure(
    store: ServingStore, contender: str, concurrency: int, args: argparse.Namespace
) -> dict[str, Any]:
    sink = CountingStore(store)
    log, closer = logger_for(contender, sink)
    latencies, answers = asyncio.run(drive(log, concurrency, args.work_ms, args.warmup, args.seconds))
    if closer is not None:
        closer.close()
    ms = np.array(latencies) * 1000
    return {
        "store": store.engine.dialect.name,
        "contender": contender,
        "concurrency": concurrency,
        "answers_per_second": round(answers / args.seconds, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "decisions_per_commit": round(sink.decisions / sink.commits, 1) if sink.commits else None,
    }


@contextlib.contextmanager
def scratch_postgres(admin_url: str) -> Iterator[str]:
    """A fresh database on the server of ``admin_url``, dropped afterwards."""
    name = f"crm_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_store(url: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    store = ServingStore(url).upgrade()
    results = []
    for concurrency in args.concurrency:
        for contender in CONTENDERS:
            results.append(measure(store, contender, concurrency, args))
            print(json.dumps(results[-1]), flush=True)
    store.engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds per case")
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--work-ms", type=float, default=1.0, help="CPU per answer before logging")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test", help="admin URL")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".json"))
    args = parser.parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="crm-decisions-") as folder:
        results = run_store(f"sqlite:///{Path(folder) / 'serving.db'}", args)
    if not args.no_postgres:
        with scratch_postgres(args.postgres) as url:
            results += run_store(url, args)
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "setup": {k: getattr(args, k) for k in ("seconds", "warmup", "work_ms", "concurrency")},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_at_start": load},
        "results": results,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
