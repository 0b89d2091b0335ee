"""Segments end to end on the demo chain: scored by champions, registered, stored, exported with consent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from crm_analytics.datasets.demo import DemoConfig, generate_demo, write_demo
from crm_analytics.features.build import FeatureConfig, feature_table
from crm_analytics.features.store import read_features, write_features
from crm_analytics.ingest.pipeline import ingest_file
from crm_analytics.models import registry
from crm_analytics.models.churn.family import train_churn
from crm_analytics.models.clv.family import train_clv
from crm_analytics.models.gate import champion_version, promote
from crm_analytics.models.segments.build import build_segments
from crm_analytics.models.segments.export import export_segment
from crm_analytics.models.segments.membership import read_membership, segment_summary
from crm_analytics.profiles.build import build_profiles
from crm_analytics.settings import Settings, load_settings
from crm_analytics.tracking import configure
from crm_analytics.warehouse import Warehouse
from tests.features.conftest import load

pytestmark = pytest.mark.slow  # trains CLV and churn, then builds and registers every segment family

AS_OF = date(2025, 6, 30)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Warehouse, dict[str, Any]]]:
    folder = tmp_path_factory.mktemp("segments")
    demo_folder = folder / "raw"
    write_demo(generate_demo(DemoConfig(customers=1_500, seed=3)), demo_folder)
    settings = load_settings().model_copy(
        update={
            "mlflow_tracking_uri": f"sqlite:///{folder / 'mlflow.db'}",
            "mlflow_artifact_root": folder / "artifacts",
            "warehouse_url": f"duckdb:///{folder / 'warehouse.duckdb'}",
            "segments_min_split_half_ari": -1.0,  # 1,500 guests: clusters too unstable to pass 0.8
        }
    )
    with Warehouse(settings.warehouse_url) as warehouse:
        load(warehouse, demo_folder)
        build_profiles(warehouse, settings, log_run=False)
        config = FeatureConfig(as_of=AS_OF, horizon_days=184).resolved(warehouse.ibis)
        features = feature_table(warehouse.ibis, config).execute()
        write_features(warehouse, features, config)
        client = configure(settings)
        for trained in (
            train_clv(settings, features, 184, "days"),
            train_churn(settings, features, 184, "days"),
        ):
            promote(client, trained.model)
        yield settings, warehouse, build_segments(settings, warehouse, features, AS_OF)


def test_every_customer_is_in_one_segment_per_family(
    built: tuple[Settings, Warehouse, dict[str, Any]],
) -> None:
    _, warehouse, result = built
    membership = read_membership(warehouse)
    customers = membership["customer_id"].nunique()
    assert set(membership["family"]) == {"rfm", "value_risk", "behaviour"}
    assert membership.groupby("family")["customer_id"].nunique().eq(customers).all()
    assert not membership.duplicated(["customer_id", "family"]).any()
    assert membership["clv"].notna().all()
    assert membership["churn_probability"].between(0, 1).all()
    for family, info in result["families"].items():
        assert sum(info["segments"].values()) == customers
        assert (
            membership[membership["family"] == family]["definition_version"]
            == f"{info['model']}/{info['version']}"
        ).all()
    behaviour = result["families"]["behaviour"]
    assert 0 < behaviour["split_half_ari"] <= 1
    assert behaviour["k"] == len(behaviour["segments"])
    summary = segment_summary(membership)
    assert summary.groupby("family")["share"].sum().round(9).eq(1).all()


def test_definitions_are_registered_without_personal_data(
    built: tuple[Settings, Warehouse, dict[str, Any]],
) -> None:
    settings, warehouse, result = built
    client = configure(settings)
    ids = set(read_membership(warehouse)["customer_id"])
    for family, name in ((f.key, f.name) for f in registry.segmentations()):
        champion = client.get_model_version_by_alias(name, "champion")
        assert str(champion.version) == result["families"][family]["version"]
        run_id = str(champion.run_id)
        artifacts = {a.path for a in client.list_artifacts(run_id)}
        assert {"definition.json", "profile.csv", "plots"} <= artifacts
        profile = Path(client.download_artifacts(run_id, "profile.csv")).read_text()
        assert not any(customer in profile for customer in ids)


def _consent_truth(warehouse: Warehouse) -> set[str]:
    """Customers whose most recent answer in any linked record grants consent, computed independently
    (every demo source is trusted for consent, so the latest answer wins)."""
    records = warehouse.fetch(
        "SELECT l.customer_id, r.updated_at, r.marketing_consent FROM customer_records r "
        "JOIN customer_links l ON r.source = l.source AND r.source_customer_id = l.source_customer_id "
        "WHERE r.marketing_consent IS NOT NULL"
    )
    latest = records.sort_values("updated_at").groupby("customer_id").tail(1)
    return set(latest.loc[latest["marketing_consent"].astype(bool), "customer_id"])


def test_export_respects_consent_and_says_how_many_were_left_out(
    built: tuple[Settings, Warehouse, dict[str, Any]], tmp_path: Path
) -> None:
    _, warehouse, _ = built
    membership = read_membership(warehouse)
    segment = membership[membership["family"] == "rfm"]["segment"].value_counts().index[0]
    members = set(membership.loc[membership["segment"] == segment, "customer_id"])
    report = export_segment(warehouse, segment, tmp_path / "list.csv")
    exported = pd.read_csv(tmp_path / "list.csv")
    consenting = _consent_truth(warehouse)
    assert set(exported["customer_id"]) == members & consenting
    assert report.exported == len(members & consenting)
    assert report.left_out_no_consent == len(members - consenting) > 0
    assert report.left_out_by_filters == 0
    assert report.as_of == str(pd.Timestamp(membership["as_of"].max()).date())  # the list says its day
    assert list(exported.columns) == [
        "customer_id",
        "family",
        "segment",
        "clv",
        "churn_probability",
        "definition_version",
        "as_of",
    ]


def test_withdrawn_consent_leaves_the_next_export(
    built: tuple[Settings, Warehouse, dict[str, Any]], tmp_path: Path
) -> None:
    _, warehouse, _ = built
    membership = read_membership(warehouse)
    segment = membership[membership["family"] == "rfm"]["segment"].value_counts().index[0]
    export_segment(warehouse, segment, tmp_path / "before.parquet", "parquet")
    exported = pd.read_parquet(tmp_path / "before.parquet")
    customer = str(exported["customer_id"].iloc[0])
    links = warehouse.fetch(f"SELECT * FROM customer_links WHERE customer_id = '{customer}'")
    account = links[links["source"] == "booking"]["source_customer_id"].iloc[0]
    withdrawal = pd.DataFrame(  # said at the front desk after the last build: counts at once
        {
            "source": ["booking"],
            "source_customer_id": [account],
            "updated_at": [pd.Timestamp("2026-01-02 12:00:00")],
            "marketing_consent": [False],
        }
    )
    withdrawal.to_csv(tmp_path / "customers_booking.csv", index=False)
    ingest_file(warehouse, tmp_path / "customers_booking.csv", load_settings())
    report = export_segment(warehouse, segment, tmp_path / "after.parquet", "parquet")
    after = pd.read_parquet(tmp_path / "after.parquet")
    assert customer not in set(after["customer_id"])
    assert report.exported == len(exported) - 1


def test_filters_and_errors(built: tuple[Settings, Warehouse, dict[str, Any]], tmp_path: Path) -> None:
    _, warehouse, _ = built
    membership = read_membership(warehouse)
    segment = membership[membership["family"] == "value_risk"]["segment"].value_counts().index[0]
    members = membership[membership["segment"] == segment]
    threshold = float(members["clv"].median())
    report = export_segment(warehouse, segment, tmp_path / "f.csv", min_clv=threshold, max_churn=0.9)
    expected_out = int(((members["clv"] < threshold) | (members["churn_probability"] > 0.9)).sum())
    assert report.left_out_by_filters == expected_out
    assert (pd.read_csv(tmp_path / "f.csv")["clv"] >= threshold).all()
    with pytest.raises(LookupError, match="no such segment"):
        export_segment(warehouse, "Nobody", tmp_path / "x.csv")
    with pytest.raises(ValueError, match="format: expected csv or parquet"):
        export_segment(warehouse, segment, tmp_path / "x.xlsx", "xlsx")
    with pytest.raises(ValueError, match="--max-churn: must lie in"):
        export_segment(warehouse, segment, tmp_path / "x.csv", max_churn=1.5)
    assert not (tmp_path / "x.csv").exists()


def test_an_unstable_clustering_is_not_registered_and_the_previous_one_stays(
    built: tuple[Settings, Warehouse, dict[str, Any]],
) -> None:
    """Last in this file: it builds again, at a threshold no clustering of 1,500 guests reaches."""
    settings, warehouse, first = built
    strict = settings.model_copy(update={"segments_min_split_half_ari": 0.99})
    features = read_features(warehouse, AS_OF)
    again = build_segments(strict, warehouse, features, AS_OF)
    refused = again["families"]["behaviour"]["refused"]
    assert "CRM_SEGMENTS_MIN_SPLIT_HALF_ARI=0.99" in refused
    assert "the previous clustering stays in use" in refused
    client = configure(settings)
    champion = champion_version(client, "crm-segments-behaviour")
    assert champion is not None
    assert str(champion.version) == str(first["families"]["behaviour"]["version"])
    assert again["families"]["rfm"]["version"] != first["families"]["rfm"]["version"]  # the others register
    membership = read_membership(warehouse)
    behaviour = membership[membership["family"] == "behaviour"]
    expected = f"crm-segments-behaviour/{first['families']['behaviour']['version']}"
    assert (behaviour["definition_version"] == expected).all()  # the previous clustering's membership
