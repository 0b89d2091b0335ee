"""``crm score``, ``crm serve``, ``crm keys create|list|revoke`` and ``crm feedback collect``: the scoring
service from the shell."""

from __future__ import annotations

import os
import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from crm_analytics.cli_base import JsonOption, emit, err, out, progress_bar, render_rows, settings
from crm_analytics.settings import Settings

keys_app = typer.Typer(help="API keys for the scoring service: create, list, revoke.", no_args_is_help=True)
feedback_app = typer.Typer(help="Offer feedback from the API into the warehouse.", no_args_is_help=True)
LOOPBACK = "127.0.0.1"


def score_command(
    as_of: Annotated[str | None, typer.Option(help="Feature build to score (default: the latest).")] = None,
    chunk_customers: Annotated[
        int, typer.Option(min=1, help="Customers read, scored and written at a time (bounds memory).")
    ] = 50_000,
    engine: Annotated[
        str, typer.Option(help="local, or spark: CLV and churn scored on Spark (CRM_SPARK_MASTER).")
    ] = "local",
    as_json: JsonOption = False,
) -> None:
    """Score every customer with the champions into the serving store, switching atomically."""
    if engine not in ("local", "spark"):
        err.print(f"[red]--engine: expected local or spark, got {engine!r}[/red]")
        raise typer.Exit(2)
    emit(
        score(settings(), date.fromisoformat(as_of) if as_of else None, chunk_customers, engine),
        as_json,
        lambda r: render_rows("scored", [r]),
    )


def _spark_folder(config: Settings) -> Path:
    """Where a Spark run's exports go (deleted after the run): executors of a cluster must see it."""
    folder = config.data_dir / "spark"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def score(
    config: Settings, as_of: date | None, chunk_customers: int = 50_000, engine: str = "local"
) -> dict[str, Any]:
    from crm_analytics.ingest.warehouse import Warehouse
    from crm_analytics.serving.scoring import latest_cutoff, score_all
    from crm_analytics.serving.store import ServingStore

    with Warehouse(config.warehouse_url) as warehouse, progress_bar() as bar:
        task = bar.add_task("scoring customers", total=None)
        try:
            with tempfile.TemporaryDirectory(dir=_spark_folder(config) if engine == "spark" else None) as run:
                spark_scores = None
                if engine == "spark":
                    from crm_analytics.serving.spark_scoring import score_on_spark

                    bar.update(task, description="scoring on Spark")
                    as_of = as_of or latest_cutoff(warehouse)
                    spark_scores = score_on_spark(config, warehouse, as_of, Path(run))
                    bar.update(task, description="writing the snapshot")
                report = score_all(
                    config,
                    warehouse,
                    ServingStore(config.serving_store_url),
                    as_of,
                    chunk_customers=chunk_customers,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                    spark_scores=spark_scores,
                )
            return report.as_dict()
        except LookupError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None


def serve_command(
    workers: Annotated[int, typer.Option(min=1, max=16, help="Worker processes.")] = 1,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1.")] = 8000,
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = LOOPBACK,
) -> None:
    """Run the API under uvicorn; SIGTERM lets in-flight requests finish (up to 30 s)."""
    import uvicorn

    settings()  # a bad setting stops here, with its name, not in every worker
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # workers inherit it: see serving/asgi.py
    config = uvicorn.Config(
        "crm_analytics.serving.asgi:app",
        host=host,
        port=port,
        workers=workers,
        timeout_graceful_shutdown=30,
        log_level="info",
        access_log=False,  # our own request log has route templates, not raw paths with ids
    )
    if workers == 1:
        uvicorn.Server(config).run()
        return
    _run_workers(config)


def _run_workers(config: Any) -> None:
    """Several worker processes on one socket. uvicorn binds the shared socket with protocol 0
    (uvicorn issue #3149), so asyncio leaves Nagle's algorithm on and every keep-alive response waits
    about 40 ms for the client's delayed ACK; re-wrapping the socket as TCP fixes that."""
    import socket

    from uvicorn.supervisors import Multiprocess

    bound = config.bind_socket()
    tcp = socket.socket(bound.family, socket.SOCK_STREAM, socket.IPPROTO_TCP, fileno=bound.detach())
    Multiprocess(config, sockets=[tcp]).run()


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who the key is for, e.g. 'pms-london'.")],
    role: Annotated[list[str], typer.Option(help="marketing, booking, analyst or admin (repeatable).")],
    as_json: JsonOption = False,
) -> None:
    """Create a key; its secret is shown once, only its hash is stored."""
    store = _key_store()
    try:
        key, secret = store.create(name, role)
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    emit(
        {"key_id": key.key_id, "name": key.name, "roles": list(key.roles), "secret": secret},
        as_json,
        _render_secret,
    )


@keys_app.command("list")
def keys_list(as_json: JsonOption = False) -> None:
    """Every key: id, name, roles, created, revoked (never the secret)."""
    rows = [
        {
            "key_id": k.key_id,
            "name": k.name,
            "roles": ",".join(k.roles),
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
def keys_demo(as_json: JsonOption = False) -> None:
    """One fresh key per role for trying the service (named demo-<role>; earlier demo keys are revoked)."""
    from crm_analytics.serving.keys import ROLES

    store = _key_store()
    for key in store.list():
        if key.name.startswith("demo-") and key.revoked_at is None:
            store.revoke(key.key_id)
    created = {role: store.create(f"demo-{role}", [role])[1] for role in ROLES}
    emit(created, as_json, _render_demo_keys)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (k_...).")], as_json: JsonOption = False
) -> None:
    """Revoke a key (effective within the service's key cache time)."""
    try:
        _key_store().revoke(key_id)
    except LookupError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    emit({"revoked": key_id}, as_json, lambda r: out.print(f"revoked {r['revoked']}"))


def _key_store() -> Any:
    from crm_analytics.serving.keys import KeyStore
    from crm_analytics.serving.store import ServingStore

    return KeyStore(ServingStore(settings().serving_store_url).engine)


def _render_secret(result: dict[str, Any]) -> None:
    out.print(f"key {result['key_id']} ({result['name']}: {', '.join(result['roles'])})")
    out.print(f"secret (shown once): {result['secret']}")


def _render_demo_keys(created: dict[str, str]) -> None:
    out.print("demo API keys (shown once; send as 'Authorization: Bearer <secret>'):")
    for role, secret in created.items():
        out.print(f"  {role:<10} {secret}", soft_wrap=True)


@feedback_app.command("collect")
def feedback_collect(as_json: JsonOption = False) -> None:
    """Settled offer feedback (answered, or unanswered for CRM_FEEDBACK_ANSWER_DAYS) into the offer log,
    through the ingest checks; run it again any time, nothing is added twice. Then retrain with
    `crm train offers --as-of <split> --until <end>`."""
    from crm_analytics.ingest.warehouse import Warehouse
    from crm_analytics.serving.feedback_log import collect_feedback
    from crm_analytics.serving.store import ServingStore

    config = settings()
    with Warehouse(config.warehouse_url) as warehouse, err.status("collecting offer feedback"):
        report = collect_feedback(ServingStore(config.serving_store_url), warehouse, config).as_dict()
    ingest = report.pop("ingest")
    summary = report | {k: ingest.get(k, 0) for k in ("rows_new", "rows_duplicate", "rows_rejected")}
    emit(summary, as_json, lambda r: render_rows("offer feedback", [r]))
