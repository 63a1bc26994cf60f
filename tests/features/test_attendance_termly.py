"""Termly fallback: rates from terms that ended before as_of."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from cmerisk.features.attendance_termly import (
    TERMLY_FEATURES,
    termly_attendance_features,
)
from cmerisk.features.window import Windows


def test_rates_from_ended_terms_summed_over_schools() -> None:
    termly = pd.DataFrame(
        {
            "pupil_id": ["a", "a", "a", "a", "b"],
            "school_urn": ["1", "2", "1", "1", "1"],
            "term_start": pd.to_datetime(
                ["2023-09-06", "2023-09-06", "2024-01-03", "2024-04-08", "2022-09-07"]
            ),
            "sessions_possible": [100, 40, 120, 100, 380],
            "sessions_authorised": [10, 0, 6, 0, 19],
            "sessions_unauthorised": [4, 10, 6, 100, 19],
        }
    )
    f = termly_attendance_features(
        pd.Series(["a", "b", "c"]), termly, w=Windows.at(date(2024, 5, 16))
    )
    assert list(f.columns) == list(TERMLY_FEATURES)
    assert (
        f.loc["a", "absence_rate_this_year"] == (10 + 4 + 10 + 12) / 260
    )  # summer not ended
    assert f.loc["a", "persistent_absence_this_year"] == 1.0
    assert np.isnan(f.loc["a", "absence_rate_last_year"])
    assert f.loc["b", "absence_rate_last_year"] == 0.1
    assert f.loc["c"].isna().all()
