"""How the ``crm`` command shows evaluation reports and the main job's result to people (``--json``
prints the same data for scripts)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crm_analytics.cli.common import err, out, render_rows

if TYPE_CHECKING:
    from crm_analytics.jobs.run import RunReport
    from crm_analytics.jobs.segments import SegmentsReport


def _bgbb(result: dict[str, Any]) -> None:
    out.print(
        f"{result['dataset']}: {result['customers']:,} customers, {result['occasions']} occasions, BG/BB "
        f"(log-likelihood {result['log_likelihood']:,.1f}; "
        f"published {result['published_log_likelihood']:,.1f})"
    )
    rows = [{"parameter": name, **values} for name, values in result["parameters"].items()]
    render_rows("parameters (published: Fader, Hardie & Shang 2010)", rows)
    render_rows("repeat donations: share of customers", result["repeat_distribution"])


def render_evaluation(model: str, report: dict[str, Any]) -> None:
    {"clv": _clv, "churn": _churn, "offers": _offers}[model](report)


def _clv(result: dict[str, Any]) -> None:
    if result.get("model") == "bgbb":
        _bgbb(result)
        return
    out.print(
        f"{result['dataset']}: {result['customers']:,} customers, calibration to "
        f"{result['calibration_end']}, holdout to {result['holdout_end']} (time in {result['time_unit']})"
    )
    rows = [
        {
            "model": name,
            "log-likelihood": m.get("log_likelihood"),
            "holdout purchases": m["holdout_purchases_predicted"],
            "actual": m["holdout_purchases_actual"],
            "MAE": m["holdout_purchases_mae"],
            "RMSE": m["holdout_purchases_rmse"],
        }
        for name, m in result["purchase_models"].items()
    ]
    render_rows("purchase models (fitted on the calibration period)", rows)
    for name, reason in result["failed"].items():
        err.print(f"{name} left out: {reason}", style="yellow", markup=False)
    out.print(f"selected: {result['selected']} (lowest {result['selection_metric']})")
    render_rows("conditional expectations: mean holdout purchases", result["conditional_expectations"])
    value = [{"model": name, **m} for name, m in result["value"].items()]
    render_rows(f"holdout spend (actual {result['holdout_spend_actual']:,.2f})", value)
    margin = result["value_margin_spearman"]
    if margin["interval"]:
        low, high = margin["interval"]
        out.print(
            f"supervised - BTYD: {margin['supervised_minus_btyd']:+.4f} Spearman "
            f"(bootstrap 95% interval {low:+.4f} to {high:+.4f})"
        )
    i = result["intervals"]
    out.print(
        f"{i['level']:.0%} intervals of {result['selected']}: holdout spend inside for "
        f"{i['spend_coverage']:.1%}, purchases {i['purchases_coverage']:.1%}; "
        f"P(any purchase) {i['p_any_purchase_predicted']:.3f} predicted, "
        f"{i['any_purchase_actual']:.3f} actual"
    )
    window = i["recalibration"]["validation_window"] if i["recalibration"] else None
    rows = [
        {"repeat purchases": group, **{k.replace("_coverage", ""): v for k, v in row.items()}}
        for group, row in i["coverage_by_calibration_frequency"].items()
    ]
    title = f"holdout spend inside the {i['level']:.0%} interval, by randomized PIT"
    render_rows(title + (f" (recalibrated on {window[0]}..{window[1]})" if window else ""), rows)


def _offers(result: dict[str, Any]) -> None:
    out.print(
        f"{result['dataset']}: {result['train_events']:,} logged offers to learn from, "
        f"{result['test_events']:,} after {result['split']} to judge on"
    )
    render_rows("expected margin per booking", [{"policy": k, **v} for k, v in result["policies"].items()])
    a = result["acceptance"]
    out.print(
        f"acceptance model: ROC AUC {a['roc_auc']:.3f}, Brier {a['brier']:.3f}, mean predicted "
        f"{a['mean_predicted']:.3f} vs {a['acceptance_rate']:.3f} accepted"
    )
    if "violations" in result:
        out.print(f"choices the true facts forbid (allergies not yet linked): {result['violations']}")


def _churn(result: dict[str, Any]) -> None:
    out.print(
        f"{result['dataset']}: {result['customers']:,} customers, churn rate {result['churn_rate']:.1%}, "
        f"validated on {result['validation']}"
    )
    render_rows("churn", [{"method": name, **m} for name, m in result["metrics"].items()])
    low, high = result["margin_roc_auc_interval"]
    out.print(
        f"ours - best baseline ({result['best_baseline']}): {result['margin_roc_auc']:+.4f} ROC AUC "
        f"(bootstrap 95% interval {low:+.4f} to {high:+.4f})"
    )
    if "same_period_folds" in result:
        folds = result["same_period_folds"]
        out.print(f"same-period folds: ROC AUC {folds['metrics']['roc_auc']:.4f} ({folds['note']})")


def render_segments_build(report: SegmentsReport) -> None:
    out.print(f"segments as of {report.as_of}, scored with {report.scored_with}")
    for family, built in report.families.items():
        if "version" not in built:  # refused as unstable, or never registered
            why = built.get("refused") or built.get("absent")
            err.print(f"{family}: not registered: {why}", style="yellow", markup=False)
            continue
        extra = f"k {built['k']:.0f}, split-half ARI {built['split_half_ari']:.3f}" if "k" in built else ""
        out.print(f"{family}: {built['model']} v{built['version']} {extra}")
        render_rows(family, [{"segment": k, "customers": v} for k, v in built["segments"].items()])


def render_profile_build(result: dict[str, Any]) -> None:
    quality = result["quality"] or {}
    out.print(
        f"{result['records']:,} source records -> {result['customers']:,} customers "
        f"(threshold {result['threshold']}); {result['conflicts']:,} conflicts for review"
    )
    if result.get("incremental"):
        out.print(
            f"incremental: {result['changed_records']:,} new or changed records, "
            f"{result['relinked_records']:,} re-linked, {result['merges']:,} merges recorded"
        )
    render_rows("linked by", [result["linked_by"]])
    if quality:
        shown = {k: f"{v:.4f}" if isinstance(v, float) else v for k, v in quality.items()}
        render_rows("pairwise quality against the truth", [shown])


def render_run(report: RunReport) -> None:
    from crm_analytics.cli.ingest import render_ingest, render_summary
    from crm_analytics.models import registry

    render_ingest(report.ingest)
    render_summary(report.summary)
    render_profile_build(report.profiles)
    f = report.features
    out.print(f"features as of {f.as_of}: {f.rows:,} customers x {f.columns} columns")
    for t in report.trained:
        gate = registry.family(t["model"]).gate
        if gate is not None:
            out.print(f"{t['model']} v{t['version']}: {gate.metric} {t['metrics'][gate.metric]:.3f}")
    for p in report.promotions:
        outcome = f"champion v{p['version']}" if p["promoted"] else "champion kept"
        out.print(f"{p['model']}: {outcome} ({p['reason']})")
    segments = report.refresh.stages.get("segments")
    if segments and "families" in segments:
        for family, built in segments["families"].items():
            if "version" not in built:  # refused as unstable, or never registered
                why = built.get("refused") or built.get("absent")
                err.print(f"{family} segments: not registered: {why}", style="yellow", markup=False)
                continue
            out.print(f"{family} segments: {built['model']} v{built['version']}")
            render_rows(family, [{"segment": k, "customers": v} for k, v in built["segments"].items()])
    scored = report.refresh.stages.get("scores") or {}
    out.print(f"serving store: {scored.get('customers', 0):,} customers scored as of {report.refresh.as_of}")
