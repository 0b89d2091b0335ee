"""The random draws behind the CLV distribution (``uncertainty``): a customer pattern's future purchases
and a customer's spend, one row per pattern or customer and one column per draw.

Parameter uncertainty (a Laplace approximation): when the model carries ``parameter_sets_`` (see
``CLVModel.add_parameter_uncertainty``: purchase-model parameters drawn from the normal approximation of
their log-likelihood at the estimate, on the log scale), the draws are split into as many equal groups
and each group is simulated with its own parameters (P(alive) and the posteriors included), so the
intervals carry the uncertainty of the fit as well as each customer's own.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm_analytics.models.clv.model import PATTERN, CLVModel


@dataclass(frozen=True)
class Horizon:
    """The months a horizon is cut into: each one's length (periods) and discount factor."""

    lengths: np.ndarray
    discounts: np.ndarray

    @classmethod
    def of(cls, periods: float, per_month: float, discount_rate: float) -> Horizon:
        months = max(1, math.ceil(periods / per_month - 1e-9))
        lengths = np.full(months, per_month)
        lengths[-1] = periods - (months - 1) * per_month
        return cls(lengths, (1 + discount_rate) ** -np.arange(1.0, months + 1))


def purchase_draws(
    model: CLVModel, patterns: pd.DataFrame, horizon: Horizon, draws: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Future purchases N and their discounted count D = sum_k n_k (1+d)^-k, each (patterns x draws):
    with the fitted parameters, or each group of draws with one of the model's parameter sets."""
    sets: list[Mapping[str, float]] = getattr(model, "parameter_sets_", None) or [model.purchases_.params_]
    purchases, weighted = np.zeros((len(patterns), draws), dtype=np.int32), np.zeros((len(patterns), draws))
    for params, columns in zip(sets, np.array_split(np.arange(draws), len(sets)), strict=True):
        if len(columns):
            bought, discounted = _draws_at(model, params, patterns, horizon, len(columns), rng)
            purchases[:, columns], weighted[:, columns] = bought, discounted
    return purchases, weighted


def _alive_at(model: CLVModel, params: Mapping[str, float], patterns: pd.DataFrame) -> np.ndarray:
    """P(alive) of each pattern under ``params`` (the fitted model's own when they are its estimates)."""
    if params is model.purchases_.params_:
        return model.probability_alive(patterns[PATTERN])
    fitter = copy.copy(model.purchases_)
    fitter.params_ = pd.Series(params)
    alive = fitter.conditional_probability_alive(
        *(patterns[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    )
    return np.asarray(alive, dtype=float)


def _draws_at(
    model: CLVModel,
    params: Mapping[str, float],
    patterns: pd.DataFrame,
    horizon: Horizon,
    draws: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """``purchase_draws`` with one set of parameters. Only the draws in which the customer is alive at
    T are simulated."""
    shape = (len(patterns), draws)
    x, T = (np.broadcast_to(patterns[c].to_numpy(float)[:, None], shape) for c in ("frequency", "T"))
    alive = rng.random(shape) < _alive_at(model, params, patterns)[:, None]
    x, T = x[alive], T[alive]
    rate = rng.gamma(params["r"] + x, 1 / (params["alpha"] + T))
    count = np.zeros(len(x), dtype=np.int64)
    discounted = np.zeros(len(x))
    if model.purchase_model == "pareto":
        lifetime = rng.exponential(size=len(x)) / rng.gamma(params["s"], 1 / (params["beta"] + T))
        month_start = 0.0
        for length, discount in zip(horizon.lengths, horizon.discounts, strict=True):
            exposure = np.clip(lifetime - month_start, 0.0, length)
            bought = rng.poisson(rate * exposure)
            count += bought
            discounted += bought * discount
            month_start += length
    else:
        extra = 1.0 if model.purchase_model == "mbgnbd" else 0.0  # MBG/NBD may also drop out at time 0
        dropout = np.maximum(rng.beta(params["a"], params["b"] + x + extra), 1e-12)
        limit = rng.geometric(dropout)  # purchases made before dying: 1, 2, ...
        wanted = np.zeros(len(x), dtype=np.int64)
        for length, discount in zip(horizon.lengths, horizon.discounts, strict=True):
            wanted += rng.poisson(rate * length)
            made = np.minimum(wanted, limit)
            discounted += (made - count) * discount
            count = made
    purchases, weighted = np.zeros(shape, dtype=np.int32), np.zeros(shape)
    purchases[alive], weighted[alive] = count, discounted
    return purchases, weighted


def spend_draws(
    model: CLVModel,
    frequency: np.ndarray,
    monetary: np.ndarray,
    purchases: np.ndarray,
    discounted: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Discounted spend of the simulated purchases, (customers x draws); 0 without purchases."""
    p, q, v = (float(model.spend_.params_[k]) for k in ("p", "q", "v"))
    value = np.zeros(purchases.shape)
    bought = purchases > 0
    customer = np.repeat(np.arange(len(purchases)), bought.sum(axis=1))  # the row of each True, in order
    n = purchases[bought]
    # nu ~ Gamma(p x + q, rate v + x m); the spend of n purchases is Gamma(n p, rate nu)
    nu = rng.gamma(p * frequency[customer] + q) / (v + frequency[customer] * monetary[customer])
    value[bought] = rng.gamma(n * p) / nu * discounted[bought] / n
    return value
