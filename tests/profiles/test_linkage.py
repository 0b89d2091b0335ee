"""Record linkage: deterministic keys, the probabilistic model, clusters, quality against the truth."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from crm_analytics.datasets.demo import DemoConfig, generate_demo, write_demo
from crm_analytics.profiles import linkage
from crm_analytics.profiles.build import build_profiles
from crm_analytics.profiles.quality import pairwise_quality
from crm_analytics.profiles.records import match_frame
from crm_analytics.settings import Settings
from crm_analytics.tracking import configure
from crm_analytics.warehouse import Warehouse
from tests.features.conftest import load
from tests.profiles.conftest import LinkedDemo


def test_linkage_reaches_the_f1_target_on_the_demo_identities(linked_demo: LinkedDemo) -> None:
    quality = linked_demo.build.quality
    assert quality is not None
    assert quality.f1 >= 0.98
    assert quality.precision >= 0.98
    assert quality.recall >= 0.98
    assert quality.records == linked_demo.build.records
    truth = pd.read_parquet(linked_demo.raw / "truth" / "identities.parquet")
    assert linked_demo.build.customers == pytest.approx(truth["person_id"].nunique(), rel=0.005)


def test_probabilistic_matching_links_what_no_key_can(linked_demo: LinkedDemo) -> None:
    """Second booking accounts (relay e-mail, often no phone) are found by names and address only."""
    assert linked_demo.build.linked_by.get("probabilistic", 0) > 0
    links = linked_demo.warehouse.fetch("SELECT * FROM customer_links WHERE matched_by = 'probabilistic'")
    assert links["match_probability"].between(linkage.DEFAULT_THRESHOLD, 1.0).all()


def records(rows: list[dict[str, str | None]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame["updated_at"] = pd.Timestamp("2025-01-01")
    return match_frame(frame)


def test_keys_link_despite_formatting_differences() -> None:
    frame = records(
        [
            {"source": "crm", "source_customer_id": "C1", "email": "Ann.Lee@Example.com ", "phone": None},
            {"source": "billing", "source_customer_id": "A1", "email": None, "phone": "+44 20 1234 5678"},
            {
                "source": "booking",
                "source_customer_id": "G1",
                "email": "ann.lee@example.com",
                "phone": "+442012345678",
            },
            {"source": "booking", "source_customer_id": "G2", "email": "other@example.com", "phone": None},
        ]
    )
    pairs = linkage.deterministic_pairs(frame)
    empty = pd.DataFrame(columns=["unique_id_l", "unique_id_r", "match_probability"])
    links = linkage.cluster_records(frame, pairs, empty, 0.9).links.set_index("unique_id")
    ann = links.loc[["crm:C1", "billing:A1", "booking:G1"], "customer_id"]
    assert ann.nunique() == 1
    assert links.loc["booking:G2", "customer_id"] != ann.iloc[0]
    assert links.loc["booking:G2", "matched_by"] == "single"
    assert set(links.loc[["crm:C1", "billing:A1"], "matched_by"]) == {"email", "phone"}


def test_pairs_below_the_threshold_do_not_link() -> None:
    frame = records(
        [
            {"source": "crm", "source_customer_id": "C1", "email": None},
            {"source": "booking", "source_customer_id": "G1", "email": None},
        ]
    )
    scored = pd.DataFrame(
        {"unique_id_l": ["booking:G1"], "unique_id_r": ["crm:C1"], "match_probability": [0.8]}
    )
    none = linkage.deterministic_pairs(frame)
    assert linkage.cluster_records(frame, none, scored, 0.9).links["customer_id"].nunique() == 2
    assert linkage.cluster_records(frame, none, scored, 0.75).links["customer_id"].nunique() == 1
    with pytest.raises(ValueError, match="threshold: must be in"):
        linkage.cluster_records(frame, none, scored, 0.0)


def test_pairwise_quality_counts_pairs() -> None:
    predicted = pd.Series(["u1", "u1", "u2", "u3"], index=["a", "b", "c", "d"])
    truth = pd.Series(["p1", "p1", "p1", "p2"], index=["a", "b", "c", "d"])
    quality = pairwise_quality(predicted, truth)
    assert (quality.predicted_pairs, quality.true_pairs, quality.correct_pairs) == (1, 3, 1)
    assert quality.precision == 1.0
    assert quality.recall == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="truth: 1 records have no true identity"):
        pairwise_quality(predicted, truth.drop("d"))


def test_build_logs_threshold_quality_and_a_model_without_personal_data(
    tmp_path: Path, settings: Settings
) -> None:
    raw = tmp_path / "raw"
    write_demo(generate_demo(DemoConfig(customers=400, seed=5)), raw)
    with Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}") as warehouse:
        load(warehouse, raw)
        build = build_profiles(warehouse, settings, threshold=0.95, truth_dir=raw / "truth")
    configure(settings)
    run = mlflow.get_run(build.run_id)
    assert run.data.params["threshold"] == "0.95"
    assert run.data.metrics["pairwise_f1"] == pytest.approx(build.quality.f1)
    artifact = Path(
        mlflow.artifacts.download_artifacts(run_id=build.run_id, artifact_path="linkage_model.json")
    )
    model_text = artifact.read_text()
    assert json.loads(model_text)["link_type"] == "dedupe_only"
    customers = pd.concat(pd.read_parquet(p) for p in raw.glob("customers_*.parquet"))
    for value in (
        pd.concat([customers["email"], customers["last_name"], customers["phone"]]).dropna().unique()
    ):
        assert str(value) not in model_text


def test_build_without_customer_records_says_what_is_missing(tmp_path: Path, settings: Settings) -> None:
    with (
        Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}") as warehouse,
        pytest.raises(LookupError, match="customer_records: no customer records"),
    ):
        build_profiles(warehouse, settings, log_run=False)
