"""Batch scoring at scale: 1M customers and ~10M transactions, end to end, wall time and peak memory.

The monthly batch after new data is ingested, each step a `crm` command in a process of its own (its peak
RSS measured by GNU time):

- ``features``: ``crm features build --as-of 2025-12-31`` (every customer's purchase-history features);
- ``segments``: ``crm segments build`` (fit and store the segment families on those features);
- ``score``: ``crm score`` into a fresh SQLite serving store, in id ranges of 50,000 customers (the
  default), one snapshot switched atomically;
- ``score_chunks_200k``: the same with ``--chunk-customers 200000``: peak memory follows the chunk, not
  the number of customers.

Set-up, not measured: champions trained by ``crm run --customers 3000`` in the work folder (its MLflow
registry serves the big warehouse too), then the demo chain of ``--customers`` guests generated and
ingested into a warehouse of its own. The issue names no anchor for this benchmark; the two chunk sizes
are the comparison. ``--workdir`` keeps the folder (and reuses a finished set-up).

    .venv/bin/python benchmarks/batch_scoring.py                 # writes benchmarks/batch_scoring.json
    .venv/bin/python benchmarks/batch_scoring.py --customers 20000 --out /tmp/b.json   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crm_analytics.settings import folder_settings

BIN = Path(sys.executable).parent
AS_OF = "2025-12-31"  # the demo chain's last day


def env_for(folder: Path, warehouse: str, store: str) -> dict[str, str]:
    """This process's environment without CRM_*/MLFLOW_*, pointed at ``folder``'s MLflow and the given
    warehouse and serving store."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "MLFLOW_"))}
    return (
        base
        | {"PATH": f"{BIN}{os.pathsep}{base.get('PATH', '')}"}
        | folder_settings(folder)
        | {
            "CRM_WAREHOUSE_URL": f"duckdb:///{folder / warehouse}",
            "CRM_SERVING_STORE_URL": f"sqlite:///{folder / store}",
        }
    )


def crm(folder: Path, env: dict[str, str], *args: str) -> dict[str, Any]:
    """Run ``crm args`` under GNU time; its wall seconds, peak RSS (GiB) and JSON output."""
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "peak_kib=%M", str(BIN / "crm"), *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"crm {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    peak_kib = int(done.stderr.rsplit("peak_kib=", 1)[1].split()[0])
    output = json.loads(done.stdout) if "--json" in args else None
    return {"seconds": round(seconds, 1), "peak_rss_gib": round(peak_kib / 2**20, 2), "output": output}


def set_up(folder: Path, customers: int) -> dict[str, Any]:
    """Champions from a small run, and the big chain generated and ingested (skipped when done)."""
    done = folder / "setup.json"
    if done.exists():
        return dict(json.loads(done.read_text()))
    small = env_for(folder, "small.duckdb", "small-serving.db")
    print("set-up: crm run --customers 3000 (champions)", flush=True)
    crm(folder, small, "run", "--customers", "3000", "--json")
    big = env_for(folder, "big.duckdb", "unused.db")
    print(f"set-up: {customers:,} guests generated and ingested", flush=True)
    generated = crm(folder, big, "data", "demo", "--customers", str(customers), "--seed", "7", "--out", "raw")
    generated.pop("output")
    ingested = crm(folder, big, "ingest", "raw", "--json")
    batches = ingested["output"]["batches"]
    report = {
        "generate": generated,
        "ingest": {k: v for k, v in ingested.items() if k != "output"},
        "transactions": sum(int(b["rows_new"]) for b in batches if b["table"] == "transactions"),
    }
    done.write_text(json.dumps(report, indent=2))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, help="keep (and reuse) the work folder here")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = (args.workdir or Path(tmp)).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        setup = set_up(folder, args.customers)
        big = env_for(folder, "big.duckdb", "serving-50k.db")
        steps = {}
        for name, command in (
            ("features", ["features", "build", "--as-of", AS_OF, "--json"]),
            ("segments", ["segments", "build", "--as-of", AS_OF, "--json"]),
            ("score", ["score", "--as-of", AS_OF, "--json"]),
        ):
            print(f"measuring {name}", flush=True)
            steps[name] = crm(folder, big, *command)
        print("measuring score_chunks_200k", flush=True)
        steps["score_chunks_200k"] = crm(
            folder,
            env_for(folder, "big.duckdb", "serving-200k.db"),
            *("score", "--as-of", AS_OF, "--chunk-customers", "200000", "--json"),
        )
    scored = steps["score"]["output"] or {}
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "customers": args.customers,
        "customers_scored": scored.get("customers"),
        "transactions": setup["transactions"],
        "steps": {k: {"seconds": v["seconds"], "peak_rss_gib": v["peak_rss_gib"]} for k, v in steps.items()},
        "end_to_end_seconds": round(sum(steps[k]["seconds"] for k in ("features", "segments", "score")), 1),
        "end_to_end_peak_rss_gib": max(steps[k]["peak_rss_gib"] for k in ("features", "segments", "score")),
        "setup": {k: setup[k] for k in ("generate", "ingest")},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
