"""TreeSHAP contributions: additivity, agreement of the paths, known reasons."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from _explain_models import SPEC, make_frame, train
from cmerisk.errors import DataError, ModelError
from cmerisk.explain import (
    explain_frame,
    feature_matrix,
    reference_from_frame,
    shap_explanation,
    tree_contributions,
)
from cmerisk.spec import DatasetSpec, FeatureSpec


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame(1200, seed=0)


@pytest.fixture(scope="module")
def booster(frame: pd.DataFrame) -> lgb.Booster:
    return train(frame)


def _numeric_model(
    *, nan_in_training: bool, zero_as_missing: bool = False
) -> tuple[pd.DataFrame, lgb.Booster]:
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(800, 4)), columns=list("abcd"))
    X.loc[rng.random(800) < 0.3, "c"] = 0.0
    if nan_in_training:
        X.loc[rng.random(800) < 0.15, "a"] = np.nan
    y = ((X["a"].fillna(1) + X["b"] * X["c"] + rng.normal(size=800)) > 0.5).astype(int)
    params = {
        "objective": "binary",
        "verbose": -1,
        "num_leaves": 15,
        "max_depth": 5,
        "num_threads": 1,
        "zero_as_missing": zero_as_missing,
    }
    booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=40)
    test = X.copy()
    test.loc[::7, ["a", "b"]] = np.nan  # NaN where training may have had none
    return test, booster


@pytest.mark.parametrize("method", ["fast", "native", "shap"])
def test_base_plus_contributions_is_the_raw_margin(frame, booster, method) -> None:
    X = feature_matrix(frame, booster=booster, spec=SPEC)
    c = tree_contributions(X, booster=booster, method=method)
    margin = booster.predict(X, raw_score=True)
    assert np.max(np.abs(c.base + c.values.sum(axis=1) - margin)) < 1e-6
    assert c.additivity_error() < 1e-6
    assert c.values.shape == (len(frame), len(SPEC.features))


def test_native_equals_shap_treeexplainer(frame, booster) -> None:
    X = feature_matrix(frame, booster=booster, spec=SPEC)
    native = tree_contributions(X, booster=booster, method="native")
    ref = tree_contributions(X, booster=booster, method="shap")
    assert np.max(np.abs(native.values - ref.values)) < 1e-6
    assert abs(native.base - ref.base) < 1e-6


@pytest.mark.parametrize(
    ("nan_in_training", "zero_as_missing"),
    [(True, False), (False, False), (False, True)],
)
def test_native_equals_shaps_own_treeshap(nan_in_training, zero_as_missing) -> None:
    """shap's C++ TreeSHAP on the dumped trees is an independent implementation."""
    X, booster = _numeric_model(
        nan_in_training=nan_in_training, zero_as_missing=zero_as_missing
    )
    native = tree_contributions(X, booster=booster, method="native")
    independent = tree_contributions(X, booster=booster, method="shap_trees")
    assert np.max(np.abs(native.values - independent.values)) < 1e-6
    assert abs(native.base - independent.base) < 1e-6


def test_shap_trees_refuses_categorical_splits(frame, booster) -> None:
    X = feature_matrix(frame, booster=booster, spec=SPEC)
    with pytest.raises(ModelError, match="categorical splits"):
        tree_contributions(X, booster=booster, method="shap_trees")


def test_a_single_split_model_gives_the_hand_computed_reason() -> None:
    """One tree, one split on ``absence``: its contribution is leaf value minus the
    cover-weighted mean of the leaves, and ``noise`` contributes nothing."""
    absence = np.r_[np.full(60, 0.02), np.full(40, 0.4)]
    frame = pd.DataFrame(
        {
            "id": [f"p{i}" for i in range(100)],
            "absence": absence,
            "noise": np.tile([0.0, 1.0], 50),
        }
    )
    y = (absence > 0.1).astype(int)
    booster = lgb.train(
        {
            "objective": "binary",
            "verbose": -1,
            "num_leaves": 2,
            "min_data_in_leaf": 1,
            "boost_from_average": False,
            "learning_rate": 1.0,
        },
        lgb.Dataset(frame[["absence", "noise"]], y),
        num_boost_round=1,
    )
    spec = DatasetSpec(
        id="id",
        target="y",
        features=[
            FeatureSpec(
                name="absence",
                group="attendance",
                kind="rate",
                reason="missed {value:.0%} of sessions",
            ),
            FeatureSpec(
                name="noise", group="context", kind="number", reason="noise {value}"
            ),
        ],
    )
    ex = explain_frame(frame, booster=booster, spec=spec, reference={"absence": 0.02})
    tree = booster.dump_model()["tree_info"][0]["tree_structure"]
    assert tree["split_feature"] == 0
    leaves = {
        c["leaf_count"]: c["leaf_value"]
        for c in (tree["left_child"], tree["right_child"])
    }
    expected = (60 * leaves[60] + 40 * leaves[40]) / 100
    assert ex.base == pytest.approx(expected, abs=1e-12)
    phi = ex.contributions.values
    assert phi[:, 1] == pytest.approx(np.zeros(100))
    assert phi[60:, 0] == pytest.approx(np.full(40, leaves[40] - expected), abs=1e-12)
    high = ex.pupil(99)
    assert [(r.feature, r.text) for r in high.reasons] == [
        ("absence", "missed 40% of sessions (LA median 2%)")
    ]
    assert ex.pupil(0).reasons == []  # its only non-zero contribution lowers the risk


def test_the_feature_that_drives_the_outcome_is_the_top_reason() -> None:
    rng = np.random.default_rng(5)
    n = 2000
    frame = pd.DataFrame(
        {
            "id": [f"p{i}" for i in range(n)],
            "a": rng.uniform(size=n),
            "b": rng.uniform(size=n),
            "c": rng.integers(0, 3, n).astype(float),
        }
    )
    y = (frame["a"] > 0.8).astype(int)
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 7, "num_threads": 1},
        lgb.Dataset(frame[["a", "b", "c"]], y),
        30,
    )
    spec = DatasetSpec(
        id="id",
        target="y",
        features=[
            FeatureSpec(name=n_, group=g, reason=f"{n_}={{value:.2f}}")
            for n_, g in (("a", "attendance"), ("b", "needs"), ("c", "mobility"))
        ],
    )
    ex = explain_frame(frame, booster=booster, spec=spec, by="feature")
    top = ex.reasons[ex.reasons["rank"] == 1].set_index("id")["feature"]
    high = frame.loc[frame["a"] > 0.85, "id"]
    assert (top.reindex(high) == "a").all()


@pytest.mark.parametrize("by", ["group", "feature"])
def test_reasons_are_risk_raising_ranked_and_at_most_top(frame, booster, by) -> None:
    ex = explain_frame(
        frame,
        booster=booster,
        spec=SPEC,
        reference=reference_from_frame(frame, SPEC),
        by=by,
        top=3,
    )
    r = ex.reasons
    assert len(r) > 0
    assert (r["contribution"] >= 0.05).all() and (r["feature_contribution"] > 0).all()
    assert r.groupby("id")["rank"].max().max() <= 3
    ordered = r.sort_values(["id", "rank"]).groupby("id")["contribution"]
    assert ordered.apply(lambda s: bool(np.all(np.diff(s.to_numpy()) <= 0))).all()
    if by == "group":  # one reason per group, its total is the group's contribution
        assert not r.duplicated(["id", "group"]).any()
        g = ex.group_frame().set_index("id")
        got = [g.loc[i, grp] for i, grp in zip(r["id"], r["group"], strict=True)]
        assert np.allclose(got, r["contribution"])


def test_group_values_sum_the_features(frame, booster) -> None:
    ex = explain_frame(
        frame, booster=booster, spec=SPEC, reference=reference_from_frame(frame, SPEC)
    )
    assert np.allclose(ex.group_values.sum(axis=1), ex.contributions.values.sum(axis=1))
    assert set(ex.group_names) == {f.group for f in SPEC.features}


def test_protected_columns_never_reach_a_reason(frame, booster) -> None:
    ex = explain_frame(
        frame,
        booster=booster,
        spec=SPEC,
        reference=reference_from_frame(frame, SPEC),
        top=len(SPEC.features),
        by="feature",
    )
    text = " ".join(ex.reasons["text"]) + " ".join(
        " ".join(a) for a in ex.reasons["also"]
    )
    assert "SEXVAL" not in text and "ETHVAL" not in text
    assert not set(ex.reasons["feature"]) & set(SPEC.protected)


def test_a_model_using_a_protected_characteristic_is_refused(frame) -> None:
    X = frame[["absence_rate"]].assign(sex=(frame["sex"] == "SEXVAL_F").astype(int))
    booster = lgb.train(
        {"objective": "binary", "verbose": -1}, lgb.Dataset(X, frame["cme"]), 3
    )
    spec = DatasetSpec(
        id="pupil_id",
        target="cme",
        protected=[],
        features=[
            FeatureSpec(name="absence_rate", group="attendance", reason="a"),
            FeatureSpec(name="sex", group="context", reason="s"),
        ],
    )
    with pytest.raises(ModelError, match="protected characteristic"):
        explain_frame(frame.assign(sex=X["sex"]), booster=booster, spec=spec)


def test_missing_values_are_spoken_as_not_recorded(frame, booster) -> None:
    ex = explain_frame(
        frame,
        booster=booster,
        spec=SPEC,
        reference=reference_from_frame(frame, SPEC),
        by="feature",
        top=8,
    )
    gaps = ex.reasons[ex.reasons["feature"] == "absence_rate"]
    missing_ids = set(frame.loc[frame["absence_rate"].isna(), "pupil_id"])
    spoken = gaps[gaps["id"].isin(missing_ids)]
    assert len(spoken) > 0
    assert (spoken["text"] == "absence rate: not recorded").all()
    assert not gaps["text"].str.contains("nan").any()


def test_zero_flags_and_counts_are_never_reasons(frame, booster) -> None:
    ex = explain_frame(
        frame,
        booster=booster,
        spec=SPEC,
        reference=reference_from_frame(frame, SPEC),
        by="feature",
        top=8,
    )
    by_id = frame.set_index("pupil_id")
    for name in ("sen_support", "cin_current", "school_moves", "in_year_6"):
        ids = ex.reasons.loc[ex.reasons["feature"] == name, "id"]
        assert (by_id.loc[ids, name] != 0).all()


def test_explain_bundle_uses_the_bundles_pieces(frame, booster) -> None:
    from cmerisk.explain import explain_bundle

    class Bundle:
        spec = SPEC

        def __init__(self) -> None:
            self.booster = booster
            self.reference = {"features": {"absence_rate": {"reference": 0.07}}}

        def feature_matrix(self, f: pd.DataFrame) -> pd.DataFrame:
            return feature_matrix(f, booster=booster, spec=SPEC)

        def predict_proba(self, f: pd.DataFrame) -> np.ndarray:
            return 1 / (
                1 + np.exp(-booster.predict(self.feature_matrix(f), raw_score=True))
            )

    ex = explain_bundle(frame.head(50), Bundle(), top=2)  # type: ignore[arg-type]
    assert ex.probability is not None
    assert np.allclose(ex.probability, 1 / (1 + np.exp(-ex.margin)))
    texts = ex.reasons.loc[ex.reasons["feature"] == "absence_rate", "text"]
    spoken = texts[~texts.str.endswith("not recorded")]
    assert len(spoken) > 0 and spoken.str.endswith("(LA median 7%)").all()


@pytest.mark.parametrize(
    ("mutate", "error", "fragment"),
    [
        (lambda f: f.drop(columns="school_moves"), DataError, "school_moves"),
        (lambda f: pd.concat([f, f.head(1)]), DataError, "more than once"),
        (lambda f: f.assign(age_months="old"), DataError, "age_months"),
    ],
)
def test_bad_frames_are_named(frame, booster, mutate, error, fragment) -> None:
    with pytest.raises(error, match=fragment):
        explain_frame(
            mutate(frame.head(20)),
            booster=booster,
            spec=SPEC,
            reference=reference_from_frame(frame, SPEC),
        )


def test_a_model_for_other_features_is_refused(frame, booster) -> None:
    spec = SPEC.model_copy(update={"features": list(reversed(SPEC.features))})
    with pytest.raises(ModelError, match="do not match"):
        explain_frame(frame, booster=booster, spec=spec)


def test_shap_explanation_carries_values_for_shaps_plots(frame, booster) -> None:
    ex = explain_frame(
        frame.head(30),
        booster=booster,
        spec=SPEC,
        reference=reference_from_frame(frame, SPEC),
    )
    e = shap_explanation(ex)
    assert e.values.shape == (30, len(SPEC.features))
    assert np.isfinite(e.data[:, SPEC.feature_names.index("primary_need")]).all()
    g = shap_explanation(ex, level="group")
    assert list(g.feature_names) == ex.group_names


def test_empty_frame_explains_to_nothing(frame, booster) -> None:
    ex = explain_frame(
        frame.head(0),
        booster=booster,
        spec=SPEC,
        reference=reference_from_frame(frame, SPEC),
    )
    assert len(ex) == 0 and len(ex.reasons) == 0 and len(ex.summary_frame()) == 0


@pytest.mark.parametrize("floor", [0.0, 0.3, 1.0])
def test_min_contribution_drops_small_reasons(frame, booster, floor) -> None:
    ex = explain_frame(
        frame,
        booster=booster,
        spec=SPEC,
        by="feature",
        reference=reference_from_frame(frame, SPEC),
        min_contribution=floor,
    )
    r = ex.reasons
    assert (r["contribution"] >= floor).all()
    biggest = np.where(ex.contributions.values >= max(floor, 1e-12), 1, 0).any(axis=1)
    assert set(r["id"]) <= set(ex.ids[biggest])
    if floor == 0.0:
        assert (r["contribution"] < 0.05).any()  # the default would have dropped these
