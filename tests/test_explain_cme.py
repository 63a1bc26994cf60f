"""Explanations end to end on the CME features of a small synthetic LA."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cmerisk.config import ExperimentConfig, LightGBMConfig
from cmerisk.explain import explain_bundle, tree_contributions
from cmerisk.explain_fast import decisions, lightgbm_inputs, parse_trees
from cmerisk.explain_outputs import write_explanations
from cmerisk.model.bundle import ModelBundle, make_bundle
from cmerisk.model.calibrate import Calibrator
from cmerisk.model.matrix import category_levels, feature_matrix
from cmerisk.model.train import train_lightgbm
from cmerisk.spec import DEFAULT_PROTECTED

pytestmark = pytest.mark.slow  # generate + features + train: about a minute on 2 cores


@pytest.fixture(scope="module")
def cme(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, ModelBundle]:
    from cmerisk.data.load import read_tables
    from cmerisk.data.synthetic.generate import generate_la
    from cmerisk.dataset import as_of_dates_for, make_dataset
    from cmerisk.features import cme_spec

    folder = tmp_path_factory.mktemp("la") / "la"
    generate_la(folder, pupils=2500, years=3, seed=5, key=b"explain-test-key" * 2)
    tables = read_tables(folder)
    dates = as_of_dates_for(
        tables, terms=["summer"], horizon_days=245, labelled_only=False
    )
    frame = make_dataset(tables, as_of_dates=dates, horizon_days=245)
    spec = cme_spec()
    train = frame[frame["as_of"] < frame["as_of"].max()]
    latest = frame[frame["as_of"] == frame["as_of"].max()].reset_index(drop=True)
    levels = category_levels(train, spec=spec)
    X = feature_matrix(train, spec=spec, categories=levels)
    y = train["cme"].to_numpy(dtype=int)
    config = LightGBMConfig(max_depth_candidates=[4], n_estimators=60, num_threads=1)
    half = len(X) // 2
    model = train_lightgbm(
        X[:half], y[:half], X[half:], y[half:], spec=spec, config=config, seed=2
    )
    bundle = make_bundle(
        model.booster,
        spec=spec,
        config=ExperimentConfig(),
        calibrator=Calibrator("sigmoid", {"a": 1.0, "b": 0.0}),
        X_train=X,
        metadata={"model_name": "cme-test"},
    )
    return latest, bundle


def test_reasons_on_real_features_read_cleanly(cme) -> None:
    frame, bundle = cme
    ex = explain_bundle(frame, bundle)
    assert ex.contributions.additivity_error() < 1e-6
    texts = pd.concat([ex.reasons["text"], ex.reasons["also"].explode().dropna()])
    assert len(ex.reasons) > 0
    for text in texts:
        assert not re.search(r"\bnan\b", text.lower()), text
        assert "{" not in text and "None" not in text
    assert not set(ex.reasons["feature"]) & set(DEFAULT_PROTECTED)
    protected_values = {
        str(v)
        for c in DEFAULT_PROTECTED
        if c in frame
        for v in frame[c].dropna().unique()
        if len(str(v)) > 3
    }
    assert not any(v in t for v in protected_values for t in texts)
    assert set(ex.reasons["group"]) <= {f.group for f in bundle.spec.features}


def test_fast_path_matches_lightgbm_on_real_features(cme) -> None:
    frame, bundle = cme
    X = bundle.feature_matrix(frame)
    A = lightgbm_inputs(X, bundle.booster)
    leaves = bundle.booster.predict(A, pred_leaf=True)
    trees, _ = parse_trees(bundle.booster)
    for tree in trees:
        assert np.array_equal(tree.leaves(decisions(A, tree)), leaves[:, tree.index])
    fast = tree_contributions(X, booster=bundle.booster, method="fast")
    native = tree_contributions(X, booster=bundle.booster, method="native")
    assert np.max(np.abs(fast.values - native.values)) < 1e-9


def test_cards_for_the_flagged_list(cme, tmp_path: Path) -> None:
    frame, bundle = cme
    run = write_explanations(frame, bundle, out_dir=tmp_path, capacity=25)
    assert run.cards == 25 and run.explained == 25
    index = (tmp_path / "pupils" / "index.html").read_text()
    assert "http" not in index and "<script" not in index
    assert run.as_of == str(pd.Timestamp(frame["as_of"].max()).date())
