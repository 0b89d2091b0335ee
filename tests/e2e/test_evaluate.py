"""`crm evaluate` on the real CDNOW sample and on a demo chain, through the whole pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli import crm


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
    # chosen on the calibration period's last 90 days, each model refitted before them
    assert clv["selected_on"] == "validation window from 1997-07-02"
    assert clv["selected"] == min(clv["validation"], key=clv["validation"].get)
    assert clv["purchase_models"]["bgnbd"]["params"]["r"] == pytest.approx(0.243, abs=0.001)
    for model in clv["purchase_models"].values():  # crm evaluate asks for the standard errors
        assert set(model["standard_errors"]) == set(model["params"])
        assert all(se > 0 for se in model["standard_errors"].values())
    drawn = {Path(p).name for p in clv["plots"]}
    assert {"alive_and_expected_matrices.png", "holdout_spend_pit.png"} <= drawn
    recalibration = clv["intervals"]["recalibration"]  # fitted on the calibration period's last 90 days
    assert recalibration["validation_window"] == ["1997-07-02", "1997-09-30"]
    assert set(recalibration["levels"]) == {"0", "1-2", "3+"}
    assert set(clv["intervals"]["coverage_by_calibration_frequency"]) == {"0", "1-2", "3+", "all"}
    assert [row["frequency"] for row in clv["conditional_expectations"]] == [*"0123456", "7+"]
    assert {"mae", "spearman", "top_decile_capture"} <= set(clv["value"]["btyd_gamma_gamma"])
    assert sorted(Path(p).name for p in clv["plots"]) == sorted(p.name for p in plots.glob("*.png"))
    assert len(clv["plots"]) >= 3

    assert clv["supervised_validation"] == "earlier cutoff 1997-07-02 (90-day labels)"
    assert "supervised_same_period_folds" in clv["value"]  # and the same-period folds, labelled

    code, churn, _ = crm("evaluate", "churn", "--dataset", "cdnow-sample", "--json")
    assert code == 0
    # out of time: trained at the validation window's cutoff on its 90-day labels
    assert churn["validation"] == "earlier cutoff 1997-07-02 (90-day labels)"
    assert "pareto_p_no_purchase" in churn["metrics"]
    assert churn["best_baseline"] in churn["metrics"]
    low, high = churn["margin_roc_auc_interval"]
    assert low < churn["margin_roc_auc"] < high
    assert churn["same_period_folds"]["note"].startswith("5-fold out of fold at this cutoff")
    assert set(churn["attempts"]["gain_over_ours"]) == {"with every purchase model", "uncalibrated"}


def test_evaluate_offers_on_the_demo_chain() -> None:
    code, result, stderr = crm("evaluate", "offers", "--dataset", "demo", "--customers", "2000", "--json")
    assert code == 0, stderr
    assert set(result["policies"]) == {"random", "popularity", "ours", "oracle"}
    assert result["policies"]["ours"]["exact"] > result["policies"]["popularity"]["exact"]
    assert 0 < result["acceptance"]["roc_auc"] <= 1
    code, _, stderr = crm("evaluate", "offers", "--dataset", "cdnow-sample")
    assert code == 2
    assert "CDNOW has no offer log" in stderr
