"""The promotion gate's statistics: a candidate replaces the champion only on evidence noise cannot fake.

Both versions score the same customers of the comparison window (the holdout both were judged on, which
neither was trained or selected on). The candidate must beat the champion on the family's primary metric
by at least a minimum gain (a Setting), with the paired bootstrap 95% interval of the difference above
zero, and no guard metric (calibration, top-decile capture, ...) may get worse beyond its tolerance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from crm_analytics.models.metrics import bootstrap_difference

GATE_BOOTSTRAP_SAMPLES = 1000


@dataclass(frozen=True)
class Guard:
    """A metric that may not get worse by more than ``tolerance``."""

    name: str
    metric: Callable[[np.ndarray, np.ndarray], float]
    tolerance: float
    higher_is_better: bool = True


@dataclass(frozen=True)
class Judged:
    """What one version predicted for the comparison window's customers, and what they did."""

    labels: np.ndarray
    scores: np.ndarray


@dataclass(frozen=True)
class Evidence:
    """The gate's figures for one candidate against the champion, and its verdict."""

    metric: str
    candidate: float
    champion: float
    difference: float
    low: float
    high: float
    min_gain: float
    customers: int
    guards: dict[str, dict[str, Any]] = field(default_factory=dict)
    passed: bool = False
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def weigh(
    metric_name: str,
    metric: Callable[[np.ndarray, np.ndarray], float],
    candidate: Judged,
    champion: Judged,
    min_gain: float,
    guards: tuple[Guard, ...] = (),
    seed: int = 0,
    samples: int = GATE_BOOTSTRAP_SAMPLES,
    refit: bool = False,
) -> Evidence:
    """The paired bootstrap of ``metric(candidate) - metric(champion)`` on the same customers, the
    minimum gain and the guards (``metric`` higher is better). ``refit``: the candidate is the champion's
    configuration trained again on newer mature labels (both refitted alike score the same): it passes
    unless a guard fails, there being no configuration to choose between."""
    if not np.array_equal(candidate.labels, champion.labels):
        raise ValueError("labels: the candidate and the champion must be judged on the same customers")
    labels = candidate.labels
    interval = bootstrap_difference(labels, candidate.scores, champion.scores, metric, samples, seed)
    ours, theirs = metric(labels, candidate.scores), metric(labels, champion.scores)
    checked = {}
    for guard in guards:
        new, old = guard.metric(labels, candidate.scores), guard.metric(labels, champion.scores)
        worse_by = (old - new) if guard.higher_is_better else (new - old)
        checked[guard.name] = {
            "candidate": new,
            "champion": old,
            "tolerance": guard.tolerance,
            "worse_by": worse_by,
            "ok": bool(worse_by <= guard.tolerance),
        }
    failed = [name for name, row in checked.items() if not row["ok"]]
    gain = interval["difference"]
    bounds = f"[{interval['low']:+.4f}, {interval['high']:+.4f}]"
    defined = all(np.isfinite([ours, theirs, gain, interval["low"], interval["high"]]))
    if not defined:  # constant scores: no rank correlation, nothing to weigh
        reason = f"{metric_name} is not defined on this window for one of the versions (constant scores?)"
    elif refit and not failed:
        reason = (
            f"the champion's configuration refit on newer mature labels ({metric_name} {ours:.4f} on the "
            "window, as the champion's refit): a refit, not a new configuration"
        )
    elif gain < min_gain and not refit:
        reason = f"{metric_name} gains {gain:+.4f} {bounds}, less than the minimum {min_gain:+.4f}"
    elif interval["low"] <= 0 and not refit:
        reason = f"{metric_name} gains {gain:+.4f} but its 95% interval {bounds} includes no gain"
    elif failed:
        reason = "; ".join(
            f"{name} worse by {checked[name]['worse_by']:.4f} (tolerance {checked[name]['tolerance']})"
            for name in failed
        )
    else:
        reason = f"{metric_name} {gain:+.4f} {bounds}, at least {min_gain:+.4f}; no guard worse"
    return Evidence(
        metric=metric_name,
        candidate=ours,
        champion=theirs,
        difference=gain,
        low=interval["low"],
        high=interval["high"],
        min_gain=min_gain,
        customers=len(labels),
        guards=checked,
        passed=bool(defined and not failed and (refit or (gain >= min_gain and interval["low"] > 0))),
        reason=reason,
    )
