"""Point in time: the one place event tables are sliced by date.

A feature at ``as_of`` may use only what the LA could have known on the
morning of ``as_of``:

* a record counts only when its event date (the contract's ``event_date``:
  ``census_date``, ``date``, ``start_date``, ``offer_date``...) is **strictly
  before** ``as_of``; records on or after it, and records with no date, are not
  known yet;
* an episode's end date on or after ``as_of`` is not known yet either: it
  becomes null, so the episode is open at ``as_of``;
* a term's attendance counts (``attendance_termly``) are known only once the
  term has ended, i.e. when its last day (from the typical calendar of
  :func:`cmerisk.data.school_calendar.term_dates`) is before ``as_of``;
* session marks are cut in SQL by :func:`attendance_known_at`, so that DuckDB
  can push the cut down into the Parquet scan.

The named periods features speak of ("this term", "this school year", "the
last 12 months") are fixed once per ``as_of`` in :class:`Windows`, together
with the :class:`Coverage` of the data: a period that starts before the first
day the data covers is *not covered*, and a feature over it is missing rather
than a count of what little the data holds (:meth:`Windows.covers`).

Examples
--------
>>> import pandas as pd
>>> care = pd.DataFrame({
...     "pupil_id": ["a", "b", "c"],
...     "status": ["CIN", "CPP", "CIN"],
...     "start_date": pd.to_datetime(["2023-01-05", "2023-06-01", "2024-06-01"]),
...     "end_date": pd.to_datetime(["2023-03-01", "2024-07-01", None]),
... })
>>> known = known_at(care, table="social_care", as_of=date(2024, 5, 16))
>>> known["pupil_id"].tolist()     # c starts after as_of: not known yet
['a', 'b']
>>> known["end_date"].isna().tolist()   # b's end is after as_of: still open then
[False, True]
>>> w = Windows.at(date(2024, 5, 16))
>>> w.term_start, w.year_start, w.last_year_start
(datetime.date(2024, 4, 8), datetime.date(2023, 9, 1), datetime.date(2022, 9, 1))

Data that starts on the first days of the 2022/23 autumn term covers the summer
holiday before it (no school days), so every window from then on:

>>> start = coverage_start(date(2022, 9, 7))
>>> start
datetime.date(2022, 7, 23)
>>> w = Windows.at(date(2024, 5, 16), coverage=Coverage(records=start))
>>> w.covers(w.last_year_start), w.covers(w.last_12_months), w.covers(w.last_2_years)
(True, True, False)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import pairwise

import duckdb
import pandas as pd

from cmerisk.data.contract import TABLES
from cmerisk.data.school_calendar import school_year_of, term_dates, term_of, term_start

__all__ = [
    "TERM_START_SLACK_DAYS",
    "Coverage",
    "Windows",
    "attendance_known_at",
    "coverage_start",
    "events_between",
    "known_at",
    "term_end_of",
    "to_timestamps",
    "undated_rows",
]


#: Records starting this many days after a term's start in the typical calendar
#: still count as starting with the term (LAs' term dates and INSET days vary).
TERM_START_SLACK_DAYS = 14


def coverage_start(first: date) -> date:
    """The first day data whose earliest record is dated ``first`` covers.

    A holiday holds no school days, so data that starts within the first
    :data:`TERM_START_SLACK_DAYS` days of a term (typical calendar,
    :func:`~cmerisk.data.school_calendar.term_dates`) or in the holiday before
    it covers that holiday too: coverage then starts the day after the
    previous term ended. Otherwise it starts on ``first`` itself. Applying it
    twice changes nothing.

    >>> coverage_start(date(2021, 9, 10)), coverage_start(date(2021, 11, 15))
    (datetime.date(2021, 7, 23), datetime.date(2021, 11, 15))
    """
    year = school_year_of(first)
    terms = [
        term_dates(year - 1)["summer"],
        *term_dates(year).values(),
        term_dates(year + 1)["autumn"],
    ]
    slack = timedelta(days=TERM_START_SLACK_DAYS)
    for (_, previous_end), (start, _) in pairwise(terms):
        if previous_end < first <= start + slack:
            return previous_end + timedelta(days=1)
    return first


@dataclass(frozen=True)
class Coverage:
    """The first day the data covers, by kind of record.

    ``None`` makes no claim: every window counts as covered (the default, for
    tables known to reach back far enough). See
    :func:`cmerisk.features.coverage.data_coverage` for how the build derives
    it from the tables.

    Attributes
    ----------
    records
        First day the census and the event tables (roll changes, social
        care, exclusions...) are complete from.
    attendance
        First day the attendance (session marks or termly totals) is
        complete from; never before ``records``.
    """

    records: date | None = None
    attendance: date | None = None

    def as_dict(self) -> dict[str, str | None]:
        """ISO dates (or None), e.g. for a frame's ``attrs``."""
        return {
            "records": None if self.records is None else self.records.isoformat(),
            "attendance": None
            if self.attendance is None
            else self.attendance.isoformat(),
        }


@dataclass(frozen=True)
class Windows:
    """The periods features are computed over, fixed by ``as_of``.

    All windows end the day before ``as_of`` (``as_of`` itself is excluded).

    Attributes
    ----------
    as_of
        The scoring date.
    term_start
        First day of the term ``as_of`` falls in ("this term").
    year_start
        1 September of the school year ``as_of`` falls in ("this school year").
    last_year_start
        1 September of the previous school year; the previous school year runs
        from here to the day before ``year_start``.
    last_12_months
        ``as_of`` minus 365 days ("the last 12 months").
    last_2_years, last_3_years
        ``as_of`` minus 730 and 1095 days.
    coverage
        The first days the data covers (:meth:`covers`).
    """

    as_of: date
    term_start: date
    year_start: date
    last_year_start: date
    last_12_months: date
    last_2_years: date
    last_3_years: date
    coverage: Coverage = field(default_factory=Coverage)

    @classmethod
    def at(cls, as_of: date, *, coverage: Coverage | None = None) -> Windows:
        """The windows of ``as_of``, over data with ``coverage`` (None: all covered)."""
        year = school_year_of(as_of)
        return cls(
            as_of=as_of,
            term_start=term_start(as_of),
            year_start=date(year, 9, 1),
            last_year_start=date(year - 1, 9, 1),
            last_12_months=as_of - timedelta(days=365),
            last_2_years=as_of - timedelta(days=730),
            last_3_years=as_of - timedelta(days=1095),
            coverage=coverage or Coverage(),
        )

    def covers(self, start: date, *, attendance: bool = False) -> bool:
        """Whether the data holds every record of the window ``[start, as_of)``.

        ``attendance=True`` asks about session marks or termly totals (their
        own coverage); otherwise about the census and the event tables.
        """
        records = self.coverage.records
        # attendance is never complete from before the records (the docstring's
        # promise), so a coverage given only as records bounds both
        first = (self.coverage.attendance or records) if attendance else records
        return first is None or start >= first

    @property
    def earliest_mark(self) -> date:
        """The earliest session date any attendance feature reads."""
        return min(self.last_year_start, self.last_12_months)


def to_timestamps(values: pd.Series) -> pd.Series:
    """``values`` as ``datetime64`` (dates, strings or timestamps in; NaT for nulls)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    return pd.to_datetime(values, errors="coerce")


def term_end_of(term_starts: pd.Series) -> pd.Series:
    """Last day of the term each date falls in (typical calendar), as ``datetime64``.

    >>> starts = pd.Series(pd.to_datetime(["2023-09-06", "2024-01-03"]))
    >>> term_end_of(starts).dt.date.tolist()
    [datetime.date(2023, 12, 22), datetime.date(2024, 3, 22)]
    """
    starts = to_timestamps(term_starts)
    ends: dict[pd.Timestamp, pd.Timestamp] = {}
    for day in starts.dropna().unique():
        d = pd.Timestamp(day).date()
        ends[pd.Timestamp(day)] = pd.Timestamp(
            term_dates(school_year_of(d))[term_of(d)][1]
        )
    return starts.map(ends).astype("datetime64[us]")


def undated_rows(frame: pd.DataFrame, *, table: str) -> pd.Series:
    """Mask of rows whose event date is missing or unparseable (never known)."""
    column = TABLES[table].event_date
    if column is None:
        return pd.Series(False, index=frame.index)
    return to_timestamps(frame[column]).isna()


def known_at(frame: pd.DataFrame, *, table: str, as_of: date) -> pd.DataFrame:
    """The rows of ``table`` known at ``as_of``, with unknown end dates nulled.

    Date columns come back as ``datetime64``. Rows without an event date are
    left out (count them first with :func:`undated_rows`). For
    ``attendance_termly`` a term is known only once it has ended. Cutting an
    already-cut table again returns it unchanged (cheaply): the build cuts each
    table once per as-of and hands the known rows to every feature group.

    Parameters
    ----------
    frame
        One raw table.
    table
        Its name in :data:`cmerisk.data.contract.TABLES`.
    as_of
        The scoring date.
    """
    spec = TABLES[table]
    if spec.event_date is None:
        return frame
    cut = pd.Timestamp(as_of)
    out = frame.copy(deep=False)  # columns are replaced, never written in place
    out[spec.event_date] = to_timestamps(out[spec.event_date])
    keep = (out[spec.event_date] < cut).fillna(False).to_numpy(dtype=bool)
    if table == "attendance_termly":
        keep = keep & (term_end_of(out[spec.event_date]) < cut).to_numpy(dtype=bool)
    if not keep.all():  # an already-cut table passes through without a copy
        out = out.loc[keep].reset_index(drop=True)
    if spec.end_date is not None and spec.end_date in out.columns:
        ends = to_timestamps(out[spec.end_date])
        if (ends >= cut).any():
            out[spec.end_date] = ends.where(ends < cut)
        else:
            out[spec.end_date] = ends
    return out


def events_between(
    frame: pd.DataFrame, *, table: str, start: date, end: date
) -> pd.DataFrame:
    """Rows of ``table`` whose event date falls in ``(start, end]`` (for labels).

    >>> cme = pd.DataFrame({"pupil_id": ["a", "b", "c"],
    ...     "start_date": pd.to_datetime(["2024-05-16", "2024-05-17", "2025-01-16"])})
    >>> events_between(cme, table="cme_episodes", start=date(2024, 5, 16),
    ...                end=date(2025, 1, 16))["pupil_id"].tolist()
    ['b', 'c']
    """
    column = TABLES[table].event_date
    assert column is not None, f"{table} has no event date"
    when = to_timestamps(frame[column])
    keep = (when > pd.Timestamp(start)) & (when <= pd.Timestamp(end))
    return frame.loc[keep.fillna(False).to_numpy()]


def attendance_known_at(
    marks: duckdb.DuckDBPyRelation, *, as_of: date, since: date | None = None
) -> duckdb.DuckDBPyRelation:
    """Session marks dated in ``[since, as_of)``, as a DuckDB relation.

    The cut compares the ``date`` column itself with date literals, so DuckDB
    pushes it into a Parquet scan; it works whether ``date`` is a DATE or a
    TIMESTAMP. Marks with no date are never known.
    """
    cond = f"date < DATE '{as_of.isoformat()}'"
    if since is not None:
        cond = f"date >= DATE '{since.isoformat()}' AND {cond}"
    return marks.filter(cond)
