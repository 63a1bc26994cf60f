"""Small-number suppression: primary, complementary and consequential cells."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmerisk.fairness_bootstrap import COUNTS, RATES
from cmerisk.fairness_suppress import flagged_suppression, suppression


def _counts(pupils, positives, flagged):
    return {
        "pupils": np.array(pupils),
        "positives": np.array(positives),
        "flagged": np.array(flagged),
    }


def test_a_group_under_min_cell_is_hidden_everywhere():
    c = suppression(
        _counts([500, 9, 400, 300], [40, 9, 30, 20], [20, 5, 20, 20]),
        min_cell=10,
        slices=[[0, 1, 2, 3]],
    )
    assert all(c[k][1] for k in (*COUNTS, *RATES))


@pytest.mark.parametrize(
    ("counts", "hidden", "shown"),
    [
        # 30 pupils, 4 went missing: rates over them go, the size stays
        (
            ([30, 500], [4, 50], [12, 40]),
            {
                "positives",
                "recall",
                "missed_rate",
                "base_rate",
                "auc",
                "calibration_error",
                "precision",
                "false_positive_rate",
            },
            {"pupils", "flagged", "selection_rate"},
        ),
        # plenty went missing but only 6 flagged: precision and anything giving 6 back
        (
            ([300, 500], [40, 50], [6, 40]),
            {"flagged", "precision", "selection_rate", "false_positive_rate"},
            {"pupils", "positives", "recall", "missed_rate", "base_rate", "auc"},
        ),
        # 12 pupils, all went missing: no negatives for a false-positive rate or AUC
        (
            ([12, 500], [12, 50], [10, 40]),
            {"false_positive_rate", "auc", "calibration_error"},
            {"pupils", "positives", "flagged", "recall", "missed_rate", "precision"},
        ),
    ],
)
def test_rates_need_min_cell_in_their_denominator(counts, hidden, shown):
    # no slices: primary and consequential rules only (complementary is tested below)
    c = suppression(_counts(*counts), min_cell=10, slices=[])
    assert {k for k in (*COUNTS, *RATES) if c[k][0]} >= hidden
    assert not any(c[k][0] for k in shown)


def test_complementary_suppression_picks_the_smallest_other_group():
    c = suppression(
        _counts([500, 9, 60, 200], [40, 2, 12, 30], [30, 1, 15, 20]),
        min_cell=10,
        slices=[[0, 1, 2, 3]],
    )
    assert c["pupils"].tolist() == [False, True, True, False]
    assert c["positives"].tolist() == [False, True, True, False]
    # rates that would give a hidden count back go too, the others stay
    assert c["selection_rate"][2] and c["base_rate"][2] and c["false_positive_rate"][2]
    assert not c["recall"][2] and not c["missed_rate"][2]


def test_two_hidden_cells_need_no_third():
    c = suppression(
        _counts([500, 9, 8, 60], [40, 2, 1, 12], [30, 1, 1, 15]),
        min_cell=10,
        slices=[[0, 1, 2, 3]],
    )
    assert c["pupils"].tolist() == [False, True, True, False]


@settings(max_examples=150, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 80), min_size=4, max_size=4),
    rates=st.lists(st.floats(0, 1), min_size=4, max_size=4),
)
def test_no_slice_of_a_two_by_two_table_has_exactly_one_hidden_count(sizes, rates):
    pupils = np.array(sizes)
    positives = np.floor(pupils * np.array(rates)).astype(int)
    flagged = pupils // 3
    slices = [[0, 1], [2, 3], [0, 2], [1, 3]]  # rows and columns of a 2x2 table
    c = suppression(_counts(pupils, positives, flagged), min_cell=10, slices=slices)
    for key in COUNTS:
        for members in slices:
            assert c[key][members].sum() != 1, (key, members, c[key])


def test_flagged_counts_of_another_allocation_are_protected_too():
    hidden = flagged_suppression(
        np.array([150, 45, 5]), tiny=np.zeros(3, bool), min_cell=10, slices=[[0, 1, 2]]
    )
    assert hidden.tolist() == [False, True, True]
    tiny = np.array([False, False, True])
    hidden = flagged_suppression(
        np.array([150, 45, 12]), tiny=tiny, min_cell=10, slices=[[0, 1, 2]]
    )
    assert hidden.tolist() == [False, True, True]
