"""Needs features from the census."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from cmerisk.features.needs import needs_features
from cmerisk.features.window import Windows

W = Windows.at(date(2024, 5, 16))


def _census(provisions: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "pupil_id": "a",
            "census_date": pd.to_datetime([d for d, _ in provisions]),
            "enrolment_status": "C",
            "sen_provision": [p for _, p in provisions],
        }
    )


@pytest.mark.parametrize(
    "provision, need, sen_any, ehc, semh",
    [
        ("N", None, 0.0, 0.0, 0.0),
        ("K", "SEMH", 1.0, 0.0, 1.0),
        ("E", "ASD", 1.0, 1.0, 0.0),
        (None, None, np.nan, np.nan, np.nan),
    ],
)
def test_sen_flags(provision, need, sen_any, ehc, semh) -> None:
    cohort = pd.DataFrame(
        {"pupil_id": ["a"], "sen_provision": [provision], "sen_primary_need": [need]}
    )
    f = needs_features(cohort, _census([("2024-01-18", provision or "N")]), w=W).loc[
        "a"
    ]
    np.testing.assert_array_equal(
        f[["sen_any", "ehc_plan", "semh_need"]].astype(float), [sen_any, ehc, semh]
    )
    assert (f["semh"] is pd.NA) if provision is None else (f["semh"] == (semh == 1.0))


@pytest.mark.parametrize(
    "history, changed",
    [
        ([("2023-05-18", "N"), ("2024-01-18", "K")], 1.0),
        ([("2023-05-18", "K"), ("2024-01-18", "K")], 0.0),
        ([("2023-01-19", "N"), ("2024-01-18", "K")], np.nan),  # older than 12 months
        (
            [("2024-01-18", "K"), ("2024-05-16", "N")],
            np.nan,
        ),  # the as-of census is not known
    ],
)
def test_sen_change_in_the_last_year(history, changed) -> None:
    cohort = pd.DataFrame(
        {"pupil_id": ["a"], "sen_provision": ["K"], "sen_primary_need": [None]}
    )
    f = needs_features(cohort, _census(history), w=W)
    np.testing.assert_equal(f.loc["a", "sen_changed_1y"], changed)
