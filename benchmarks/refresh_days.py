"""One day of the service: `crm refresh` (incremental) beside a full rebuild of the same day.

Set-up, not measured: `crm run` on a demo chain's history up to 2025-12-01 (models trained, the first
refresh), then one day's increment (2025-12-02) delivered into the incoming folder. The folder is copied,
and each contender runs on its own copy, as a `crm` command in a process of its own (peak RSS by GNU
time):

- ``incremental``: ``crm refresh``: ingest only the new files, re-link only the customers whose records
  changed (stable ids), features for everyone (BTYD summaries move for everyone), everyone assigned to
  the champion segment definitions, scores, feedback;
- ``full`` (the anchor: the nightly chain the README used to give): ``crm ingest`` of every file
  delivered so far (the history and the day, re-read), ``crm profiles build`` (every record linked
  again, the linkage model trained again), ``crm features build``, ``crm segments build`` (the
  definitions fitted again), ``crm score`` and ``crm feedback collect``.

Both end with the same day served; the script checks that the two snapshots serve the same customers.

``--without-profiles`` (the 1M run, until [scale] brings profiles at 1M): the chain delivers transactions
only (its customer-record files are dropped), so neither contender links records; the champions come
from a ``crm run --customers 3000`` beside it (its own warehouse, the same MLflow registry), the history
is ingested and served by a first ``crm refresh``.

    .venv/bin/python benchmarks/refresh_days.py          # 20,000 guests, 3 rounds -> refresh_days.json
    .venv/bin/python benchmarks/refresh_days.py --customers 1000000 --without-profiles --runs 1 \
        --out benchmarks/refresh_days_1m.json
    .venv/bin/python benchmarks/refresh_days.py --customers 2000 --runs 1 --out /tmp/r.json  # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from crm_analytics.settings import folder_settings

BIN = Path(sys.executable).parent
HISTORY_END = date(2025, 12, 1)
DAY = date(2025, 12, 2)


def env_for(folder: Path) -> dict[str, str]:
    """This process's environment without CRM_*/MLFLOW_*, pointed at ``folder``'s stores."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "MLFLOW_"))}
    return base | {"PATH": f"{BIN}{os.pathsep}{base.get('PATH', '')}"} | folder_settings(folder)


def crm(folder: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``crm args`` in ``folder`` under GNU time: wall seconds and peak RSS (GiB). ``env``: settings
    that differ from ``env_for(folder)``'s."""
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "peak_kib=%M", str(BIN / "crm"), *args],
        cwd=folder,
        env=env_for(folder) | (env or {}),
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"crm {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    peak = next(line for line in done.stderr.splitlines() if line.startswith("peak_kib="))
    out = {"command": "crm " + " ".join(args), "seconds": seconds, "peak_gib": int(peak[9:]) / 2**20}
    if args[0] == "refresh":  # the refresh's own report: each stage's seconds (the rest is the process)
        stages = json.loads(done.stdout)["stages"]
        out["stages"] = {name: report.get("seconds") for name, report in stages.items()}
        out["carried"] = stages.get("scores", {}).get("carried")
    return out


def set_up(folder: Path, customers: int, seed: int) -> None:
    """The history served (models trained) and one day delivered; skipped when already there."""
    if (folder / "ready").exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    script = (
        "from datetime import date\n"
        "from crm_analytics.jobs import data, run\n"
        "from crm_analytics.settings import load_settings\n"
        "s = load_settings()\n"
        f"run.run(s, {customers}, {seed}, until=date.fromisoformat('{HISTORY_END}'))\n"
        f"day = date.fromisoformat('{DAY}')\n"
        f"data.demo_increment(s.incoming, day, day, {customers}, {seed})\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=folder, env=env_for(folder), check=True)
    (folder / "ready").write_text("set up\n")


def set_up_without_profiles(folder: Path, customers: int, seed: int) -> None:
    """Champions from a small run, the big chain's history (transactions only) served, one day
    delivered; skipped when already there."""
    if (folder / "ready").exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    small = folder / "small"
    champions = {
        "CRM_DATA_DIR": str(small),
        "CRM_WAREHOUSE_URL": f"duckdb:///{small / 'warehouse.duckdb'}",
        "CRM_SERVING_STORE_URL": f"sqlite:///{small / 'serving.db'}",
    }
    print("set-up: champions from crm run --customers 3000", flush=True)
    crm(folder, "run", "--customers", "3000", "--seed", str(seed), "--json", env=champions)
    print(f"set-up: {customers:,} guests' history, transactions only", flush=True)
    history = ("--customers", str(customers), "--seed", str(seed))
    crm(folder, "data", "demo", *history, "--until", str(HISTORY_END), "--out", "data/demo")
    drop_customer_records(folder / "data" / "demo")
    crm(folder, "ingest", "data/demo", "--json")
    crm(folder, "refresh", "--json")
    crm(folder, "data", "demo", *history, "--incoming", "--from", str(DAY), "--until", str(DAY))
    drop_customer_records(folder / "data" / "incoming")
    (folder / "ready").write_text("set up\n")


def drop_customer_records(folder: Path) -> None:
    """The CRM, booking and billing systems' customer files removed: a transactions-only chain."""
    for path in folder.rglob("customers_*"):
        path.unlink()


def copy_of(folder: Path, name: str) -> Path:
    """A copy of the set-up folder (the registry's artifact paths still point into the original)."""
    target = folder.parent / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(folder, target)
    os.sync()  # the copy's writes reach the disk now, not during the contender's first checkpoint
    return target


def served_customers(folder: Path) -> tuple[str, int]:
    """The active snapshot's day and number of customers."""
    with sqlite3.connect(folder / "data" / "serving.db") as conn:
        as_of, customers = conn.execute(
            "SELECT as_of, customers FROM serving_snapshots WHERE active"
        ).fetchone()
    return str(as_of), int(customers)


def one_run(base: Path, profiles: bool = True) -> dict[str, Any]:
    """Both contenders on fresh copies of the set-up: their steps, and the ratio of their times."""
    load_before = os.getloadavg()
    incremental_folder = copy_of(base, "incremental")
    incremental = [crm(incremental_folder, "refresh", "--json")]
    full_folder = copy_of(base, "full")
    full = [
        crm(full_folder, "ingest", "data/demo", f"data/incoming/{DAY}", "--json"),  # all of it again
        *([crm(full_folder, "profiles", "build", "--json")] if profiles else []),
        crm(full_folder, "features", "build", "--as-of", str(DAY), "--json"),
        crm(full_folder, "segments", "build", "--as-of", str(DAY), "--json"),
        crm(full_folder, "score", "--as-of", str(DAY), "--json"),
        crm(full_folder, "feedback", "collect", "--json"),
    ]
    served = {"incremental": served_customers(incremental_folder), "full": served_customers(full_folder)}
    if served["incremental"] != served["full"] or served["full"][0] != str(DAY):
        raise SystemExit(f"the two ways serve different days or customers: {served}")
    incremental_s = sum(step["seconds"] for step in incremental)
    full_s = sum(step["seconds"] for step in full)
    return {
        "load_average_before": load_before,
        "served": served,
        "incremental": {"steps": incremental, "seconds": incremental_s},
        "full": {"steps": full, "seconds": full_s},
        "speedup": full_s / incremental_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the set-up here (and reuse it)")
    parser.add_argument("--runs", type=int, default=3, help="rounds, each on fresh copies (default 3)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".json"))
    parser.add_argument(
        "--without-profiles", action="store_true", help="a transactions-only chain (the 1M run)"
    )
    args = parser.parse_args()
    root = args.workdir or Path(tempfile.mkdtemp(prefix="refresh-bench-"))
    profiles = not args.without_profiles
    base = root / f"setup-{args.customers}{'' if profiles else '-without-profiles'}"
    started = time.perf_counter()
    (set_up if profiles else set_up_without_profiles)(base, args.customers, args.seed)
    setup_seconds = time.perf_counter() - started
    load_before = os.getloadavg()
    runs = [one_run(base, profiles) for _ in range(args.runs)]
    speedups = [run["speedup"] for run in runs]
    result = {
        "benchmark": "refresh_days",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "customers": args.customers,
        "profiles": profiles,
        "history_end": str(HISTORY_END),
        "day": str(DAY),
        "setup_seconds": setup_seconds,
        "runs": runs,
        "speedups": speedups,
        "speedup_min": min(speedups),
        "speedup_median": statistics.median(speedups),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for run in runs:
        print(
            f"incremental {run['incremental']['seconds']:.1f} s, full {run['full']['seconds']:.1f} s: "
            f"{run['speedup']:.2f}x (load {run['load_average_before'][0]:.2f})"
        )


if __name__ == "__main__":
    main()
