"""School years, census days and a typical English school calendar.

A school year runs from 1 September to 31 August and is named by the calendar
year it starts in (``2023`` is 2023/24). Census days are fixed by DfE: the
autumn census on the first Thursday of October, spring on the third Thursday of
January, summer on the third Thursday of May.

:func:`school_days` builds a typical LA term-time calendar: three terms with
half-terms, Christmas and Easter holidays, England's bank holidays (from the
``holidays`` package) removed, and INSET days taken at term starts so that the
year has the statutory 190 school days (380 sessions).

Examples
--------
>>> school_year_of(date(2024, 8, 31)), school_year_of(date(2024, 9, 1))
(2023, 2024)
>>> census_date(2024, "spring")
datetime.date(2025, 1, 16)
>>> census_date(2024, "summer")
datetime.date(2025, 5, 15)
>>> len(school_days(2024))
190
"""

from __future__ import annotations

import functools
from datetime import date, timedelta
from typing import Final, Literal

import holidays
import numpy as np
from dateutil.easter import easter

Term = Literal["autumn", "spring", "summer"]
TERMS: Final[tuple[Term, ...]] = ("autumn", "spring", "summer")
SCHOOL_DAYS_PER_YEAR: Final[int] = 190


def school_year_of(day: date) -> int:
    """Return the school year (its starting calendar year) that ``day`` falls in."""
    return day.year if day.month >= 9 else day.year - 1


def school_year_label(school_year: int) -> str:
    """Return the DfE label of a school year, e.g. ``202425``.

    >>> school_year_label(2024)
    '202425'
    """
    return f"{school_year}{(school_year + 1) % 100:02d}"


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th (1-based) given weekday (Mon=0) of a month."""
    first = date(year, month, 1)
    offset = (weekday - first.weekday()) % 7
    return first + timedelta(days=offset + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def census_date(school_year: int, term: Term) -> date:
    """Return the census day of ``term`` in ``school_year``."""
    thursday = 3
    if term == "autumn":
        return _nth_weekday(school_year, 10, thursday, 1)
    if term == "spring":
        return _nth_weekday(school_year + 1, 1, thursday, 3)
    if term == "summer":
        return _nth_weekday(school_year + 1, 5, thursday, 3)
    raise ValueError(f"unknown term {term!r}; expected one of {TERMS}")


def census_dates(school_year: int) -> dict[Term, date]:
    """Return the three census days of ``school_year``."""
    return {term: census_date(school_year, term) for term in TERMS}


def _weekdays(start: date, end: date) -> list[date]:
    """Monday-Friday dates from ``start`` to ``end`` inclusive."""
    days = []
    d = start
    while d <= end:
        if d.weekday() < 5:
            days.append(d)
        d += timedelta(days=1)
    return days


def _week_of(monday: date) -> set[date]:
    return {monday + timedelta(days=i) for i in range(5)}


@functools.cache
def term_dates(school_year: int) -> dict[Term, tuple[date, date]]:
    """Return (first day, last day) of each term, before INSET days are taken."""
    y0, y1 = school_year, school_year + 1
    autumn_start = date(y0, 9, 2)
    while autumn_start.weekday() != 2:  # the first Wednesday on or after 2 September
        autumn_start += timedelta(days=1)
    christmas = date(y0, 12, 25)
    autumn_end = christmas - timedelta(days=(christmas.weekday() - 4) % 7 or 7)
    spring_start = date(y1, 1, 3)
    while spring_start.weekday() >= 5:
        spring_start += timedelta(days=1)
    easter_sunday = easter(y1)
    spring_end = easter_sunday - timedelta(days=9)  # Friday before Holy Week
    summer_start = easter_sunday + timedelta(days=8)  # Monday after Easter week
    summer_end = date(y1, 7, 22)
    while summer_end.weekday() >= 5:
        summer_end -= timedelta(days=1)
    return {
        "autumn": (autumn_start, autumn_end),
        "spring": (spring_start, spring_end),
        "summer": (summer_start, summer_end),
    }


@functools.cache
def _school_days(school_year: int) -> tuple[date, ...]:
    y0, y1 = school_year, school_year + 1
    terms = term_dates(school_year)
    closed: set[date] = set()
    closed |= _week_of(_last_weekday(y0, 10, 0))  # October half-term
    closed |= _week_of(_nth_weekday(y1, 2, 0, 3))  # February half-term
    closed |= _week_of(_last_weekday(y1, 5, 0))  # May half-term
    bank = holidays.country_holidays("GB", subdiv="ENG", years=[y0, y1])
    closed |= set(bank)
    days_by_term = {
        term: [d for d in _weekdays(*terms[term]) if d not in closed] for term in TERMS
    }
    total = sum(len(v) for v in days_by_term.values())
    # INSET days: take term-start days, autumn first, until 190 remain.
    order = [*TERMS, *TERMS, *TERMS]
    i = 0
    while total > SCHOOL_DAYS_PER_YEAR:
        days_by_term[order[i % len(order)]].pop(0)
        total -= 1
        i += 1
    # A short year: extend the summer term by whole weekdays.
    extra = terms["summer"][1]
    while total < SCHOOL_DAYS_PER_YEAR:
        extra += timedelta(days=1)
        if extra.weekday() < 5 and extra not in closed:
            days_by_term["summer"].append(extra)
            total += 1
    return tuple(d for term in TERMS for d in days_by_term[term])


def school_days(school_year: int) -> list[date]:
    """Return the school days of ``school_year`` in order (190 of them)."""
    return list(_school_days(school_year))


def school_days_array(school_year: int) -> np.ndarray:
    """Return :func:`school_days` as a ``datetime64[D]`` array."""
    return np.array(_school_days(school_year), dtype="datetime64[D]")


def term_of(day: date) -> Term:
    """Return the term a date falls in (holidays go with the term that follows;
    August goes with summer).

    >>> term_of(date(2024, 11, 5)), term_of(date(2025, 2, 3)), term_of(date(2025, 8, 1))
    ('autumn', 'spring', 'summer')
    """
    year = school_year_of(day)
    terms = term_dates(year)
    if day <= terms["autumn"][1]:
        return "autumn"
    if day <= terms["spring"][1]:
        return "spring"
    return "summer"


def term_start(day: date) -> date:
    """Return the first day of the term containing ``day`` (see :func:`term_of`)."""
    return term_dates(school_year_of(day))[term_of(day)][0]


def age_on(date_of_birth: date, day: date) -> int:
    """Return age in whole years on ``day``.

    >>> age_on(date(2014, 9, 1), date(2025, 8, 31)), age_on(date(2014, 9, 1), date(2025, 9, 1))
    (10, 11)
    """
    return (
        day.year
        - date_of_birth.year
        - ((day.month, day.day) < (date_of_birth.month, date_of_birth.day))
    )


def nc_year_for(date_of_birth: date, school_year: int) -> int:
    """Return the national curriculum year (0 = Reception) a child born on
    ``date_of_birth`` is in during ``school_year``, by age on 31 August before it.

    >>> nc_year_for(date(2014, 9, 1), 2025), nc_year_for(date(2015, 8, 31), 2025)
    (6, 6)
    """
    age_at_start = age_on(date_of_birth, date(school_year, 8, 31))
    return age_at_start - 4
