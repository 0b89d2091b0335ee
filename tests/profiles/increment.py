"""One day's new and changed customer records, cut from a generated demo chain.

``split_day`` holds back whole guests (new guests), single accounts of known guests (a guest opening
another account, which joins their customer) and writes new versions of some records (a new phone
number, a move, a change of marketing consent), so an incremental profile build has real work to do
and the truth (``identities``) still says who is who.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

SOURCES = ("crm", "booking", "billing")


@dataclass(frozen=True)
class Day:
    """Customer records before the day, and the day's new and changed ones, per source."""

    history: dict[str, pd.DataFrame]
    day: dict[str, pd.DataFrame]
    new_guests: int
    new_accounts: int
    changed_records: int

    def write(self, history_dir: Path, day_dir: Path) -> None:
        """``customers_<source>.parquet`` files (ingest's naming) in each folder."""
        for folder, frames in ((history_dir, self.history), (day_dir, self.day)):
            folder.mkdir(parents=True, exist_ok=True)
            for source, frame in frames.items():
                frame.to_parquet(folder / f"customers_{source}.parquet", index=False)


def split_day(
    customers: dict[str, pd.DataFrame], identities: pd.DataFrame, share: float, seed: int = 0
) -> Day:
    """Cut ``share`` of the guests' records into one day's increment (half new guests, a quarter
    new accounts of known guests, a quarter changed records)."""
    rng = np.random.default_rng(seed)
    keys = identities.assign(key=identities["source"] + ":" + identities["source_customer_id"])
    persons = keys["person_id"].unique()
    n = max(4, round(share * len(persons)))
    chosen = rng.choice(persons, size=n, replace=False)
    new_persons = set(chosen[: n // 2])
    per_person = keys.groupby("person_id")["key"].agg(list)
    several = [p for p in chosen[n // 2 :] if len(per_person[p]) > 1]
    joining = several[: n // 4]
    changing = [p for p in chosen[n // 2 :] if p not in set(joining)]
    held = {k for p in new_persons for k in per_person[p]} | {per_person[p][-1] for p in joining}
    changed = {per_person[p][0] for p in changing}
    stamp = max(frame["updated_at"].max() for frame in customers.values()) + pd.Timedelta(days=1)
    history: dict[str, pd.DataFrame] = {}
    day: dict[str, pd.DataFrame] = {}
    for source in SOURCES:
        frame = customers[source]
        key = source + ":" + frame["source_customer_id"].astype(str)
        history[source] = frame[~key.isin(held)].reset_index(drop=True)
        # a record may hold several versions (a first one, then a move): the new one follows the latest
        latest = (
            frame[key.isin(changed)]
            .sort_values("updated_at")
            .drop_duplicates("source_customer_id", keep="last")
        )
        versions = _new_versions(latest, stamp, rng)
        day[source] = pd.concat([frame[key.isin(held)], versions], ignore_index=True)
    return Day(history, day, len(new_persons), len(joining), len(changed))


def _new_versions(rows: pd.DataFrame, stamp: pd.Timestamp, rng: np.random.Generator) -> pd.DataFrame:
    """Later versions of ``rows``: every other one has a new phone number, the rest moved house; all
    flipped their marketing consent."""
    out = rows.copy().reset_index(drop=True)
    out["updated_at"] = stamp
    moved = np.arange(len(out)) % 2 == 1
    digits = rng.integers(1_000_000, 9_999_999, size=len(out))
    out.loc[~moved, "phone"] = [f"+44 20 {d // 1000:04d} {d % 1000:03d}" for d in digits[~moved]]
    out.loc[moved, "street"] = [f"{d % 200 + 1} New Road" for d in digits[moved]]
    out.loc[moved, "postcode"] = [f"N{d % 9 + 1} {d % 10}AB" for d in digits[moved]]
    out["marketing_consent"] = ~out["marketing_consent"].fillna(False).astype(bool)
    return out
