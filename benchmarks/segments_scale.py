"""Behavioural clusters at 1M guests: centroids from a 100,000-row sample against a fit on every row.

``BehaviourClusters`` learns its centroids on a seeded sample of ``fit_rows`` rows and assigns every
customer to the nearest (``models/segments/clusters.py``). This measures, on the same feature table,
what that costs and changes: wall time of ``fit`` with the default ``fit_rows`` (100,000) and with
``fit_rows`` at the number of rows (every row, as before), the k each chose, and how far the two
labelings of all customers agree (adjusted Rand index; 1 = the same segments). The anchor is the fit
on every row.

Data: the feature table of a warehouse that ``batch_scoring.py`` prepared (``--workdir``: its
``big.duckdb``, features built as of 2025-12-31).

    .venv/bin/python benchmarks/segments_scale.py --workdir /tmp/b1m   # writes segments_scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from datetime import UTC, date, datetime
from pathlib import Path

from sklearn.metrics import adjusted_rand_score

from crm_analytics.features.store import read_features
from crm_analytics.models.clv.evaluation import by_customer
from crm_analytics.models.segments.clusters import BehaviourClusters
from crm_analytics.warehouse import Warehouse

AS_OF = date(2025, 12, 31)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, required=True, help="a batch_scoring.py work folder")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".json"))
    args = parser.parse_args()
    path = args.workdir / "big.duckdb"
    if not path.exists():
        parser.error(f"--workdir: no {path}; run benchmarks/batch_scoring.py --workdir {args.workdir} first")
    with Warehouse(f"duckdb:///{path.resolve()}", read_only=True) as warehouse:
        features = by_customer(read_features(warehouse, AS_OF))
    print(f"{len(features):,} customers", flush=True)
    fits = {}
    for name, fit_rows in (("sample_100k", 100_000), ("every_row", len(features))):
        started = time.perf_counter()
        model = BehaviourClusters(seed=0, fit_rows=fit_rows).fit(features)
        fits[name] = (model, round(time.perf_counter() - started, 1))
        print(f"{name}: fit {fits[name][1]} s, k={model.k_}", flush=True)
    (sampled, sampled_s), (full, full_s) = fits["sample_100k"], fits["every_row"]
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "customers": len(features),
        "fit_seconds": {"sample_100k": sampled_s, "every_row": full_s},
        "k": {"sample_100k": int(sampled.k_), "every_row": int(full.k_)},
        "labels_ari": round(float(adjusted_rand_score(full.labels_, sampled.labels_)), 4),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "load_at_end": [round(x, 2) for x in os.getloadavg()],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
