"""Audit groups: readable labels, fixed order, Unknown for missing, bins, crossings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cmerisk.errors import DataError
from cmerisk.fairness_groups import UNKNOWN, column_grouping, intersect, make_groupings
from cmerisk.spec import SensitiveSpec

SEN = SensitiveSpec(
    name="sen_provision",
    label="SEN provision",
    value_labels={"N": "No SEN", "K": "SEN support", "E": "EHC plan"},
)
IDACI = SensitiveSpec(
    name="idaci_decile",
    bins=[0, 2, 4, 6, 8, 10],
    bin_labels=["1 (most deprived)", "2", "3", "4", "5"],
)


@pytest.mark.parametrize(
    ("values", "sensitive", "keys", "labels"),
    [
        (
            ["E", "N", None, "K", "N"],
            SEN,
            ("N", "K", "E", UNKNOWN),
            ("No SEN", "SEN support", "EHC plan", UNKNOWN),
        ),
        (
            [True, False, None, True],
            None,
            ("False", "True", UNKNOWN),
            ("No", "Yes", UNKNOWN),
        ),
        (
            [10.0, 2.0, np.nan, 1.0],
            None,
            ("1", "2", "10", UNKNOWN),
            ("1", "2", "10", UNKNOWN),
        ),
        (["b", "a", "c"], None, ("a", "b", "c"), ("a", "b", "c")),
        (
            [1, 2, 3, 9, 10, None],
            IDACI,
            ("1 (most deprived)", "2", "5", UNKNOWN),
            ("1 (most deprived)", "2", "5", UNKNOWN),
        ),
    ],
)
def test_groups_are_readable_and_in_a_fixed_order(values, sensitive, keys, labels):
    g = column_grouping(pd.Series(values), name="x", sensitive=sensitive)
    assert g.keys == keys
    assert g.labels == labels
    assert g.sizes().sum() == len(values)  # every pupil in exactly one group


def test_categorical_order_is_kept_and_unknown_is_last():
    s = pd.Series(
        pd.Categorical(["low", None, "high", "mid"], categories=["low", "mid", "high"])
    )
    g = column_grouping(s, name="band")
    assert g.keys == ("low", "mid", "high", UNKNOWN)
    assert [g.keys[c] for c in g.codes] == ["low", UNKNOWN, "high", "mid"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["3", "high"], "value 'high' is not a number"),
        ([3, 11], "value 11 lies outside"),
    ],
)
def test_values_the_bins_cannot_place_are_refused(values, message):
    with pytest.raises(DataError, match=f"audit column 'idaci_decile': {message}"):
        column_grouping(pd.Series(values), name="idaci_decile", sensitive=IDACI)


def test_intersection_keeps_only_combinations_with_pupils():
    a = column_grouping(
        pd.Series(["N", "E", "N", "N"]), name="sen_provision", sensitive=SEN
    )
    b = column_grouping(pd.Series([True, False, False, None]), name="fsm")
    ab = intersect([a, b])
    assert ab.keys == ("N & False", "N & True", "N & Unknown", "E & False")
    assert ab.labels[1] == "No SEN & fsm: yes"
    assert ab.describe(1) == "sen_provision=N & fsm=True"
    assert ab.sizes().tolist() == [1, 1, 1, 1]
    assert sorted(map(sorted, ab.slices())) == [[0, 1, 2], [0, 3], [1], [2], [3]]


def test_make_groupings_says_what_it_skipped_and_marks_protected():
    frame = pd.DataFrame({"sex": ["F", "M"], "sen_provision": ["N", "E"]})
    gs, skipped = make_groupings(
        frame,
        columns=["sex", "sen_provision", "sex", "cin"],
        intersections=[["sen_provision", "sex"]],
        sensitive=[SEN],
        protected=["sex"],
    )
    assert [g.name for g in gs] == ["sex", "sen_provision", "sen_provision & sex"]
    assert [g.protected for g in gs] == [True, False, True]
    assert skipped == ["'cin' is not in the data: not audited"]
    assert (
        gs[0].find("M") == 1 and gs[1].find("EHC plan") == 1 and gs[1].find("Z") is None
    )
