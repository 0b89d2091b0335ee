"""Diagnostics of a fitted purchase model that lifetimes and pymc-marketing users expect to see: P(alive)
and expected purchases over a grid of frequency and recency (for a customer observed for the longest
calibration period of the data), drawn as two heat maps side by side.

A cell is a possible history: no repeat purchase means recency 0, and a repeat purchase needs recency
above 0; impossible cells are left blank. lifetimes draws the same matrices
(``plot_probability_alive_matrix``, ``plot_frequency_recency_matrix``) from its own fitters; these
come from ``CLVModel`` (all three purchase models) on our plot style.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from crm_analytics.models.clv.model import CLVModel
from crm_analytics.models.plots import STYLE

GRID_CELLS = 40  # frequency and recency values per axis at most
NAMES = {"bgnbd": "BG/NBD", "pareto": "Pareto/NBD", "mbgnbd": "MBG/NBD"}


def frequency_recency_grid(max_frequency: int, T: float, cells: int = GRID_CELLS) -> pd.DataFrame:
    """Every (frequency, recency) cell of the matrices, with T; impossible cells are left out."""
    frequencies = np.unique(np.linspace(0, max_frequency, min(cells, max_frequency + 1)).round())
    recencies = np.linspace(0, T, cells)
    rows = [
        (f, r)
        for f in frequencies
        for r in recencies
        if (f == 0) == (r == 0)  # no repeat purchase: recency 0; a repeat purchase: recency > 0
    ]
    grid = pd.DataFrame(rows, columns=["frequency", "recency"])
    return grid.assign(T=float(T))


def alive_and_expected_matrices(
    model: CLVModel, summary: pd.DataFrame, horizon: float, time_unit: str
) -> tuple[Figure, pd.DataFrame]:
    """The two heat maps for ``model`` over the range of ``summary`` (frequency up to its 99th
    percentile, T its largest), and the grid with ``p_alive`` and ``expected`` (purchases in the next
    ``horizon`` time units) per cell."""
    max_frequency = max(1, int(np.ceil(summary["frequency"].quantile(0.99))))
    T = float(summary["T"].max())
    grid = frequency_recency_grid(max_frequency, T)
    grid["p_alive"] = model.probability_alive(grid)
    grid["expected"] = model.expected_purchases(grid, horizon)
    fig = Figure(figsize=(STYLE.width_in * 1.6, STYLE.height_in), dpi=STYLE.dpi, layout="constrained")
    fig.set_facecolor("white")
    name = NAMES.get(model.purchase_model, model.purchase_model)
    fig.suptitle(
        f"{name}: a customer observed for {T:.1f} {time_unit}",
        fontsize=STYLE.title_size,
        fontweight="bold",
    )
    panels = (
        ("p_alive", "P(alive) at the end of the calibration period", "Blues"),
        ("expected", f"expected purchases in the next {horizon:g} {time_unit}", "Oranges"),
    )
    for position, (column, title, colours) in enumerate(panels, start=1):
        matrix = grid.pivot(index="frequency", columns="recency", values=column)
        ax = fig.add_subplot(1, 2, position, label=column)
        image = ax.pcolormesh(
            matrix.columns.to_numpy(float),
            matrix.index.to_numpy(float),
            np.ma.masked_invalid(matrix.to_numpy(float)),
            cmap=colours,
            shading="nearest",
        )
        fig.colorbar(image, ax=ax)
        ax.set_title(title, fontsize=STYLE.panel_title_size, loc="left")
        ax.set_xlabel(f"recency ({time_unit})", fontsize=STYLE.label_size)
        ax.set_ylabel("frequency (repeat purchases)", fontsize=STYLE.label_size)
        ax.tick_params(labelsize=STYLE.tick_size)
    return fig, grid
