"""Choosing reasons: only risk-raising, true and worth acting on, grouped."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cmerisk.explain_reasons import choose_reasons, reason_eligible
from cmerisk.spec import DatasetSpec, FeatureSpec


def test_zero_flags_and_counts_are_not_eligible_but_missing_values_are() -> None:
    spec = DatasetSpec(
        id="id",
        target="y",
        features=[
            FeatureSpec(name="flag", group="needs", kind="flag", reason="f"),
            FeatureSpec(name="n", group="exclusions", kind="count", reason="n"),
            FeatureSpec(name="rate", group="attendance", kind="rate", reason="r"),
        ],
    )
    data = pd.DataFrame(
        {"flag": [0, 1, np.nan], "n": [0.0, 2.0, 0.0], "rate": [0.0, 0.1, 0.2]}
    )
    assert reason_eligible(data, spec).tolist() == [
        [False, False, True],
        [True, True, True],
        [True, False, True],
    ]


def test_choose_reasons_by_group_speaks_through_the_main_feature() -> None:
    spec = DatasetSpec(
        id="id",
        target="y",
        features=[
            FeatureSpec(name="a1", group="attendance", reason="a1"),
            FeatureSpec(name="a2", group="attendance", reason="a2"),
            FeatureSpec(name="s", group="social_care", reason="s"),
            FeatureSpec(name="m", group="mobility", reason="m"),
        ],
    )
    values = np.array([[0.3, 0.5, 0.6, -0.2]])
    groups = ["attendance", "social_care", "mobility"]
    group_values = np.array([[0.8, 0.6, -0.2]])
    chosen = choose_reasons(
        values,
        np.ones_like(values, bool),
        spec=spec,
        group_names=groups,
        group_values=group_values,
        top=3,
        by="group",
    )
    # attendance (0.8) first, spoken through a2 (0.5) with a1 as "also"; mobility never
    assert [(rank, j, c, also) for _, rank, j, c, _, also in chosen] == [
        (1, 1, 0.8, [0]),
        (2, 2, 0.6, []),
    ]
    by_feature = choose_reasons(
        values,
        np.ones_like(values, bool),
        spec=spec,
        group_names=groups,
        group_values=group_values,
        top=2,
        by="feature",
    )
    assert [j for _, _, j, _, _, _ in by_feature] == [2, 1]
