"""The demo hotel chain's configuration and output: size, seed, window, true parameters.

The generative process is described in ``docs/datasets.md`` (and the package docstring).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date

import pandas as pd

from crm_analytics.datasets.demo.shifts import Shift

# the demo chain's data ends 2025-12-31: models calibrate to mid-year and label with the second half
DEMO_CUTOFF = date(2025, 6, 30)
DEMO_HORIZON_DAYS = 184
DEMO_END = date(2025, 12, 31)


@dataclass(frozen=True)
class DemoConfig:
    """Size, seed, window and the true parameters of the demo data (rates and times in days)."""

    customers: int = 5_000
    seed: int = 42
    start: date = date(2023, 1, 1)
    end: date = date(2025, 12, 31)  # inclusive; nothing is dated after it
    first_stay_span_days: int = 900
    r: float = 0.9  # BG/NBD purchase rate lambda ~ Gamma(shape=r, rate=alpha)
    alpha: float = 28.0
    a: float = 0.8  # BG/NBD dropout p ~ Beta(a, b)
    b: float = 5.0
    p: float = 6.0  # Gamma-Gamma: room revenue ~ Gamma(shape=p, rate=nu), nu ~ Gamma(shape=q, rate=gamma)
    q: float = 4.0
    gamma: float = 150.0
    cancel_rate: float = 0.06  # share of all bookings that are cancelled extra bookings
    refund_rate: float = 0.01  # share of stays partially refunded
    offer_log_rate: float = 0.40
    upgrade_available_rate: float = 0.5
    duplicate_account_rate: float = 0.03
    crm_rate: float = 0.70
    moved_rate: float = 0.10
    typo_rate: float = 0.05
    missing_email_rate: float = 0.15
    allergy_rate: float = 0.05
    favourite_hotel_share: float = 0.6  # mean share of a guest's bookings at their favourite hotel
    shifts: tuple[Shift, ...] = ()  # planted changes from a date on (see shifts.py); kept sorted

    def __post_init__(self) -> None:
        """Reject configurations the generator cannot honour."""
        if self.customers < 1:
            raise ValueError("customers must be positive")
        if (self.end - self.start).days < self.first_stay_span_days or self.first_stay_span_days < 1:
            raise ValueError("first_stay_span_days must be positive and fit between start and end")
        if min(self.r, self.alpha, self.a, self.b, self.p, self.q, self.gamma) <= 0:
            raise ValueError("model parameters must be positive")
        rates = [getattr(self, f.name) for f in fields(self) if f.name.endswith(("_rate", "_share"))]
        if not all(0.0 <= x <= 1.0 for x in rates) or self.cancel_rate >= 1.0:
            raise ValueError("rates and shares must lie in [0, 1], cancel_rate below 1")
        outside = [s for s in self.shifts if not self.start <= s.date <= self.end]
        if outside:
            raise ValueError(f"shift dates must lie within {self.start} to {self.end}, got {outside[0].date}")
        object.__setattr__(self, "shifts", tuple(sorted(self.shifts)))


@dataclass
class DemoData:
    """Generated frames; ``truth`` is for evaluation only."""

    transactions: pd.DataFrame
    transaction_items: pd.DataFrame
    customers: dict[str, pd.DataFrame]  # "crm", "booking", "billing"
    offers: pd.DataFrame
    offer_log: pd.DataFrame
    truth: dict[str, pd.DataFrame]  # "guests", "identities", "offer_acceptance", "offer_options"
    shifts: tuple[Shift, ...] = ()  # the shifts in effect, written to truth/shifts.json
    hotels: pd.DataFrame = field(default_factory=lambda: pd.DataFrame())  # the hotels catalogue
