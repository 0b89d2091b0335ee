"""The scoring service against ``mlflow models serve``: requests/s and latency, side by side in one run.

Anchors (issue #7):

- ours: ``crm serve --workers 2``, single-customer ``POST /v1/scores`` (``{"customer_ids": [id]}``,
  read from the serving store), ``POST /v1/offers`` (a known guest and a booking: eligibility,
  ranking by the offer model, the guest brief) and the same with the guest found by name (``guest``:
  first and last name as a desk types them, title case, plus the postcode or city on record; an answer
  counts only when the guest was recognised by name);
- mlflow: ``mlflow models serve -m models:/crm-churn@champion --env-manager local --workers 2``, the
  churn model alone, single-row ``POST /invocations`` (``dataframe_split``, the first row of the model's
  registered serving input example).

Targets: ``/v1/scores`` >= 10x mlflow's requests/s; ``/v1/offers`` p99 <= 10 ms; by name p99 <= 30 ms.
``--runs 3`` repeats the whole measurement (each server started afresh) and keeps every run.

Each target in turn, alone on the machine with its server (2 workers, 127.0.0.1): wrk (Debian's
package; ``make bench-tools``) sends requests back to back on ``--connections`` keep-alive connections
from one thread, a warm-up and then a fixed measured duration (``http_load.py`` says why wrk). Latency
is wrk's time per request; an answer other than 200 is an error. The client shares the cores with the
servers, so its CPU seconds are reported too, and each run records how long a fixed Python loop took
at its start (``cpu_probe_seconds``): this virtual machine's speed moved ~1.5x within an hour on
2026-12-07, and every figure here moves with it. The rate limit
and the distinct-guest quota are lifted for the run (``CRM_SERVING_RATE_*``,
``CRM_SERVING_GUESTS_PER_KEY_HOUR``): one key sends every request.

Both servers run uvicorn with ``--workers 2``. uvicorn (0.54) binds that shared socket with ``proto``
0, so asyncio leaves Nagle's algorithm on for accepted connections and a keep-alive response can wait
~40 ms for the client's delayed ACK (Kludex/uvicorn#3149). ``mlflow models serve`` is measured as
shipped; whether ``crm serve`` works around it shows in its p50.

Data: a folder of its own (a temporary one unless ``--workdir``): ``crm run --customers N``,
``crm score``, ``crm keys create bench --role booking --role analyst``; a ``--workdir`` that already has a
scored store and ``bench-key.txt`` is reused.

    .venv/bin/python benchmarks/serving_throughput.py       # writes benchmarks/serving_throughput.json
    .venv/bin/python benchmarks/serving_throughput.py --seconds 3 --warmup 1 --out /tmp/s.json  # a look
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx2 as httpx
import sqlalchemy as sa
from http_load import FOUND_BY_NAME, HOST, Result, drive, free_port, server, wrk_path  # beside this file

from crm_analytics.serving.booking_rules import example_booking
from crm_analytics.settings import folder_settings

BIN = Path(sys.executable).parent  # crm, mlflow and uvicorn live beside the interpreter
BOOKING = example_booking()  # the documented example booking (checks in 30 days from today)
NO_RATE_LIMIT = {
    "CRM_SERVING_RATE_PER_MINUTE": "100000000",
    "CRM_SERVING_RATE_BURST": "1000000",
    "CRM_SERVING_GUESTS_PER_KEY_HOUR": "100000000",
}
TARGETS = {"scores_rps_ratio_to_mlflow": 10.0, "offers_p99_ms": 10.0, "offers_by_name_p99_ms": 30.0}


@dataclass(frozen=True)
class Folder:
    """A prepared folder: its CRM_* environment, an API key and customers to ask about."""

    env: dict[str, str]
    secret: str
    customers: list[str]
    guests: list[dict[str, str]]  # name details as a desk types them, one per sampled customer


# --- data ------------------------------------------------------------------------------------------


def process_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without CRM_*/MLFLOW_* variables, the venv first on PATH, plus ``extra``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "MLFLOW_"))}
    return base | {"PATH": f"{BIN}{os.pathsep}{base.get('PATH', '')}"} | extra


def crm(folder: Path, *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "crm"), *args],
        cwd=folder,
        env=process_env(folder_settings(folder)),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"crm {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def prepare(folder: Path, customers: int) -> Folder:
    """Demo chain, scoring and a key in ``folder``, unless it is already there."""
    key_file = folder / "bench-key.txt"
    if not key_file.exists():
        print(f"preparing {folder}: crm run --customers {customers}, crm score, a key", flush=True)
        crm(folder, "run", "--customers", str(customers))
        crm(folder, "score", "--json")
        created = json.loads(
            crm(folder, "keys", "create", "bench", "--role", "booking", "--role", "analyst", "--json")
        )
        key_file.write_text(created["secret"])
        key_file.chmod(0o600)
    env = folder_settings(folder)
    query = "SELECT customer_id FROM serving_customers WHERE scores IS NOT NULL AND history IS NOT NULL"
    engine = sa.create_engine(env["CRM_SERVING_STORE_URL"])
    with engine.connect() as conn:
        ids = sorted(conn.execute(sa.text(query)).scalars())
        records = conn.execute(sa.text(GUESTS_QUERY)).mappings().all()
    engine.dispose()
    guests = [
        {"first_name": r["first_name"].title(), "last_name": r["last_name"].title()}
        | ({"postcode": r["postcode"]} if r["postcode"] else {"city": r["city"].title()})
        for r in records
    ]
    return Folder(env, key_file.read_text().strip(), ids, guests)


GUESTS_QUERY = """
SELECT first_name, last_name, postcode, city FROM serving_lookup_records
WHERE snapshot_id = (SELECT snapshot_id FROM serving_snapshots WHERE active)
  AND first_name IS NOT NULL AND last_name IS NOT NULL AND (postcode IS NOT NULL OR city IS NOT NULL)
ORDER BY unique_id LIMIT 500
"""


def churn_example_row(env: dict[str, str]) -> bytes:
    """The first row of crm-churn@champion's serving input example, as an /invocations body."""
    import mlflow

    mlflow.set_tracking_uri(env["CRM_MLFLOW_TRACKING_URI"])
    path = mlflow.artifacts.download_artifacts("models:/crm-churn@champion/serving_input_example.json")
    example = json.loads(Path(path).read_text())["dataframe_split"]
    row = {"columns": example["columns"], "data": example["data"][:1]}
    return json.dumps({"dataframe_split": row}).encode()


# --- the run ---------------------------------------------------------------------------------------


def bench_ours(prepared: Folder, args: argparse.Namespace, logs: Path) -> dict[str, Result]:
    port = free_port()
    base = f"http://{HOST}:{port}"
    command = [str(BIN / "crm"), "serve", "--workers", str(args.workers), "--port", str(port), "--host", HOST]
    customers = prepared.customers[:500]
    targets: dict[str, tuple[str, list[bytes], str | None]] = {
        "scores": ("scores", [json.dumps({"customer_ids": [c]}).encode() for c in customers], None),
        "offers": (
            "offers",
            [json.dumps({"customer_id": c, "booking": BOOKING}).encode() for c in customers],
            None,
        ),
    }
    authorization = f"Bearer {prepared.secret}"
    results = {}
    with server(command, process_env(prepared.env | NO_RATE_LIMIT), f"{base}/readyz", logs / "crm-serve.log"):
        named = [json.dumps({"guest": g, "booking": BOOKING}).encode() for g in prepared.guests]
        found = recognised(f"{base}/v1/offers", named, authorization)
        targets["offers_by_name"] = ("offers", found, FOUND_BY_NAME)
        for name, (route, payloads, must_hold) in targets.items():
            results[name] = drive(
                f"{base}/v1/{route}",
                payloads,
                authorization,
                args.connections,
                args.warmup,
                args.seconds,
                must_hold,
            )
            print(f"{name}: {json.dumps(asdict(results[name]))}", flush=True)
    return results


def recognised(url: str, bodies: list[bytes], authorization: str, seconds: float = 120.0) -> list[bytes]:
    """The bodies whose guest the service finds by name, once its name index is built (in the
    background at start: until then nobody is found)."""
    headers = {"Authorization": authorization, "Content-Type": "application/json"}

    def found_by_name(body: bytes) -> bool:  # the test wrk applies to every measured answer
        answer = client.post(url, content=body, headers=headers)
        return answer.status_code == 200 and FOUND_BY_NAME in answer.text

    with httpx.Client(timeout=30, trust_env=False) as client:
        deadline = time.monotonic() + seconds
        while not any(found_by_name(body) for body in bodies[:20]):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no guest found by name after {seconds:.0f} s")
            time.sleep(0.5)
        found = [body for body in bodies if found_by_name(body)]
    print(f"found by name: {len(found)} of {len(bodies)} guests", flush=True)
    return found


def bench_mlflow(prepared: Folder, args: argparse.Namespace, logs: Path) -> Result:
    port = free_port()
    base = f"http://{HOST}:{port}"
    command = [
        str(BIN / "mlflow"), "models", "serve", "-m", "models:/crm-churn@champion", "--env-manager", "local",
        "--host", HOST, "--port", str(port), "--workers", str(args.workers),
    ]  # fmt: skip
    env = process_env({"MLFLOW_TRACKING_URI": prepared.env["CRM_MLFLOW_TRACKING_URI"]})
    body = churn_example_row(prepared.env)
    with server(command, env, f"{base}/ping", logs / "mlflow-serve.log"):
        result = drive(f"{base}/invocations", [body], None, args.connections, args.warmup, args.seconds)
    print(f"mlflow: {json.dumps(asdict(result))}", flush=True)
    return result


def cpu_probe() -> float:
    """Seconds this interpreter takes to add up 10 million integers in a loop (0.39-0.68 s here on
    2026-12-07): the machine's speed when a run starts."""
    started = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return round(time.perf_counter() - started, 2)


def versions() -> dict[str, str]:
    names = ("crm-analytics", "mlflow", "fastapi", "starlette", "uvicorn", "sqlalchemy", "pandas")
    wrk = subprocess.run([wrk_path(), "--version"], capture_output=True, text=True, check=False)
    return {name: version(name) for name in names} | {"wrk": (wrk.stdout or wrk.stderr).split(" [")[0]}


def one_run(load: tuple[float, ...], probe: float, ours: dict[str, Result], mlflow: Result) -> dict[str, Any]:
    ratio = (
        ours["scores"].requests_per_second / mlflow.requests_per_second
        if mlflow.requests_per_second
        else None
    )
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_at_start": [round(x, 2) for x in load],
        "cpu_probe_seconds": probe,
        "results": {
            "crm_scores": asdict(ours["scores"]),
            "crm_offers": asdict(ours["offers"]),
            "crm_offers_by_name": asdict(ours["offers_by_name"]),
            "mlflow_invocations": asdict(mlflow),
        },
        "scores_rps_over_mlflow_rps": round(ratio, 2) if ratio else None,
        "offers_p99_ms": ours["offers"].p99_ms,
        "offers_by_name_p99_ms": ours["offers_by_name"].p99_ms,
        "met": {
            "scores_ratio": ratio is not None and ratio >= TARGETS["scores_rps_ratio_to_mlflow"],
            "offers_p99": ours["offers"].p99_ms <= TARGETS["offers_p99_ms"],
            "offers_by_name_p99": ours["offers_by_name"].p99_ms <= TARGETS["offers_by_name_p99_ms"],
        },
    }


def report(args: argparse.Namespace, runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "note": args.note,
        "setup": {
            "customers": args.customers,
            "connections": args.connections,
            "server_workers": args.workers,
            "warmup_seconds": args.warmup,
            "measured_seconds_per_target": args.seconds,
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "versions": versions(),
        "targets": TARGETS,
        "met_in_every_run": {k: all(run["met"][k] for run in runs) for k in runs[0]["met"]},
        "runs": runs,
    }


def print_run(run: dict[str, Any]) -> None:
    print(f"\n{'target':<22}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}{'client cpu s':>14}")
    for name, r in run["results"].items():
        print(
            f"{name:<22}{r['requests_per_second']:>10.1f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}"
            f"{r['errors']:>8}{r['client_cpu_seconds']:>14.2f}"
        )
    verdict = {True: "met", False: "NOT met"}
    print(
        f"/v1/scores vs mlflow: {run['scores_rps_over_mlflow_rps']}x "
        f"(>= {TARGETS['scores_rps_ratio_to_mlflow']:.0f}x: {verdict[run['met']['scores_ratio']]}); "
        f"/v1/offers p99 {run['offers_p99_ms']} ms "
        f"(<= {TARGETS['offers_p99_ms']:.0f} ms: {verdict[run['met']['offers_p99']]}); "
        f"by name p99 {run['offers_by_name_p99_ms']} ms "
        f"(<= {TARGETS['offers_by_name_p99_ms']:.0f} ms: {verdict[run['met']['offers_by_name_p99']]}); "
        f"load at start {run['load_at_start']}; cpu probe {run['cpu_probe_seconds']} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per target")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each target")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="server worker processes, both servers")
    parser.add_argument(
        "--workdir", type=Path, help="prepared folder to create or reuse (default: temporary)"
    )
    parser.add_argument("--runs", type=int, default=1, help="whole measurements, one after another")
    parser.add_argument("--note", default="", help="stored with the results, e.g. 'smoke run'")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".json"))
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs: at least 1")
    wrk_path()  # before any preparation: says how to install it when it is missing
    runs = []
    with contextlib.ExitStack() as stack:
        if args.workdir is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="crm-bench-")))
        else:
            folder = args.workdir.resolve()
            folder.mkdir(parents=True, exist_ok=True)
        prepared = prepare(folder, args.customers)
        for _ in range(args.runs):
            load, probe = os.getloadavg(), cpu_probe()
            ours = bench_ours(prepared, args, folder)
            mlflow = bench_mlflow(prepared, args, folder)
            runs.append(one_run(load, probe, ours, mlflow))
            print_run(runs[-1])
    args.out.write_text(json.dumps(report(args, runs), indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
