"""The ``crm`` command as a script would use it: exit codes and JSON on stdout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from crm_analytics.cli import app
from crm_analytics.warehouse import Warehouse
from tests.ingest.helpers import transactions, write_csv

runner = CliRunner()


def crm(*args: str) -> tuple[int, Any, str]:
    result = runner.invoke(app, list(args))
    data = json.loads(result.stdout) if "--json" in args and result.stdout.strip() else {}
    return result.exit_code, data, result.stderr


def test_cdnow_sample_ingest_reports_6919_then_0() -> None:
    code, _, _ = crm("data", "cdnow", "--variant", "sample", "--out", "d")
    assert code == 0

    code, first, _ = crm("ingest", "d", "--json")
    assert code == 0
    assert first["totals"]["transactions"]["rows_new"] == 6_919
    assert first["totals"]["transactions"]["rows_rejected"] == 0

    code, second, _ = crm("ingest", "d", "--json")
    assert code == 0
    assert second["totals"]["transactions"]["rows_new"] == 0
    assert second["totals"]["transactions"]["rows_duplicate"] == 6_919


def test_bad_setting_stops_with_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_WAREHOUSE_URL", "oracle://nope")
    code, _, stderr = crm("warehouse", "summary", "--json")
    assert code == 2
    assert "CRM_WAREHOUSE_URL" in stderr


def test_refused_batch_exits_nonzero_with_reason(tmp_path: Path) -> None:
    rows = transactions(10)
    for row in rows[:5]:
        row["amount"] = "n/a"
    write_csv(tmp_path / "transactions.csv", rows)

    code, result, _ = crm("ingest", "transactions.csv", "--json")

    assert code == 1
    [batch] = result["batches"]
    assert batch["status"] == "refused"
    assert "5 of 10 rows invalid" in batch["message"]


def test_missing_column_is_reported_per_file(tmp_path: Path) -> None:
    write_csv(tmp_path / "transactions.csv", [{"transaction_id": "T1"}])
    code, result, _ = crm("ingest", "transactions.csv", "--json")
    assert code == 1
    assert result["batches"][0]["status"] == "error"
    assert "missing columns 'customer_id'" in result["batches"][0]["message"]


def test_missing_path_is_a_usage_error() -> None:
    code, _, stderr = crm("ingest", "nowhere.csv")
    assert code == 2
    assert "nowhere.csv: no such file or folder" in stderr


def test_warehouse_summary_json(tmp_path: Path) -> None:
    write_csv(tmp_path / "transactions.csv", transactions(12))
    crm("ingest", "transactions.csv")
    code, summary, _ = crm("warehouse", "summary", "--json")
    assert code == 0
    assert summary["tables"]["transactions"] == 12
    assert summary["transactions"]["customers"] == 7


def test_main_job_generates_ingests_and_summarises() -> None:
    code, result, _ = crm("run", "--customers", "300", "--json")
    assert code == 0, result
    totals = result["ingest"]["totals"]
    assert set(totals) == {"transactions", "transaction_items", "customer_records", "offers", "offer_log"}
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
    assert set(result["segments"]["families"]) == {"rfm", "value_risk", "behaviour"}

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
    assert result["scored"]["customers"] == result["profiles"]["customers"]  # every profile is served
    with Warehouse("duckdb:///data/warehouse.duckdb") as warehouse:
        unified = set(warehouse.fetch("SELECT customer_id FROM customer_links")["customer_id"])
    assert_no_personal_data_in_artifacts(Path("data/demo"), Path("mlruns/artifacts"), unified)

    code, again, _ = crm("run", "--customers", "300", "--json")  # same data: nothing new, champions kept
    assert code == 0
    assert all(t["rows_new"] == 0 for t in again["ingest"]["totals"].values())
    assert [p.get("promoted") for p in again["promotions"]] == [False] * 3


def test_train_needs_a_labelled_build() -> None:
    crm("data", "cdnow", "--variant", "sample", "--out", "d")
    crm("ingest", "d")
    code, _, stderr = crm("train", "clv", "--as-of", "1997-09-30")
    assert code == 1
    assert "no feature build for 1997-09-30" in stderr
    crm("features", "build", "--as-of", "1997-09-30")
    code, _, stderr = crm("train", "clv", "--as-of", "1997-09-30")
    assert code == 1
    assert "has no labels" in stderr
    code, _, stderr = crm("promote", "crm-nothing")
    assert code == 2
    assert "model: expected one of clv (crm-clv), churn (crm-churn)" in stderr


def test_features_build_export_and_rebuild(tmp_path: Path) -> None:
    crm("data", "cdnow", "--variant", "sample", "--out", "d")
    crm("ingest", "d")

    code, built, _ = crm("features", "build", "--as-of", "1997-09-30", "--horizon-days", "273", "--json")
    assert code == 0
    assert (built["rows"], built["labels"], built["engine"]) == (2_357, True, "duckdb")

    code, exported, _ = crm("features", "export", "--as-of", "1997-09-30", "--out", "f.parquet", "--json")
    assert code == 0
    frame = pd.read_parquet(tmp_path / "f.parquet")
    assert len(frame) == exported["rows"] == 2_357
    assert {"frequency", "recency", "T", "monetary_value", "churned"} <= set(frame.columns)

    code, again, _ = crm("features", "build", "--as-of", "1997-09-30", "--horizon-days", "273", "--json")
    assert code == 0
    assert again["rows"] == 2_357


def test_features_usage_errors() -> None:
    code, _, stderr = crm("features", "build", "--as-of", "1997-02-30")
    assert code == 2
    assert "expected a date as YYYY-MM-DD" in stderr
    code, _, stderr = crm("features", "build", "--as-of", "1997-09-30", "--engine", "postgres")
    assert code == 2
    assert "CRM_WAREHOUSE_URL" in stderr
    code, _, stderr = crm("features", "export", "--as-of", "1997-09-30", "--out", "x.parquet")
    assert code == 1
    assert "no feature build for 1997-09-30" in stderr


def test_features_catalog_json() -> None:
    code, catalog, _ = crm("features", "catalog", "--json")
    assert code == 0
    assert {"frequency", "gap_mean_days", "cancellation_rate"} <= {f["name"] for f in catalog}


def test_evaluate_clv_and_churn_on_cdnow_sample(tmp_path: Path) -> None:
    plots = tmp_path / "plots"
    code, clv, stderr = crm("evaluate", "clv", "--dataset", "cdnow-sample", "--plots", str(plots), "--json")
    assert code == 0, stderr
    assert (clv["dataset"], clv["calibration_end"], clv["holdout_end"]) == (
        "cdnow-sample",
        "1997-09-30",
        "1998-06-30",
    )
    assert clv["selected"] in clv["purchase_models"]
    assert clv["purchase_models"]["bgnbd"]["params"]["r"] == pytest.approx(0.243, abs=0.001)
    assert [row["frequency"] for row in clv["conditional_expectations"]] == [*"0123456", "7+"]
    assert {"mae", "spearman", "top_decile_capture"} <= set(clv["value"]["btyd_gamma_gamma"])
    assert sorted(Path(p).name for p in clv["plots"]) == sorted(p.name for p in plots.glob("*.png"))
    assert len(clv["plots"]) >= 3

    code, churn, _ = crm("evaluate", "churn", "--dataset", "cdnow-sample", "--json")
    assert code == 0
    assert churn["validation"] == "5-fold out of fold"
    assert set(churn["metrics"]) == {"ours", "bgnbd_expected_purchases", "recency"}


def test_evaluate_usage_errors() -> None:
    code, _, stderr = crm("evaluate", "clv", "--dataset", "warehouse")
    assert code == 2
    assert "--calibration-end and --holdout-end: needed for --dataset warehouse" in stderr
    code, _, stderr = crm("evaluate", "clv", "--dataset", "cdnow-everything")
    assert code == 2
    assert "--dataset: expected one of" in stderr
    code, _, stderr = crm(
        "evaluate", "churn", "--calibration-end", "1998-06-30", "--holdout-end", "1998-01-31"
    )
    assert code == 2
    assert "--holdout-end: must come after --calibration-end" in stderr


def test_evaluate_offers_on_the_demo_chain() -> None:
    code, result, stderr = crm("evaluate", "offers", "--dataset", "demo", "--customers", "2000", "--json")
    assert code == 0, stderr
    assert set(result["policies"]) == {"random", "popularity", "ours", "oracle"}
    assert result["policies"]["ours"]["exact"] > result["policies"]["popularity"]["exact"]
    assert 0 < result["acceptance"]["roc_auc"] <= 1
    code, _, stderr = crm("evaluate", "offers", "--dataset", "cdnow-sample")
    assert code == 2
    assert "CDNOW has no offer log" in stderr


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
