"""A ``crm serve`` worker freezes its long-lived heap (``serving/heap.py``) once its models are loaded and
once a name index is built, so full collections no longer walk it; what a change leaves behind is still
freed, not kept frozen; a check that changes nothing (no alias moved, the same fallback) does not pause."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from crm_analytics.serving import heap
from crm_analytics.serving.app import create_app
from crm_analytics.serving.guest_lookup import BUILDER_THREAD
from crm_analytics.serving.models import ModelHolder
from crm_analytics.tracking import configure
from tests.serving.conftest import Served
from tests.serving.test_champion_fallback import CHURN, registry_copy


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    """This test process's heap as the other tests expect it: nothing frozen, before and after (once a
    name index build, which settles from its own thread, has ended)."""
    gc.unfreeze()
    yield
    for thread in threading.enumerate():
        if thread.name == BUILDER_THREAD:
            thread.join(timeout=60)
    gc.unfreeze()


class Model:
    """Stands for a replaced model: an object in a reference cycle, as fitted estimators often are."""

    def __init__(self) -> None:
        self.me = self


def test_settle_frees_what_a_change_left_behind_and_freezes_the_rest() -> None:
    replaced = Model()
    gone = weakref.ref(replaced)
    gc.freeze()  # the model was part of the heap frozen at start-up
    del replaced  # the reload dropped it; only a collection of the frozen heap can free a cycle
    gc.collect()
    assert gone() is not None  # frozen: collections skip it
    kept = Model()
    heap.settle()
    assert gone() is None
    assert gc.get_freeze_count() > 0
    assert kept.me is kept


def test_a_serving_worker_freezes_its_heap_once_the_models_are_loaded(served: Served) -> None:
    with TestClient(create_app(served.settings, freeze_heap=True)) as client:
        assert client.get("/readyz").status_code == 200
        assert gc.get_freeze_count() > 100_000  # libraries, models, catalogues


def test_an_app_in_a_test_process_leaves_the_heap_alone(served: Served) -> None:
    with TestClient(create_app(served.settings)) as client:
        assert client.get("/readyz").status_code == 200
        assert gc.get_freeze_count() == 0


def test_the_heap_settles_when_the_models_change_not_at_every_check(served: Served, tmp_path: Path) -> None:
    _, client = registry_copy(served, tmp_path)
    changes: list[dict[str, str]] = []
    holder = ModelHolder(client)
    holder.on_change = lambda: changes.append(dict(holder.current.versions if holder.current else {}))
    holder.load()
    assert len(changes) == 1
    assert holder.reload_if_moved() is False  # no alias moved: nothing to free, no pause
    current = client.get_model_version_by_alias(CHURN, "champion")
    broken = client.create_model_version(CHURN, source=str(tmp_path / "gone"), run_id=current.run_id)
    client.set_registered_model_alias(CHURN, "champion", broken.version)  # its artifacts are missing
    assert holder.reload_if_moved() is True  # the alias moved: the set was replaced (churn falls back)
    assert holder.reload_if_moved() is False  # tried again at every check: the same set, no pause
    assert holder.reload_if_moved() is False
    assert len(changes) == 2
    assert holder.current is not None
    assert holder.current.fallbacks == {CHURN: str(broken.version)}
    assert holder.last_error == f"{CHURN} v{broken.version} did not load"
    client.set_registered_model_alias(CHURN, "champion", current.version)  # healed by an operator
    assert holder.reload_if_moved() is True
    assert len(changes) == 3
    assert changes[-1][CHURN] == str(current.version)
    configure(served.settings)  # the other tests of this worker use the served chain's store
