"""CLVModel against plain lifetimes: fitting (compressed vs plain) and 12-month CLV, side by side in one run.

Anchors (issue #4):

- fit: ``BetaGeoFitter().fit(frequency, recency, T)`` and ``GammaGammaFitter().fit(...)`` on every
  customer, against ``CLVModel("bgnbd").fit(summary)`` (the same two fits: the purchase model on the
  distinct (frequency, recency, T) patterns, weighted, both with closed-form gradients); at 100k and 1M
  customers. The purchase fit alone is timed too, also as lifetimes' own fit on the weighted patterns
  (what compression alone gives), and the fitted parameters are compared.
- CLV: ``GammaGammaFitter.customer_lifetime_value(bgf, ..., time=12, discount_rate=0.01)`` against
  ``CLVModel.clv(summary, months=12, discount_rate=0.01)`` at 1M customers, values compared.

Data: BTYD summaries simulated from BG/NBD + Gamma-Gamma (numpy, fixed seed), in two shapes, because
how many customers share a pattern decides what compression can gain:

- ``cdnow``: CDNOW's design: first purchases spread over 12 weeks, 78 weeks observed, recency and T
  in weeks at day resolution, CDNOW's published BG/NBD parameters;
- ``hotel``: the demo hotel chain's design: first stays spread over 900 days, three years observed, time
  in days, the demo generator's parameters.

Wall-clock seconds of one run each (``time.perf_counter``), in one process; CPU seconds beside them.

    .venv/bin/python benchmarks/clv_fit_and_value.py      # writes benchmarks/clv_fit_and_value.json
    .venv/bin/python benchmarks/clv_fit_and_value.py --sizes 100000 --out /tmp/clv.json   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lifetimes
import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter

from crm_analytics.models.clv.likelihoods import fit_bgnbd
from crm_analytics.models.clv.model import CLVModel, compress

SEED = 20261125
SHAPES: dict[str, dict[str, Any]] = {
    # r, alpha per time unit; births over `birth_days`, observation `observed_days` from the first birth
    "cdnow": {
        "unit_days": 7, "birth_days": 84, "observed_days": 546,
        "r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "p": 6.25, "q": 3.74, "gamma": 15.44,
    },
    "hotel": {
        "unit_days": 1, "birth_days": 900, "observed_days": 1095,
        "r": 0.9, "alpha": 28.0, "a": 0.8, "b": 5.0, "p": 6.0, "q": 4.0, "gamma": 150.0,
    },
}  # fmt: skip


def simulate_summary(customers: int, shape: dict[str, Any], seed: int = SEED) -> pd.DataFrame:
    """frequency, recency, T, monetary_value drawn from BG/NBD + Gamma-Gamma at day resolution."""
    rng = np.random.default_rng(seed)
    unit = shape["unit_days"]
    T_days = shape["observed_days"] - rng.integers(0, shape["birth_days"], customers)
    rate = rng.gamma(shape["r"], 1 / shape["alpha"], customers) / unit  # purchases per day
    dropout = rng.beta(shape["a"], shape["b"], customers)
    would_buy = rng.poisson(rate * T_days)
    before_dropout = rng.geometric(dropout)
    frequency = np.minimum(would_buy, before_dropout)
    # the last of `frequency` purchases among `would_buy` uniform times in (0, T]
    last = rng.beta(np.maximum(frequency, 1), np.maximum(would_buy - frequency + 1, 1))
    recency_days = np.where(frequency > 0, np.floor(last * T_days), 0)
    nu = rng.gamma(shape["q"], 1 / shape["gamma"], customers)
    mean_spend = rng.gamma(shape["p"] * np.maximum(frequency, 1), 1 / (nu * np.maximum(frequency, 1)))
    return pd.DataFrame(
        {
            "frequency": frequency.astype(float),
            "recency": recency_days / unit,
            "T": T_days / unit,
            "monetary_value": np.where(frequency > 0, mean_spend, 0.0),
        }
    )


def timed(call: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    cpu, wall = time.process_time(), time.perf_counter()
    result = call()
    return result, {"seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu}


def plain_fit(summary: pd.DataFrame) -> tuple[BetaGeoFitter, GammaGammaFitter]:
    purchases = BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"])
    repeat = summary[summary["frequency"] > 0]
    return purchases, GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])


def compare_fits(summary: pd.DataFrame, unit: str) -> dict[str, Any]:
    """Plain lifetimes against ours, the full fit and the purchase fit alone; parameters compared.

    The purchase fit is timed three ways: plain lifetimes; lifetimes on the distinct patterns with
    ``weights=`` (what compression alone gives); ours (patterns + closed-form gradients).
    """
    (plain_purchases, _), plain_time = timed(lambda: plain_fit(summary))
    ours, ours_time = timed(lambda: CLVModel("bgnbd", time_unit=unit).fit(summary))  # type: ignore[arg-type]
    columns = [summary[c] for c in ("frequency", "recency", "T")]
    _, plain_purchase_time = timed(lambda: BetaGeoFitter().fit(*columns))

    def weighted_lifetimes_fit() -> BetaGeoFitter:
        patterns = compress(summary)
        return BetaGeoFitter().fit(
            patterns["frequency"], patterns["recency"], patterns["T"], weights=patterns["customers"]
        )

    def our_purchase_fit() -> Any:
        patterns = compress(summary)
        return fit_bgnbd(*(patterns[c].to_numpy() for c in ("frequency", "recency", "T", "customers")))

    _, weighted_time = timed(weighted_lifetimes_fit)
    _, ours_purchase_time = timed(our_purchase_fit)
    plain_params = plain_purchases.params_.to_numpy(float)
    ours_params = ours.purchases_.params_.to_numpy(float)
    seconds = plain_purchase_time["seconds"]
    return {
        "customers": len(summary),
        "patterns": ours.n_patterns_,
        "customers_per_pattern": len(summary) / ours.n_patterns_,
        "full_fit": {
            "plain": plain_time,
            "ours": ours_time,
            "ratio": plain_time["seconds"] / ours_time["seconds"],
        },
        "purchase_fit": {
            "plain": plain_purchase_time,
            "lifetimes_weighted_patterns": weighted_time,
            "ours": ours_purchase_time,
            "ratio_weighted_patterns": seconds / weighted_time["seconds"],
            "ratio": seconds / ours_purchase_time["seconds"],
        },
        "params_plain": dict(zip(plain_purchases.params_.index, plain_params.tolist(), strict=True)),
        "params_max_relative_difference": float(np.max(np.abs(ours_params / plain_params - 1))),
    }


def compare_clv(summary: pd.DataFrame, unit: str) -> dict[str, Any]:
    model = CLVModel("bgnbd", time_unit=unit).fit(summary)  # type: ignore[arg-type]
    freq = {"weeks": "W", "days": "D"}[unit]
    columns = [summary[c] for c in ("frequency", "recency", "T", "monetary_value")]
    plain, plain_time = timed(
        lambda: model.spend_.customer_lifetime_value(
            model.purchases_, *columns, time=12, discount_rate=0.01, freq=freq
        ).to_numpy()
    )
    ours, ours_time = timed(lambda: model.clv(summary, months=12, discount_rate=0.01))
    relative = np.abs(ours - plain) / np.maximum(np.abs(plain), 1e-300)
    return {
        "customers": len(summary),
        "distinct_frequency_T_pairs": int(summary.groupby(["frequency", "T"]).ngroups),
        "plain": plain_time,
        "ours": ours_time,
        "ratio": plain_time["seconds"] / ours_time["seconds"],
        "max_relative_difference": float(relative.max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".json"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_at_start": os.getloadavg(),
        },
        "versions": {"lifetimes": lifetimes.__version__, "numpy": np.__version__, "pandas": pd.__version__},
        "fit": [],
        "clv": [],
    }
    for shape_name in args.shapes:
        shape = SHAPES[shape_name]
        unit = "weeks" if shape["unit_days"] == 7 else "days"
        for size in args.sizes:
            summary = simulate_summary(size, shape)
            fit = {"shape": shape_name, **compare_fits(summary, unit)}
            print(json.dumps(fit), flush=True)
            results["fit"].append(fit)
            if size == max(args.sizes):
                value = {"shape": shape_name, **compare_clv(summary, unit)}
                print(json.dumps(value), flush=True)
                results["clv"].append(value)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
