"""Exclusion features."""

from __future__ import annotations

from datetime import date

import pandas as pd

from cmerisk.features.exclusions import exclusion_features
from cmerisk.features.window import Windows


def test_suspensions_of_the_last_year_and_any_permanent_exclusion() -> None:
    ex = pd.DataFrame(
        {
            "pupil_id": ["a", "a", "a", "a", "b"],
            "school_urn": "1",
            "start_date": pd.to_datetime(
                ["2023-05-17", "2023-05-16", "2024-05-15", "2024-05-16", "2019-01-01"]
            ),
            "category": [
                "suspension",
                "suspension",
                "suspension",
                "suspension",
                "permanent",
            ],
            "sessions": [2, 10, 3, 50, 0],
        }
    )
    f = exclusion_features(
        pd.Series(["a", "b", "c"]), ex, w=Windows.at(date(2024, 5, 16))
    )
    assert f.loc["a"].tolist() == [2.0, 5.0, 0.0]
    assert f.loc["b"].tolist() == [0.0, 0.0, 1.0]
    assert f.loc["c"].tolist() == [0.0, 0.0, 0.0]
