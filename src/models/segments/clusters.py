"""Behavioural clusters for marketing: k-means on how customers buy, each cluster named by what sets it apart.

Pipeline (all statistics learned at fit time and stored, so one new row is placed as in the population):
columns (``DEFAULT_COLUMNS``; ``*`` patterns match the data's channels and extras) -> all-null columns
dropped -> nulls imputed with the fit-time median -> ``log1p`` on the skewed money/count/day columns
(``LOG_COLUMNS``, negatives clipped to 0) -> standardised -> weighted so that each ``*`` family (the
channel shares, the extras rates) counts as one column in distances (each member 1/sqrt(family size);
``balance_families=False`` turns it off) -> nearest of the stored centroids. Without that balance the
14 demo share/uptake columns outvote the 9 core ones: k then flips with the seed between 3 and 7 and
the clusters follow the one channel one-time guests booked (mean bootstrap ARI 0.4-0.85); with it k=3
for every seed, silhouette 0.15 instead of 0.07, ARI about 0.9.

Why k-means and not a Gaussian mixture: it is linear in rows, its hard assignments are what marketing
uses, the centroids alone rebuild it (``definition``) and silhouette, the k criterion, is a distance
criterion of the same geometry. Measured on the demo features (k=3): a full-covariance mixture took
400 s for one k on 200k rows (k-means: 10 s for six) and its bootstrap ARI was 0.51 (k-means 0.90);
the share and uptake columns pile up at exactly 0 and 1, which a Gaussian fits badly.

At scale the centroids are learnt on a seeded sample of ``fit_rows`` rows (100,000) and every customer
is assigned to the nearest: on the 1M-guest demo the six k-means fits over all rows took 34 s of the
segments build's 102 s (cProfile, 2026-12-07). Centroids of k <= 8 clusters from 100,000 rows differ
from the full fit's by sampling noise only; ``benchmarks/segments_scale.py`` compares the two
labelings at 1M (ARI).

Choice of k, by stability as well as silhouette: for each candidate k, the silhouette score (cohesion
against separation, no labels needed) of its fit on a fixed seeded sample of ``sample_size`` rows, and
its split-half ARI (k-means at that k fitted on two random halves of up to ``stability_rows`` rows, the
two labelings of all those rows compared; mean of ``stability_repeats`` splits). Among the k at least
``min_stability`` stable the best silhouette wins, silhouettes within ``SILHOUETTE_TIE`` of it counting
as a tie won by the smallest k; when no k is stable, the most stable. On the demo chain (20,435 guests)
silhouettes differ by .001-.008 across k = 3..7, so silhouette alone chose k = 5 on one half and 3 on
the other (ARI .49); k = 3 is stable (split-half ARI .87-.93), the others vary from split to split.
``split_half_stability`` then checks the whole procedure: refitted on two halves, k re-chosen on each,
how far the two clusterings agree (the segments build refuses to register below a Setting).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, pairwise_distances_argmin, silhouette_score
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from crm_analytics.models.inputs import NOT_FITTED, check_frame

DEFAULT_COLUMNS = (  # behaviour, not tenure: T and recency say when someone arrived, not how they buy
    *("frequency", "days_since_last", "spend_total", "monetary_value", "gap_mean_days", "nights_mean"),
    *("guests_mean", "lead_time_days_mean", "business_share", "share_channel_*", "extras_rate_*"),
)
LOG_COLUMNS = (  # long right tails: counts, money, days
    *("frequency", "days_since_last", "spend_total", "monetary_value", "gap_mean_days", "nights_mean"),
    "lead_time_days_mean",
)
# column -> (words when the cluster is above average, words when below)
LABELS = {
    "frequency": ("frequent", "infrequent"),
    "recency": ("long-standing repeaters", "no repeat history"),
    "T": ("long-tenured", "new"),
    "days_since_last": ("lapsed", "recently active"),
    "spend_total": ("high spend", "low spend"),
    "monetary_value": ("big repeat baskets", "small repeat baskets"),
    "gap_mean_days": ("long gaps", "short gaps"),
    "nights_mean": ("long stays", "short stays"),
    "guests_mean": ("large parties", "solo travellers"),
    "lead_time_days_mean": ("long lead time", "last-minute"),
    "business_share": ("business", "leisure"),
    "cancellation_rate": ("cancels often", "rarely cancels"),
}
PREFIX_LABELS = {
    "share_channel_": ("mostly {}", "rarely {}"),
    "extras_rate_": ("high {} uptake", "low {} uptake"),
}
NAME_FEATURES = 2
SILHOUETTE_TIE = 0.01  # silhouettes closer than this are a tie (demo: .134-.142 across k = 3..7)


def feature_words(column: str, z: float) -> str:
    """Words for a cluster whose mean of ``column`` is ``z`` standard deviations from the population's."""
    high, low = LABELS.get(column, ("", ""))
    for prefix, (high_template, low_template) in PREFIX_LABELS.items():
        if not high and column.startswith(prefix):
            subject = column.removeprefix(prefix).replace("_", " ")
            high, low = high_template.format(subject), low_template.format(subject)
    if not high:  # fallback: the column name as words
        subject = re.sub(r"_(mean|days|total)$", "", column).replace("_", " ")
        high, low = f"high {subject}", f"low {subject}"
    return high if z >= 0 else low


def expand_columns(features: pd.DataFrame, columns: Sequence[str]) -> dict[str, str]:
    """Names and ``*`` patterns resolved against the table, each column -> the entry that matched it.

    A missing name or a non-numeric column is a ValueError naming it; a pattern may match nothing.
    """
    resolved: dict[str, str] = {}
    for entry in columns:
        matches = [c for c in features.columns if fnmatchcase(str(c), entry)] if "*" in entry else [entry]
        for column in matches:
            if column not in features.columns:
                raise ValueError(f"missing column '{column}'")
            if not pd.api.types.is_numeric_dtype(features[column]):
                raise ValueError(f"column '{column}' is not numeric ({features[column].dtype})")
            resolved.setdefault(str(column), entry)
    return resolved


def cluster_names(centroids: np.ndarray, columns: Sequence[str]) -> dict[int, str]:
    """Each centroid (mean z-scores) named by its ``NAME_FEATURES`` largest deviations, unique with ``#n``."""
    names: dict[int, str] = {}
    for cluster, centroid in enumerate(centroids):
        top = np.argsort(-np.abs(centroid), kind="stable")[:NAME_FEATURES]
        name = ", ".join(feature_words(columns[i], float(centroid[i])) for i in top)
        taken = sum(1 for other in names.values() if other == name or other.startswith(f"{name} #"))
        names[cluster] = f"{name} #{taken + 1}" if taken else name
    return names


class BehaviourClusters(TransformerMixin, BaseEstimator):
    """k-means segments of the feature table; ``transform`` gives each customer's cluster and its name."""

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        k_range: tuple[int, int] = (3, 8),
        seed: int = 0,
        n_init: int = 4,
        sample_size: int = 5_000,
        fit_rows: int = 100_000,
        log_columns: Sequence[str] = LOG_COLUMNS,
        balance_families: bool = True,
        stability_rows: int = 20_000,
        stability_repeats: int = 2,
        min_stability: float = 0.8,
    ) -> None:
        self.columns = columns
        self.k_range = k_range
        self.seed = seed
        self.n_init = n_init
        self.sample_size = sample_size
        self.fit_rows = fit_rows
        self.log_columns = log_columns
        self.balance_families = balance_families
        self.stability_rows = stability_rows
        self.stability_repeats = stability_repeats
        self.min_stability = min_stability

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "centroids_")

    def __repr__(self) -> str:
        state = f"k={self.k_}, fitted" if self.__sklearn_is_fitted__() else "not fitted"
        return f"BehaviourClusters(k_range={tuple(self.k_range)}, seed={self.seed}, {state})"

    def _check_params(self) -> None:
        low, high = self.k_range
        if not 2 <= low <= high:
            raise ValueError(f"k_range: need 2 <= low <= high, got {tuple(self.k_range)}")
        if self.n_init < 1:
            raise ValueError(f"n_init: need at least 1, got {self.n_init}")
        if self.stability_repeats < 1:
            raise ValueError(f"stability_repeats: need at least 1, got {self.stability_repeats}")
        if self.stability_rows < 4 * high:
            raise ValueError(
                f"stability_rows: need at least {4 * high} rows to split for k={high}, "
                f"got {self.stability_rows}"
            )
        if self.fit_rows < 2 * high:
            raise ValueError(f"fit_rows: need at least {2 * high} rows to fit k={high}, got {self.fit_rows}")
        if self.sample_size < 2 * high:
            raise ValueError(
                f"sample_size: need at least {2 * high} rows to score k={high}, got {self.sample_size}"
            )

    def fit(self, features: pd.DataFrame, y: None = None) -> BehaviourClusters:
        """Learn the transforms, choose k by silhouette, name and profile the clusters (``y``: ignored)."""
        self._check_params()
        check_frame(features, "features")
        low, high = self.k_range
        if len(features) <= high:
            raise ValueError(f"features: {len(features)} rows; k_range up to {high} needs more")
        entries = expand_columns(features, self.columns or DEFAULT_COLUMNS)
        self.columns_ = [c for c in entries if features[c].notna().any()]
        if not self.columns_:
            raise ValueError(
                f"columns: none of {list(entries) or list(self.columns or DEFAULT_COLUMNS)} has a value"
            )
        family = [entries[c] if "*" in entries[c] else c for c in self.columns_]
        sizes = pd.Series(family).value_counts()
        self.weights_ = np.array([1 / np.sqrt(sizes[f]) if self.balance_families else 1.0 for f in family])
        raw = features[self.columns_].to_numpy(float)
        self.medians_ = np.nanmedian(raw, axis=0)
        self.log_columns_ = [c for c in self.columns_ if c in self.log_columns]
        logged = self._impute_log(raw)
        scaler = StandardScaler().fit(logged)  # a constant column gets scale 1
        self.mean_, self.scale_ = scaler.mean_, scaler.scale_
        matrix = scaler.transform(logged) * self.weights_
        sample = np.random.default_rng(self.seed).permutation(len(matrix))[: self.sample_size]
        fit_on = matrix  # all rows up to fit_rows (in their order), else a seeded sample of fit_rows
        if len(matrix) > self.fit_rows:
            fit_on = matrix[
                np.sort(np.random.default_rng([self.seed, 1]).permutation(len(matrix))[: self.fit_rows])
            ]
        fits: dict[int, KMeans] = {}
        self.k_scores_: dict[int, float] = {}
        for k in range(low, high + 1):
            fits[k] = self._kmeans(k, self.seed).fit(fit_on)
            labels = fits[k].predict(matrix[sample])  # equals labels_ where the fit saw every row
            usable = 1 < len(np.unique(labels)) < len(sample)
            self.k_scores_[k] = float(silhouette_score(matrix[sample], labels)) if usable else -1.0
        self.k_stability_ = {k: self._split_half_ari(matrix, k) for k in fits}
        stable = [k for k in fits if self.k_stability_[k] >= self.min_stability]
        if stable:  # silhouettes this close are noise: the fewest clusters among them
            best = max(self.k_scores_[k] for k in stable)
            self.k_ = min(k for k in stable if self.k_scores_[k] >= best - SILHOUETTE_TIE)
        else:
            self.k_ = max(fits, key=lambda k: (self.k_stability_[k], -k))
        chosen = fits[self.k_]
        assigned = chosen.labels_ if fit_on is matrix else chosen.predict(matrix)  # everyone
        order = np.argsort(-np.bincount(assigned, minlength=self.k_), kind="stable")  # 0 = largest
        self.centroids_ = chosen.cluster_centers_[order] / self.weights_  # mean z-scores
        self.labels_ = np.argsort(order)[assigned]
        self.cluster_names_ = cluster_names(self.centroids_, self.columns_)
        self.profile_ = self._profile(features, self.labels_)
        return self

    def _kmeans(self, k: int, seed: int) -> KMeans:
        return KMeans(n_clusters=k, n_init=self.n_init, random_state=seed)

    def _halves(self, rows: int, repeat: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A seeded sample of up to ``stability_rows`` positions and its two random halves."""
        rng = np.random.default_rng([self.seed, repeat])
        sample = rng.permutation(rows)[: self.stability_rows]
        return sample, sample[: len(sample) // 2], sample[len(sample) // 2 :]

    def _split_half_ari(self, matrix: np.ndarray, k: int) -> float:
        """Mean ARI between k-means at ``k`` fitted on each half of a sample, both labelling the sample."""
        scores = []
        for repeat in range(self.stability_repeats):
            sample, first, second = self._halves(len(matrix), repeat)
            if len(first) < 2 * k:  # too few rows to tell k clusters apart in each half
                return 0.0
            one = self._kmeans(k, self.seed + repeat).fit(matrix[first]).predict(matrix[sample])
            other = self._kmeans(k, self.seed + repeat).fit(matrix[second]).predict(matrix[sample])
            scores.append(adjusted_rand_score(one, other))
        return float(np.mean(scores))

    def _impute_log(self, raw: np.ndarray) -> np.ndarray:
        filled = np.where(np.isnan(raw), self.medians_, raw)
        logged = [self.columns_.index(c) for c in self.log_columns_]
        filled[:, logged] = np.log1p(np.clip(filled[:, logged], 0.0, None))
        return filled

    def _matrix(self, features: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, msg=NOT_FITTED)
        check_frame(features, "features")
        missing = [c for c in self.columns_ if c not in features.columns]
        if missing:
            raise ValueError(f"missing column '{missing[0]}'")
        logged = self._impute_log(features[self.columns_].to_numpy(float))
        return (logged - self.mean_) / self.scale_ * self.weights_

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """The cluster id of each row: the nearest centroid after the fit-time transforms."""
        return np.asarray(pairwise_distances_argmin(self._matrix(features), self.centroids_ * self.weights_))

    def transform(self, features: pd.DataFrame) -> pd.DataFrame:
        """``cluster`` and ``cluster_name`` per row, on the input's index."""
        clusters = self.predict(features)
        names = np.array([self.cluster_names_[c] for c in range(self.k_)], dtype=object)
        return pd.DataFrame({"cluster": clusters, "cluster_name": names[clusters]}, index=features.index)

    def _profile(self, features: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
        means = features[self.columns_].astype(float).groupby(labels).mean()
        size = np.bincount(labels, minlength=self.k_)
        profile = pd.DataFrame(
            {"cluster_name": [self.cluster_names_[c] for c in range(self.k_)], "size": size},
            index=pd.RangeIndex(self.k_, name="cluster"),
        )
        profile["share"] = size / size.sum()
        return profile.join(means)

    def split_half_stability(self, features: pd.DataFrame) -> dict[str, Any]:
        """The whole procedure refitted on two random halves of up to ``stability_rows`` rows (k re-chosen
        on each): the ARI of their clusterings of all those rows, and each half's k. 1: the same
        segments whatever half of the customers they were learnt on; about 0: chance."""
        check_is_fitted(self, msg=NOT_FITTED)
        sample, first, second = self._halves(len(features), self.stability_repeats)
        if len(first) <= self.k_range[1]:  # a half too small to fit at all: nothing is reproducible
            return {"ari": 0.0, "k_halves": [0, 0]}
        rows = features.iloc[sample]
        halves = [clone(self).fit(features.iloc[part]) for part in (first, second)]
        ari = adjusted_rand_score(halves[0].predict(rows), halves[1].predict(rows))
        return {"ari": float(ari), "k_halves": [int(half.k_) for half in halves]}

    def definition(self) -> dict[str, Any]:
        """Everything that rebuilds the segmentation, as JSON-able values (see ``from_definition``)."""
        check_is_fitted(self, msg=NOT_FITTED)
        by_column = lambda values: dict(zip(self.columns_, map(float, values), strict=True))  # noqa: E731
        return {
            "model": type(self).__name__,
            "params": {
                "columns": None if self.columns is None else list(self.columns),
                "k_range": list(self.k_range),
                "seed": self.seed,
                "n_init": self.n_init,
                "sample_size": self.sample_size,
                "fit_rows": self.fit_rows,
                "log_columns": list(self.log_columns),
                "balance_families": self.balance_families,
                "stability_rows": self.stability_rows,
                "stability_repeats": self.stability_repeats,
                "min_stability": self.min_stability,
            },
            "criterion": "best silhouette (sample_size rows) among k with split-half ARI >= min_stability",
            "columns": list(self.columns_),
            "transforms": {"impute": "median", "log1p": list(self.log_columns_), "scale": "standard"},
            "medians": by_column(self.medians_),
            "scaler": {"mean": by_column(self.mean_), "scale": by_column(self.scale_)},
            "weights": by_column(self.weights_),
            "k": int(self.k_),
            "k_scores": {str(k): v for k, v in self.k_scores_.items()},
            "k_stability": {str(k): v for k, v in self.k_stability_.items()},
            "centroids": [[float(v) for v in row] for row in self.centroids_],  # mean z-scores, unweighted
            "names": {str(c): name for c, name in self.cluster_names_.items()},
        }

    @classmethod
    def from_definition(cls, definition: dict[str, Any]) -> BehaviourClusters:
        """A fitted model that predicts as the one that wrote ``definition`` (no ``labels_``/``profile_``)."""
        d = definition
        model = cls(**{**d["params"], "k_range": tuple(d["params"]["k_range"])})
        columns = model.columns_ = list(d["columns"])
        by_column = lambda table: np.array([table[c] for c in columns], dtype=float)  # noqa: E731
        model.log_columns_ = list(d["transforms"]["log1p"])
        model.medians_, model.weights_ = by_column(d["medians"]), by_column(d["weights"])
        model.mean_, model.scale_ = by_column(d["scaler"]["mean"]), by_column(d["scaler"]["scale"])
        model.k_, model.centroids_ = int(d["k"]), np.array(d["centroids"], dtype=float)
        model.k_scores_ = {int(k): float(v) for k, v in d["k_scores"].items()}
        model.k_stability_ = {int(k): float(v) for k, v in d.get("k_stability", {}).items()}
        model.cluster_names_ = {int(c): name for c, name in d["names"].items()}
        return model
