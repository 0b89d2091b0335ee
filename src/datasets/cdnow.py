"""The CDNOW data shipped inside the ``lifetimes`` wheel, converted to our transactions contract.

CDNOW (Fader, Hardie & Lee 2005): every purchase of the 23,570 customers who first bought from the CD
retailer CDNOW in the first quarter of 1997, to 1998-06-30. ``sample`` is the 1/10 systematic sample
(2,357 customers, 6,919 rows) used in the papers; ``master`` is the full cohort (69,659 rows).

The files have no transaction id. Ours is ``<customer>-<yyyymmdd>-<n>`` with ``n`` counting the rows
of that customer and day in file order, so identical rows (real repeat purchases on one day) stay
distinct and a re-conversion yields the same ids. $0 rows are kept as purchases (see README).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

import pandas as pd

Variant = Literal["sample", "master"]
CDNOW_FILES = {"sample": "CDNOW_sample.txt", "master": "CDNOW_master.txt"}


def cdnow_path(variant: Variant) -> Path:
    """Where the lifetimes wheel keeps the raw CDNOW file."""
    if variant not in CDNOW_FILES:
        raise ValueError(f"variant: expected one of {', '.join(CDNOW_FILES)}, got {variant!r}")
    return Path(str(resources.files("lifetimes.datasets").joinpath(CDNOW_FILES[variant])))


def load_cdnow_raw(variant: Variant) -> pd.DataFrame:
    """The raw file as customer_id (str, zero-padded), date, quantity, amount.

    The sample also has ``sample_id`` (1..2357), the customer number the papers and lifetimes'
    ``cdnow_customers_summary.csv`` use; ``customer_id`` is the CDNOW_master id in both variants.
    """
    path = cdnow_path(variant)
    if variant == "sample":
        names = ["customer_id", "sample_id", "date", "quantity", "amount"]
        return pd.read_csv(
            path, sep=r"\s+", header=None, names=names, dtype={"customer_id": str, "date": str}
        )
    names = ["customer_id", "date", "quantity", "amount"]
    return pd.read_csv(path, sep=r"\s+", header=0, names=names, dtype={"customer_id": str, "date": str})


def cdnow_transactions(variant: Variant) -> pd.DataFrame:
    """CDNOW as rows of the transactions contract (source ``cdnow``, USD, all purchases)."""
    raw = load_cdnow_raw(variant)
    occurrence = raw.groupby(["customer_id", "date"]).cumcount() + 1
    return pd.DataFrame(
        {
            "transaction_id": raw["customer_id"] + "-" + raw["date"] + "-" + occurrence.astype(str),
            "customer_id": raw["customer_id"],
            "source": "cdnow",
            "timestamp": pd.to_datetime(raw["date"], format="%Y%m%d"),
            "amount": raw["amount"].astype(float),
            "currency": "USD",
            "type": "purchase",
            "channel": "web",
        }
    )


def cdnow_items(transactions: pd.DataFrame, variant: Variant) -> pd.DataFrame:
    """One line per transaction: the number of CDs bought and their average price."""
    raw = load_cdnow_raw(variant)
    quantity = raw["quantity"].astype("int64")
    return pd.DataFrame(
        {
            "source": "cdnow",
            "transaction_id": transactions["transaction_id"],
            "line_no": 1,
            "item_id": "cd",
            "category": "music",
            "quantity": quantity,
            "unit_price": (raw["amount"] / quantity).round(4),
        }
    )


def write_cdnow(variant: Variant, out_dir: Path) -> list[Path]:
    """Write ``transactions.csv`` and ``transaction_items.csv`` for a CDNOW variant into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    transactions = cdnow_transactions(variant)
    paths = [out_dir / "transactions.csv", out_dir / "transaction_items.csv"]
    transactions.to_csv(paths[0], index=False, date_format="%Y-%m-%d")
    cdnow_items(transactions, variant).to_csv(paths[1], index=False)
    return paths
