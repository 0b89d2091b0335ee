"""The main job end to end (`crm run` on a small demo chain), as `make run` starts it: every stage's
output, the segments a marketer lists and exports, no personal data in MLflow, and a second run that
changes nothing."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from crm_analytics.warehouse import Warehouse
from tests.test_cli import crm


def test_main_job_generates_ingests_and_summarises() -> None:
    code, result, _ = crm("run", "--customers", "300", "--json")
    assert code == 0, result
    totals = result["ingest"]["totals"]
    assert set(totals) == {
        "transactions",
        "transaction_items",
        "customer_records",
        "offers",
        "offer_log",
        "hotels",
    }
    assert all(t["rows_rejected"] == 0 for t in totals.values())
    assert result["summary"]["tables"]["transactions"] == totals["transactions"]["rows_new"] > 300
    assert result["features"]["labels"] is True
    assert [t["model"] for t in result["trained"]] == ["crm-clv", "crm-churn", "crm-offers"]
    assert result["trained"][2]["metrics"]["share_of_oracle"] > 0.5  # the demo truth is read by evaluation
    # churn is validated by a model trained one horizon earlier (2025-06-30 - 184 days)
    assert result["trained"][1]["holdout"].endswith(":from-2024-12-28")
    client = MlflowClient(tracking_uri=f"sqlite:///{Path('mlruns/mlflow.db').resolve()}")
    clv_plots = {Path(a.path).name for a in client.list_artifacts(result["trained"][0]["run_id"], "plots")}
    assert "tracking.png" in clv_plots  # the weekly tracking plot needs the warehouse's daily counts
    clv_run = client.get_run(result["trained"][0]["run_id"])  # the purchase model chosen before the holdout
    assert clv_run.data.params["selected_on"] == "validation window from 2024-12-28"
    assert clv_run.data.params["interval_levels"] == "recalibrated"  # on that window, served with the model
    mlflow.set_tracking_uri(client.tracking_uri)
    served_clv = mlflow.pyfunc.load_model(f"runs:/{clv_run.info.run_id}/model").unwrap_python_model()
    assert served_clv.levels.recalibrated
    assert served_clv.levels.level == 0.9
    refreshed = result["refresh"]  # the first daily refresh: served as of the data's last day
    assert refreshed["status"] == "succeeded"
    assert refreshed["as_of"] == "2025-12-31"
    assert set(refreshed["stages"]["segments"]["families"]) == {"rfm", "value_risk", "behaviour"}

    code, listed, _ = crm("segments", "list", "--plots", "plots", "--json")
    assert code == 0
    assert {row["family"] for row in listed["segments"]} == {"rfm", "value_risk", "behaviour"}
    assert len(listed["plots"]) == 3
    largest = max(listed["segments"], key=lambda row: row["customers"])
    code, exported, _ = crm("segments", "export", largest["segment"], "--out", "list.csv", "--json")
    assert code == 0
    assert exported["exported"] + exported["left_out_no_consent"] == largest["customers"]
    assert len(pd.read_csv("list.csv")) == exported["exported"]
    code, _, stderr = crm("segments", "export", "No such segment", "--out", "x.csv")
    assert code == 1
    assert "no such segment" in stderr
    assert [p["reason"] for p in result["promotions"]] == ["first champion"] * 3
    assert Path("mlruns/mlflow.db").exists()
    assert result["profiles"]["quality"]["f1"] >= 0.98
    assert refreshed["stages"]["scores"]["customers"] == result["profiles"]["customers"]  # all served
    code, status, _ = crm("status", "--json")
    assert code == 0
    assert status["served"]["as_of"] == "2025-12-31"
    assert status["served"]["models"] == refreshed["models"]
    assert status["pending"] == []
    assert status["last_refresh"]["status"] == "succeeded"
    with Warehouse("duckdb:///data/warehouse.duckdb") as warehouse:
        unified = set(warehouse.fetch("SELECT customer_id FROM customer_links")["customer_id"])
    assert_no_personal_data_in_artifacts(Path("data/demo"), Path("mlruns/artifacts"), unified)

    code, again, _ = crm("run", "--customers", "300", "--json")  # same data: nothing new, champions kept
    assert code == 0
    assert all(t["rows_new"] == 0 for t in again["ingest"]["totals"].values())
    assert [p.get("promoted") for p in again["promotions"]] == [False] * 3


def assert_no_personal_data_in_artifacts(demo: Path, artifacts: Path, customer_ids: set[str]) -> None:
    """No MLflow artifact (input examples, definitions, evaluation files, model files, plots' metadata)
    holds a guest's e-mail, phone, street address, name or any customer or account id."""
    records = pd.concat(pd.read_parquet(p) for p in demo.glob("customers_*.parquet"))
    links = pd.read_parquet(demo / "transactions.parquet")["customer_id"]
    needles = customer_ids | set(records["source_customer_id"]) | set(links) | set(records["email"].dropna())
    needles |= set(records["phone"].dropna()) | set(records["phone"].dropna().str.replace(" ", ""))
    needles |= set(records["street"].dropna()) | set(records["first_name"] + " " + records["last_name"])
    assert len(needles) > 1_000
    files = [f for f in artifacts.rglob("*") if f.is_file()]
    assert any(f.name == "input_example.json" for f in files)
    for path in files:
        text = path.read_bytes().decode("latin-1")
        found = [n for n in needles if n in text]
        assert not found, f"{path.relative_to(artifacts)} holds personal data (e.g. {found[0]!r})"


def test_unstable_clusters_are_left_out_and_the_rest_is_served(monkeypatch: pytest.MonkeyPatch) -> None:
    """300 guests have no stable behavioural clusters: at the default CRM_SEGMENTS_MIN_SPLIT_HALF_ARI
    the build registers RFM and value-risk only, says why, and the day is still served."""
    monkeypatch.delenv("CRM_SEGMENTS_MIN_SPLIT_HALF_ARI")
    code, result, _ = crm("run", "--customers", "300", "--json")
    assert code == 0, result
    families = result["refresh"]["stages"]["segments"]["families"]
    assert set(families) == {"rfm", "value_risk", "behaviour"}
    refused = families["behaviour"]["refused"]
    assert "CRM_SEGMENTS_MIN_SPLIT_HALF_ARI=0.8" in refused
    assert "no behaviour segments until a build passes" in refused
    code, listed, _ = crm("segments", "list", "--json")
    assert code == 0
    assert {row["family"] for row in listed["segments"]} == {"rfm", "value_risk"}
    code, status, _ = crm("status", "--json")
    assert status["champions"]["crm-segments-behaviour"] is None
    assert status["served"]["as_of"] == "2025-12-31"
    # the next day assigns the registered families and says which is absent, without refitting
    code, refreshed, _ = crm("refresh", "--as-of", "2026-01-01", "--json")
    assert code == 0
    absent = refreshed["stages"]["segments"]["families"]["behaviour"]["absent"]
    assert absent.startswith("no registered definition (refused as unstable, or never built)")
