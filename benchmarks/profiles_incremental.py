"""One day of profiles at 20,000 guests: incremental build vs full rebuild on the same data.

Generates the demo chain, cuts one day's new and changed customer records out of it
(``tests/profiles/increment.py``: new guests, new accounts of known guests, new versions of records;
0.3% of guests by default), ingests the rest and builds profiles in full. Then, from copies of that
warehouse with the day ingested, times ``build_profiles(incremental=True)`` and a full
``build_profiles`` (training the linkage model again) in turns, ``--rounds`` times each, and checks
they give the same customers. No MLflow run is logged (the same for both).

    .venv/bin/python benchmarks/profiles_incremental.py   # writes benchmarks/profiles_incremental.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.profiles.increment

import duckdb
import pandas as pd

from crm_analytics.datasets.demo import DemoConfig, generate_demo, write_demo
from crm_analytics.ingest.pipeline import ingest_file
from crm_analytics.ingest.readers import expand_paths
from crm_analytics.profiles.build import ProfileBuild, build_profiles
from crm_analytics.settings import load_settings
from crm_analytics.warehouse import Warehouse
from tests.profiles.increment import split_day


def ingest(warehouse: Warehouse, folder: Path) -> None:
    for path in expand_paths([folder]):
        ingest_file(warehouse, path, load_settings())


def timed_build(db: Path, incremental: bool) -> tuple[float, ProfileBuild, pd.Series]:
    """Seconds for one build on ``db``, its report and its record -> customer links."""
    with Warehouse(f"duckdb:///{db}") as warehouse:
        started = time.perf_counter()
        build = build_profiles(warehouse, load_settings(), log_run=False, incremental=incremental)
        seconds = time.perf_counter() - started
        links = warehouse.fetch("SELECT source, source_customer_id, customer_id FROM customer_links")
    key = (links["source"] + ":" + links["source_customer_id"]).to_numpy()
    return seconds, build, pd.Series(links["customer_id"].to_numpy(), index=key)


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--share", type=float, default=0.003, help="share of guests in the day")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("profiles_incremental.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = generate_demo(DemoConfig(customers=args.customers, seed=7))
        write_demo(data, folder / "raw")
        day = split_day(data.customers, data.truth["identities"], args.share, seed=1)
        day.write(folder / "history", folder / "day")
        base = folder / "base.duckdb"
        with Warehouse(f"duckdb:///{base}") as warehouse:
            ingest(warehouse, folder / "history")
            build_profiles(warehouse, load_settings(), log_run=False)
            ingest(warehouse, folder / "day")
        runs: dict[str, list[float]] = {"incremental": [], "full": []}
        loads = [load()]
        builds: dict[str, tuple[ProfileBuild, pd.Series]] = {}
        for _ in range(args.rounds):
            for kind in ("incremental", "full"):
                db = folder / f"{kind}.duckdb"
                shutil.copy(base, db)
                seconds, build, links = timed_build(db, kind == "incremental")
                runs[kind].append(round(seconds, 2))
                builds[kind] = (build, links)
                loads.append(load())
        same_day = folder / "incremental.duckdb"  # the last incremental copy: the same day again
        again, again_build, _ = timed_build(same_day, True)
    (inc, inc_links), (full, full_links) = builds["incremental"], builds["full"]
    pairs = pd.DataFrame({"i": inc_links, "f": full_links.reindex(inc_links.index)})
    same_partition = bool(
        pairs.notna().all().all()
        and pairs.groupby("i")["f"].nunique().max() == 1
        and pairs.groupby("f")["i"].nunique().max() == 1
    )
    best_inc, best_full = min(runs["incremental"]), min(runs["full"])
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "customers": args.customers,
        "source_records": full.records,
        "unified_customers": full.customers,
        "day": {
            "share_of_guests": args.share,
            "records_in_day_files": int(sum(len(f) for f in day.day.values())),
            "new_guests": day.new_guests,
            "new_accounts_of_known_guests": day.new_accounts,
            "changed_records": day.changed_records,
        },
        "incremental": {
            "seconds": runs["incremental"],
            "best": best_inc,
            "changed_records": inc.changed_records,
            "relinked_records": inc.relinked_records,
            "merges": inc.merges,
        },
        "full": {"seconds": runs["full"], "best": best_full},
        "speedup_best": round(best_full / best_inc, 1),
        "speedup_median": round(
            sorted(runs["full"])[len(runs["full"]) // 2]
            / sorted(runs["incremental"])[len(runs["incremental"]) // 2],
            1,
        ),
        "same_day_again": {"seconds": round(again, 2), "changed_records": again_build.changed_records},
        "same_partition_as_full": same_partition,
        "same_ids_as_full": bool((pairs["i"] == pairs["f"]).all()),
        "load_average_1_5_15": loads,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "duckdb": duckdb.__version__,
        },
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
