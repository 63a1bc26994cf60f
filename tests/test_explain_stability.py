"""Reason stability across retrainings with different seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _explain_models import PARAMS, SPEC, make_frame, train
from cmerisk.explain import reference_from_frame
from cmerisk.explain_stability import (
    jaccard,
    mean_pairwise_jaccard,
    reason_stability,
    retrain_with_seeds,
    stability_of,
)

S = frozenset


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (S(), S(), 1.0),
        (S({"x"}), S(), 0.0),
        (S({"x", "y", "z"}), S({"x", "y", "z"}), 1.0),
        (S({"x", "y", "z"}), S({"x", "y", "w"}), 0.5),
        (S({"x"}), S({"y"}), 0.0),
    ],
)
def test_jaccard(a, b, expected) -> None:
    assert jaccard(a, b) == expected
    assert jaccard(b, a) == expected


def test_mean_pairwise_jaccard_averages_every_pair() -> None:
    sets = [S({"a", "b"}), S({"a", "b"}), S({"a", "c"})]
    # pairs: (1, 1/3, 1/3)
    assert mean_pairwise_jaccard(sets) == pytest.approx((1 + 1 / 3 + 1 / 3) / 3)
    assert mean_pairwise_jaccard(sets[:1]) == 1.0


def test_stability_of_names_the_reason_that_comes_and_goes() -> None:
    features = [
        {"p1": S({"absence", "cin"}), "p2": S({"absence", "moves"})},
        {"p1": S({"absence", "cin"}), "p2": S({"absence"})},
        {"p1": S({"absence", "cin"}), "p2": S({"absence", "moves"})},
    ]
    groups = {"absence": "attendance", "cin": "social_care", "moves": "mobility"}
    group_sets = [{k: S(groups[f] for f in v) for k, v in m.items()} for m in features]
    report = stability_of(features, group_sets, groups=groups, level="feature")
    per = report.per_pupil.set_index("id")
    assert per.loc["p1", "jaccard"] == 1.0
    assert per.loc["p2", "jaccard"] == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    assert per.loc["p2", "unstable"] == "moves"
    assert report.unstable_reasons == ["moves"] == report.unstable_features
    r = report.features.set_index("reason")
    assert r.loc["moves", "pupils_any"] == 1 and r.loc["moves", "pupils_all"] == 0
    assert (
        r.loc["absence", "kept_share"] == 1.0 and r.loc["moves", "group"] == "mobility"
    )
    assert report.share_meeting_goal == 0.5
    assert "moves" in report.summary()
    assert "p1" not in str(report.to_dict())  # no pupil ids in the summary


def test_group_level_overlap_forgives_features_trading_places() -> None:
    """Two correlated attendance features swap: the heading is stable, the
    sentence under it is not, and the report says both."""
    features = [{"p": S({"absence_year", "cin"})}, {"p": S({"absence_term", "cin"})}]
    groups = {
        "absence_year": "attendance",
        "absence_term": "attendance",
        "cin": "social_care",
    }
    group_sets = [{k: S(groups[f] for f in v) for k, v in m.items()} for m in features]
    report = stability_of(features, group_sets, groups=groups, level="group")
    assert report.mean_jaccard == 1.0 == report.mean_group_jaccard
    assert report.mean_feature_jaccard == pytest.approx(1 / 3)
    assert report.unstable_reasons == []
    assert sorted(report.unstable_features) == ["absence_term", "absence_year"]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame(2000, seed=4)


def test_identical_models_are_perfectly_stable(frame) -> None:
    booster = train(frame)
    report = reason_stability(
        frame.head(100),
        boosters=[booster, booster, booster],
        spec=SPEC,
        reference=reference_from_frame(frame, SPEC),
    )
    assert report.mean_jaccard == 1.0 and report.unstable_reasons == []
    assert report.mean_feature_jaccard == 1.0 and report.unstable_features == []
    assert len(report.per_pupil) == 100


def test_seeds_change_sampled_models_and_stability_is_measured(frame) -> None:
    X = frame[SPEC.feature_names]
    params = {
        **PARAMS,
        "bagging_fraction": 0.7,
        "bagging_freq": 1,
        "feature_fraction": 0.7,
    }
    boosters = retrain_with_seeds(
        X,
        frame["cme"],
        params=params,
        num_boost_round=40,
        seeds=range(5),
        categorical_feature=["primary_need"],
    )
    assert len(boosters) == 5
    margins = np.stack([b.predict(X, raw_score=True) for b in boosters])
    assert not np.allclose(margins[0], margins[1])  # the seeds did something
    again = retrain_with_seeds(
        X,
        frame["cme"],
        params=params,
        num_boost_round=40,
        seeds=[0],
        categorical_feature=["primary_need"],
    )
    assert np.allclose(again[0].predict(X, raw_score=True), margins[0])  # reproducible
    top = frame["pupil_id"].to_numpy()[np.argsort(-margins.mean(axis=0))[:100]]
    report = reason_stability(
        frame,
        boosters=boosters,
        spec=SPEC,
        reference=reference_from_frame(frame, SPEC),
        ids=top,
    )
    assert set(report.per_pupil["id"]) == set(top)
    assert 0 < report.mean_feature_jaccard <= report.mean_group_jaccard <= 1
    assert report.mean_jaccard == report.mean_group_jaccard  # reasons are by group
    assert report.mean_jaccard >= 0.8  # this toy's reasons are clear-cut


def test_stability_needs_two_models(frame) -> None:
    with pytest.raises(ValueError, match="at least two"):
        reason_stability(frame, boosters=[train(frame)], spec=SPEC)
