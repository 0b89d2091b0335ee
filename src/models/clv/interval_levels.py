"""The quantile levels a CLV interval takes per calibration-frequency group: nominal, or recalibrated on
a validation window (``clv.calibration``), and what the served intervals use (``clv.uncertainty``).

Groups are the calibration period's repeat purchases, 0, 1-2 and 3+: known at the cutoff, never the
holdout's own outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

GROUPS = ("0", "1-2", "3+")
MIN_GROUP_CUSTOMERS = 100  # a group with fewer validation customers takes the overall levels


def calibration_frequency_group(frequency: np.ndarray | pd.Series) -> np.ndarray:
    """Each customer's group by repeat purchases in the calibration period: '0', '1-2' or '3+'."""
    x = np.asarray(frequency, dtype=float)
    return np.where(x < 1, GROUPS[0], np.where(x <= 2, GROUPS[1], GROUPS[2])).astype(object)


@dataclass(frozen=True)
class IntervalLevels:
    """The quantile levels an interval at ``level`` takes per group (nominal: (1 -+ level) / 2)."""

    level: float
    by_group: dict[str, tuple[float, float]]
    recalibrated: bool = False

    @classmethod
    def nominal(cls, level: float) -> IntervalLevels:
        tails = ((1 - level) / 2, (1 + level) / 2)
        return cls(level, dict.fromkeys(GROUPS, tails))

    @classmethod
    def fit(cls, pit: np.ndarray, groups: np.ndarray, level: float) -> IntervalLevels:
        """Levels whose share of ``pit`` below and above is (1 - level) / 2 each, per group."""
        tails = ((1 - level) / 2, (1 + level) / 2)
        overall = tuple(float(q) for q in np.quantile(pit, tails))
        by_group = {}
        for group in GROUPS:
            members = pit[groups == group]
            fitted = np.quantile(members, tails) if len(members) >= MIN_GROUP_CUSTOMERS else overall
            by_group[group] = (float(fitted[0]), float(fitted[1]))
        return cls(level, by_group, recalibrated=True)

    def bounds(self, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The (low, high) quantile level of each row's group."""
        low = np.array([self.by_group[g][0] for g in GROUPS])
        high = np.array([self.by_group[g][1] for g in GROUPS])
        index = pd.Index(GROUPS).get_indexer(np.asarray(groups, dtype=object))
        if (index < 0).any():
            raise ValueError(f"groups: expected only {', '.join(GROUPS)}")
        return low[index], high[index]

    def covered(self, pit: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """Whether each PIT lies inside its group's levels."""
        low, high = self.bounds(groups)
        return (pit >= low) & (pit <= high)
