"""The acceptance model compiled to flat numpy arrays, for scoring one booking in a fraction of a millisecond.

scikit-learn's ``CalibratedClassifierCV.predict_proba`` is built for batches: for the dozen rows of one
booking it spends ~6 ms validating input, re-encoding categories (each fold's HistGradientBoosting keeps
an ``OrdinalEncoder`` in a ``ColumnTransformer``) and calling one Cython routine per tree.

Compiling reads the fitted folds once. Every split of every tree of every fold becomes one column of
shared arrays: the input column it reads, its threshold, where missing values go and, for categorical
splits, a go-left table indexed by *our* category code (each fold's own encoding and known-category
bitsets folded in). Prediction then takes a fixed number of array steps, whatever the trees' depth:

1. decide every split for every row at once (go left or not);
2. find each tree's exit leaf with bitmasks (QuickScorer, Lucchese et al., SIGIR 2015): number a tree's
   leaves left to right; a split that sends the row right rules out the leaves of its left subtree, so
   AND-ing the masks of the splits that go right leaves the exit leaf as the lowest set bit;
3. add the leaf values per fold, apply each fold's isotonic calibration and average the folds, as
   ``CalibratedClassifierCV`` does.

The result equals scikit-learn's to rounding (tests compare them on trained models, with missing values
and unseen categories).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier

BITS = 32  # bits per word of scikit-learn's category bitsets
MAX_LEAVES = 64  # leaves per tree that fit one uint64 mask
ALL_LEAVES = np.uint64(2**64 - 1)


@dataclass(frozen=True)
class CompiledFold:
    """One calibrated fold: its trees (a slice of the forest's trees), baseline and isotonic steps."""

    trees: slice
    baseline: float
    x_thresholds: np.ndarray
    y_thresholds: np.ndarray


@dataclass(frozen=True)
class CompiledForest:
    """All folds' splits as columns, grouped by tree (each tree's group starts with a no-op split, so
    a tree that is a single leaf still has a group)."""

    feature: np.ndarray  # (n_splits,) input column each split reads
    threshold: np.ndarray  # numeric split: left when value <= threshold
    missing_left: np.ndarray  # NaN (or a category the fold never saw) goes left
    category_row: np.ndarray  # row in ``category_left`` for categorical splits, -1 otherwise
    category_left: np.ndarray  # (n_categorical_splits, n_codes + 1): our code goes left; last = missing
    right_mask: np.ndarray  # (n_splits,) uint64: the tree's leaves still possible when the split goes right
    tree_start: np.ndarray  # (n_trees,) first split column of each tree
    leaf_value: np.ndarray  # (n_trees, max_leaves) leaf values, leaves numbered left to right
    folds: tuple[CompiledFold, ...]

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        """P(positive) per row of ``matrix`` (the acceptance model's float matrix)."""
        matrix = np.asarray(matrix, dtype=float)
        if matrix.ndim != 2:
            raise ValueError(f"matrix: expected 2 dimensions, got {matrix.ndim}")
        masks = np.where(self._goes_left(matrix), ALL_LEAVES, self.right_mask)
        alive = np.bitwise_and.reduceat(masks, self.tree_start, axis=1)  # (n_rows, n_trees)
        exit_leaf = np.bitwise_count((alive & (~alive + np.uint64(1))) - np.uint64(1))  # lowest set bit
        leaves = self.leaf_value[self._layout.trees, exit_leaf.astype(np.intp)]
        proba = np.zeros(len(matrix))
        for fold in self.folds:
            raw = fold.baseline + leaves[:, fold.trees].sum(axis=1)
            raw = np.minimum(np.maximum(raw, fold.x_thresholds[0]), fold.x_thresholds[-1])
            proba += np.interp(raw, fold.x_thresholds, fold.y_thresholds)
        return proba / len(self.folds)

    def _goes_left(self, matrix: np.ndarray) -> np.ndarray:
        """(n_rows, n_splits) bool: whether each row goes left at each split."""
        layout = self._layout
        left = np.empty((len(matrix), len(self.feature)), dtype=bool)
        x = matrix[:, layout.numeric_feature]
        missing_left = np.isnan(x) & layout.numeric_missing_left
        left[:, layout.numeric] = (x <= layout.numeric_threshold) | missing_left
        if len(layout.categorical):
            codes = matrix[:, layout.categorical_feature]
            valid = (codes >= 0) & (codes < layout.n_codes)  # False for NaN too
            column = np.where(valid, codes, layout.n_codes).astype(np.intp)  # invalid: the "missing" entry
            left[:, layout.categorical] = self.category_left.ravel()[layout.table_offset + column]
        return left

    @functools.cached_property
    def _layout(self) -> _SplitLayout:
        return _SplitLayout.of(self)


@dataclass(frozen=True)
class _SplitLayout:
    """Index arrays derived once from a forest, so a prediction spends its time on the rows, numeric and
    categorical splits apart. Measured on the demo chain's offer model (3 folds, 217 trees, 3,255
    splits; 50 bookings' matrices of 10 rows, 1,000 calls): predict_proba 462 -> 293 us a call, when
    these were derived per call and every split was first tested as numeric."""

    trees: np.ndarray  # 0..n_trees-1, to pick each tree's exit leaf
    numeric: np.ndarray  # split columns with a numeric test, and their inputs
    numeric_feature: np.ndarray
    numeric_threshold: np.ndarray
    numeric_missing_left: np.ndarray
    categorical: np.ndarray  # split columns with a category table, their inputs and table rows
    categorical_feature: np.ndarray
    table_offset: np.ndarray  # where each categorical split's row starts in the flattened table
    n_codes: int

    @classmethod
    def of(cls, forest: CompiledForest) -> _SplitLayout:
        is_categorical = forest.category_row >= 0
        numeric, categorical = np.flatnonzero(~is_categorical), np.flatnonzero(is_categorical)
        width = forest.category_left.shape[1]  # our codes, then the missing entry
        return cls(
            trees=np.arange(len(forest.tree_start)),
            numeric=numeric,
            numeric_feature=forest.feature[numeric],
            numeric_threshold=forest.threshold[numeric],
            numeric_missing_left=forest.missing_left[numeric],
            categorical=categorical,
            categorical_feature=forest.feature[categorical],
            table_offset=forest.category_row[categorical] * width,
            n_codes=width - 1,
        )


def compile_calibrated(classifier: CalibratedClassifierCV, n_codes: list[int]) -> CompiledForest:
    """Compile a fitted binary ``CalibratedClassifierCV`` (isotonic) over HistGradientBoosting folds.

    ``n_codes[j]`` is how many codes our categorical column ``j`` (the matrix's leading columns) can take.
    """
    splits: list[dict[str, np.ndarray]] = []
    tables: list[np.ndarray] = []
    leaf_values: list[np.ndarray] = []
    folds: list[CompiledFold] = []
    width = max(n_codes, default=1)
    for calibrated in classifier.calibrated_classifiers_:
        boosted = calibrated.estimator
        if not isinstance(boosted, HistGradientBoostingClassifier) or len(calibrated.calibrators) != 1:
            raise TypeError("only binary HistGradientBoostingClassifier folds can be compiled")
        calibrator = calibrated.calibrators[0]
        if getattr(calibrator, "out_of_bounds", None) != "clip":
            raise TypeError("only isotonic calibration (out_of_bounds='clip') can be compiled")
        column, ours_to_encoded = _column_maps(boosted, n_codes, width)
        known, feature_to_known = boosted._bin_mapper.make_known_categories_bitsets()
        first_tree = len(leaf_values)
        for (predictor,) in boosted._predictors:
            nodes = predictor.nodes
            leaf_order, right_masks = _leaves_and_masks(nodes)
            internal = np.flatnonzero(~nodes["is_leaf"].astype(bool))
            category_row = np.full(len(internal) + 1, -1, dtype=np.int64)
            for k, i in enumerate(internal, start=1):
                if nodes["is_categorical"][i]:
                    feature = int(nodes["feature_idx"][i])
                    category_row[k] = len(tables)
                    tables.append(
                        _category_table(
                            predictor.raw_left_cat_bitsets[nodes["bitset_idx"][i]],
                            known[feature_to_known[feature]],
                            ours_to_encoded[feature],
                            bool(nodes["missing_go_to_left"][i]),
                        )
                    )
            splits.append(
                {  # a no-op split first (mask: every leaf), then the tree's internal nodes
                    "feature": np.concatenate([[0], column[nodes["feature_idx"][internal]]]),
                    "threshold": np.concatenate([[0.0], nodes["num_threshold"][internal]]),
                    "missing_left": np.concatenate(
                        [[True], nodes["missing_go_to_left"][internal].astype(bool)]
                    ),
                    "category_row": category_row,
                    "right_mask": np.concatenate([[ALL_LEAVES], right_masks[internal]]).astype(np.uint64),
                }
            )
            leaf_values.append(nodes["value"][leaf_order])
        folds.append(
            CompiledFold(
                slice(first_tree, len(leaf_values)),
                float(np.ravel(boosted._baseline_prediction)[0]),
                np.asarray(calibrator.X_thresholds_, dtype=float),
                np.asarray(calibrator.y_thresholds_, dtype=float),
            )
        )
    sizes = [len(s["feature"]) for s in splits]
    joined = {key: np.concatenate([s[key] for s in splits]) for key in splits[0]}
    values = np.zeros((len(leaf_values), max(len(v) for v in leaf_values)))
    for t, v in enumerate(leaf_values):
        values[t, : len(v)] = v
    return CompiledForest(
        feature=joined["feature"].astype(np.intp),
        threshold=joined["threshold"].astype(float),
        missing_left=joined["missing_left"],
        category_row=joined["category_row"],
        category_left=np.array(tables, dtype=bool).reshape(len(tables), width + 1),
        right_mask=joined["right_mask"],
        tree_start=np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp),
        leaf_value=values,
        folds=tuple(folds),
    )


def _leaves_and_masks(nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A tree's leaves left to right (node indices), and per node the uint64 mask of leaves that stay
    possible when the node sends a row right: every leaf but those of its left subtree."""
    order: list[int] = []
    below: dict[int, int] = {}  # node -> bits of the leaves under it

    def walk(i: int) -> int:
        if nodes["is_leaf"][i]:
            order.append(i)
            below[i] = 1 << (len(order) - 1)
        else:
            below[i] = walk(int(nodes["left"][i])) | walk(int(nodes["right"][i]))
        return below[i]

    walk(0)
    if len(order) > MAX_LEAVES:
        raise ValueError(f"a tree has {len(order)} leaves; at most {MAX_LEAVES} can be compiled")
    everything = (1 << len(order)) - 1
    masks = np.zeros(len(nodes), dtype=np.uint64)
    for i in range(len(nodes)):
        if not nodes["is_leaf"][i]:
            masks[i] = everything & ~below[int(nodes["left"][i])]
    return np.array(order, dtype=np.intp), masks


def _column_maps(
    boosted: HistGradientBoostingClassifier, n_codes: list[int], width: int
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Where each of the fold's internal columns comes from in our matrix, and for its categorical
    columns our code -> the fold's encoded category (NaN when the fold never saw the code)."""
    categorical = np.flatnonzero(boosted.is_categorical_)
    numerical = np.flatnonzero(~boosted.is_categorical_)
    if list(categorical) != list(range(len(n_codes))):
        raise ValueError("categorical columns must be the matrix's leading columns")
    slices = boosted._preprocessor.output_indices_
    column = np.empty(len(boosted.is_categorical_), dtype=np.intp)
    column[slices["encoder"]] = categorical
    column[slices["numerical"]] = numerical
    encoder = boosted._preprocessor.named_transformers_["encoder"]
    ours_to_encoded: dict[int, np.ndarray] = {}
    for internal, ours, seen in zip(
        range(slices["encoder"].start, slices["encoder"].stop), categorical, encoder.categories_, strict=True
    ):
        lookup = {float(value): float(i) for i, value in enumerate(seen) if not np.isnan(value)}
        ours_to_encoded[internal] = np.array([lookup.get(float(code), np.nan) for code in range(width)])
        ours_to_encoded[internal][n_codes[ours] :] = np.nan
    return column, ours_to_encoded


def _category_table(
    left_bits: np.ndarray, known_bits: np.ndarray, encoded: np.ndarray, missing_left: bool
) -> np.ndarray:
    """For each of our codes (and a last entry for missing), whether the split sends it left
    (scikit-learn's rule: in the left bitset -> left; another known category -> right; unseen -> the
    missing-value direction)."""
    out = np.full(len(encoded) + 1, missing_left)
    for code, category in enumerate(encoded):
        if np.isnan(category):
            continue
        word, bit = divmod(int(category), BITS)
        if (int(left_bits[word]) >> bit) & 1:
            out[code] = True
        elif (int(known_bits[word]) >> bit) & 1:
            out[code] = False
    return out
