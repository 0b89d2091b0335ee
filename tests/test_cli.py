"""The ``crm`` command as a script would use it: exit codes and JSON on stdout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from crm_analytics.cli import app
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


def test_warehouse_summary_json_reads_the_published_copy(tmp_path: Path) -> None:
    write_csv(tmp_path / "transactions.csv", transactions(12))
    crm("ingest", "transactions.csv")
    code, _, stderr = crm("warehouse", "summary", "--json")
    assert code == 1
    assert "no read copy published yet" in stderr
    assert "run `crm warehouse publish`" in stderr

    code, published, _ = crm("warehouse", "publish", "--json")
    assert code == 0
    assert published["path"] == "data/warehouse.read.duckdb"  # beside the warehouse by default
    code, summary, _ = crm("warehouse", "summary", "--json")
    assert code == 0
    assert summary["tables"]["transactions"] == 12
    assert summary["transactions"]["customers"] == 7
    assert summary["read_copy"] == {k: published[k] for k in ("published_at", "as_of")}
    assert summary["read_copy"]["as_of"] == summary["transactions"]["last"][:10]


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

    assert crm("warehouse", "publish")[0] == 0
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
    assert crm("warehouse", "publish")[0] == 0
    code, _, stderr = crm("features", "export", "--as-of", "1997-09-30", "--out", "x.parquet")
    assert code == 1
    assert "no feature build for 1997-09-30" in stderr


def test_features_catalog_json() -> None:
    code, catalog, _ = crm("features", "catalog", "--json")
    assert code == 0
    assert {"frequency", "gap_mean_days", "cancellation_rate"} <= {f["name"] for f in catalog}


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
