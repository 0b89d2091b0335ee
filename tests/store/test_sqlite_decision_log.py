"""The SQLite decision log written on the event loop: workers in separate processes lose nothing to
each other, a killed worker's acknowledged answers stay, another writer's lock makes an answer wait
off the loop (then fail after the lock wait), and the checkpoints bring the log into the database file."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import multiprocessing
import os
import shutil
import signal
import sqlite3
import time
from datetime import datetime
from pathlib import Path

import pytest

from crm_analytics.store import Decision, ServingStore
from crm_analytics.store.sqlite_decision_log import SqliteDecisionLog, suits

T0 = datetime(2026, 3, 1, 10, 0, 0, 250_000)


def decision(name: str, customer: str | None = "U1") -> Decision:
    offers = (("O01", 0.9), ("O07", 0.0125))
    return Decision(name, customer, T0, offers, {"crm-offers": "3"}, "k_1", "H1", "email")


@pytest.fixture
def store(tmp_path: Path) -> ServingStore:
    return ServingStore(f"sqlite:///{tmp_path / 'serving.db'}").upgrade()


def _answer_many(url: str, worker: int, count: int) -> None:
    """A worker process: ``count`` answers, four in flight at a time, as the API makes them."""
    log = SqliteDecisionLog(ServingStore(url).engine, lock_wait_ms=5_000)

    async def main() -> None:
        for start in range(0, count, 4):
            await asyncio.gather(*(log.record(decision(f"w{worker}-{i}")) for i in range(start, start + 4)))

    asyncio.run(main())
    log.close()


def test_two_worker_processes_lose_nothing(store: ServingStore) -> None:
    url = str(store.engine.url)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_answer_many, args=(url, w, 400)) for w in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    names = [f"w{w}-{i}" for w in range(2) for i in range(400)]
    logged = store.decisions(names)
    assert len(logged) == 800
    assert logged["w1-7"] == decision("w1-7")  # read back through SQLAlchemy whole: time, offers, versions


def _answer_then_die(url: str, count: int) -> None:
    log = SqliteDecisionLog(ServingStore(url).engine, lock_wait_ms=5_000, checkpoint_seconds=3600)

    async def main() -> None:
        for i in range(count):
            await log.record(decision(f"k{i}"))

    asyncio.run(main())
    os.kill(os.getpid(), signal.SIGKILL)  # no close, no checkpoint: the answers are in the WAL only


def test_a_killed_worker_keeps_every_answer_it_acknowledged(store: ServingStore) -> None:
    context = multiprocessing.get_context("spawn")
    worker = context.Process(target=_answer_then_die, args=(str(store.engine.url), 50))
    worker.start()
    worker.join(120)
    assert worker.exitcode == -signal.SIGKILL
    assert len(store.decisions(f"k{i}" for i in range(50))) == 50


def test_another_writers_lock_makes_the_answer_wait_off_the_loop(store: ServingStore) -> None:
    log = SqliteDecisionLog(store.engine, lock_wait_ms=10_000)
    other = sqlite3.connect(str(store.engine.url.database), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # e.g. crm score staging a chunk
    ticks: list[float] = []

    async def meanwhile() -> None:
        ticks.append(time.monotonic())
        for _ in range(20):
            await asyncio.sleep(0.01)
            ticks.append(time.monotonic())
        other.execute("COMMIT")

    async def main() -> None:
        await asyncio.gather(meanwhile(), log.record(decision("waited")))

    started = time.monotonic()
    asyncio.run(main())
    log.close()
    assert max(b - a for a, b in itertools.pairwise(ticks)) < 0.5  # the loop went on meanwhile
    assert time.monotonic() - started >= 0.2  # and the answer was released only after the lock
    assert "waited" in store.decisions(["waited"])


def test_a_lock_held_past_the_wait_fails_the_answer(store: ServingStore) -> None:
    log = SqliteDecisionLog(store.engine, lock_wait_ms=100)
    other = sqlite3.connect(str(store.engine.url.database), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        asyncio.run(log.record(decision("refused")))
    other.execute("ROLLBACK")
    log.close()
    assert store.decisions(["refused"]) == {}


def test_checkpoints_bring_the_answers_into_the_database_file(store: ServingStore, tmp_path: Path) -> None:
    log = SqliteDecisionLog(store.engine, lock_wait_ms=5_000, checkpoint_seconds=0.2)

    async def main() -> None:
        for i in range(300):
            await log.record(decision(f"c{i}"))

    asyncio.run(main())
    time.sleep(1.0)  # a few checkpoints
    database = Path(str(store.engine.url.database))
    copy = tmp_path / "copy" / "serving.db"  # the database file alone, without its WAL
    copy.parent.mkdir()
    shutil.copyfile(database, copy)
    log.close()
    assert len(ServingStore(f"sqlite:///{copy}").decisions(f"c{i}" for i in range(300))) == 300


def test_times_are_stored_as_sqlalchemy_stores_them(store: ServingStore) -> None:
    """Whole seconds included: the log's text sorts and compares with the rows SQLAlchemy writes."""
    on_the_second = datetime(2026, 3, 1, 10, 0, 0)
    log = SqliteDecisionLog(store.engine, lock_wait_ms=5_000)
    logged = Decision("raw", "U1", on_the_second, (("O01", 0.5),), {"crm-offers": "3"}, "k_1")
    asyncio.run(log.record(logged))
    log.close()
    store.record_decisions([dataclasses.replace(logged, decision_id="orm")])  # through SQLAlchemy
    with sqlite3.connect(str(store.engine.url.database)) as raw:
        texts = dict(raw.execute("SELECT decision_id, decided_at FROM serving_decisions").fetchall())
    assert texts["raw"] == texts["orm"] == "2026-03-01 10:00:00.000000"
    assert store.decisions(["raw"])["raw"] == logged


def test_only_a_sqlite_file_suits(tmp_path: Path) -> None:
    assert suits(ServingStore(f"sqlite:///{tmp_path / 's.db'}").engine)
    assert not suits(ServingStore("sqlite://").engine)
    with pytest.raises(ValueError, match="SQLite store in a file"):
        SqliteDecisionLog(ServingStore("sqlite://").engine, lock_wait_ms=100)
