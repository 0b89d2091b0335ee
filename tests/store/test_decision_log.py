"""The decision log: the group-commit writer commits concurrent answers together and releases each only
after its commit (or fails each with the error), and erasure deletes a person's decisions."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from crm_analytics.store import Decision, DecisionWriter, ServingStore

T0 = datetime(2026, 3, 1, 10, 0)


def decision(i: int, customer: str | None = "U1") -> Decision:
    return Decision(f"d{i:04d}", customer, T0, (("O01", 0.9), ("O07", 0.0125)), {"crm-offers": "3"}, "k_1")


@pytest.fixture
def store(tmp_path: Path) -> ServingStore:
    return ServingStore(f"sqlite:///{tmp_path / 'serving.db'}").upgrade()


class SlowSink:
    """A store whose commits take a while and are counted, as a busy disk's would."""

    def __init__(self, store: ServingStore, seconds: float) -> None:
        self.store = store
        self.seconds = seconds
        self.batches: list[int] = []
        self.committed: set[str] = set()
        self.lock = threading.Lock()

    def record_decisions(self, decisions: Sequence[Decision]) -> None:
        threading.Event().wait(self.seconds)
        self.store.record_decisions(decisions)
        with self.lock:
            self.batches.append(len(decisions))
            self.committed |= {d.decision_id for d in decisions}


def test_concurrent_answers_share_commits_and_wait_for_theirs(store: ServingStore) -> None:
    sink = SlowSink(store, seconds=0.05)
    writer = DecisionWriter(sink)
    seen_committed: list[bool] = []

    async def answer(i: int) -> None:
        await writer.record(decision(i))
        seen_committed.append(f"d{i:04d}" in sink.committed)  # released only after its own commit

    async def main() -> None:
        await asyncio.gather(*(answer(i) for i in range(40)))

    asyncio.run(main())
    writer.close()
    assert seen_committed == [True] * 40
    assert sum(sink.batches) == 40
    assert len(sink.batches) < 10  # grouped: 40 answers in a handful of transactions, not 40
    logged = store.decisions(f"d{i:04d}" for i in range(45))
    assert sorted(logged) == [f"d{i:04d}" for i in range(40)]
    assert logged["d0007"] == decision(7)  # read back whole: guest, offers and propensities, versions
    assert logged["d0007"].propensities == {"O01": 0.9, "O07": 0.0125}


class BrokenSink:
    def record_decisions(self, decisions: Sequence[Decision]) -> None:
        raise sa.exc.OperationalError("INSERT INTO serving_decisions", {}, Exception("disk I/O error"))


def test_a_failed_commit_fails_every_answer_waiting_for_it() -> None:
    writer = DecisionWriter(BrokenSink())

    async def main() -> list[BaseException | None]:
        return await asyncio.gather(*(writer.record(decision(i)) for i in range(3)), return_exceptions=True)

    results = asyncio.run(main())
    writer.close()
    assert [type(r) for r in results] == [sa.exc.OperationalError] * 3  # no answer leaves unlogged


def test_close_writes_what_is_queued(store: ServingStore) -> None:
    writer = DecisionWriter(SlowSink(store, seconds=0.02))
    done: list[BaseException | None] = []
    for i in range(5):
        writer.submit(decision(i), done.append)
    writer.close()
    assert done == [None] * 5
    assert len(store.decisions(f"d{i:04d}" for i in range(5))) == 5


def test_erase_deletes_the_persons_decisions(store: ServingStore) -> None:
    store.record_decisions([decision(1, "U1"), decision(2, "U2"), decision(3, None)])
    assert store.erase(["U1"]) == 1
    assert sorted(store.decisions(["d0001", "d0002", "d0003"])) == ["d0002", "d0003"]
