"""BTYD summary at scale: ``btyd_summary`` (Ibis on DuckDB) against lifetimes, side by side in one run.

The anchor is ``lifetimes.utils.summary_data_from_transaction_data(df, "customer_id", "timestamp",
"amount", observation_period_end=as_of, freq="D")`` on a pandas DataFrame already in memory. Ours is
``crm_analytics.features.rfm.btyd_summary(transactions, as_of)`` over a DuckDB table, materialised with
``.to_pyarrow()``.

Data: synthetic purchases (numpy, fixed seed), written once as parquet per size: ~10 transactions per
customer with exponentially distributed purchase rates (many one-time buyers, a few heavy ones),
timestamps at second resolution over three years (2022-2024) plus ~15% same-day follow-ups so that
merging the purchases of one day matters, lognormal amounts in cents, string ids as in the warehouse
contract, every row a purchase with a NULL ``reference_id``, rows in timestamp order like a log.

What is timed (wall clock, best of the repeats):

- ours: building the expression, compiling it to SQL, DuckDB executing it and the Arrow result;
- lifetimes: the ``summary_data_from_transaction_data`` call, returning its pandas DataFrame.

``cpu_seconds`` is the user + system CPU time of each timed run (all threads), less sensitive than wall
time to other load on the machine. Not timed: imports, connecting, and loading the parquet file (into an
in-memory DuckDB table for ours, into a pandas DataFrame for lifetimes). Each step runs in its own
interpreter, so its memory is its own: ``baseline_rss`` is the resident memory once the input is loaded,
``peak_rss`` the process peak (load included), ``compute_peak_rss`` the peak while computing (the
high-water mark is reset after loading) and ``extra`` = ``compute_peak_rss - baseline_rss``, the memory
the computation itself needed.

    .venv/bin/python benchmarks/rfm_vs_lifetimes.py    # 1M and 10M: writes benchmarks/rfm_vs_lifetimes.json
    .venv/bin/python benchmarks/rfm_vs_lifetimes.py --sizes 1000000 --out /tmp/rfm.json    # a quick look

Also run: a correctness check at the smallest size (same customers; frequency, recency and T equal
exactly; monetary_value within 1e-9 relative), ``EXPLAIN ANALYZE`` of our SQL at the largest size,
alternative SQL formulations of the same summary (prototypes for ``src/features``, checked against ours),
ours under other DuckDB settings (``SETTINGS``) and, when ``src/features/build.py`` has
``feature_table``, the full feature build on the project's demo data (1M guests, ~10M transactions).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
AS_OF = date(2024, 12, 31)
START = date(2022, 1, 1)
SEED = 20240101
SAME_DAY_SHARE = 0.15
TRANSACTIONS_PER_CUSTOMER = 10
MIB = 2**20


# --- measuring inside a child process -------------------------------------------------------------


def rss_mib(field: str) -> float:
    """VmRSS (current) or VmHWM (peak since start or the last reset) of this process, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def ru_maxrss_mib() -> float:
    """getrusage(RUSAGE_SELF).ru_maxrss (KiB on Linux) in MiB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(load: Callable[[], Any], compute: Callable[[Any], Any], repeats: int) -> dict[str, Any]:
    """Load the input (untimed), then time ``compute`` ``repeats`` times and record memory around it."""
    import gc

    state = load()
    gc.collect()
    baseline, load_peak = rss_mib("VmRSS"), ru_maxrss_mib()
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM: from here on it is the computation's peak
    seconds, cpu_seconds, rows = [], [], 0
    for _ in range(repeats):
        cpu_started, started = time.process_time(), time.perf_counter()
        result = compute(state)
        seconds.append(time.perf_counter() - started)
        cpu_seconds.append(time.process_time() - cpu_started)
        rows = len(result)
        del result
    compute_peak = rss_mib("VmHWM")
    return {
        "seconds": [round(s, 3) for s in seconds],
        "best_seconds": round(min(seconds), 3),
        "cpu_seconds": [round(s, 3) for s in cpu_seconds],  # user + sys, all threads
        "rows_out": rows,
        "baseline_rss_mib": round(baseline),
        "load_peak_rss_mib": round(load_peak),
        "compute_peak_rss_mib": round(compute_peak),
        "extra_mib": round(compute_peak - baseline),
        "peak_rss_mib": round(max(load_peak, compute_peak)),
        "ru_maxrss_at_end_mib": round(ru_maxrss_mib()),
        "load_average_1min_at_end": os.getloadavg()[0],
    }


def duckdb_connection(parquet: Path, order_by: str = "") -> Any:
    """An in-memory DuckDB (Ibis) with the parquet file loaded as table ``transactions``.

    The rows keep the file's (timestamp) order unless ``order_by`` gives another layout.
    """
    import ibis

    con = ibis.duckdb.connect()
    con.raw_sql("SET enable_progress_bar = false")
    order = f" ORDER BY {order_by}" if order_by else ""
    con.raw_sql(f"CREATE TABLE transactions AS SELECT * FROM read_parquet('{parquet}'){order}")
    return con


def duckdb_settings(con: Any) -> dict[str, str]:
    """The DuckDB settings that matter for speed."""
    names = ("threads", "memory_limit", "preserve_insertion_order")
    return {n: str(con.raw_sql(f"SELECT current_setting('{n}')").fetchall()[0][0]) for n in names}


def lifetimes_summary(df: Any) -> Any:
    """The anchor: lifetimes' summary of the transaction log, days as the period."""
    from lifetimes.utils import summary_data_from_transaction_data

    return summary_data_from_transaction_data(
        df, "customer_id", "timestamp", "amount", observation_period_end=AS_OF, freq="D"
    )


def step_ours(parquet: Path, repeats: int, setting: str = "", order_by: str = "") -> dict[str, Any]:
    """Ours; ``setting`` (e.g. ``threads = 1``) is SET on the connection first, ``order_by`` lays out rows."""
    from crm_analytics.features.rfm import btyd_summary

    con = duckdb_connection(parquet, order_by)
    if setting:
        con.raw_sql(f"SET {setting}")
    result = measure(
        lambda: con.table("transactions"), lambda t: btyd_summary(t, AS_OF).to_pyarrow(), repeats
    )
    return result | {"duckdb": duckdb_settings(con)}


def step_lifetimes(parquet: Path, repeats: int) -> dict[str, Any]:
    import pandas as pd

    return measure(lambda: pd.read_parquet(parquet), lifetimes_summary, repeats)


# Alternative formulations of the same summary, as DuckDB SQL over ``transactions``: prototypes of what
# src/features could compile to. Each yields customer_id, frequency, recency, T, monetary_value.
CUTOFF = f"TIMESTAMP '{AS_OF.isoformat()}' + INTERVAL 1 DAY"
NOT_CANCELLED = f"""
      AND transaction_id NOT IN (
          SELECT reference_id FROM transactions
          WHERE type = 'cancellation' AND reference_id IS NOT NULL AND timestamp < {CUTOFF})"""
SUMMARY_SELECT = f"""
SELECT customer_id, CAST(n - 1 AS DOUBLE) AS frequency,
       CAST(last_day - first_day AS DOUBLE) AS recency,
       CAST(DATE '{AS_OF.isoformat()}' - first_day AS DOUBLE) AS T,
       CASE WHEN n > 1 THEN (total - first_spend) / (n - 1) ELSE 0.0 END AS monetary_value
FROM per_customer
"""
ARG_MIN = """per_customer AS (
    SELECT customer_id, MIN(day) AS first_day, MAX(day) AS last_day, COUNT(*) AS n,
           SUM(spend) AS total, arg_min(spend, day) AS first_spend
    FROM days GROUP BY customer_id)"""


def summary_sql(per_customer: str, cancellations: bool = True) -> str:
    """purchases -> days (customer, day, spend) -> the given ``per_customer`` CTEs -> the summary."""
    return f"""
WITH purchases AS (
    SELECT customer_id, amount, CAST(timestamp AS DATE) AS day FROM transactions
    WHERE timestamp < {CUTOFF} AND type = 'purchase'{NOT_CANCELLED if cancellations else ""}),
days AS (SELECT customer_id, day, SUM(amount) AS spend FROM purchases GROUP BY customer_id, day),
{per_customer}
{SUMMARY_SELECT}"""


# DuckDB settings to try with our expression unchanged
SETTINGS = ("preserve_insertion_order = false",)
ALTERNATIVES = {
    # the same plan as ours (two hash aggregates, arg_min), without Ibis: isolates Ibis' share
    "handwritten_arg_min": summary_sql(ARG_MIN),
    # our plan without the cancellation filter: what the anti-join costs (here nothing is cancelled)
    "no_cancellation_filter": summary_sql(ARG_MIN, cancellations=False),
    # first-day spend from a second pass over the day rows: join them back to each customer's first day
    "first_day_join": summary_sql(
        """spans AS (
    SELECT customer_id, MIN(day) AS first_day, MAX(day) AS last_day, COUNT(*) AS n, SUM(spend) AS total
    FROM days GROUP BY customer_id),
per_customer AS (
    SELECT s.*, d.spend AS first_spend FROM spans s JOIN days d
    ON d.customer_id = s.customer_id AND d.day = s.first_day)"""
    ),
    # no per-day aggregate: one aggregate over the purchases with count(DISTINCT day)
    "single_pass_distinct": summary_sql(
        """first_days AS (SELECT customer_id, MIN(day) AS first_day FROM purchases GROUP BY customer_id),
per_customer AS (
    SELECT p.customer_id, f.first_day, MAX(p.day) AS last_day,
           COUNT(DISTINCT p.day) AS n, SUM(p.amount) AS total,
           SUM(p.amount) FILTER (WHERE p.day = f.first_day) AS first_spend
    FROM purchases p JOIN first_days f USING (customer_id) GROUP BY p.customer_id, f.first_day)"""
    ),
}


# Cost probes: our plan with one part removed (results differ from ours on purpose)
PROBES = {
    "without_first_day_spend": summary_sql(ARG_MIN.replace("arg_min(spend, day)", "0.0")),
    "per_day_aggregate_only": """
SELECT COUNT(*), SUM(spend) FROM (
    SELECT customer_id, CAST(timestamp AS DATE) AS day, SUM(amount) AS spend
    FROM transactions GROUP BY customer_id, day)""",
    "per_customer_aggregate_of_raw_rows": """
SELECT customer_id, MIN(timestamp), MAX(timestamp), COUNT(*), SUM(amount)
FROM transactions GROUP BY customer_id""",
}


def step_alternative(parquet: Path, repeats: int, name: str) -> dict[str, Any]:
    con = duckdb_connection(parquet)
    sql = ALTERNATIVES.get(name) or PROBES[name]
    result = measure(lambda: con.con, lambda c: c.sql(sql).to_arrow_table(), repeats)
    return result | ({"matches_ours": alternative_matches_ours(con, sql)} if name in ALTERNATIVES else {})


def alternative_matches_ours(con: Any, sql: str) -> bool:
    """Whether an alternative formulation gives our summary exactly (monetary_value to 1e-9 relative)."""
    from crm_analytics.features.rfm import btyd_summary

    ours = ibis_sql(btyd_summary(con.table("transactions"), AS_OF))
    diff = f"""
    SELECT COUNT(*) FROM ({ours}) o FULL JOIN ({sql}) a USING (customer_id)
    WHERE o.customer_id IS NULL OR a.customer_id IS NULL OR o.frequency <> a.frequency
       OR o.recency <> a.recency OR o.T <> a.T
       OR abs(o.monetary_value - a.monetary_value) > 1e-9 * greatest(abs(o.monetary_value), 1e-300)
    """
    return con.raw_sql(diff).fetchall()[0][0] == 0


def ibis_sql(expr: Any) -> str:
    import ibis

    return str(ibis.to_sql(expr, dialect="duckdb"))


def step_explain(parquet: Path) -> dict[str, Any]:
    """EXPLAIN ANALYZE of our compiled SQL: where DuckDB spends the time, operator by operator."""
    from crm_analytics.features.rfm import btyd_summary

    con = duckdb_connection(parquet)
    sql = ibis_sql(btyd_summary(con.table("transactions"), AS_OF))
    profile = json.loads(con.raw_sql(f"EXPLAIN (ANALYZE, FORMAT json) {sql}").fetchall()[0][1])
    query, system = profile["query"], profile["system"]
    return {
        "sql": sql,
        "total_seconds": round(query["total_time"], 3),
        "cpu_seconds": round(query["cpu_time"], 3),
        "peak_buffer_memory_mib": round(system["peak_buffer_memory"] / MIB),
        "operators": operator_times(profile["operator"]),
    }


def operator_times(roots: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The operators of a DuckDB JSON profile, slowest first (CPU seconds summed over threads)."""
    found: list[dict[str, Any]] = []
    stack = list(roots)
    while stack:
        node = stack.pop()
        stack.extend(node.get("children", []))
        if node["timing"] >= 0.001:
            info = node.get("extra_info", {})
            detail = {k: info[k] for k in ("Groups", "Aggregates", "Join Type", "Conditions") if k in info}
            found.append(
                {
                    "operator": node["name"],
                    "seconds": round(node["timing"], 3),
                    "rows_out": node["intermediate_rows"],
                    **detail,
                }
            )
    return sorted(found, key=lambda o: -o["seconds"])


def step_verify(parquet: Path) -> dict[str, Any]:
    """Our summary against lifetimes' on the same rows: which customers, and each column's agreement."""
    import numpy as np
    import pandas as pd

    from crm_analytics.features.rfm import btyd_summary

    con = duckdb_connection(parquet)
    ours = btyd_summary(con.table("transactions"), AS_OF).to_pyarrow().to_pandas().set_index("customer_id")
    theirs = lifetimes_summary(pd.read_parquet(parquet))
    theirs.index = theirs.index.astype(ours.index.dtype)
    same_customers = bool(ours.index.sort_values().equals(theirs.index.sort_values()))
    theirs = theirs.reindex(ours.index)
    report: dict[str, Any] = {"customers_ours": len(ours), "customers_lifetimes": len(theirs)}
    report["same_customers"] = same_customers
    for column in ("frequency", "recency", "T"):
        report[f"{column}_equal"] = bool((ours[column].to_numpy() == theirs[column].to_numpy()).all())
    a, b = ours["monetary_value"].to_numpy(), theirs["monetary_value"].to_numpy()
    relative = np.abs(a - b) / np.maximum(np.abs(b), 1e-300)
    report["monetary_value_max_relative_error"] = float(relative.max())
    report["monetary_value_within_1e-9"] = bool((relative <= 1e-9).all())
    rows = pd.read_parquet(parquet, columns=["customer_id"]).groupby("customer_id").size()
    merged = rows.reindex(ours.index) > ours["frequency"] + 1
    report["customers_with_same_day_merging"] = int(merged.sum())
    report["passed"] = same_customers and all(report[f"{c}_equal"] for c in ("frequency", "recency", "T"))
    report["passed"] = report["passed"] and report["monetary_value_within_1e-9"]
    return report


def step_feature_table(data_dir: Path, repeats: int) -> dict[str, Any]:
    """The full feature build (``build.feature_table``) on demo data, materialised to Arrow."""
    import ibis

    from crm_analytics.features.build import FeatureConfig, feature_table

    con = ibis.duckdb.connect()
    con.raw_sql("SET enable_progress_bar = false")

    def load() -> FeatureConfig:
        for name in ("transactions", "transaction_items"):
            con.raw_sql(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{data_dir / name}.parquet')")
        return FeatureConfig(as_of=feature_as_of(con))

    result = measure(load, lambda config: feature_table(con, config).to_pyarrow(), repeats)
    count = con.raw_sql("SELECT COUNT(*), COUNT(DISTINCT customer_id), MAX(timestamp) FROM transactions")
    rows, customers, last = count.fetchall()[0]
    return result | {
        "as_of": str(feature_as_of(con)),
        "horizon_days": None,
        "transactions": rows,
        "customers": customers,
        "last_timestamp": str(last),
    }


def feature_as_of(con: Any) -> date:
    """The demo data's last transaction day: the cutoff for the feature build."""
    return con.raw_sql("SELECT CAST(MAX(timestamp) AS DATE) FROM transactions").fetchall()[0][0]


# --- data -------------------------------------------------------------------------------------------


def generate(rows: int, path: Path, seed: int = SEED) -> dict[str, int]:
    """Write ``rows`` synthetic purchases to ``path`` (see the module docstring); return their counts."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    base_rows = rows - int(rows * SAME_DAY_SHARE)
    # purchase rates ~ exponential (gamma, shape 1): a pool of n customers leaves n * B / (n + B) buyers
    # among B draws, so this pool gives rows / TRANSACTIONS_PER_CUSTOMER customers with a purchase
    target = rows // TRANSACTIONS_PER_CUSTOMER
    customers = target * base_rows // (base_rows - target)
    weights = rng.exponential(size=customers)
    customer = rng.choice(customers, size=base_rows, p=weights / weights.sum())
    span = (AS_OF - START).days + 1
    seconds = rng.integers(0, span * 86_400, size=base_rows)
    # same-day follow-ups: another purchase by the same customer on the day of an earlier one
    follow = rng.integers(0, base_rows, size=rows - base_rows)
    customer = np.concatenate([customer, customer[follow]])
    same_day = seconds[follow] // 86_400 * 86_400 + rng.integers(0, 86_400, follow.size)
    seconds = np.concatenate([seconds, same_day])
    order = np.argsort(seconds, kind="stable")
    customer, seconds = customer[order], seconds[order]
    start = np.datetime64(START.isoformat(), "s")
    amount = np.round(rng.lognormal(mean=4.0, sigma=1.0, size=rows), 2)

    def ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
        digits = pc.utf8_lpad(pa.array(numbers).cast(pa.string()), width, "0")
        return pc.binary_join_element_wise(prefix, digits, "")

    table = pa.table(
        {
            "transaction_id": ids("T", np.arange(rows), 9),
            "customer_id": ids("C", customer, 8),
            "timestamp": pa.array(start + seconds.astype("timedelta64[s]"), pa.timestamp("us")),
            "amount": amount,
            "type": pa.array(np.full(rows, "purchase", dtype=object), pa.string()),
            "reference_id": pa.nulls(rows, pa.string()),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return {"rows": rows, "customers": int(np.unique(customer).size)}


def generate_demo_data(data_dir: Path, customers: int) -> dict[str, int]:
    """The project's demo generator (seed 7, as in demo_scale.py): transactions and transaction_items."""
    from crm_analytics.datasets.demo import DemoConfig, generate_demo, write_demo

    data = generate_demo(DemoConfig(customers=customers, seed=7))
    write_demo(data, data_dir, "parquet")
    return {"transactions": len(data.transactions), "transaction_items": len(data.transaction_items)}


# --- orchestration ----------------------------------------------------------------------------------


def run_child(*args: str) -> dict[str, Any]:
    """Run one step of this script in a fresh interpreter; return the JSON it printed last."""
    done = subprocess.run(
        [sys.executable, __file__, "child", *args], capture_output=True, text=True, check=False, cwd=ROOT
    )
    if done.returncode != 0:
        raise RuntimeError(f"step {args} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def child_main(argv: list[str]) -> None:
    step, path, *rest = argv
    steps: dict[str, Callable[[], dict[str, Any]]] = {
        "generate": lambda: generate(int(rest[0]), Path(path)),
        "generate_demo": lambda: generate_demo_data(Path(path), int(rest[0])),
        "ours": lambda: step_ours(Path(path), int(rest[0]), *rest[1:]),
        "lifetimes": lambda: step_lifetimes(Path(path), int(rest[0])),
        "alternative": lambda: step_alternative(Path(path), int(rest[0]), rest[1]),
        "explain": lambda: step_explain(Path(path)),
        "verify": lambda: step_verify(Path(path)),
        "feature_table": lambda: step_feature_table(Path(path), int(rest[0])),
    }
    print(json.dumps(steps[step]()))


def dataset(data_dir: Path, rows: int) -> tuple[Path, dict[str, int]]:
    """The parquet file for ``rows`` transactions, generated on first use."""
    path = data_dir / f"purchases_{rows}_seed{SEED}.parquet"
    meta = path.with_suffix(".json")
    if not meta.exists():
        meta.write_text(json.dumps(run_child("generate", str(path), str(rows))))
    return path, json.loads(meta.read_text())


CONTENDERS: dict[str, tuple[str, ...]] = {
    "ours": ("ours",),
    "ours_threads_1": ("ours", "threads = 1"),  # the same expression with one DuckDB thread
    "lifetimes": ("lifetimes",),
}


def compare(path: Path, rounds: int, repeats: int) -> dict[str, Any]:
    """Ours and lifetimes on one file, round-robin so that load from elsewhere hits both alike.

    Every round runs each contender in a fresh process (``repeats`` timed runs each); a contender's time is
    its best run over all rounds and its memory the largest over its processes.
    """
    children: dict[str, list[dict[str, Any]]] = {name: [] for name in CONTENDERS}
    for _ in range(rounds):
        for name, (step, *setting) in CONTENDERS.items():
            children[name].append(run_child(step, str(path), str(repeats), *setting))
            print(f"  {name:15s} {children[name][-1]['seconds']} s", flush=True)
    result: dict[str, Any] = {"rounds": rounds, "repeats_per_round": repeats}
    result |= {name: combine(runs) for name, runs in children.items()}
    lifetimes = result["lifetimes"]
    for name in ("ours", "ours_threads_1"):
        result[f"lifetimes_seconds_over_{name}"] = ratio(lifetimes, result[name], "best_seconds")
        result[f"lifetimes_cpu_seconds_over_{name}"] = ratio(lifetimes, result[name], "best_cpu_seconds")
        result[f"lifetimes_peak_over_{name}"] = ratio(lifetimes, result[name], "peak_rss_mib")
        result[f"lifetimes_extra_over_{name}"] = ratio(lifetimes, result[name], "extra_mib")
    return result


def ratio(numerator: dict[str, Any], denominator: dict[str, Any], key: str) -> float:
    return round(numerator[key] / max(denominator[key], 1e-9), 2)


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One contender's processes: best time, largest memory, and every process' own numbers."""
    memory = ("baseline_rss_mib", "compute_peak_rss_mib", "extra_mib", "peak_rss_mib")
    return {
        "best_seconds": min(r["best_seconds"] for r in runs),
        "best_cpu_seconds": min(min(r["cpu_seconds"]) for r in runs),
        **{key: max(r[key] for r in runs) for key in memory},
        "rows_out": runs[0]["rows_out"],
        "processes": runs,
    }


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def machine() -> dict[str, Any]:
    from importlib.metadata import version

    return {
        "cpu_count": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
        **{p: version(p) for p in ("duckdb", "ibis-framework", "pandas", "pyarrow", "numpy", "lifetimes")},
    }


def has_feature_table() -> bool:
    build = ROOT / "src" / "features" / "build.py"
    return build.exists() and "def feature_table(" in build.read_text()


def profile(path: Path, rows: int, ours_best_seconds: float) -> dict[str, Any]:
    """Where our time goes at ``rows``: alternative formulations, cost probes and DuckDB settings."""
    report: dict[str, Any] = {"rows": rows, "ours_best_seconds": ours_best_seconds}
    for name in [*ALTERNATIVES, *PROBES]:
        report[name] = run_child("alternative", str(path), "2", name)
        print(f"  {name}: {report[name]['seconds']} s", flush=True)
    for setting in SETTINGS:
        report[f"ours with SET {setting}"] = run_child("ours", str(path), "2", setting)
    # the same expression on a table clustered by customer (the warehouse could store it so)
    report["ours on rows ordered by customer_id, timestamp"] = run_child(
        "ours", str(path), "2", "", "customer_id, timestamp"
    )
    return report


def full_feature_build(data_dir: Path) -> dict[str, Any]:
    """``feature_table`` on the project's demo data at 1M guests (about 10M transactions)."""
    demo_dir = data_dir / "demo_1000000"
    if not (demo_dir / "transaction_items.parquet").exists():
        counts = run_child("generate_demo", str(demo_dir), "1000000")
        (demo_dir / "counts.json").write_text(json.dumps(counts))
    try:
        report = run_child("feature_table", str(demo_dir), "2")
    except RuntimeError as error:  # build.py is being written concurrently: record it, keep the rest
        report = {"error": str(error)[-2000:]}
    return report | {"build_sha256": file_digest(ROOT / "src" / "features" / "build.py")}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/rfm_vs_lifetimes"))
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".json"))
    parser.add_argument("--skip", nargs="*", default=[], choices=["explain", "profile", "feature_table"])
    args = parser.parse_args()
    sources = ("rfm.py", "purchases.py")
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "as_of": AS_OF.isoformat(),
        "seed": SEED,
        "timed": "ours: btyd_summary(table, as_of).to_pyarrow() on an in-memory DuckDB table; lifetimes: "
        "summary_data_from_transaction_data(df, ..., freq='D') on a pandas DataFrame. Loading is not timed.",
        "source_sha256": {s: file_digest(ROOT / "src" / "features" / s) for s in sources},
        "machine": machine(),
        "sizes": {},
    }
    for rows in sorted(args.sizes):
        path, counts = dataset(args.data_dir, rows)
        print(f"{rows:,} transactions, {counts['customers']:,} customers", flush=True)
        rounds = 3 if rows <= 2_000_000 else 2
        report["sizes"][str(rows)] = counts | compare(path, rounds, repeats=2)
    smallest, largest = min(args.sizes), max(args.sizes)
    report["correctness"] = {"rows": smallest} | run_child("verify", str(dataset(args.data_dir, smallest)[0]))
    print(f"correctness at {smallest:,}: passed={report['correctness']['passed']}", flush=True)
    path = dataset(args.data_dir, largest)[0]
    if "explain" not in args.skip:
        report["explain_analyze"] = {"rows": largest} | run_child("explain", str(path))
    if "profile" not in args.skip:
        report["profile"] = profile(path, largest, report["sizes"][str(largest)]["ours"]["best_seconds"])
    if "feature_table" in args.skip or not has_feature_table():
        report["feature_table"] = "skipped: src/features/build.py has no feature_table"
    else:
        report["feature_table"] = full_feature_build(args.data_dir)
    report["machine"]["load_average_at_end"] = os.getloadavg()
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child_main(sys.argv[2:])
    else:
        main()
