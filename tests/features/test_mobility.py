"""Mobility: moves, in-year admissions, earlier EHE/CME, unknown destinations."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from cmerisk.features.mobility import mobility_features, school_phases
from cmerisk.features.window import Windows

W = Windows.at(date(2024, 5, 16))


def _census(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    """(day, urn, phase) for pupil a."""
    return pd.DataFrame(
        {
            "pupil_id": "a",
            "census_date": pd.to_datetime([r[0] for r in rows]),
            "school_urn": [r[1] for r in rows],
            "school_phase": [r[2] for r in rows],
            "enrolment_status": "C",
        }
    )


def _roll(rows: list[tuple[str, str, str, bool | None]]) -> pd.DataFrame:
    """(day, urn, change, destination known) for pupil a."""
    return pd.DataFrame(
        {
            "pupil_id": "a",
            "date": pd.to_datetime([r[0] for r in rows]),
            "school_urn": [r[1] for r in rows],
            "change": [r[2] for r in rows],
            "deletion_ground": None,
            "destination_known": [r[3] for r in rows],
        }
    )


@pytest.mark.parametrize(
    "census, moves",
    [
        ([("2023-05-18", "1", "primary"), ("2024-01-18", "1", "primary")], 0),
        ([("2023-05-18", "1", "primary"), ("2024-01-18", "2", "primary")], 1),
        (
            [("2023-05-18", "1", "primary"), ("2023-10-05", "3", "secondary")],
            0,
        ),  # Y6 -> Y7
        (
            [
                ("2023-05-18", "1", "secondary"),
                ("2023-10-05", "3", "ap"),
                ("2024-01-18", "1", "secondary"),
            ],
            2,
        ),
        (
            [
                ("2021-05-20", "1", "primary"),
                ("2022-01-20", "2", "primary"),
                ("2024-01-18", "2", "primary"),
            ],
            0,
        ),  # over 2 years ago
    ],
)
def test_school_moves(census, moves: int) -> None:
    f = mobility_features(pd.Series(["a"]), {"census": _census(census)}, w=W)
    assert f.loc["a", "school_moves_2y"] == moves
    assert "in_year_admissions_2y" not in f.columns  # needs roll_changes


def test_admissions_deletions_and_earlier_episodes() -> None:
    census = _census([("2023-10-05", "1", "primary")])
    roll = _roll(
        [
            ("2023-09-06", "1", "admission", None),
            ("2024-02-01", "1", "deletion", False),
            ("2024-02-06", "2", "admission", None),
            ("2024-05-16", "3", "admission", None),
        ]
    )
    ehe = pd.DataFrame(
        {
            "pupil_id": ["a"],
            "start_date": pd.to_datetime(["2022-01-01"]),
            "end_date": pd.to_datetime(["2022-06-01"]),
        }
    )
    cme = pd.DataFrame(
        {
            "pupil_id": ["b"],
            "start_date": pd.to_datetime(["2023-01-01"]),
            "end_date": [pd.NaT],
            "outcome": [None],
        }
    )
    frames = {"census": census, "roll_changes": roll, "ehe": ehe, "cme_episodes": cme}
    f = mobility_features(pd.Series(["a", "b"]), frames, w=W)
    a = f.loc["a"]
    assert a["school_moves_2y"] == 1
    assert a["in_year_admissions_2y"] == 1  # September is the normal round
    assert a["days_since_admission"] == (date(2024, 5, 16) - date(2024, 2, 6)).days
    assert a["unknown_destination_deletions_2y"] == 1
    assert (a["previous_ehe"], a["previous_cme"]) == (1.0, 0.0)
    assert (f.loc["b", "previous_cme"], f.loc["b", "in_year_admissions_2y"]) == (
        1.0,
        0.0,
    )


def test_school_phase_is_the_commonest_recorded() -> None:
    census = pd.DataFrame(
        {
            "school_urn": ["1", "1", "1", "2"],
            "school_phase": ["primary", "primary", "special", None],
        }
    )
    assert school_phases(census).to_dict() == {"1": "primary"}


def test_days_since_admission_counts_up_to_two_years() -> None:
    """Capped at 730, so its values do not grow with the length of the extract."""
    from cmerisk.features.mobility import ADMISSION_DAYS_CAP
    from cmerisk.features.window import Coverage

    census = pd.concat(
        [
            _census([("2024-01-18", "1", "primary")]),
            _census([("2024-01-18", "1", "primary")]).assign(pupil_id="old"),
            _census([("2024-01-18", "1", "primary")]).assign(pupil_id="none"),
        ]
    )
    roll = pd.concat(
        [
            _roll([("2024-02-06", "1", "admission", None)]),
            _roll([("2019-03-04", "1", "admission", None)]).assign(pupil_id="old"),
        ]
    )
    ids = pd.Series(["a", "old", "none"])
    frames = {"census": census, "roll_changes": roll}
    covered = mobility_features(ids, frames, w=W)["days_since_admission"]
    assert covered["a"] == (date(2024, 5, 16) - date(2024, 2, 6)).days
    # five years ago, and none in 2 covered years: both "2 years or more"
    assert covered["old"] == covered["none"] == ADMISSION_DAYS_CAP == 730
    # data from September 2023 only: no admission seen says nothing
    short = Windows.at(date(2024, 5, 16), coverage=Coverage(records=date(2023, 9, 1)))
    f = mobility_features(ids, frames, w=short)["days_since_admission"]
    assert f["a"] == covered["a"] and f["old"] == 730 and pd.isna(f["none"])
