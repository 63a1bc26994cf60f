"""Baselines: the points rule and logistic regression on the same features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from toy import make_spec

from cmerisk.errors import DataError
from cmerisk.model.baselines import (
    PointsRule,
    fit_logistic,
    logistic_scores,
    points_rule,
)
from cmerisk.model.matrix import category_levels, feature_matrix


def test_points_add_up_for_positive_values() -> None:
    frame = pd.DataFrame({"a": [0, 1, 3, np.nan], "b": [True, False, True, pd.NA]})
    frame["b"] = frame["b"].astype("boolean")
    rule = points_rule(frame, points={"a": 2.0, "b": 1.0})
    assert rule.score(frame).tolist() == [1.0, 2.0, 3.0, 0.0]
    assert "a 2 + b 1" in rule.describe()


def test_points_rule_notes_absent_columns_and_needs_one() -> None:
    frame = pd.DataFrame({"a": [1, 0]})
    rule = points_rule(frame, points={"a": 1.0, "cin_current": 2.0})
    assert rule.missing == ["cin_current"] and "cin_current" in rule.describe()
    assert points_rule(frame, points={"zzz": 1.0}) is None


def test_points_rule_refuses_text_columns() -> None:
    frame = pd.DataFrame({"a": ["yes", "no"]})
    with pytest.raises(DataError, match=r"'a'.*'yes'"):
        points_rule(frame, points={"a": 1.0})


def test_points_rule_is_invariant_to_row_order() -> None:
    frame = pd.DataFrame({"a": [0, 1, 2, 0], "b": [1, 1, 0, 0]})
    rule = PointsRule({"a": 1.0, "b": 2.0}, columns=frame.columns)
    np.testing.assert_array_equal(rule.score(frame.iloc[::-1]), rule.score(frame)[::-1])


def test_logistic_regression_learns_and_handles_missing_and_unseen(toy_frame) -> None:
    spec = make_spec()
    train = toy_frame[toy_frame["year_index"] <= 2]
    test = toy_frame[toy_frame["year_index"] == 3]
    levels = category_levels(train, spec=spec)
    pipe = fit_logistic(
        feature_matrix(train, spec=spec, categories=levels),
        train["y"].to_numpy(),
        spec=spec,
        seed=0,
    )
    X_test = feature_matrix(test, spec=spec, categories=levels)
    scores = logistic_scores(pipe, X_test, spec=spec)
    assert roc_auc_score(test["y"], scores) > 0.7
    odd = test.head(3).assign(phase="hospital", absence=np.nan)
    odd_scores = logistic_scores(
        pipe, feature_matrix(odd, spec=spec, categories=levels), spec=spec
    )
    assert np.isfinite(odd_scores).all()
