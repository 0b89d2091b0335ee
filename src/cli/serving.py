"""``crm score``, ``crm serve``, ``crm keys create|list|revoke|demo`` and ``crm feedback collect``: the
scoring service from the shell."""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from crm_analytics.cli.common import (
    JsonOption,
    day_option,
    emit,
    err,
    handle_errors,
    out,
    progress_bar,
    render_rows,
    settings,
)
from crm_analytics.errors import InvalidInputError

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # as serving/metering.py reads it (not imported: it loads the app)

if TYPE_CHECKING:
    from crm_analytics.serving.keys import KeyStore

keys_app = typer.Typer(help="API keys for the scoring service: create, list, revoke.", no_args_is_help=True)
feedback_app = typer.Typer(help="Offer feedback from the API into the warehouse.", no_args_is_help=True)
LOOPBACK = "127.0.0.1"


@handle_errors
def score_command(
    as_of: Annotated[date | None, day_option("Feature build to score (default: the latest).")] = None,
    chunk_customers: Annotated[
        int, typer.Option(min=1, help="Customers read, scored and written at a time (bounds memory).")
    ] = 50_000,
    engine: Annotated[
        str, typer.Option(help="local, or spark: the families' scores computed on Spark (CRM_SPARK_MASTER).")
    ] = "local",
    as_json: JsonOption = False,
) -> None:
    """Score every customer with the champions into the serving store, switching atomically."""
    from crm_analytics.jobs import score

    with progress_bar() as progress:
        report = score.score(
            settings(), as_of, chunk_customers=chunk_customers, engine=engine, progress=progress
        )
    emit(report, as_json, lambda r: render_rows("scored", [r.as_dict()]))


@handle_errors
def serve_command(
    workers: Annotated[int, typer.Option(min=1, max=16, help="Worker processes.")] = 1,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1.")] = 8000,
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = LOOPBACK,
) -> None:
    """Run the API under uvicorn; SIGTERM lets in-flight requests finish (up to 30 s). Every worker
    appends to one access log (CRM_SERVING_ACCESS_LOG) and /metrics sums every worker's counts."""
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    from crm_analytics.jobs.common import open_store

    config_values = settings()
    open_store(config_values)  # a bad setting or store stops here, with its name, not in every worker
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # workers inherit it: see serving/asgi.py
    # prometheus_client picks its multiprocess mode when first imported: the variable is set before
    # any worker starts, to a folder of this run's own (samples of an earlier run would add up)
    metrics_dir = Path(tempfile.mkdtemp(prefix="metrics-", dir=_data_dir(config_values.data_dir)))
    os.environ[MULTIPROC_ENV] = str(metrics_dir)
    log_config = copy.deepcopy(LOGGING_CONFIG)  # uvicorn's, plus our request and error lines
    log_config["loggers"]["crm_analytics"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    config = uvicorn.Config(
        "crm_analytics.serving.asgi:app",
        host=host,
        port=port,
        workers=workers,
        timeout_graceful_shutdown=30,
        log_level="info",
        log_config=log_config,
        access_log=False,  # our own request log has route templates, not raw paths with ids
        ws="none",  # no WebSocket routes: an Upgrade request is plain HTTP
    )
    try:
        if workers == 1:
            uvicorn.Server(config).run()
        else:
            _run_workers(config)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _data_dir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _run_workers(config: Any) -> None:
    """Several worker processes; the parent accepts and hands each connection to the least busy
    (``serving.balancer``: uvicorn's workers racing on one socket left one of two idle)."""
    from crm_analytics.serving.balancer import Balancer

    Balancer(config).run()


@keys_app.command("create")
@handle_errors
def keys_create(
    name: Annotated[str, typer.Argument(help="Who the key is for, e.g. 'pms-london'.")],
    role: Annotated[list[str], typer.Option(help="marketing, booking, analyst or admin (repeatable).")],
    hotel: Annotated[
        list[str] | None, typer.Option(help="The only hotel it may book for (repeatable; default: all).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a key; its secret is shown once, only its hash is stored."""
    key, secret = _key_store().create(name, role, _known_hotels(hotel) if hotel else None)
    result = {
        "key_id": key.key_id,
        "name": key.name,
        "roles": list(key.roles),
        "hotels": sorted(key.hotels) if key.hotels is not None else None,
        "secret": secret,
    }
    emit(result, as_json, _render_secret)


@keys_app.command("bind")
@handle_errors
def keys_bind(
    key_id: Annotated[str, typer.Argument(help="The key's id (k_...).")],
    hotel: Annotated[list[str], typer.Option(help="A hotel it may book for (repeatable).")],
    as_json: JsonOption = False,
) -> None:
    """Bind a key to these hotels (replacing any earlier binding): it answers for bookings there only,
    within the service's key cache time. A key never bound books for every hotel."""
    key = _key_store().bind(key_id, _known_hotels(hotel))
    result = {"key_id": key.key_id, "hotels": sorted(key.hotels or ())}
    emit(result, as_json, lambda r: out.print(f"{r['key_id']} books for {', '.join(r['hotels'])}"))


@keys_app.command("list")
@handle_errors
def keys_list(as_json: JsonOption = False) -> None:
    """Every key: id, name, roles, created, revoked (never the secret)."""
    rows = [
        {
            "key_id": k.key_id,
            "name": k.name,
            "roles": ",".join(k.roles),
            "hotels": ",".join(sorted(k.hotels)) if k.hotels is not None else "all",
            "created_at": str(k.created_at),
            "revoked_at": str(k.revoked_at or ""),
        }
        for k in _key_store().list()
    ]
    emit(
        {"keys": rows},
        as_json,
        lambda r: render_rows("API keys", r["keys"]) if r["keys"] else out.print("no keys"),
    )


@keys_app.command("demo")
@handle_errors
def keys_demo(as_json: JsonOption = False) -> None:
    """One demo key per role (named demo-<role>), created once and kept in <data_dir>/demo-keys.json
    (mode 0600): printed again each time; a revoked one is replaced. Never revokes a key."""
    from crm_analytics.serving.demo_keys import demo_keys

    emit(demo_keys(_key_store(), settings().data_dir).as_dict(), as_json, _render_demo_keys)


@keys_app.command("revoke")
@handle_errors
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (k_...).")], as_json: JsonOption = False
) -> None:
    """Revoke a key (effective within the service's key cache time)."""
    _key_store().revoke(key_id)
    emit({"revoked": key_id}, as_json, lambda r: out.print(f"revoked {r['revoked']}"))


@feedback_app.command("collect")
@handle_errors
def feedback_collect(as_json: JsonOption = False) -> None:
    """Settled offer feedback (answered, or unanswered for CRM_FEEDBACK_ANSWER_DAYS) into the offer log,
    through the ingest checks; run it again any time, nothing is added twice. Then retrain with
    `crm train offers --as-of <split> --until <end>`."""
    from crm_analytics.jobs import feedback

    with err.status("collecting offer feedback"):
        report = feedback.collect(settings()).as_dict()
    ingest = report.pop("ingest")
    summary = report | {k: ingest.get(k, 0) for k in ("rows_new", "rows_duplicate", "rows_rejected")}
    emit(summary, as_json, lambda r: render_rows("offer feedback", [r]))


def _key_store() -> KeyStore:
    from crm_analytics.jobs.common import open_store
    from crm_analytics.serving.keys import KeyStore

    return KeyStore(open_store(settings()).engine)


def _known_hotels(hotels: list[str]) -> list[str]:
    """The hotel ids, each in the served hotels catalogue (when one is served), else an error naming it."""
    from crm_analytics.jobs.common import open_store
    from crm_analytics.serving import booking_rules

    rules = booking_rules.load(open_store(settings()), settings().serving_checkin_window_days)
    if unknown := rules.unknown_hotels(hotels):
        raise InvalidInputError(f"--hotel: {unknown[0]!r} is not a hotel of the served hotels catalogue")
    return hotels


def _render_secret(result: dict[str, Any]) -> None:
    out.print(f"key {result['key_id']} ({result['name']}: {', '.join(result['roles'])})")
    out.print(f"secret (shown once): {result['secret']}")


def _render_demo_keys(result: dict[str, Any]) -> None:
    out.print(
        f"demo API keys (kept in {result['file']}; send as 'Authorization: Bearer <secret>'):",
        markup=False,
        soft_wrap=True,
    )
    for role, key in result["keys"].items():
        new = "  (new)" if key["created"] else ""
        out.print(f"  {role:<10} {key['secret']}{new}", soft_wrap=True, markup=False, highlight=False)
