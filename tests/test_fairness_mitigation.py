"""Mitigation as analysis: equal-recall allocation and ThresholdOptimizer."""

from __future__ import annotations

import numpy as np
import pytest

from _fairness_frames import SPEC, config, two_groups
from cmerisk.fairness import CalibrationData, mitigation_analysis
from cmerisk.fairness_inputs import ranking
from cmerisk.fairness_mitigation import equal_recall_allocation


@pytest.mark.parametrize("capacity", [1, 50, 400, 5000])
def test_equal_recall_allocation_spends_exactly_the_capacity(capacity):
    rng = np.random.default_rng(0)
    score = rng.beta(1, 20, 3000)
    group = rng.integers(0, 3, 3000)
    flags = equal_recall_allocation(
        score, group, order=ranking(score), capacity=capacity
    )
    assert flags.sum() == min(capacity, 3000)
    for g in range(3):  # within a group, the highest scores go first
        s = score[group == g]
        taken = flags[group == g]
        if taken.any() and not taken.all():
            assert s[taken].min() >= s[~taken].max()


def test_equal_recall_allocation_equalises_expected_recall():
    rng = np.random.default_rng(1)
    score = np.r_[
        rng.beta(2, 8, 1000), rng.beta(1, 30, 4000)
    ]  # a high- and a low-risk group
    group = np.r_[np.zeros(1000, int), np.ones(4000, int)]
    order = ranking(score)
    flags = equal_recall_allocation(score, group, order=order, capacity=800)
    recall = [
        score[flags & (group == g)].sum() / score[group == g].sum() for g in (0, 1)
    ]
    blind = np.zeros(len(score), bool)
    blind[order[:800]] = True
    blind_recall = [
        score[blind & (group == g)].sum() / score[group == g].sum() for g in (0, 1)
    ]
    assert abs(recall[0] - recall[1]) < 0.01
    assert abs(blind_recall[0] - blind_recall[1]) > 0.2  # the blind list is far apart


@pytest.fixture(scope="module")
def analysis():
    frame, y, score = two_groups(6000, seed=3, under_score_b=0.5)
    frame.loc[:11, "g"] = "Few"  # 12 pupils: flags suppressed, recall suppressed
    return mitigation_analysis(
        frame, spec=SPEC, config=config(), y_true=y, y_score=score, capacity=300, seed=0
    )


def test_every_strategy_is_compared_and_the_capacity_strategies_use_it(analysis):
    assert set(analysis["strategy"]) == {"top_k", "equal_recall", "threshold_optimizer"}
    totals = analysis.query("group == 'all' and metric == 'flagged'").set_index(
        "strategy"
    )
    assert totals.loc["top_k", "value"] == 300
    assert totals.loc["equal_recall", "value"] == 300
    assert totals.loc["threshold_optimizer", "value"] > 300  # it knows no capacity


def test_equal_recall_narrows_the_missed_gap_at_the_same_capacity(analysis):
    missed = analysis.query("metric == 'missed_rate' and group in ['A', 'B']")
    gap = missed.pivot(index="strategy", columns="group", values="value")
    gaps = (gap["B"] - gap["A"]).abs()
    assert gaps["equal_recall"] < gaps["top_k"]


def test_mitigation_cells_are_suppressed_like_the_audit(analysis):
    few = analysis[analysis["group"] == "Few"]
    assert few["suppressed"].all() and few["value"].isna().all()


def test_notes_say_what_thresholdoptimizer_was_fitted_on(analysis):
    assert any(
        "fitted on the audited pupils themselves" in n for n in analysis.attrs["notes"]
    )
    frame, y, score = two_groups(3000, seed=4)
    cal_frame, cal_y, cal_score = two_groups(3000, seed=5)
    with_cal = mitigation_analysis(
        frame,
        spec=SPEC,
        config=config(),
        y_true=y,
        y_score=score,
        capacity=100,
        calibration=CalibrationData(cal_frame, cal_y, cal_score),
    )
    assert any("calibration slice (3,000 pupils)" in n for n in with_cal.attrs["notes"])
    cal_frame.loc[:, "g"] = "A"  # B never seen when fitting
    skipped = mitigation_analysis(
        frame,
        spec=SPEC,
        config=config(),
        y_true=y,
        y_score=score,
        capacity=100,
        calibration=CalibrationData(cal_frame, cal_y, cal_score),
    )
    assert "threshold_optimizer" not in set(skipped["strategy"])
    assert any("skipped for 'g'" in n and "'B'" in n for n in skipped.attrs["notes"])
