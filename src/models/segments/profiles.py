"""Segment profiles for marketing: size, value, churn and what sets each segment apart, as a table and a plot.

"What sets it apart" are the behaviours whose segment mean differs most from the population's, in
population standard deviations (z), each named with its sign: ``spend_total +1.8`` means the segment
spends 1.8 standard deviations more than the average customer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from crm_analytics.models.inputs import model_inputs, usable_columns

TOP_BEHAVIOURS = 3


def segment_profile(features: pd.DataFrame, scores: pd.DataFrame, segments: pd.Series) -> pd.DataFrame:
    """One row per segment: customers, share, mean CLV and churn probability, top distinguishing behaviours.

    ``features``, ``scores`` (clv, churn_probability) and ``segments`` share one index (customers).
    """
    inputs = model_inputs(features)
    inputs = inputs[usable_columns(inputs)]
    spread = inputs.std(ddof=0).replace(0.0, np.nan)
    z = (inputs.groupby(segments).mean() - inputs.mean()) / spread
    grouped = scores.groupby(segments)
    profile = pd.DataFrame(
        {
            "customers": segments.value_counts(),
            "mean_clv": grouped["clv"].mean(),
            "mean_churn_probability": grouped["churn_probability"].mean(),
        }
    )
    profile["share"] = profile["customers"] / profile["customers"].sum()
    profile["top_behaviours"] = [
        ", ".join(f"{name} {value:+.1f}" for name, value in _largest(z.loc[segment]))
        for segment in profile.index
    ]
    profile.index.name = "segment"
    return profile.sort_values("customers", ascending=False)


def _largest(row: pd.Series) -> list[tuple[str, float]]:
    ranked = row.dropna().abs().sort_values(ascending=False).index[:TOP_BEHAVIOURS]
    return [(str(name), float(row[name])) for name in ranked]


def profile_plot(profile: pd.DataFrame, title: str) -> Figure:
    """Each segment as a bubble: churn probability across, mean CLV up, area = customers."""
    figure = Figure(figsize=(8, 5), dpi=100, layout="constrained")
    ax = figure.add_subplot()
    sizes = 2_000 * profile["share"].to_numpy() + 30
    ax.scatter(
        profile["mean_churn_probability"],
        profile["mean_clv"],
        s=sizes,
        alpha=0.45,
        color="#1f77b4",
        edgecolor="#0b3c5d",
    )
    for segment, row in profile.iterrows():
        ax.annotate(
            f"{segment}\n{row['customers']:,} ({row['share']:.0%})",
            (row["mean_churn_probability"], row["mean_clv"]),
            ha="center",
            va="center",
            fontsize=8,
        )
    ax.set_xlabel("mean churn probability")
    ax.set_ylabel("mean 12-month CLV")
    ax.set_xlim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    figure.suptitle(title, fontweight="bold")
    return figure
