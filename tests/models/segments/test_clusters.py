"""Behavioural clusters: planted groups found and named, stored transforms, stable only where structured."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score

from crm_analytics.datasets.demo import DemoConfig, generate_demo, write_demo
from crm_analytics.features.build import FeatureConfig, feature_table
from crm_analytics.models.segments.clusters import (
    DEFAULT_COLUMNS,
    LOG_COLUMNS,
    SILHOUETTE_TIE,
    BehaviourClusters,
    cluster_names,
    feature_words,
)
from crm_analytics.warehouse import Warehouse
from tests.features.conftest import load

PLANTED = ("high spa uptake", "long stays", "frequent")  # what sets groups 0, 1, 2 apart


def planted(n_per_group: int = 300, seed: int = 0) -> pd.DataFrame:
    """Three groups: spa lovers, long stayers, frequent guests; every other column is the same noise."""
    rng = np.random.default_rng(seed)
    group = np.repeat([0, 1, 2], n_per_group)
    n = len(group)
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "frequency": rng.poisson(np.where(group == 2, 25.0, 1.0)).astype(float),
            "days_since_last": rng.uniform(0, 400, n),
            "spend_total": rng.lognormal(7, 0.3, n),
            "monetary_value": rng.lognormal(5, 0.3, n),
            "gap_mean_days": rng.uniform(10, 90, n),
            "nights_mean": np.where(group == 1, rng.normal(8, 0.5, n), rng.normal(2, 0.3, n)),
            "guests_mean": rng.uniform(1, 3, n),
            "lead_time_days_mean": rng.uniform(0, 60, n),
            "business_share": rng.uniform(0, 1, n),
            "share_channel_web": rng.uniform(0, 1, n),
            "extras_rate_spa": np.clip(np.where(group == 0, 0.85, 0.03) + rng.normal(0, 0.04, n), 0, 1),
            "extras_rate_breakfast": rng.uniform(0, 1, n),
        },
        index=pd.Index(np.arange(n) * 7 + 3, name="row"),
    )
    frame["share_channel_ota"] = 1 - frame["share_channel_web"]
    frame.attrs["group"] = group
    return frame


def noise(n: int = 900, seed: int = 0) -> pd.DataFrame:
    """The same columns without any structure: independent Gaussians."""
    columns = [c for c in planted(1).columns if c != "customer_id"]
    values = np.random.default_rng(seed).normal(0, 1, (n, len(columns)))
    return pd.DataFrame(values, columns=columns)


@pytest.fixture(scope="module")
def fitted() -> tuple[pd.DataFrame, BehaviourClusters]:
    features = planted()
    return features, BehaviourClusters(seed=1).fit(features)


def test_k_selection_finds_the_planted_groups_and_names_them(
    fitted: tuple[pd.DataFrame, BehaviourClusters],
) -> None:
    features, model = fitted
    assert sorted(model.k_scores_) == [3, 4, 5, 6, 7, 8]
    assert model.k_ == 3 == max(model.k_scores_, key=model.k_scores_.__getitem__)
    assert adjusted_rand_score(features.attrs["group"], model.labels_) == pytest.approx(1.0)
    for group, words in enumerate(PLANTED):
        cluster = int(np.bincount(model.labels_[features.attrs["group"] == group]).argmax())
        assert words in model.cluster_names_[cluster].split(", ")
        others = [name for c, name in model.cluster_names_.items() if c != cluster]
        assert not any(words in name.split(", ") for name in others)
    profile = model.profile_
    assert profile["size"].tolist() == [300, 300, 300]
    assert profile["share"].sum() == pytest.approx(1.0)
    assert profile["cluster_name"].to_dict() == model.cluster_names_
    spa_cluster = next(c for c, name in model.cluster_names_.items() if "high spa uptake" in name)
    assert profile.loc[spa_cluster, "extras_rate_spa"] == pytest.approx(0.85, abs=0.02)


def test_predictions_reproduce_the_fit_labels_on_the_input_index(
    fitted: tuple[pd.DataFrame, BehaviourClusters],
) -> None:
    features, model = fitted
    np.testing.assert_array_equal(model.predict(features), model.labels_)
    out = model.transform(features)
    assert out.index.equals(features.index)
    assert list(out.columns) == ["cluster", "cluster_name"]
    assert (out["cluster_name"] == out["cluster"].map(model.cluster_names_)).all()
    assert repr(model) == "BehaviourClusters(k_range=(3, 8), seed=1, k=3, fitted)"


def test_the_same_seed_gives_the_same_segmentation() -> None:
    features = planted(seed=5).sample(frac=1.0, random_state=0)  # shuffled: ids must not depend on order
    first, second = BehaviourClusters(seed=7).fit(features), BehaviourClusters(seed=7).fit(features)
    np.testing.assert_array_equal(first.labels_, second.labels_)
    assert first.definition() == second.definition()
    sizes = first.profile_["size"].to_numpy()
    assert (np.diff(sizes) <= 0).all()  # cluster 0 is the largest


def test_a_single_new_row_lands_where_it_did_in_the_population(
    fitted: tuple[pd.DataFrame, BehaviourClusters],
) -> None:
    features, model = fitted
    with_gaps = features.copy()
    with_gaps.loc[with_gaps.index[::5], "gap_mean_days"] = np.nan  # imputed with the fit-time median
    population = model.predict(with_gaps)
    for position in (0, 5, 310, 615, 899):
        single = with_gaps.iloc[[position]]
        assert model.predict(single)[0] == population[position]
    one_group = features[features.attrs["group"] == 1]  # its own statistics would scramble everything
    assert set(model.predict(one_group)) == {int(np.bincount(model.labels_[300:600]).argmax())}


def test_split_half_stability_is_high_for_planted_groups_and_low_for_noise(
    fitted: tuple[pd.DataFrame, BehaviourClusters],
) -> None:
    features, model = fitted
    planted_check = model.split_half_stability(features)
    assert planted_check["ari"] > 0.98
    assert planted_check["k_halves"] == [3, 3]  # each half finds the three planted groups again
    assert all(model.k_stability_[k] <= 1 for k in model.k_stability_)
    assert model.k_stability_[3] > 0.98
    data = noise()
    noise_check = BehaviourClusters(seed=1).fit(data).split_half_stability(data)
    assert noise_check["ari"] < 0.75
    assert noise_check["ari"] < planted_check["ari"] - 0.25


def test_k_is_chosen_among_stable_k_with_ties_to_the_fewest() -> None:
    """Silhouettes within SILHOUETTE_TIE are a tie won by the smallest stable k; a k that is not stable
    is never chosen while a stable one exists."""
    model = BehaviourClusters(seed=1).fit(planted())
    stable = [k for k, ari in model.k_stability_.items() if ari >= model.min_stability]
    assert model.k_ in stable
    best = max(model.k_scores_[k] for k in stable)
    assert model.k_ == min(k for k in stable if model.k_scores_[k] >= best - SILHOUETTE_TIE)
    strict = BehaviourClusters(seed=1, min_stability=1.01).fit(planted())  # nothing is that stable
    assert strict.k_ == max(strict.k_stability_, key=lambda k: (strict.k_stability_[k], -k))


def test_all_null_columns_are_dropped() -> None:
    features = planted().assign(guests_mean=np.nan, extras_rate_golf=np.nan)
    model = BehaviourClusters(seed=1).fit(features)
    assert "guests_mean" not in model.columns_
    assert "extras_rate_golf" not in model.columns_
    assert "extras_rate_spa" in model.columns_
    assert model.k_ == 3
    assert model.predict(features.drop(columns=["guests_mean", "extras_rate_golf"])).shape == (900,)


def test_columns_can_be_chosen_and_patterns_weigh_as_one_column() -> None:
    features = planted()
    model = BehaviourClusters(columns=["nights_mean", "extras_rate_*", "frequency"], seed=1).fit(features)
    assert model.columns_ == ["nights_mean", "extras_rate_spa", "extras_rate_breakfast", "frequency"]
    np.testing.assert_allclose(model.weights_, [1, 2**-0.5, 2**-0.5, 1])
    assert model.k_ == 3
    assert all(w == 1 for w in BehaviourClusters(balance_families=False).fit(features).weights_)
    assert set(DEFAULT_COLUMNS) >= {"frequency", "nights_mean", "share_channel_*", "extras_rate_*"}


def test_a_missing_column_is_a_value_error_naming_it(
    fitted: tuple[pd.DataFrame, BehaviourClusters],
) -> None:
    features, model = fitted
    with pytest.raises(ValueError, match="missing column 'nights_mean'"):
        BehaviourClusters().fit(features.drop(columns=["nights_mean"]))
    with pytest.raises(ValueError, match="missing column 'loyalty_tier'"):
        BehaviourClusters(columns=["frequency", "loyalty_tier"]).fit(features)
    with pytest.raises(ValueError, match="missing column 'extras_rate_spa'"):
        model.predict(features.drop(columns=["extras_rate_spa"]))
    with pytest.raises(ValueError, match="column 'customer_id' is not numeric"):
        BehaviourClusters(columns=["frequency", "customer_id"]).fit(features)


@pytest.mark.parametrize(
    ("params", "match"),
    [({"k_range": (1, 4)}, "k_range"), ({"n_init": 0}, "n_init"), ({"sample_size": 10}, "sample_size")],
)
def test_invalid_parameters_are_named(params: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BehaviourClusters(**params).fit(planted(20))


def test_an_unfitted_model_says_so() -> None:
    model = BehaviourClusters()
    assert "not fitted" in repr(model)
    for call in (model.predict, model.transform, model.split_half_stability):
        with pytest.raises(NotFittedError, match="not fitted yet; call fit first"):
            call(planted(5))
    with pytest.raises(NotFittedError, match="not fitted"):
        model.definition()


def test_the_definition_is_json_and_rebuilds_the_model(
    fitted: tuple[pd.DataFrame, BehaviourClusters],
) -> None:
    features, model = fitted
    definition = model.definition()
    assert json.loads(json.dumps(definition, allow_nan=False)) == definition
    assert definition["k"] == 3
    assert len(definition["centroids"]) == 3
    assert set(definition["medians"]) == set(definition["scaler"]["mean"]) == set(model.columns_)
    assert definition["transforms"]["log1p"] == list(LOG_COLUMNS)
    rebuilt = BehaviourClusters.from_definition(json.loads(json.dumps(definition)))
    pd.testing.assert_frame_equal(rebuilt.transform(features), model.transform(features))
    assert rebuilt.definition() == definition


def test_names_read_as_words_and_are_unique() -> None:
    assert feature_words("frequency", 1.2) == "frequent"
    assert feature_words("lead_time_days_mean", -0.4) == "last-minute"
    assert feature_words("share_channel_ota", 0.9) == "mostly ota"
    assert feature_words("extras_rate_late_checkout", -1.0) == "low late checkout uptake"
    assert feature_words("loyalty_points_total", 2.0) == "high loyalty points"  # fallback from the name
    centroids = np.array([[2.0, -1.0, 0.1], [1.5, -0.5, 0.0], [1.0, -0.9, 0.2], [0.1, 0.2, -3.0]])
    names = cluster_names(centroids, ["nights_mean", "frequency", "business_share"])
    assert names == {
        0: "long stays, infrequent",
        1: "long stays, infrequent #2",
        2: "long stays, infrequent #3",
        3: "leisure, frequent",
    }


@pytest.fixture(scope="module")
def demo_features(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    folder = tmp_path_factory.mktemp("clusters_demo")
    write_demo(generate_demo(DemoConfig(customers=1_500, seed=3)), folder / "raw")
    with Warehouse(f"duckdb:///{folder / 'warehouse.duckdb'}") as warehouse:
        load(warehouse, folder / "raw")
        table = feature_table(warehouse.ibis, FeatureConfig(as_of=date(2025, 6, 30))).execute()
    return table.set_index("customer_id")


def test_demo_clusters_are_named_stable_and_cover_everyone(demo_features: pd.DataFrame) -> None:
    model = BehaviourClusters(seed=0).fit(demo_features)
    assert len(set(model.cluster_names_.values())) == model.k_  # every cluster has a name of its own
    assert {"share_channel_ota", "extras_rate_spa"} <= set(model.columns_)
    out = model.transform(demo_features)
    assert out.index.equals(demo_features.index)
    assert out["cluster"].notna().all()
    assert model.profile_["size"].sum() == len(demo_features)
    stable = [k for k, ari in model.k_stability_.items() if ari >= model.min_stability]
    most_stable = max(model.k_stability_, key=lambda k: (model.k_stability_[k], -k))
    assert model.k_ in stable or (not stable and model.k_ == most_stable)  # 1,500 guests: none may be
    json.dumps(model.definition(), allow_nan=False)


def test_a_handful_of_customers_is_unstable_not_an_error() -> None:
    """Twelve customers: k of 4-8 cannot be told apart in halves of six and score 0, nothing is stable,
    and the whole-procedure check says 0 instead of raising (the build then refuses the clustering)."""
    few = planted().iloc[::75].head(12)
    model = BehaviourClusters(seed=1).fit(few)
    assert all(model.k_stability_[k] == 0.0 for k in range(4, 9))
    assert max(model.k_stability_.values()) < model.min_stability
    assert model.split_half_stability(few) == {"ari": 0.0, "k_halves": [0, 0]}


def test_fitting_on_a_sample_assigns_everyone_as_the_full_fit_does() -> None:
    """Above ``fit_rows`` the centroids come from a seeded sample and every row is assigned: the same k
    and (up to cluster numbering) the same segments as a fit on all rows."""
    features = planted(n_per_group=800)
    full = BehaviourClusters(seed=1).fit(features)
    sampled = BehaviourClusters(seed=1, fit_rows=600).fit(features)
    assert sampled.k_ == full.k_ == 3
    assert len(sampled.labels_) == len(features)
    assert adjusted_rand_score(full.labels_, sampled.labels_) > 0.99
    assert adjusted_rand_score(features.attrs["group"], sampled.labels_) > 0.99
    gaps = np.abs(sampled.centroids_[:, None, :] - full.centroids_[None, :, :]).max(axis=2).min(axis=1)
    assert gaps.max() < 0.2  # each centroid near one of the full fit's (numbering aside)...
    assert gaps.min() > 0  # ...but learnt on the sample
    assert sampled.definition()["params"]["fit_rows"] == 600
    with pytest.raises(ValueError, match="fit_rows"):
        BehaviourClusters(fit_rows=10).fit(features)
