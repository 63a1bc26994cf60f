"""Social-care features: open episodes at as_of, episodes of the last 3 years."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from cmerisk.features.social_care import social_care_features
from cmerisk.features.window import Windows

W = Windows.at(date(2024, 5, 16))


def _care(status: str, start: str, end: str | None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "pupil_id": ["a"],
            "status": [status],
            "start_date": pd.to_datetime([start]),
            "end_date": pd.to_datetime([end]),
        }
    )


@pytest.mark.parametrize(
    "status, start, end, current, cin_status, recent",
    [
        ("CIN", "2024-01-01", None, 1.0, "CIN", 1.0),
        (
            "CPP",
            "2024-01-01",
            "2024-05-16",
            1.0,
            "CPP",
            1.0,
        ),  # ends on as_of: still open then
        ("CLA", "2024-01-01", "2024-05-15", 0.0, "none", 1.0),
        ("CIN", "2020-01-01", "2021-05-01", 0.0, "none", 0.0),  # over 3 years ago
        ("CIN", "2024-05-16", None, 0.0, "none", 0.0),  # starts on as_of: not known
    ],
)
def test_open_and_recent_episodes(
    status, start, end, current, cin_status, recent
) -> None:
    f = social_care_features(pd.Series(["a"]), _care(status, start, end), w=W).loc["a"]
    assert f["cin_current"] == current
    assert f["cin_status"] == cin_status
    assert f["social_care_any_3y"] == recent == f["social_care_episodes_3y"]


def test_the_most_serious_open_status_wins() -> None:
    care = pd.concat(
        [
            _care("CIN", "2023-01-01", None),
            _care("CLA", "2024-02-01", None),
            _care("CPP", "2023-06-01", None),
        ]
    )
    f = social_care_features(pd.Series(["a", "b"]), care, w=W)
    assert (
        f.loc["a", "cin_status"] == "CLA" and f.loc["a", "social_care_episodes_3y"] == 3
    )
    assert (
        f.loc["b"].drop("cin_status").eq(0).all() and f.loc["b", "cin_status"] == "none"
    )
