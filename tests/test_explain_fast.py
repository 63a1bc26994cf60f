"""The fast TreeSHAP path: LightGBM's decisions reproduced, LightGBM's values kept."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from _explain_models import SPEC, make_frame, train
from cmerisk.explain import feature_matrix, tree_contributions
from cmerisk.explain_fast import (
    decisions,
    fast_contributions,
    lightgbm_inputs,
    parse_trees,
)


def _numeric(kind: str) -> tuple[np.ndarray, lgb.Booster]:
    """Models whose splits use each of LightGBM's missing-value rules."""
    rng = np.random.default_rng(11)
    n = 600 if kind == "wide" else 1500
    X = rng.normal(size=(n, 5))
    X[:, 2] = rng.integers(0, 4, n)  # few distinct values: thresholds hit exactly
    X[rng.random(n) < 0.3, 3] = 0.0
    params = {
        "objective": "binary",
        "verbose": -1,
        "num_leaves": 31,
        "max_depth": 6,
        "min_data_in_leaf": 5,
        "num_threads": 1,
    }
    if kind == "nan":
        X[rng.random(n) < 0.2, 0] = np.nan
    if kind == "zero":
        params["zero_as_missing"] = True
    if kind == "wide":  # more than 64 split nodes per tree
        params.update(num_leaves=120, max_depth=-1, min_data_in_leaf=2)
    signal = np.nan_to_num(X[:, 0]) + X[:, 1] * X[:, 3] + (X[:, 2] == 2)
    rounds = 6 if kind == "wide" else 25
    booster = lgb.train(params, lgb.Dataset(X, (signal > 0.8).astype(int)), rounds)
    test = X.copy()
    test[::5, 1] = np.nan  # NaN where training had none (missing type None)
    test[::7, 3] = -0.0
    test[::11, 0] = 0.0
    return test, booster


@pytest.fixture(scope="module")
def categorical() -> tuple[np.ndarray, lgb.Booster]:
    frame = make_frame(800, seed=12)
    booster = train(
        frame, rounds=40, num_leaves=15, max_depth=4, min_data_per_group=5, cat_smooth=1
    )
    X = feature_matrix(frame, booster=booster, spec=SPEC)
    X.loc[::9, "primary_need"] = np.nan
    return lightgbm_inputs(X, booster), booster


@pytest.mark.parametrize("kind", ["none", "nan", "zero", "wide"])
def test_decisions_lead_to_lightgbms_leaves_numeric(kind: str) -> None:
    A, booster = _numeric(kind)
    leaves = booster.predict(A, pred_leaf=True)
    trees, _ = parse_trees(booster)
    assert trees
    for tree in trees:
        assert np.array_equal(tree.leaves(decisions(A, tree)), leaves[:, tree.index])


def test_decisions_lead_to_lightgbms_leaves_categorical(categorical) -> None:
    A, booster = categorical
    A = A.copy()
    col = SPEC.feature_names.index("primary_need")
    A[::13, col] = 40.0  # a code beyond every bitset
    A[::17, col] = -1.0  # negative codes go right
    leaves = booster.predict(A, pred_leaf=True)
    trees, _ = parse_trees(booster)
    assert any(t.is_categorical.any() for t in trees), (
        "the model should split on a category"
    )
    for tree in trees:
        assert np.array_equal(tree.leaves(decisions(A, tree)), leaves[:, tree.index])


@pytest.mark.parametrize("kind", ["none", "nan", "zero", "wide"])
@pytest.mark.parametrize("threads", [1, 2])
def test_fast_equals_native_numeric(kind: str, threads: int) -> None:
    A, booster = _numeric(kind)
    native = booster.predict(A, pred_contrib=True)
    values, base = fast_contributions(
        A, booster=booster, threads=threads, chunk_size=400
    )
    assert np.max(np.abs(values - native[:, :-1])) < 1e-9
    assert abs(base - native[0, -1]) < 1e-9


def test_fast_equals_native_categorical(categorical) -> None:
    A, booster = categorical
    native = booster.predict(A, pred_contrib=True)
    values, base = fast_contributions(A, booster=booster)
    assert np.max(np.abs(values - native[:, :-1])) < 1e-9
    assert abs(base - native[0, -1]) < 1e-9


def test_single_leaf_trees_count_in_the_base() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 2))
    y = (X[:, 0] > 0).astype(int)
    # No split can pass the gain floor: the first tree is a single leaf.
    stump = lgb.train(
        {"objective": "binary", "verbose": -1, "min_gain_to_split": 1e9},
        lgb.Dataset(X, y, free_raw_data=False),
        num_boost_round=3,
    )
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 4},
        lgb.Dataset(X, y),
        num_boost_round=5,
        init_model=stump,
    )
    trees, stumps = parse_trees(booster)
    assert stumps == [0] and len(trees) == 5
    native = booster.predict(X, pred_contrib=True)
    values, base = fast_contributions(X, booster=booster)
    assert np.max(np.abs(values - native[:, :-1])) < 1e-9
    assert abs(base - native[0, -1]) < 1e-9


def test_lightgbm_inputs_code_categories_as_lightgbm_does(categorical) -> None:
    frame = make_frame(50, seed=13)
    _, booster = categorical
    X = feature_matrix(frame, booster=booster, spec=SPEC)
    reordered = X.assign(
        primary_need=X["primary_need"].cat.reorder_categories(
            list(reversed(X["primary_need"].cat.categories))
        )
    )
    assert np.allclose(
        booster.predict(lightgbm_inputs(reordered, booster), raw_score=True),
        booster.predict(X, raw_score=True),
    )


def test_explain_paths_agree_on_a_frame(categorical) -> None:
    frame = make_frame(600, seed=14)
    _, booster = categorical
    X = feature_matrix(frame, booster=booster, spec=SPEC)
    fast = tree_contributions(X, booster=booster, method="fast")
    native = tree_contributions(X, booster=booster, method="native")
    reference = tree_contributions(X, booster=booster, method="shap")
    assert np.max(np.abs(fast.values - native.values)) < 1e-9
    assert np.max(np.abs(fast.values - reference.values)) < 1e-6
    assert fast.additivity_error() < 1e-6


def test_fast_on_no_rows() -> None:
    A, booster = _numeric("none")
    values, base = fast_contributions(A[:0], booster=booster)
    assert values.shape == (0, A.shape[1])
    assert abs(base - booster.predict(A[:1], pred_contrib=True)[0, -1]) < 1e-9


def test_frame_inputs_may_be_numeric_strings_free(categorical) -> None:
    _, booster = categorical
    X = pd.DataFrame({n: [0.0] for n in SPEC.feature_names})
    assert lightgbm_inputs(X, booster).shape == (1, len(SPEC.features))
