"""Who is on roll at as_of, and why the others are not."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
import tiny_la_features as tiny

from cmerisk.errors import DataError
from cmerisk.features.cohort import (
    age_in_months,
    cohort_at,
    compulsory_school_age_bounds,
)

AS_OF = date(2024, 5, 16)
SPRING = pd.Timestamp("2024-01-18")
AUTUMN = pd.Timestamp("2023-10-05")


def _pupils(*ids: str, dob: str = "2013-01-15") -> pd.DataFrame:
    return pd.DataFrame(
        {"pupil_id": list(ids), "date_of_birth": pd.to_datetime([dob] * len(ids))}
    )


def _census(rows: list[tuple[str, pd.Timestamp, str, str]]) -> pd.DataFrame:
    """(pupil, day, urn, enrolment status)."""
    frame = pd.DataFrame(
        rows, columns=["pupil_id", "census_date", "school_urn", "enrolment_status"]
    )
    return frame.assign(
        school_phase="primary",
        nc_year="6",
        fsm_eligible=False,
        sen_provision="N",
        sen_primary_need=None,
    )


def _roll(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    """(pupil, urn, day, change)."""
    frame = pd.DataFrame(rows, columns=["pupil_id", "school_urn", "date", "change"])
    return frame.assign(
        date=pd.to_datetime(frame["date"]), deletion_ground=None, destination_known=None
    )


def _ids(frames: dict, as_of: date = AS_OF) -> list[str]:
    return cohort_at(frames, as_of=as_of).frame["pupil_id"].tolist()


def test_single_and_main_registrations_place_a_pupil_subsidiary_does_not() -> None:
    census = _census(
        [
            ("a", SPRING, "1", "C"),
            ("b", SPRING, "1", "M"),
            ("b", SPRING, "2", "S"),
            ("c", SPRING, "2", "S"),
        ]
    )
    c = cohort_at({"pupils": _pupils("a", "b", "c"), "census": census}, as_of=AS_OF)
    assert c.frame["pupil_id"].tolist() == ["a", "b"]
    assert c.frame.set_index("pupil_id").loc["b", "school_urn"] == "1"
    assert c.counts["subsidiary_registration_only"] == 1


@pytest.mark.parametrize(
    "changes, on_roll, school",
    [
        ([], True, "1"),
        ([("1", "2024-03-01", "deletion")], False, None),
        ([("2", "2024-03-01", "deletion")], True, "1"),  # deleted from another school
        (
            [("1", "2024-03-01", "deletion"), ("3", "2024-03-01", "admission")],
            True,
            "3",
        ),
        ([("3", "2024-02-01", "admission")], True, "3"),
        (
            [("1", "2024-01-18", "deletion")],
            False,
            None,
        ),  # deleted on the census day itself
        (
            [("1", "2024-05-16", "deletion")],
            True,
            "1",
        ),  # deletion on as_of: not known yet
        (
            [("1", "2023-12-01", "deletion")],
            True,
            "1",
        ),  # before the census that re-placed them
    ],
)
def test_roll_changes_move_or_remove_a_pupil(changes, on_roll: bool, school) -> None:
    census = _census([("a", AUTUMN, "1", "C"), ("a", SPRING, "1", "C")])
    roll = _roll([("a", *c) for c in changes])
    c = cohort_at(
        {"pupils": _pupils("a"), "census": census, "roll_changes": roll}, as_of=AS_OF
    )
    assert (len(c.frame) == 1) is on_roll
    if on_roll:
        assert c.frame["school_urn"].item() == school


def test_a_pupil_missing_from_the_latest_census_has_left() -> None:
    census = _census(
        [("a", AUTUMN, "1", "C"), ("b", AUTUMN, "1", "C"), ("b", SPRING, "1", "C")]
    )
    c = cohort_at({"pupils": _pupils("a", "b"), "census": census}, as_of=AS_OF)
    assert c.frame["pupil_id"].tolist() == ["b"]
    assert c.counts["not_in_latest_census"] == 1


def test_no_census_before_as_of_is_an_error_not_an_empty_frame() -> None:
    census = _census([("a", SPRING, "1", "C")])
    with pytest.raises(DataError, match="no census rows dated before 2024-01-18"):
        cohort_at({"pupils": _pupils("a"), "census": census}, as_of=date(2024, 1, 18))


@pytest.mark.parametrize(
    "dob, day, of_age",
    [
        ("2019-03-31", date(2024, 3, 31), True),  # fifth birthday on a prescribed day
        ("2019-04-01", date(2024, 5, 16), False),  # turned 5 in April: from 31 August
        ("2019-04-01", date(2024, 8, 31), True),
        ("2018-12-31", date(2023, 12, 31), True),
        ("2019-01-01", date(2024, 3, 30), False),
        (
            "2008-09-01",
            date(2025, 6, 27),
            True,
        ),  # turns 16 in 2024/25: until the last Friday of June
        ("2008-09-01", date(2025, 6, 28), False),
        ("2008-08-31", date(2024, 9, 2), False),  # turned 16 in 2023/24: left
    ],
)
def test_compulsory_school_age(dob: str, day: date, of_age: bool) -> None:
    earliest, latest = compulsory_school_age_bounds(day)
    assert (earliest <= date.fromisoformat(dob) <= latest) is of_age


def test_age_in_months_counts_whole_months() -> None:
    ages = age_in_months(
        pd.Series(pd.to_datetime(["2013-05-16", "2013-05-17", None])), AS_OF
    )
    assert ages.iloc[:2].tolist() == [132.0, 131.0] and pd.isna(ages.iloc[2])


@pytest.mark.parametrize(
    "census_day, nc_year, expected",
    [
        (SPRING, "6", "6"),
        (pd.Timestamp("2023-05-18"), "5", "6"),
        (pd.Timestamp("2022-05-19"), "4", "6"),
    ],
)
def test_nc_year_moves_on_with_the_school_years(census_day, nc_year, expected) -> None:
    census = _census([("a", census_day, "1", "C")]).assign(nc_year=nc_year)
    c = cohort_at({"pupils": _pupils("a"), "census": census}, as_of=AS_OF)
    assert c.frame["nc_year"].item() == expected


def test_admitted_without_a_census_row_takes_nc_year_from_age_and_school() -> None:
    c = cohort_at(
        {
            "pupils": tiny.pupils(),
            "census": tiny.census(),
            "roll_changes": tiny.roll_changes(),
        },
        as_of=AS_OF,
    )
    p5 = c.frame.set_index("pupil_id").loc["p5"]
    assert (p5["school_urn"], p5["nc_year"]) == ("100002", "4")
    assert pd.isna(p5["school_phase"]) and pd.isna(p5["sen_provision"])


def test_the_tiny_la_cohort_and_its_counts() -> None:
    frames = {
        "pupils": tiny.pupils(),
        "census": tiny.census().query("pupil_id != 'ghost'"),
        "roll_changes": tiny.roll_changes(),
    }
    c = cohort_at(frames, as_of=AS_OF)
    assert c.frame["pupil_id"].tolist() == ["p1", "p2", "p5", "p6"]
    assert c.counts == {
        "seen": 6,
        "deleted_from_roll": 1,
        "subsidiary_registration_only": 0,
        "not_in_latest_census": 0,
        "no_date_of_birth": 0,
        "not_compulsory_school_age": 1,
        "on_roll": 4,
    }
    assert sum(v for k, v in c.counts.items() if k != "seen") == c.counts["seen"]
