"""LightGBM training: determinism, monotonicity, depth choice, categoricals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from toy import make_spec

from cmerisk.config import LightGBMConfig
from cmerisk.model.matrix import category_levels, feature_matrix
from cmerisk.model.train import DepthCandidate, monotone_constraints, train_lightgbm


@pytest.fixture(scope="module")
def slices(toy_frame):
    spec = make_spec()
    levels = category_levels(toy_frame, spec=spec)
    X = feature_matrix(toy_frame, spec=spec, categories=levels)
    y = toy_frame["y"].to_numpy()
    year = toy_frame["year_index"].to_numpy()
    tr, va = year <= 1, year == 2
    return spec, X[tr], y[tr], X[va], y[va]


def _config(**kw) -> LightGBMConfig:
    base = {
        "n_estimators": 80,
        "early_stopping_rounds": 15,
        "learning_rate": 0.1,
        "min_child_samples": 20,
        "max_depth_candidates": [2, 4],
        "num_threads": 1,
    }
    return LightGBMConfig(**{**base, **kw})


def test_training_is_deterministic(slices) -> None:
    spec, Xt, yt, Xv, yv = slices
    a = train_lightgbm(Xt, yt, Xv, yv, spec=spec, config=_config(), seed=3)
    b = train_lightgbm(Xt, yt, Xv, yv, spec=spec, config=_config(), seed=3)
    assert a.booster.model_to_string() == b.booster.model_to_string()
    assert a.candidates == b.candidates


def test_every_candidate_is_recorded_and_the_shallowest_tie_kept(slices) -> None:
    spec, Xt, yt, Xv, yv = slices
    # a huge tolerance makes every candidate tie: the shallowest must be kept
    model = train_lightgbm(
        Xt,
        yt,
        Xv,
        yv,
        spec=spec,
        config=_config(max_depth_candidates=[4, 2, 3], tie_tolerance=1.0),
        seed=1,
    )
    assert [c.max_depth for c in model.candidates] == [4, 2, 3]
    assert model.chosen.max_depth == 2 and sum(c.chosen for c in model.candidates) == 1
    assert all(
        0 < c.validation_ap <= 1 and c.tree_depth <= c.max_depth
        for c in model.candidates
    )
    assert any("kept" in n for n in model.notes)


def test_without_ties_the_best_candidate_is_kept(slices) -> None:
    spec, Xt, yt, Xv, yv = slices
    model = train_lightgbm(
        Xt,
        yt,
        Xv,
        yv,
        spec=spec,
        config=_config(max_depth_candidates=[1, 3], tie_tolerance=0.0),
        seed=1,
    )
    best = max(model.candidates, key=lambda c: c.validation_ap)
    assert model.chosen.max_depth == best.max_depth


def test_booster_is_trimmed_to_its_best_iteration(slices) -> None:
    spec, Xt, yt, Xv, yv = slices
    model = train_lightgbm(Xt, yt, Xv, yv, spec=spec, config=_config(), seed=1)
    assert model.booster.num_trees() == model.chosen.best_iteration
    assert model.booster.feature_name() == spec.feature_names


@pytest.mark.parametrize("feature", ["absence", "unexplained_run"])
def test_more_absence_never_lowers_the_score(slices, feature) -> None:
    spec, Xt, yt, Xv, yv = slices
    model = train_lightgbm(Xt, yt, Xv, yv, spec=spec, config=_config(), seed=2)
    rows = Xv.head(40)
    grid = np.linspace(Xt[feature].min(), Xt[feature].max(), 25)
    margins = np.column_stack(
        [
            model.booster.predict(rows.assign(**{feature: v}), raw_score=True)
            for v in grid
        ]
    )
    assert (np.diff(margins, axis=1) >= -1e-12).all()


def test_monotone_overrides_and_categoricals() -> None:
    spec = make_spec()
    cfg = LightGBMConfig(monotone_overrides={"absence": 0, "sen": 1, "nope": 1})
    values, notes = monotone_constraints(spec, cfg)
    assert dict(zip(spec.feature_names, values, strict=True)) == {
        "absence": 0,
        "unexplained_run": 1,
        "sen": 1,
        "persistent": 0,
        "phase": 0,
        "noise": 0,
    }
    assert any("nope" in n for n in notes)
    off, _ = monotone_constraints(spec, LightGBMConfig(use_monotone_constraints=False))
    assert off == [0] * len(spec.features)


def test_class_weight_balanced_sets_scale_pos_weight(slices) -> None:
    spec, Xt, yt, Xv, yv = slices
    model = train_lightgbm(
        Xt,
        yt,
        Xv,
        yv,
        spec=spec,
        config=_config(max_depth_candidates=[2], class_weight="balanced"),
        seed=1,
    )
    assert model.params["scale_pos_weight"] == model.scale_pos_weight
    assert model.scale_pos_weight == pytest.approx((yt == 0).sum() / yt.sum())
    plain = train_lightgbm(
        Xt,
        yt,
        Xv,
        yv,
        spec=spec,
        config=_config(max_depth_candidates=[2], class_weight="none"),
        seed=1,
    )
    assert plain.scale_pos_weight == 1.0


def test_categorical_feature_is_declared(slices) -> None:
    spec, Xt, yt, Xv, yv = slices
    model = train_lightgbm(
        Xt, yt, Xv, yv, spec=spec, config=_config(max_depth_candidates=[3]), seed=1
    )
    dumped = model.booster.dump_model()
    assert dumped["pandas_categorical"] == [["primary", "secondary", "special"]]
    assert isinstance(model.candidates[0], DepthCandidate)
    assert isinstance(Xt["phase"].dtype, pd.CategoricalDtype)


@pytest.mark.parametrize("constrained", [True, False])
def test_monotone_constraint_holds_where_the_data_disagrees(constrained) -> None:
    """Risk FALLS at high absence in the data: only the constraint keeps it rising."""
    from cmerisk.spec import DatasetSpec, FeatureSpec

    spec = DatasetSpec(
        id="id",
        target="y",
        features=[
            FeatureSpec(name="absence", group="attendance", reason="a", monotone=1)
        ],
    )
    rng = np.random.default_rng(0)
    x = rng.random(6000)
    y = (
        rng.random(6000) < np.where(x < 0.5, 0.02 + 0.3 * x, 0.5 - 0.8 * (x - 0.5))
    ).astype(int)
    X = pd.DataFrame({"absence": x})
    cfg = _config(
        max_depth_candidates=[3],
        use_monotone_constraints=constrained,
        early_stopping_rounds=80,
    )
    model = train_lightgbm(
        X[:4000], y[:4000], X[4000:], y[4000:], spec=spec, config=cfg, seed=0
    )
    margins = model.booster.predict(
        pd.DataFrame({"absence": np.linspace(0, 1, 200)}), raw_score=True
    )
    rising = bool((np.diff(margins) >= -1e-12).all())
    assert rising is constrained
