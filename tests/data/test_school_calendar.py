from __future__ import annotations

from datetime import date

import pytest

from cmerisk.data.school_calendar import (
    census_date,
    nc_year_for,
    school_days,
    school_year_of,
    term_dates,
    term_of,
)

YEARS = list(range(2018, 2030))


@pytest.mark.parametrize("year", YEARS)
def test_every_year_has_190_weekday_school_days_in_term(year: int) -> None:
    days = school_days(year)
    assert len(days) == 190
    assert len(set(days)) == 190
    assert all(d.weekday() < 5 for d in days)
    assert days == sorted(days)
    assert all(school_year_of(d) == year for d in days)
    assert date(year, 12, 25) not in days


@pytest.mark.parametrize(
    "bank_holiday",
    [
        date(2020, 5, 8),  # VE Day: the early May bank holiday moved to a Friday
        date(2022, 6, 2),  # Platinum Jubilee
        date(2022, 6, 3),
        date(2023, 5, 8),  # Coronation
        date(2024, 5, 6),
        date(2025, 5, 5),
        date(2025, 4, 18),  # Good Friday
    ],
)
def test_bank_holidays_are_not_school_days(bank_holiday: date) -> None:
    assert bank_holiday not in school_days(school_year_of(bank_holiday))


@pytest.mark.parametrize(
    ("year", "term", "expected"),
    [
        # published census days
        (2023, "autumn", date(2023, 10, 5)),
        (2023, "spring", date(2024, 1, 18)),
        (2023, "summer", date(2024, 5, 16)),
        (2024, "autumn", date(2024, 10, 3)),
        (2024, "spring", date(2025, 1, 16)),
        (2024, "summer", date(2025, 5, 15)),
    ],
)
def test_census_days(year: int, term: str, expected: date) -> None:
    assert census_date(year, term) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("year", YEARS)
def test_census_days_are_school_days_in_their_term(year: int) -> None:
    days = set(school_days(year))
    for term in ("autumn", "spring", "summer"):
        d = census_date(year, term)  # type: ignore[arg-type]
        assert d in days
        assert term_of(d) == term
    starts = [term_dates(year)[t][0] for t in ("autumn", "spring", "summer")]
    assert starts == sorted(starts)


@pytest.mark.parametrize(
    ("dob", "year", "nc"),
    [
        (date(2013, 9, 1), 2024, 6),  # oldest in the year group
        (date(2014, 8, 31), 2024, 6),  # youngest: summer-born
        (date(2014, 9, 1), 2024, 5),
        (date(2019, 8, 31), 2024, 1),
        (date(2019, 9, 1), 2024, 0),  # Reception
    ],
)
def test_nc_year_by_age_on_31_august(dob: date, year: int, nc: int) -> None:
    assert nc_year_for(dob, year) == nc
