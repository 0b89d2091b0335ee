"""The drift statistics against values worked by hand and against their own noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from crm_analytics.monitoring.distributions import compare_categories, compare_numbers, psi


def test_psi_matches_the_formula_worked_by_hand() -> None:
    # (0.25 - 0.5) ln(0.25 / 0.5) + (0.75 - 0.5) ln(0.75 / 0.5)
    assert psi(np.array([0.5, 0.5]), np.array([0.25, 0.75])) == pytest.approx(
        0.25 * np.log(2) + 0.25 * np.log(1.5)
    )
    assert psi(np.array([0.3, 0.7]), np.array([0.3, 0.7])) == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_compare_numbers_finds_nothing_between_two_draws_of_one_distribution(seed: int) -> None:
    rng = np.random.default_rng(seed)
    compared = compare_numbers(rng.lognormal(5, 0.4, 20_000), rng.lognormal(5, 0.4, 1_500))
    assert compared.distance < 0.05
    assert compared.p_value > 1e-5
    assert compared.psi < 0.02
    assert sum(compared.reference_shares) == pytest.approx(1.0)
    assert len(compared.labels) == len(compared.reference_shares) == 10  # the reference's deciles


def test_compare_numbers_measures_a_shift_of_half_a_standard_deviation() -> None:
    rng = np.random.default_rng(0)
    compared = compare_numbers(rng.normal(0, 1, 50_000), rng.normal(0.5, 1, 50_000))
    # D of two unit normals half a standard deviation apart: 2 Phi(0.25) - 1
    assert compared.distance == pytest.approx(2 * stats.norm.cdf(0.25) - 1, abs=0.01)
    assert compared.p_value < 1e-10
    assert compared.current_shares[-1] > 0.2  # the top reference decile holds twice its share


def test_compare_numbers_drops_missing_values_and_merges_tied_bins() -> None:
    reference = np.array([0, 0, 0, 1, 1, 2, np.nan] * 20, dtype=float)
    compared = compare_numbers(reference, np.array([0, 1, 2, 2, np.nan] * 20, dtype=float))
    assert (compared.rows, compared.reference_rows) == (80, 120)
    assert len(compared.labels) <= 3  # a count of three values has at most three bins


def test_compare_categories_gives_total_variation_and_the_chi_square_test() -> None:
    reference = pd.Series({"direct": 500, "ota": 500})
    current = pd.Series({"direct": 25, "ota": 70, "phone": 5})
    compared = compare_categories(reference, current)
    assert compared.labels == ("direct", "ota", "phone")
    assert compared.distance == pytest.approx((0.25 + 0.20 + 0.05) / 2)
    table = np.array([[500, 500, 0], [25, 70, 5]])
    assert compared.p_value == pytest.approx(stats.chi2_contingency(table, correction=False).pvalue)
    assert (compared.rows, compared.reference_rows) == (100, 1_000)


def test_compare_categories_of_one_category_is_no_change() -> None:
    compared = compare_categories(pd.Series({"web": 10}), pd.Series({"web": 3}))
    assert (compared.distance, compared.p_value) == (0.0, 1.0)
