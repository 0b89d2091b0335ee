"""The acceptance model compiled to flat arrays and one numba loop, for scoring a booking in ~0.1 ms.

scikit-learn's ``CalibratedClassifierCV.predict_proba`` is built for batches: for the dozen rows of one
booking it spends ~6 ms validating input, re-encoding categories (each fold's HistGradientBoosting keeps
an ``OrdinalEncoder`` in a ``ColumnTransformer``) and calling one Cython routine per tree.

Compiling reads the fitted folds once. Every node of every tree of every fold becomes one entry of shared
arrays: the input column it reads, its threshold, where missing values go, its children and leaf value,
and for categorical splits a go-left table indexed by *our* category code (each fold's own encoding and
known-category bitsets folded in). A booking is then one call of a numba-compiled loop that walks each
row down each tree, adds the leaf values per fold, applies each fold's isotonic calibration and averages
the folds, as ``CalibratedClassifierCV`` does.

Why numba: the same arithmetic as numpy array steps (every split decided for every row, exit leaves
found with bitmasks, QuickScorer) took 500-600 us a call for a booking's 10 rows over the demo model's
217 trees (6,293 nodes); the loop takes 95 us, because a row visits only the ~6 nodes on its path
in each tree. It is compiled when a model is compiled (``compile_calibrated``) and cached on disk by
numba beside this file or in the user's cache folder; where neither can be written, each process
compiles it (~1 s) instead of failing. It holds no GIL.

The result equals scikit-learn's to rounding (tests compare them on trained models, with missing values
and unseen categories).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier

BITS = 32  # bits per word of scikit-learn's category bitsets


@dataclass(frozen=True)
class CompiledForest:
    """All folds' tree nodes as flat arrays (children as absolute indices), and per fold its trees,
    baseline and isotonic steps."""

    feature: np.ndarray  # (n_nodes,) input column a split reads
    threshold: np.ndarray  # numeric split: left when value <= threshold
    missing_left: np.ndarray  # NaN (or a category the fold never saw) goes left
    category_row: np.ndarray  # row in ``category_left`` for categorical splits, -1 otherwise
    category_left: np.ndarray  # (n_categorical_splits, n_codes + 1): our code goes left; last = missing
    left: np.ndarray  # children (absolute node indices)
    right: np.ndarray
    is_leaf: np.ndarray
    value: np.ndarray  # a leaf's raw value
    tree_root: np.ndarray  # (n_trees,) each tree's first node
    fold_first_tree: np.ndarray  # (n_folds + 1,) the folds' trees are consecutive
    fold_baseline: np.ndarray  # (n_folds,)
    fold_steps: np.ndarray  # (n_folds + 1,) where each fold's isotonic steps start in the two below
    step_x: np.ndarray
    step_y: np.ndarray

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        """P(positive) per row of ``matrix`` (the acceptance model's float matrix)."""
        matrix = np.ascontiguousarray(matrix, dtype=float)
        if matrix.ndim != 2:
            raise ValueError(f"matrix: expected 2 dimensions, got {matrix.ndim}")
        return _predict(
            matrix, self.feature, self.threshold, self.missing_left, self.category_row,
            self.category_left, self.left, self.right, self.is_leaf, self.value, self.tree_root,
            self.fold_first_tree, self.fold_baseline, self.fold_steps, self.step_x, self.step_y,
        )  # fmt: skip


def _walk(  # compiled by numba below; tested against scikit-learn through predict_proba
    matrix: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    missing_left: np.ndarray,
    category_row: np.ndarray,
    category_left: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    is_leaf: np.ndarray,
    value: np.ndarray,
    tree_root: np.ndarray,
    fold_first_tree: np.ndarray,
    fold_baseline: np.ndarray,
    fold_steps: np.ndarray,
    step_x: np.ndarray,
    step_y: np.ndarray,
) -> np.ndarray:
    n_codes = category_left.shape[1] - 1  # the last entry is "missing or unseen"
    n_folds = fold_baseline.shape[0]
    proba = np.zeros(matrix.shape[0])
    for r in range(matrix.shape[0]):
        for f in range(n_folds):
            raw = fold_baseline[f]
            for t in range(fold_first_tree[f], fold_first_tree[f + 1]):
                node = tree_root[t]
                while not is_leaf[node]:
                    x = matrix[r, feature[node]]
                    table_row = category_row[node]
                    if table_row >= 0:
                        code = int(x) if 0 <= x < n_codes else n_codes  # NaN compares False
                        goes_left = category_left[table_row, code]
                    elif np.isnan(x):
                        goes_left = missing_left[node]
                    else:
                        goes_left = x <= threshold[node]
                    node = left[node] if goes_left else right[node]
                raw += value[node]
            xs = step_x[fold_steps[f] : fold_steps[f + 1]]
            ys = step_y[fold_steps[f] : fold_steps[f + 1]]
            proba[r] += np.interp(min(max(raw, xs[0]), xs[-1]), xs, ys)
    return proba / n_folds


try:  # numba looks for a writable cache folder when the function is compiled with cache=True
    _predict = numba.njit(cache=True, nogil=True)(_walk)
except RuntimeError:  # none (a read-only install and home): compile in each process instead
    _predict = numba.njit(nogil=True)(_walk)


def compile_calibrated(classifier: CalibratedClassifierCV, n_codes: list[int]) -> CompiledForest:
    """Compile a fitted binary ``CalibratedClassifierCV`` (isotonic) over HistGradientBoosting folds.

    ``n_codes[j]`` is how many codes our categorical column ``j`` (the matrix's leading columns) can take.
    The loop is compiled (or loaded from numba's cache) here, not at the first booking.
    """
    nodes_of: list[dict[str, np.ndarray]] = []
    tables: list[np.ndarray] = []
    roots: list[int] = []
    fold_first_tree: list[int] = [0]
    baselines: list[float] = []
    steps_x: list[np.ndarray] = []
    steps_y: list[np.ndarray] = []
    width = max(n_codes, default=1)
    n_nodes = 0
    for calibrated in classifier.calibrated_classifiers_:
        boosted = calibrated.estimator
        if not isinstance(boosted, HistGradientBoostingClassifier) or len(calibrated.calibrators) != 1:
            raise TypeError("only binary HistGradientBoostingClassifier folds can be compiled")
        calibrator = calibrated.calibrators[0]
        if getattr(calibrator, "out_of_bounds", None) != "clip":
            raise TypeError("only isotonic calibration (out_of_bounds='clip') can be compiled")
        column, ours_to_encoded = _column_maps(boosted, n_codes, width)
        known, feature_to_known = boosted._bin_mapper.make_known_categories_bitsets()
        for (predictor,) in boosted._predictors:
            nodes = predictor.nodes
            category_row = np.full(len(nodes), -1, dtype=np.intp)
            for i in np.flatnonzero(nodes["is_categorical"].astype(bool) & ~nodes["is_leaf"].astype(bool)):
                feature = int(nodes["feature_idx"][i])
                category_row[i] = len(tables)
                tables.append(
                    _category_table(
                        predictor.raw_left_cat_bitsets[nodes["bitset_idx"][i]],
                        known[feature_to_known[feature]],
                        ours_to_encoded[feature],
                        bool(nodes["missing_go_to_left"][i]),
                    )
                )
            nodes_of.append(
                {
                    "feature": column[nodes["feature_idx"]],
                    "threshold": nodes["num_threshold"],
                    "missing_left": nodes["missing_go_to_left"].astype(bool),
                    "category_row": category_row,
                    "left": nodes["left"].astype(np.intp) + n_nodes,
                    "right": nodes["right"].astype(np.intp) + n_nodes,
                    "is_leaf": nodes["is_leaf"].astype(bool),
                    "value": nodes["value"],
                }
            )
            roots.append(n_nodes)  # the root is a tree's node 0
            n_nodes += len(nodes)
        fold_first_tree.append(len(roots))
        baselines.append(float(np.ravel(boosted._baseline_prediction)[0]))
        steps_x.append(np.asarray(calibrator.X_thresholds_, dtype=float))
        steps_y.append(np.asarray(calibrator.y_thresholds_, dtype=float))
    joined = {key: np.concatenate([n[key] for n in nodes_of]) for key in nodes_of[0]}
    forest = CompiledForest(
        feature=joined["feature"].astype(np.intp),
        threshold=joined["threshold"].astype(float),
        missing_left=joined["missing_left"],
        category_row=joined["category_row"],
        category_left=np.array(tables, dtype=bool).reshape(len(tables), width + 1),
        left=joined["left"],
        right=joined["right"],
        is_leaf=joined["is_leaf"],
        value=joined["value"].astype(float),
        tree_root=np.array(roots, dtype=np.intp),
        fold_first_tree=np.array(fold_first_tree, dtype=np.intp),
        fold_baseline=np.array(baselines),
        fold_steps=np.concatenate([[0], np.cumsum([len(x) for x in steps_x])]).astype(np.intp),
        step_x=np.concatenate(steps_x),
        step_y=np.concatenate(steps_y),
    )
    forest.predict_proba(np.full((1, len(column)), np.nan))  # compile now, not at the first booking
    return forest


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
