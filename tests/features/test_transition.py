"""Transition features."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from cmerisk.features.transition import transition_features
from cmerisk.features.window import Windows

W = Windows.at(date(2024, 5, 16))


@pytest.mark.parametrize(
    "dob, summer_born",
    [
        ("2013-03-31", 0.0),
        ("2013-04-01", 1.0),
        ("2013-08-31", 1.0),
        ("2012-09-01", 0.0),
    ],
)
def test_summer_born_is_april_to_august(dob: str, summer_born: float) -> None:
    cohort = pd.DataFrame(
        {"pupil_id": ["a"], "nc_year": ["6"], "date_of_birth": pd.to_datetime([dob])}
    )
    assert transition_features(cohort, None, w=W).loc["a", "summer_born"] == summer_born


@pytest.mark.parametrize(
    "nc_year, offer_date, expected",
    [
        ("6", None, 1.0),
        ("6", "2024-03-01", 0.0),
        ("6", "2024-05-16", 1.0),
        ("5", None, np.nan),
        ("7", "2023-03-01", np.nan),
    ],
)
def test_no_secondary_offer_only_for_year_6(nc_year, offer_date, expected) -> None:
    cohort = pd.DataFrame(
        {
            "pupil_id": ["a"],
            "nc_year": [nc_year],
            "date_of_birth": pd.to_datetime(["2013-01-01"]),
        }
    )
    offers = pd.DataFrame(
        {
            "pupil_id": ["a"] if offer_date else [],
            "school_urn": ["9"] if offer_date else [],
            "offer_date": pd.to_datetime([offer_date] if offer_date else []),
        }
    )
    f = transition_features(cohort, offers, w=W).loc["a"]
    np.testing.assert_equal(f["no_secondary_offer"], expected)
    assert (f["secondary_offer_urn"] == "9") is (expected == 0.0)


def test_nc_year_number_and_age() -> None:
    cohort = pd.DataFrame(
        {
            "pupil_id": ["a", "b"],
            "nc_year": ["R", "11"],
            "date_of_birth": pd.to_datetime(["2019-01-10", "2008-09-01"]),
        }
    )
    f = transition_features(cohort, None, w=W)
    assert f["nc_year_num"].tolist() == [0.0, 11.0]
    assert f["in_year_6"].tolist() == [0.0, 0.0]
    assert f["age_years"].tolist() == [5, 15]
    assert "no_secondary_offer" not in f.columns
