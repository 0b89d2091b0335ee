"""The P(alive) and expected-purchases matrices: possible histories only, the values the model gives,
and the shapes BTYD theory fixes (a BG/NBD customer without repeat purchases is alive; the later the
last purchase, the likelier alive and the more purchases expected)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analytics.models.clv.diagnostics import alive_and_expected_matrices, frequency_recency_grid
from crm_analytics.models.clv.model import CLVModel


def test_the_grid_holds_possible_histories_only() -> None:
    grid = frequency_recency_grid(12, 39.0, cells=10)
    assert set(grid.loc[grid["frequency"] == 0, "recency"]) == {0.0}
    assert (grid.loc[grid["frequency"] > 0, "recency"] > 0).all()
    assert grid["recency"].max() == pytest.approx(39.0)
    assert (grid["T"] == 39.0).all()


@pytest.mark.parametrize("purchase_model", ["bgnbd", "pareto"])
def test_the_matrices_show_the_models_values(cdnow_weeks: pd.DataFrame, purchase_model: str) -> None:
    model = CLVModel(purchase_model).fit(cdnow_weeks)
    figure, grid = alive_and_expected_matrices(model, cdnow_weeks, 39.0, "weeks")
    np.testing.assert_allclose(grid["p_alive"], model.probability_alive(grid))
    np.testing.assert_allclose(grid["expected"], model.expected_purchases(grid, 39.0))
    if purchase_model == "bgnbd":  # BG/NBD: dropout only after a purchase
        assert np.allclose(grid.loc[grid["frequency"] == 0, "p_alive"], 1.0)
    for _, by_recency in grid[grid["frequency"] > 0].groupby("frequency"):
        ordered = by_recency.sort_values("recency")
        assert (np.diff(ordered["p_alive"]) >= -1e-12).all()
        assert (np.diff(ordered["expected"]) >= -1e-12).all()
    panels = {ax.get_label(): ax for ax in figure.axes}
    for column in ("p_alive", "expected"):
        drawn = panels[column].collections[0].get_array()
        matrix = grid.pivot(index="frequency", columns="recency", values=column)
        np.testing.assert_allclose(
            np.ma.filled(drawn, np.nan).ravel(), matrix.to_numpy().ravel(), equal_nan=True
        )
