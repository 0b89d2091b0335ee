"""The promotion gate against noise, on a demo chain (`crm run --customers 1000`): churn retrained with
three other seeds on unchanged data is never promoted, the figures it was refused on are the ones its
training reported, and a configuration that is really better is promoted with its interval."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from crm_analytics.jobs import run, train
from crm_analytics.models.churn import family as churn_family
from crm_analytics.models.churn.model import ChurnModel
from crm_analytics.models.gate import PromotionRefusedError, champion_version
from crm_analytics.settings import Settings
from crm_analytics.tracking import configure
from tests.conftest import in_project, project_env
from tests.test_cli import crm

CUTOFF = date(2025, 6, 30)  # crm run's training cutoff (the demo's end minus one horizon)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A 1,000-guest demo project with its champions, its CRM_* variables set for the module."""
    folder = tmp_path_factory.mktemp("gate_project")
    with in_project(folder) as settings:
        run.run(settings, customers=1_000, seed=11)
        yield settings


def test_other_seeds_on_unchanged_data_are_never_promoted(
    project: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    client: MlflowClient = configure(project)
    champion = champion_version(client, "crm-churn")
    assert champion is not None
    champion_auc = client.get_run(champion.run_id).data.metrics["roc_auc"]
    for seed in (1, 2, 3):
        trained = train.train(project, "churn", CUTOFF, seed=seed)
        with pytest.raises(PromotionRefusedError) as refused:
            train.promote(project, "churn")
        evidence = refused.value.evidence
        assert evidence is not None
        assert not evidence.passed
        # the gate judged what training reported: the same out-of-time scores, refitted
        assert evidence.candidate == pytest.approx(trained.metrics["roc_auc"], abs=1e-9)
        assert evidence.champion == pytest.approx(champion_auc, abs=1e-9)
        assert evidence.difference < evidence.min_gain or evidence.low <= 0
        tag = json.loads(client.get_model_version("crm-churn", trained.version).tags["gate"])
        assert tag["passed"] is False  # the decision is kept with the version
        print(f"seed {seed}: {evidence.reason}")
    assert str(champion_version(client, "crm-churn").version) == str(champion.version)

    for name, value in project_env(Path(project.data_dir).parent).items():  # the CLI on this project
        monkeypatch.setenv(name, value)
    code, answer, _ = crm("promote", "churn", "--json")  # the newest again, through the CLI
    assert code == 1
    assert answer["promoted"] is False
    assert answer["evidence"]["metric"] == "roc_auc"
    assert "stays" in answer["reason"]


def test_a_really_better_configuration_is_promoted_with_its_interval(
    project: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a champion of two shallow boosting rounds: the gate refits that configuration, not the seed alone
    monkeypatch.setattr(
        churn_family,
        "ChurnModel",
        lambda seed=0: ChurnModel(seed=seed, max_iter=2, max_leaf_nodes=2, learning_rate=0.01),
    )
    weak = train.train(project, "churn", CUTOFF)
    train.promote(project, "churn", weak.version, force=True, reason="gate drill: a weak champion")
    monkeypatch.undo()
    strong = train.train(project, "churn", CUTOFF)
    promotion = train.promote(project, "churn")
    assert promotion.version == strong.version
    assert promotion.evidence is not None
    assert promotion.evidence["passed"] is True
    assert promotion.evidence["low"] > 0
    assert promotion.evidence["difference"] >= project.gate_min_gain_churn
    assert promotion.reason.startswith(f"beat v{weak.version}: roc_auc +")
    print(promotion.reason)

    for name, value in project_env(Path(project.data_dir).parent).items():
        monkeypatch.setenv(name, value)
    code, history, stderr = crm("models", "history", "churn", "--json")
    assert code == 0, stderr
    by_version = {row["version"]: row for row in history}
    assert [row["champion"] for row in history].count(True) == 1
    assert by_version[strong.version]["champion"] is True
    assert by_version[strong.version]["gate"]["passed"] is True
    assert by_version[weak.version]["promotion"] == "gate drill: a weak champion"
    refused = [row for row in history if row["gate"] and not row["gate"]["passed"]]
    assert len(refused) == 3  # the three other seeds of the test before
    assert all(row["promotion"] is None for row in refused)
