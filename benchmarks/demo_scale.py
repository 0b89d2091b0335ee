"""Demo data at scale: generate N guests, then ingest them, measuring wall time and peak memory.

Side by side with the anchor: a plain DuckDB ``INSERT ... SELECT * FROM read_parquet(...)`` of the same
transactions file, with no validation, quarantine or dedupe, so the ratio is what our guarantees cost.
Each step runs in its own process so its peak RSS is its own.

    .venv/bin/python benchmarks/demo_scale.py --customers 1000000   # writes benchmarks/demo_scale.json
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEPS = {
    "generate": """
from pathlib import Path
from crm_analytics.datasets.demo import DemoConfig, generate_demo, write_demo
data = generate_demo(DemoConfig(customers={customers}, seed=7))
write_demo(data, Path({out!r}), "parquet")
print(len(data.transactions), len(data.transaction_items))
""",
    "ingest_transactions": """
from pathlib import Path
from crm_analytics.ingest.pipeline import ingest_file
from crm_analytics.warehouse import Warehouse
from crm_analytics.settings import load_settings
with Warehouse("duckdb:///" + {db!r}) as w:
    r = ingest_file(w, Path({out!r}) / "transactions.parquet", load_settings())
print(r.rows_new, r.rows_rejected)
""",
    "anchor_plain_duckdb_insert": """
import duckdb
from pathlib import Path
con = duckdb.connect({db!r} + ".plain")
con.execute("SET enable_progress_bar = false")
source = [str(Path({out!r}) / "transactions.parquet")]
con.execute("CREATE TABLE t AS SELECT * FROM read_parquet(?) LIMIT 0", source)
con.execute("INSERT INTO t SELECT * FROM read_parquet(?)", source)
print(con.execute("SELECT COUNT(*) FROM t").fetchone()[0], 0)
""",
}


PEAK = "\nimport resource\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"


def run_step(code: str) -> dict[str, float | str]:
    """Run code in a fresh interpreter; return wall seconds, its own peak RSS (GiB) and what it printed."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code + PEAK], capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    *printed, peak_kib = done.stdout.strip().splitlines()
    return {
        "seconds": round(seconds, 1),
        "peak_rss_gib": round(int(peak_kib) / 2**20, 2),
        "output": " ".join(printed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("demo_scale.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out, db = f"{tmp}/demo", f"{tmp}/warehouse.duckdb"
        results = {
            name: run_step(code.format(customers=args.customers, out=out, db=db))
            for name, code in STEPS.items()
        }
    transactions, items = (int(x) for x in str(results["generate"]["output"]).split())
    ingest, anchor = results["ingest_transactions"], results["anchor_plain_duckdb_insert"]
    report = {
        "customers": args.customers,
        "transactions": transactions,
        "transaction_items": items,
        "steps": results,
        "ingest_rows_per_second": round(transactions / float(ingest["seconds"])),
        "ingest_vs_plain_insert_time_ratio": round(float(ingest["seconds"]) / float(anchor["seconds"]), 1),
        "machine": {"cpus": 2, "python": platform.python_version()},
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
