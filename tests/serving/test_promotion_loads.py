"""A candidate replacing a champion must load in a fresh process with the champion's output columns,
forced or not; otherwise the promotion is refused and the champion stays. On a copy of the served
chain's MLflow store."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from crm_analytics.models import gate
from crm_analytics.tracking import configure
from tests.serving.conftest import Served

pytestmark = pytest.mark.slow  # each promotion starts a Python process (~4-5 s)
CHURN, CLV = "crm-churn", "crm-clv"


@pytest.fixture
def registry(served: Served, tmp_path: Path) -> Iterator[MlflowClient]:
    copy = tmp_path / "mlflow.db"
    shutil.copyfile(served.folder / "mlruns" / "mlflow.db", copy)
    yield configure(served.settings.model_copy(update={"mlflow_tracking_uri": f"sqlite:///{copy}"}))
    configure(served.settings)  # the other tests of this worker use the served chain's store


def champion(client: MlflowClient, name: str) -> str:
    return str(client.get_model_version_by_alias(name, gate.CHAMPION).version)


def test_promote_refuses_a_candidate_that_does_not_load_even_forced(
    registry: MlflowClient, tmp_path: Path
) -> None:
    before = champion(registry, CHURN)
    current = registry.get_model_version(CHURN, before)
    broken = registry.create_model_version(CHURN, source=str(tmp_path / "gone"), run_id=current.run_id)

    with pytest.raises(
        gate.PromotionRefusedError, match=f"v{broken.version} does not load in a fresh process"
    ):
        gate.promote(registry, CHURN, str(broken.version), force=True, reason="artifacts gone")
    assert champion(registry, CHURN) == before


def test_promote_refuses_a_candidate_answering_in_another_shape(registry: MlflowClient) -> None:
    before = champion(registry, CHURN)
    clv = registry.get_model_version(CLV, champion(registry, CLV))
    run = registry.get_model_version(CHURN, before).run_id  # the gate reads the metrics of its run
    other = registry.create_model_version(CHURN, source=str(clv.source), run_id=run)

    with pytest.raises(gate.PromotionRefusedError, match="answers with columns"):
        gate.promote(registry, CHURN, str(other.version), force=True, reason="wrong model")
    assert champion(registry, CHURN) == before


def test_promote_takes_a_candidate_that_loads_like_the_champion(registry: MlflowClient) -> None:
    current = registry.get_model_version(CHURN, champion(registry, CHURN))
    same = registry.create_model_version(CHURN, source=str(current.source), run_id=current.run_id)

    promotion = gate.promote(registry, CHURN, str(same.version), force=True, reason="same model again")
    assert promotion.version == str(same.version) == champion(registry, CHURN)


def test_promote_replaces_a_champion_that_does_not_load(registry: MlflowClient, tmp_path: Path) -> None:
    good = registry.get_model_version(CHURN, champion(registry, CHURN))
    broken = registry.create_model_version(CHURN, source=str(tmp_path / "gone"), run_id=good.run_id)
    registry.set_registered_model_alias(CHURN, gate.CHAMPION, broken.version)  # moved in the MLflow UI
    again = registry.create_model_version(CHURN, source=str(good.source), run_id=good.run_id)

    promotion = gate.promote(registry, CHURN, str(again.version), force=True, reason="repair the champion")
    assert promotion.version == str(again.version) == champion(registry, CHURN)
