"""The ``crm`` command: thin typer functions over the library, with rich output and ``--json``.

Progress bars and tables go to stderr; with ``--json`` stdout carries only the JSON result, so
scripts can read it.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from crm_analytics.cli_base import (
    JsonOption,
    emit,
    err,
    out,
    out_console,
    progress_bar,
    render_rows,
    settings,
)
from crm_analytics.cli_profiles import build as build_profiles_command
from crm_analytics.cli_profiles import erase_command, profiles_app, render_build
from crm_analytics.cli_serving import feedback_app, keys_app, score, score_command, serve_command
from crm_analytics.settings import Settings

app = typer.Typer(help="crm-analytics: customer analytics from purchase history.", no_args_is_help=True)
data_app = typer.Typer(help="Build the bundled datasets in the raw input format.", no_args_is_help=True)
warehouse_app = typer.Typer(help="Look into the warehouse.", no_args_is_help=True)
features_app = typer.Typer(help="Build, export and describe purchase-history features.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(warehouse_app, name="warehouse")
segments_app = typer.Typer(help="Customer segments for marketing: build, list, export.", no_args_is_help=True)
app.add_typer(features_app, name="features")
app.add_typer(segments_app, name="segments")
app.add_typer(profiles_app, name="profiles")
app.command("erase")(erase_command)
app.add_typer(keys_app, name="keys")
app.add_typer(feedback_app, name="feedback")
app.command("score")(score_command)
app.command("serve")(serve_command)

# the demo chain's data ends 2025-12-31: calibrate to mid-year, label with the second half
DEMO_CUTOFF = date(2025, 6, 30)
DEMO_HORIZON_DAYS = 184
DEMO_END = date(2025, 12, 31)


@data_app.command("cdnow")
def data_cdnow(
    out: Annotated[Path, typer.Option(help="Folder to write transactions.csv and transaction_items.csv to.")],
    variant: Annotated[str, typer.Option(help="sample (2,357 customers) or master (23,570).")] = "sample",
    as_json: JsonOption = False,
) -> None:
    """Convert the CDNOW data shipped in the lifetimes wheel into the raw transactions contract."""
    from crm_analytics.ingest.datasets.cdnow import CDNOW_FILES, write_cdnow

    if variant not in CDNOW_FILES:
        err.print(f"[red]--variant: expected one of {', '.join(CDNOW_FILES)}, got {variant!r}[/red]")
        raise typer.Exit(2)
    paths = write_cdnow(variant, out)
    emit({"variant": variant, "files": [str(p) for p in paths]}, as_json, _render_files)


@data_app.command("demo")
def data_demo(
    out: Annotated[Path, typer.Option(help="Folder for the raw files; ground truth goes to OUT/truth.")],
    customers: Annotated[int, typer.Option(min=1, help="Number of guests (people) to simulate.")] = 5_000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")] = 42,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    as_json: JsonOption = False,
) -> None:
    """Generate the synthetic hotel-chain dataset (see README: demo data)."""
    paths = _generate_demo(out, customers, seed, fmt)
    emit({"customers": customers, "seed": seed, "files": [str(p) for p in paths]}, as_json, _render_files)


def _generate_demo(out: Path, customers: int, seed: int, fmt: str) -> list[Path]:
    from crm_analytics.ingest.datasets.demo import DemoConfig, generate_demo, write_demo

    if fmt not in ("parquet", "csv"):
        err.print(f"[red]--format: expected parquet or csv, got {fmt!r}[/red]")
        raise typer.Exit(2)
    with progress_bar() as bar:
        task = bar.add_task(f"generating {customers:,} guests", total=100)
        data = generate_demo(
            DemoConfig(customers=customers, seed=seed),
            progress=lambda stage, done: bar.update(task, completed=100 * done, description=stage),
        )
        bar.update(task, description="writing files")
        paths = write_demo(data, out, fmt)
        bar.update(task, completed=100, description="demo data written")
    return paths


@app.command("ingest")
def ingest(
    paths: Annotated[list[Path] | None, typer.Argument(help="CSV/Parquet files or folders of them.")] = None,
    source: Annotated[
        str | None, typer.Option(help="Source system, for files without a source column.")
    ] = None,
    table: Annotated[str | None, typer.Option(help="Target table, when the file name does not tell.")] = None,
    sql: Annotated[
        str | None, typer.Option(help="A SQL query to ingest instead of files (needs --db-url).")
    ] = None,
    db_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL of the database --sql runs against.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Validate and load raw data into the warehouse; bad rows go to quarantine with a reason."""
    reports = _ingest(settings(), paths or [], source, table, sql, db_url)
    emit({"batches": reports, "totals": _totals(reports)}, as_json, _render_ingest)
    if any(r["status"] != "accepted" for r in reports):
        raise typer.Exit(1)


def _ingest(
    config: Settings,
    paths: list[Path],
    source: str | None,
    table: str | None,
    sql: str | None,
    db_url: str | None,
) -> list[dict[str, Any]]:
    from crm_analytics.ingest.pipeline import BatchRefusedError, ingest_file, ingest_query
    from crm_analytics.ingest.readers import expand_paths
    from crm_analytics.ingest.validate import ContractError
    from crm_analytics.ingest.warehouse import Warehouse

    if bool(sql) != bool(db_url) or (sql and not table):
        err.print("[red]--sql needs --db-url and --table[/red]")
        raise typer.Exit(2)
    if not sql and not paths:
        err.print("[red]give files or folders to ingest, or --sql with --db-url and --table[/red]")
        raise typer.Exit(2)
    try:
        files = expand_paths(paths)
    except FileNotFoundError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    reports: list[dict[str, Any]] = []
    with Warehouse(config.warehouse_url) as warehouse, progress_bar() as bar:
        jobs: list[tuple[str, Any]] = [
            (
                str(f),
                lambda on_rows, f=f: ingest_file(
                    warehouse, f, config, table=table, source=source, on_rows=on_rows
                ),
            )
            for f in files
        ]
        if sql and db_url and table:
            jobs.append(
                (
                    "sql query",
                    lambda on_rows: ingest_query(
                        warehouse, db_url, sql, config, table=table, source=source, on_rows=on_rows
                    ),
                )
            )
        for label, job in jobs:
            task = bar.add_task(label, total=None)
            try:
                report = job(lambda n, task=task: bar.advance(task, n)).as_dict()
            except BatchRefusedError as exc:
                report = exc.report.as_dict()
            except (ContractError, ValueError) as exc:
                report = {"source_file": label, "status": "error", "message": str(exc)}
            bar.update(task, total=bar.tasks[task].completed)
            reports.append(report)
    return reports


def _totals(reports: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    totals: dict[str, dict[str, int]] = {}
    for r in reports:
        if r["status"] != "accepted":
            continue
        t = totals.setdefault(
            r["table"],
            {"rows_read": 0, "rows_new": 0, "rows_duplicate": 0, "rows_rejected": 0, "rows_suppressed": 0},
        )
        for key in t:
            t[key] += int(r.get(key, 0))
    return totals


@warehouse_app.command("summary")
def warehouse_summary_command(as_json: JsonOption = False) -> None:
    """Row counts, the transactions at a glance, and quarantine reasons."""
    emit(_summary(settings()), as_json, _render_summary)


def _summary(config: Settings) -> dict[str, Any]:
    from crm_analytics.ingest.summary import warehouse_summary
    from crm_analytics.ingest.warehouse import Warehouse

    with Warehouse(config.warehouse_url) as warehouse:
        return warehouse_summary(warehouse)


def parse_day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        err.print(f"[red]{option}: expected a date as YYYY-MM-DD, got {value!r}[/red]")
        raise typer.Exit(2) from None


@features_app.command("build")
def features_build(
    as_of: Annotated[str, typer.Option(help="Cutoff date (YYYY-MM-DD); features use data up to this day.")],
    horizon_days: Annotated[
        int | None, typer.Option(min=1, help="Add labels from the N days after the cutoff.")
    ] = None,
    time_unit: Annotated[str, typer.Option(help="days, or weeks (days / 7) for recency and T.")] = "days",
    engine: Annotated[
        str | None, typer.Option(help="duckdb, postgres or spark; default: the warehouse's own backend.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Compute the feature table as of a cutoff and store it in the warehouse (replacing that cutoff)."""
    from crm_analytics.features.build import FeatureConfig
    from crm_analytics.features.pipeline import build_and_store

    config = settings()
    if time_unit not in ("days", "weeks"):
        err.print(f"[red]--time-unit: expected days or weeks, got {time_unit!r}[/red]")
        raise typer.Exit(2)
    features = FeatureConfig(
        as_of=parse_day(as_of, "--as-of"),
        horizon_days=horizon_days,
        time_unit=time_unit,
    )
    with err.status(f"building features as of {features.as_of}"):
        try:
            result = build_and_store(config, features, engine)
        except ValueError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
    emit(result, as_json, lambda r: render_rows("features", [{k: str(v) for k, v in r.items()}]))


@features_app.command("export")
def features_export(
    as_of: Annotated[str, typer.Option(help="The cutoff of a stored build (YYYY-MM-DD).")],
    out: Annotated[Path, typer.Option(help="Parquet file to write.")],
    as_json: JsonOption = False,
) -> None:
    """Write a stored feature table to Parquet."""
    from crm_analytics.features.store import read_features
    from crm_analytics.ingest.warehouse import Warehouse

    day = parse_day(as_of, "--as-of")
    with Warehouse(settings().warehouse_url) as warehouse:
        try:
            frame = read_features(warehouse, day)
        except LookupError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out, index=False)
    result = {"as_of": str(day), "rows": len(frame), "columns": len(frame.columns), "file": str(out)}
    emit(
        result,
        as_json,
        lambda r: out_console().print(f"{r['rows']:,} rows x {r['columns']} cols -> {r['file']}"),
    )


@features_app.command("catalog")
def features_catalog(
    out: Annotated[
        Path | None, typer.Option(help="Write the Markdown catalog here instead of printing it.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Every feature with its description, type and source columns."""
    from dataclasses import asdict

    from crm_analytics.features import build  # noqa: F401  (importing the families declares them)
    from crm_analytics.features.catalog import CATALOG, catalog_markdown

    if out is not None:
        out.write_text(catalog_markdown())
    if as_json:
        emit([asdict(f) for f in CATALOG], True)
    elif out is None:
        typer.echo(catalog_markdown())


@app.command("train")
def train(
    model: Annotated[str, typer.Argument(help="clv, churn or offers.")],
    as_of: Annotated[
        str,
        typer.Option(help="Cutoff of a stored feature build with labels; offers: the split (YYYY-MM-DD)."),
    ],
    until: Annotated[
        str | None, typer.Option(help="offers: last day of the offer log to judge the policy on.")
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option(help="offers: the demo data's truth folder, for exact values and the oracle."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed; the same data and seed give the same metrics.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Train a model, log it to MLflow and register it (crm-clv, crm-churn, crm-offers)."""
    config = settings()
    if model == "offers":
        if until is None:
            err.print("[red]--until: needed for offers (the end of the held-out offer log)[/red]")
            raise typer.Exit(2)
        result = _train_offers(config, parse_day(as_of, "--as-of"), parse_day(until, "--until"), truth, seed)
    else:
        result = _train(config, model, parse_day(as_of, "--as-of"), seed)
    emit(result, as_json, lambda r: render_rows(f"trained {r['model']} v{r['version']}", [r["metrics"]]))


def _train(config: Settings, model: str, as_of: date, seed: int) -> dict[str, Any]:
    """Train on the stored build at ``as_of`` (``models.train_stored``)."""
    from crm_analytics.ingest.warehouse import Warehouse
    from crm_analytics.models.train_stored import MODELS, train_from_store

    if model not in MODELS:
        err.print(f"[red]MODEL: expected clv or churn, got {model!r}[/red]")
        raise typer.Exit(2)
    with Warehouse(config.warehouse_url) as warehouse, err.status(f"training {model} as of {as_of}"):
        try:
            return train_from_store(config, warehouse, model, as_of, seed).as_dict()
        except (LookupError, ValueError) as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None


def _train_offers(
    config: Settings, split: date, until: date, truth: Path | None, seed: int
) -> dict[str, Any]:
    from crm_analytics.ingest.warehouse import Warehouse
    from crm_analytics.models.offers.train import train_offers

    with Warehouse(config.warehouse_url) as warehouse, err.status("training the offer models"):
        try:
            return train_offers(config, warehouse.ibis, split, until, truth, seed).as_dict()
        except ValueError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None


DatasetOption = Annotated[
    str, typer.Option(help="cdnow-sample, cdnow-master, demo (synthetic) or warehouse (the configured one).")
]
CalibrationEndOption = Annotated[
    str | None, typer.Option(help="Last day of the calibration period (default: the dataset's split).")
]
HoldoutEndOption = Annotated[
    str | None, typer.Option(help="Last day of the holdout period (default: the dataset's split).")
]
DemoCustomersOption = Annotated[int, typer.Option(min=100, help="Guests in the demo dataset.")]
PlotsOption = Annotated[Path | None, typer.Option(help="Folder to save the evaluation plots (PNG) in.")]


@app.command("evaluate")
def evaluate_command(
    model: Annotated[str, typer.Argument(help="clv, churn or offers.")],
    dataset: DatasetOption = "cdnow-sample",
    calibration_end: CalibrationEndOption = None,
    holdout_end: HoldoutEndOption = None,
    customers: DemoCustomersOption = 20_000,
    seed: Annotated[int, typer.Option(help="Seed of the demo data and the models.")] = 42,
    plots: PlotsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Evaluate on a calibration/holdout split. clv: the purchase models compared and selected by holdout
    error, CLV against the supervised spend model. churn: ours against BG/NBD and recency. offers: the
    offer policy against random and popularity (and the oracle on demo data), on the later offer log."""
    from crm_analytics.models import evaluation_plots
    from crm_analytics.models.clv_evaluation import evaluate_clv
    from crm_analytics.models.holdout import evaluate_churn

    if model not in ("clv", "churn", "offers"):
        err.print(f"[red]MODEL: expected clv, churn or offers, got {model!r}[/red]")
        raise typer.Exit(2)
    if model == "offers":
        emit(
            _evaluate_offers(settings(), dataset, calibration_end, holdout_end, customers, seed),
            as_json,
            _render_offers_evaluation,
        )
        return
    data = _evaluation_data(settings(), dataset, calibration_end, holdout_end, customers, seed)
    with err.status(f"fitting and evaluating {model} on {len(data.features):,} customers"):
        if model == "clv":
            clv = evaluate_clv(
                data.features,
                data.horizon_days,
                data.time_unit,
                daily=data.daily,
                train_features=data.train_features,
                seed=seed,
            )
            report, figures = clv.report, evaluation_plots.clv_figures(clv, data.features)
        else:
            churn = evaluate_churn(
                data.features, data.horizon_days, data.time_unit, seed, train_features=data.train_features
            )
            report, figures = churn.report, evaluation_plots.churn_figures(churn)
    result = {"dataset": dataset, **report}
    if plots is not None:
        result["plots"] = evaluation_plots.save_figures(figures, plots)
    emit(result, as_json, _render_clv_evaluation if model == "clv" else _render_churn_evaluation)


def _split_dates(
    dataset: str, calibration_end: str | None, holdout_end: str | None, default: tuple[date, date] | None
) -> tuple[date, date]:
    """The calibration and holdout ends from the options, or the dataset's own split."""
    if default is None and (calibration_end is None or holdout_end is None):
        err.print(f"[red]--calibration-end and --holdout-end: needed for --dataset {dataset}[/red]")
        raise typer.Exit(2)
    start = parse_day(calibration_end, "--calibration-end") if calibration_end else default[0]  # type: ignore[index]
    end = parse_day(holdout_end, "--holdout-end") if holdout_end else default[1]  # type: ignore[index]
    return start, end


def _evaluate_offers(
    config: Settings,
    dataset: str,
    calibration_end: str | None,
    holdout_end: str | None,
    customers: int,
    seed: int,
) -> dict[str, Any]:
    """The offer policies on the offer log after the split; the oracle only where a truth folder exists."""
    from crm_analytics.ingest.warehouse import Warehouse
    from crm_analytics.models.evaluation_data import DEFAULT_SPLITS, prepare_warehouse
    from crm_analytics.models.offers.evaluation import evaluate_offers

    if dataset not in ("demo", "warehouse"):
        err.print("[red]--dataset: offers are evaluated on demo or warehouse (CDNOW has no offer log)[/red]")
        raise typer.Exit(2)
    start, end = _split_dates(dataset, calibration_end, holdout_end, DEFAULT_SPLITS.get(dataset))
    with err.status("preparing the data") as status:
        url, raw = prepare_warehouse(config, dataset, customers, seed, status.update)
        status.update("training the acceptance models and evaluating the policies")
        with Warehouse(url) as warehouse:
            try:
                report = evaluate_offers(
                    warehouse.ibis, raw / "truth" if raw else None, start, end, seed=seed
                )
            except ValueError as exc:
                err.print(f"[red]{exc}[/red]")
                raise typer.Exit(2) from None
    return {"dataset": dataset, **report}


def _evaluation_data(
    config: Settings,
    dataset: str,
    calibration_end: str | None,
    holdout_end: str | None,
    customers: int,
    seed: int,
) -> Any:
    from crm_analytics.ingest.pipeline import BatchRefusedError
    from crm_analytics.models.evaluation_data import DATASETS, default_split, load_evaluation_data

    if dataset not in DATASETS:
        err.print(f"[red]--dataset: expected one of {', '.join(DATASETS)}, got {dataset!r}[/red]")
        raise typer.Exit(2)
    start, end = _split_dates(dataset, calibration_end, holdout_end, default_split(dataset))
    try:
        with err.status("preparing the data") as status:
            return load_evaluation_data(
                config, dataset, start, end, customers=customers, seed=seed, status=status.update
            )
    except (ValueError, LookupError, BatchRefusedError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1 if isinstance(exc, BatchRefusedError) else 2) from None


@segments_app.command("build")
def segments_build(
    as_of: Annotated[str, typer.Option(help="Cutoff of a stored feature build (YYYY-MM-DD).")],
    seed: Annotated[int, typer.Option(help="Seed of the behavioural clusters.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Fit RFM, value-and-risk and behavioural segments, register their definitions, store membership."""
    result = _build_segments(settings(), parse_day(as_of, "--as-of"), seed)
    emit(result, as_json, _render_segments_build)


def _build_segments(config: Settings, as_of: date, seed: int) -> dict[str, Any]:
    from crm_analytics.features.store import read_features
    from crm_analytics.ingest.warehouse import Warehouse
    from crm_analytics.models.segments.build import build_segments

    with Warehouse(config.warehouse_url) as warehouse, err.status("building segments") as status:
        try:
            features = read_features(warehouse, as_of)
            return build_segments(config, warehouse, features, as_of, seed, status=status.update)
        except LookupError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
        except ValueError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None


@segments_app.command("list")
def segments_list(
    plots: Annotated[Path | None, typer.Option(help="Folder for one profile plot per family.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Every segment: customers, share, mean CLV and churn, definition version, cutoff."""
    from crm_analytics.ingest.warehouse import Warehouse
    from crm_analytics.models.segments.membership import read_membership, segment_summary

    with Warehouse(settings().warehouse_url) as warehouse:
        try:
            summary = segment_summary(read_membership(warehouse))
        except LookupError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
    rows = summary.assign(as_of=summary["as_of"].astype(str)).to_dict(orient="records")
    result: dict[str, Any] = {"segments": rows}
    if plots is not None:
        result["plots"] = _segment_plots(summary, plots)
    emit(result, as_json, lambda r: render_rows("segments", r["segments"]))


def _segment_plots(summary: Any, folder: Path) -> list[str]:
    from crm_analytics.models.evaluation_plots import save_figures
    from crm_analytics.models.segments.profiles import profile_plot

    figures = {}
    for family, rows in summary.groupby("family"):
        figures[f"segments_{family}"] = profile_plot(rows.set_index("segment"), f"{family} segments")
    return save_figures(figures, folder)


@segments_app.command("export")
def segments_export(
    name: Annotated[str, typer.Argument(help="Segment name, as `crm segments list` shows it.")],
    out: Annotated[Path, typer.Option(help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    min_clv: Annotated[float | None, typer.Option(help="Only customers with at least this CLV.")] = None,
    max_churn: Annotated[
        float | None, typer.Option(help="Only customers with at most this churn probability.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Export a segment's customers who gave marketing consent; says how many were left out and why."""
    from crm_analytics.ingest.warehouse import Warehouse
    from crm_analytics.models.segments.export import export_segment

    with Warehouse(settings().warehouse_url) as warehouse:
        try:
            report = export_segment(warehouse, name, out, fmt, min_clv, max_churn)
        except ValueError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
        except LookupError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
    emit(
        report.as_dict(),
        as_json,
        lambda r: out_console().print(
            f"{r['exported']:,} customers of {r['segment']!r} written to {r['path']}; left out: "
            f"{r['left_out_no_consent']:,} without marketing consent, {r['left_out_by_filters']:,} by filters"
        ),
    )


@app.command("promote")
def promote_command(
    model: Annotated[str, typer.Argument(help="crm-clv, crm-churn or crm-offers (or clv, churn, offers).")],
    version: Annotated[str | None, typer.Option(help="Version to promote; default the newest.")] = None,
    force: Annotated[bool, typer.Option(help="Promote even if it does not win the gate.")] = False,
    reason: Annotated[str, typer.Option(help="Why, for a forced promotion (logged).")] = "",
    as_json: JsonOption = False,
) -> None:
    """Move the @champion alias to a candidate that beats the champion on the same holdout metric."""
    result = _promote(settings(), model, version, force, reason)
    emit(result, as_json, lambda r: out.print(f"{r['model']} v{r['version']} is champion ({r['reason']})"))


def _promote(config: Settings, model: str, version: str | None, force: bool, reason: str) -> dict[str, Any]:
    from crm_analytics.models.registry import PromotionRefusedError, promote
    from crm_analytics.tracking import configure

    name = model if model.startswith("crm-") else f"crm-{model}"
    try:
        return promote(configure(config), name, version, force, reason).as_dict()
    except PromotionRefusedError as exc:
        err.print(f"[yellow]{exc}[/yellow]")
        raise typer.Exit(1) from None
    except (LookupError, ValueError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


@app.command("run")
def run(
    customers: Annotated[int, typer.Option(min=1, help="Guests in the generated demo chain.")] = 5_000,
    seed: Annotated[int, typer.Option(help="Random seed of the demo data.")] = 42,
    as_json: JsonOption = False,
) -> None:
    """The main job on the embedded defaults: demo data, ingest, profiles, features, train (CLV, churn,
    offers), register, promote, segments, scores into the serving store."""
    from crm_analytics.features.build import FeatureConfig
    from crm_analytics.features.pipeline import build_and_store
    from crm_analytics.profiles.linkage import DEFAULT_THRESHOLD

    config = settings()
    demo_dir = config.data_dir / "demo"
    _generate_demo(demo_dir, customers, seed, "parquet")
    reports = _ingest(config, [demo_dir], None, None, None, None)
    if any(r["status"] != "accepted" for r in reports):
        emit({"ingest": {"batches": reports, "totals": _totals(reports)}}, as_json, _render_ingest)
        raise typer.Exit(1)
    profiles = build_profiles_command(config, DEFAULT_THRESHOLD, demo_dir / "truth")
    # one horizon earlier too: churn is then validated by training there and testing at the cutoff
    earlier = DEMO_CUTOFF - timedelta(days=DEMO_HORIZON_DAYS)
    for as_of in (earlier, DEMO_CUTOFF):
        with err.status(f"building features as of {as_of}"):
            features = build_and_store(config, FeatureConfig(as_of=as_of, horizon_days=DEMO_HORIZON_DAYS))
    trained = [_train(config, model, DEMO_CUTOFF, seed=0) for model in ("clv", "churn")]
    trained.append(_train_offers(config, DEMO_CUTOFF, DEMO_END, demo_dir / "truth", seed=0))
    promotions = [_promote_if_better(config, t["model"]) for t in trained]
    segments = _build_segments(config, DEMO_CUTOFF, seed=0)
    scored = score(config, DEMO_CUTOFF)
    result = {
        "ingest": {"batches": reports, "totals": _totals(reports)},
        "summary": _summary(config),
        "profiles": profiles,
        "features": features,
        "trained": trained,
        "promotions": promotions,
        "segments": segments,
        "scored": scored,
    }
    emit(result, as_json, _render_run)


def _promote_if_better(config: Settings, model: str) -> dict[str, Any]:
    """Promote through the gate; a candidate that does not win leaves the champion in place (not an error)."""
    from crm_analytics.models.registry import PromotionRefusedError, promote
    from crm_analytics.tracking import configure

    try:
        return promote(configure(config), model).as_dict()
    except PromotionRefusedError as exc:
        return {"model": model, "promoted": False, "reason": str(exc)}


@app.command("config")
def show_config(as_json: JsonOption = False) -> None:
    """The settings in effect (defaults, .env and CRM_* variables)."""
    values = settings().model_dump(mode="json")
    emit(
        values,
        as_json,
        lambda v: render_rows(
            "settings", [{"setting": f"CRM_{k.upper()}", "value": x} for k, x in v.items()]
        ),
    )


# --- rendering for people -------------------------------------------------------------------------


def _render_files(result: dict[str, Any]) -> None:
    for path in result["files"]:
        out.print(path)


def _render_ingest(result: dict[str, Any]) -> None:
    rows = [
        {
            "file": Path(r["source_file"]).name,
            "table": r.get("table", "?"),
            "status": r["status"],
            "read": r.get("rows_read", 0),
            "new": r.get("rows_new", 0),
            "duplicate": r.get("rows_duplicate", 0),
            "quarantined": r.get("rows_rejected", 0),
        }
        for r in result["batches"]
    ]
    render_rows("ingest", rows)
    for r in result["batches"]:
        if r.get("message"):
            err.print(f"[yellow]{r['message']}[/yellow]")


def _render_run(result: dict[str, Any]) -> None:
    _render_ingest(result["ingest"])
    _render_summary(result["summary"])
    render_build(result["profiles"])
    f = result["features"]
    out.print(f"features as of {f['as_of']}: {f['rows']:,} customers x {f['columns']} columns")
    from crm_analytics.models.registry import GATE_METRICS

    for t in result["trained"]:
        metric = GATE_METRICS[t["model"]][0]
        out.print(f"{t['model']} v{t['version']}: {metric} {t['metrics'][metric]:.3f}")
    for p in result["promotions"]:
        outcome = f"champion v{p['version']}" if "version" in p else "champion kept"
        out.print(f"{p['model']}: {outcome} ({p['reason']})")
    _render_segments_build(result["segments"])
    s = result["scored"]
    out.print(f"serving store: {s['customers']:,} customers scored as of {s['as_of']}")


def _render_clv_evaluation(result: dict[str, Any]) -> None:
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
        err.print(f"[yellow]{name} left out: {reason}[/yellow]")
    out.print(f"selected: {result['selected']} (lowest {result['selection_metric']})")
    render_rows("conditional expectations: mean holdout purchases", result["conditional_expectations"])
    value = [{"model": name, **m} for name, m in result["value"].items()]
    render_rows(f"holdout spend (actual {result['holdout_spend_actual']:,.2f})", value)
    i = result["intervals"]
    out.print(
        f"{i['level']:.0%} intervals of {result['selected']}: holdout spend inside for "
        f"{i['spend_coverage']:.1%}, purchases {i['purchases_coverage']:.1%}; "
        f"P(any purchase) {i['p_any_purchase_predicted']:.3f} predicted, "
        f"{i['any_purchase_actual']:.3f} actual"
    )


def _render_offers_evaluation(result: dict[str, Any]) -> None:
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


def _render_churn_evaluation(result: dict[str, Any]) -> None:
    out.print(
        f"{result['dataset']}: {result['customers']:,} customers, churn rate {result['churn_rate']:.1%}, "
        f"validated on {result['validation']}"
    )
    render_rows("churn", [{"method": name, **m} for name, m in result["metrics"].items()])
    out.print(f"ours - best baseline ({result['best_baseline']}): {result['margin_roc_auc']:+.3f} ROC AUC")


def _render_segments_build(result: dict[str, Any]) -> None:
    out.print(f"segments as of {result['as_of']}, scored with {result['scored_with']}")
    for family, built in result["families"].items():
        extra = ", ".join(f"{k} {v:.3f}" for k, v in built.items() if k.startswith("stability"))
        out.print(f"{family}: {built['model']} v{built['version']} {extra}")
        render_rows(family, [{"segment": k, "customers": v} for k, v in built["segments"].items()])


def _render_summary(summary: dict[str, Any]) -> None:
    render_rows(
        f"warehouse ({summary['warehouse']})", [{"table": t, "rows": n} for t, n in summary["tables"].items()]
    )
    tx = summary["transactions"]
    out.print(f"{tx['customers']:,} customers from {tx['sources']} source(s), {tx['first']} .. {tx['last']}")
    if tx["by_type"]:
        render_rows("transactions by type", tx["by_type"])
    if summary["quarantine"]:
        render_rows("quarantine", summary["quarantine"])
