"""A refresh day's monitoring report: one self-contained HTML page (tables and our own matplotlib plots,
embedded as PNG; nothing loaded from elsewhere) logged to MLflow with the day's figures.

Each monitored day is one run in the ``crm-monitoring`` experiment, named ``monitor <day>``, tagged
``as_of`` (a day monitored again updates its run): metrics (breaches per kind, the largest drift
distance per view), ``monitoring/report.html`` and ``monitoring/checks.json``. Aggregates only:
shares per bin, counts, metrics; no customer's row.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from datetime import date
from typing import Any

import mlflow
import numpy as np
from matplotlib.figure import Figure

from crm_analytics.models.plots import STYLE
from crm_analytics.monitoring.data_quality import QualityCheck
from crm_analytics.monitoring.drift import DriftCheck
from crm_analytics.monitoring.realized import Realized
from crm_analytics.settings import Settings
from crm_analytics.tracking import configure, use_experiment

EXPERIMENT = "crm-monitoring"
PLOTTED = 8  # the breached checks and then the farthest, up to this many plots


def shares_plot(check: DriftCheck) -> Figure:
    """The reference's and the day's shares per reference bin (or category) of one check."""
    m = check.comparison
    fig = Figure(figsize=(STYLE.width_in, STYLE.height_in * 0.7), dpi=STYLE.dpi, layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(m.labels))
    ax.bar(x - 0.2, m.reference_shares, 0.4, label=f"reference ({check.reference})", color=STYLE.reference)
    ax.bar(x + 0.2, m.current_shares, 0.4, label=check.as_of, color=STYLE.colour(1 if check.breach else 0))
    ax.set_xticks(x, m.labels, rotation=30, ha="right", fontsize=STYLE.tick_size)
    ax.set_ylabel("share of rows", fontsize=STYLE.label_size)
    verdict = "BREACH" if check.breach else "ok"
    ax.set_title(f"{check.view}: {check.name} ({verdict})", fontsize=STYLE.panel_title_size)
    ax.legend(fontsize=STYLE.legend_size)
    return fig


def realized_plot(rows: Sequence[Realized], metric: str) -> Figure:
    """One realized metric by scored day, with its baseline (training figure or served mean)."""
    fig = Figure(figsize=(STYLE.width_in, STYLE.height_in * 0.7), dpi=STYLE.dpi, layout="constrained")
    ax = fig.add_subplot()
    mine = [r for r in rows if r.metric == metric]
    days = np.array([r.scored_as_of for r in mine], dtype="datetime64[D]")
    ax.plot(days, [r.value for r in mine], marker="o", color=STYLE.actual, label="realized")
    if any(r.baseline is not None for r in mine):
        baseline = [np.nan if r.baseline is None else r.baseline for r in mine]
        ax.plot(days, baseline, linestyle="--", color=STYLE.reference, label="expected")
    breached = [(d, r.value) for d, r in zip(days, mine, strict=True) if r.breach]
    if breached:
        ax.scatter(*zip(*breached, strict=True), color=STYLE.colour(1), zorder=3, label="breach")
    ax.set_title(f"{mine[0].model}: {metric} by scored day", fontsize=STYLE.panel_title_size)
    ax.set_xlabel("scored on", fontsize=STYLE.label_size)
    ax.legend(fontsize=STYLE.legend_size)
    fig.autofmt_xdate()
    return fig


def render(
    as_of: date, drift: Sequence[DriftCheck], realized: Sequence[Realized], quality: Sequence[QualityCheck]
) -> str:
    """The report page."""
    order = sorted(drift, key=lambda c: (not c.breach, -c.comparison.distance))
    parts = [
        f"<h1>Monitoring, {as_of}</h1>",
        "<p>Drift: distance is KS D for numbers and total variation for categories; a breach is a "
        "large and unlikely change (see the Settings). PSI is shown for reference.</p>",
        _table(
            ["view", "name", "reference", "distance", "p", "PSI", "rows", "breach"],
            [[c.view, c.name, c.reference, *_figures(c), "BREACH" if c.breach else ""] for c in order],
        ),
    ]
    parts += [_image(shares_plot(c)) for c in order[:PLOTTED]]
    parts.append("<h2>Realized performance</h2>")
    if realized:
        for metric in ("roc_auc", "churn_rate", "purchases_total_error"):
            if any(r.metric == metric for r in realized):
                parts.append(_image(realized_plot(realized, metric)))
        parts.append(
            _table(
                ["scored on", "model", "version", "metric", "value", "expected", "breach", "detail"],
                [
                    [
                        r.scored_as_of,
                        r.model,
                        r.version,
                        r.metric,
                        f"{r.value:.4f}",
                        _expected(r),
                        _verdict(r),
                        r.detail,
                    ]
                    for r in realized
                ],
            )
        )
    else:
        parts.append("<p>No scored day has reached the end of its horizon yet.</p>")
    breaches = [q for q in quality if q.breach]
    parts.append(f"<h2>Data quality</h2><p>{len(quality)} checks, {len(breaches)} in breach.</p>")
    if breaches:
        parts.append(
            _table(
                ["table", "source", "check", "detail"],
                [[q.table_name, q.source, q.check_name, q.detail] for q in breaches],
            )
        )
    style = "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{padding:2px 8px;"
    style += "border-bottom:1px solid #ddd;text-align:left}"
    head = f"<!doctype html><html><head><meta charset='utf-8'><title>Monitoring {as_of}</title>"
    return f"{head}<style>{style}</style></head><body>" + "\n".join(parts) + "</body></html>"


def log_run(
    settings: Settings,
    as_of: date,
    drift: Sequence[DriftCheck],
    realized: Sequence[Realized],
    quality: Sequence[QualityCheck],
) -> str:
    """Log the day's report and figures to MLflow; returns the run id."""
    configure(settings)
    metrics: dict[str, float] = {
        "drift_breaches": sum(c.breach for c in drift),
        "realized_breaches": sum(r.breach for r in realized),
        "data_quality_breaches": sum(q.breach for q in quality),
    }
    for view in {c.view for c in drift}:
        metrics[f"drift_max_distance_{view}"] = max(c.comparison.distance for c in drift if c.view == view)
    experiment = use_experiment(settings, EXPERIMENT)
    earlier = mlflow.search_runs([experiment], f"tags.as_of = '{as_of}'", max_results=1, output_format="list")
    # a day refreshed again (new files, a rescore after a promotion) updates its run: one run per day
    existing = {"run_id": earlier[0].info.run_id} if earlier else {"run_name": f"monitor {as_of}"}
    with mlflow.start_run(**existing, tags={"as_of": str(as_of)}) as run:
        mlflow.log_metrics(metrics)
        mlflow.log_text(render(as_of, drift, realized, quality), "monitoring/report.html")
        checks: dict[str, Any] = {
            "drift": [c.as_dict() for c in drift],
            "realized": [r.as_dict() for r in realized],
            "data_quality_breaches": [q.as_dict() for q in quality if q.breach],
        }
        mlflow.log_dict(checks, "monitoring/checks.json")
    return str(run.info.run_id)


def _figures(check: DriftCheck) -> list[str]:
    m = check.comparison
    return [f"{m.distance:.3f}", f"{m.p_value:.1e}", f"{m.psi:.3f}", f"{m.rows:,}"]


def _expected(row: Realized) -> str:
    return "" if row.baseline is None else f"{row.baseline:.4f}"


def _verdict(row: Realized) -> str:
    return "BREACH" if row.breach else ""


def _image(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi, facecolor="white")
    fig.clear()
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f"<p><img alt='plot' src='data:image/png;base64,{encoded}'></p>"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
