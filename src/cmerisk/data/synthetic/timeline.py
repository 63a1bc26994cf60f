"""The generator's clock: the school days, weeks and key dates of the years it makes.

Everything in the synthetic LA happens on a :class:`Timeline`: school days are
numbered ``0 .. n_days - 1`` across all the years (so "20 continuous school
days" is plain index arithmetic), dates are ``datetime64[D]`` integers (days
since 1970-01-01), and a *school week* is the set of school days sharing a
Monday, together with the calendar span up to the next school week (so that
holidays belong to the week before them).

Examples
--------
>>> tl = Timeline.build(2023, 2)
>>> tl.n_days, len(tl.years), str(tl.start), str(tl.end)
(380, 2, '2023-09-01', '2025-08-31')
>>> str(tl.date(tl.year_first_day[1]))
'2024-09-06'
>>> str(tl.offer_day(2023))
'2024-03-01'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import holidays
import numpy as np

from cmerisk.data import school_calendar as sc


@dataclass(frozen=True)
class Timeline:
    """School days and key dates for ``years`` consecutive school years."""

    years: tuple[int, ...]
    days: np.ndarray  # datetime64[D], every school day in order
    day_year: np.ndarray  # index into ``years`` of each school day
    day_term: np.ndarray  # 0 autumn, 1 spring, 2 summer
    day_term_start: (
        np.ndarray
    )  # datetime64[D]: first day of the term (contract meaning)
    year_first_day: np.ndarray  # first school-day index of each year
    year_last_day: np.ndarray  # last school-day index of each year
    week_first_day: np.ndarray  # first school-day index of each school week
    week_last_day: np.ndarray
    week_span_start: np.ndarray  # datetime64[D]: calendar span of the week
    week_span_end: np.ndarray  # exclusive
    week_year: np.ndarray
    census: np.ndarray  # (n_years, 3) school-day index of autumn/spring/summer census

    @classmethod
    def build(cls, first_year: int, n_years: int) -> Timeline:
        years = tuple(range(first_year, first_year + n_years))
        days: list[np.ndarray] = []
        day_year: list[np.ndarray] = []
        day_term: list[np.ndarray] = []
        day_term_start: list[np.ndarray] = []
        first: list[int] = []
        last: list[int] = []
        for i, y in enumerate(years):
            d = sc.school_days_array(y)
            terms = sc.term_dates(y)
            term_idx = np.zeros(len(d), dtype=np.int8)
            term_idx[d > np.datetime64(terms["autumn"][1])] = 1
            term_idx[d > np.datetime64(terms["spring"][1])] = 2
            starts = np.array([np.datetime64(terms[t][0]) for t in sc.TERMS])
            first.append(sum(len(x) for x in days))
            days.append(d)
            last.append(first[-1] + len(d) - 1)
            day_year.append(np.full(len(d), i, dtype=np.int16))
            day_term.append(term_idx)
            day_term_start.append(starts[term_idx])
        all_days = np.concatenate(days)
        mondays = all_days - ((all_days.astype("datetime64[D]").view("int64") + 3) % 7)
        boundaries = np.flatnonzero(np.r_[True, mondays[1:] != mondays[:-1]])
        week_first = boundaries
        week_last = np.r_[boundaries[1:] - 1, len(all_days) - 1]
        start = np.datetime64(date(first_year, 9, 1))
        end = np.datetime64(date(first_year + n_years, 9, 1))  # exclusive
        span_start = mondays[week_first].copy()
        span_start[0] = start
        span_end = np.r_[span_start[1:], end]
        day_index = {d: i for i, d in enumerate(all_days.tolist())}
        census = np.array(
            [[day_index[c] for c in sc.census_dates(y).values()] for y in years],
            dtype=np.int64,
        )
        return cls(
            years=years,
            days=all_days,
            day_year=np.concatenate(day_year),
            day_term=np.concatenate(day_term),
            day_term_start=np.concatenate(day_term_start),
            year_first_day=np.array(first),
            year_last_day=np.array(last),
            week_first_day=week_first,
            week_last_day=week_last,
            week_span_start=span_start,
            week_span_end=span_end,
            week_year=np.concatenate(day_year)[week_first],
            census=census,
        )

    @property
    def first_year(self) -> int:
        return self.years[0]

    @property
    def n_days(self) -> int:
        return len(self.days)

    @property
    def n_weeks(self) -> int:
        return len(self.week_first_day)

    @property
    def start(self) -> np.datetime64:
        """1 September of the first year."""
        return self.week_span_start[0]

    @property
    def end(self) -> np.datetime64:
        """31 August of the last year (the last date covered)."""
        return self.week_span_end[-1] - np.timedelta64(1, "D")

    def date(self, day_index: int | np.ndarray) -> np.ndarray:
        return self.days[day_index]

    def next_school_day(self, when: np.ndarray) -> np.ndarray:
        """Index of the first school day on or after each date (``n_days`` if none)."""
        return np.searchsorted(self.days, when, side="left")

    def offer_day(self, school_year: int) -> np.datetime64:
        """National secondary offer day: 1 March, or the next working day."""
        day = date(school_year + 1, 3, 1)
        bank = holidays.country_holidays("GB", subdiv="ENG", years=[day.year])
        while day.weekday() >= 5 or day in bank:
            day += timedelta(days=1)
        return np.datetime64(day)

    def census_day(self, year_index: int, term: int) -> np.datetime64:
        return self.days[self.census[year_index, term]]
