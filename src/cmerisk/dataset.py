"""The modelling dataset: (pupil, as-of) rows of features and labels over several years.

:func:`as_of_dates_for` picks the as-of dates (census days) the data can
support; :func:`make_dataset` stacks, for each, the pupils on roll with their
point-in-time features and their labels. A pupil appears once per as-of they
are on roll at.

An LA's census and event records often reach years further back than its
attendance. Those earlier years are history for the features (moves in the
last 2 years, social care in the last 3), never as-of years themselves: an
as-of date is never in a school year before the first attendance record
(:func:`first_attendance_year`), where every attendance feature would be
missing.

Examples
--------
>>> as_of_dates_for(_tiny(), terms=["summer"], horizon_days=245, labelled_only=False)
[datetime.date(2023, 5, 18), datetime.date(2024, 5, 16)]
>>> as_of_dates_for(_tiny(), terms=["summer"], horizon_days=245)
[datetime.date(2023, 5, 18)]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from cmerisk.data.contract import EVENT_TABLES, TABLES
from cmerisk.data.school_calendar import Term, census_date, school_year_of
from cmerisk.data.tables import RawTables
from cmerisk.errors import DataError
from cmerisk.features.attendance import connect
from cmerisk.features.build import features_at, prepare
from cmerisk.features.coverage import first_mark
from cmerisk.features.quality import OnDirty
from cmerisk.features.window import to_timestamps
from cmerisk.labels import cme_label

__all__ = ["as_of_dates_for", "data_end", "first_attendance_year", "make_dataset"]


def data_end(
    tables: RawTables, *, con: duckdb.DuckDBPyConnection | None = None
) -> date:
    """The latest event date in any event table (session marks included).

    Labels need their whole window inside the data; this is where the data stops.
    """
    latest: list[pd.Timestamp] = []
    for name in EVENT_TABLES:
        if name == "attendance" or not tables.has(name):
            continue
        column = TABLES[name].event_date
        value = to_timestamps(tables[name][column]).max()
        if pd.notna(value):
            latest.append(pd.Timestamp(value))
    if tables.has("attendance"):
        if con is None:
            with connect() as own:
                return data_end(tables, con=own)
        rows = tables.attendance_relation(con).aggregate("max(date)").fetchall()
        if rows and rows[0][0] is not None:
            latest.append(pd.Timestamp(rows[0][0]))
    if not latest:
        raise DataError(
            "no dated records in any table: cannot tell what period the data covers"
        )
    return max(latest).date()


def first_attendance_year(
    tables: RawTables, *, con: duckdb.DuckDBPyConnection | None = None
) -> int | None:
    """The school year of the earliest attendance record (None without any).

    The earliest session mark (:func:`cmerisk.features.coverage.first_mark`),
    or, for an LA without marks, the first term of its termly totals.
    """
    if tables.has("attendance"):
        if con is None:
            with connect() as own:
                return first_attendance_year(tables, con=own)
        first = first_mark(tables, con=con)
        if first is not None:
            return school_year_of(first)
    if tables.has("attendance_termly"):
        terms = to_timestamps(tables["attendance_termly"]["term_start"]).dropna()
        if not terms.empty:
            return school_year_of(terms.min().date())
    return None


def as_of_dates_for(
    tables: RawTables,
    *,
    terms: Sequence[Term],
    horizon_days: int,
    first_school_year: int | None = None,
    labelled_only: bool = True,
) -> list[date]:
    """Census days usable as as-of dates, oldest first.

    A census day of a school year the census covers qualifies when an earlier
    census exists (so a cohort can be placed), it is no later than the data's
    end (:func:`data_end`) and, with ``labelled_only``, its label window
    ``(as_of, as_of + horizon_days]`` ends within the data too.

    School years before the first one with attendance
    (:func:`first_attendance_year`) are skipped: census and event records
    that reach further back than the session marks serve as the features'
    history, but a row there would have every attendance feature missing.

    Parameters
    ----------
    tables
        The LA's raw tables.
    terms
        Which census days of each school year (``"autumn"``, ``"spring"``,
        ``"summer"``).
    horizon_days
        The label window.
    first_school_year
        Skip school years before this one (as well as those before the first
        attendance record).
    labelled_only
        Keep only dates whose label window is complete.
    """
    census_days = to_timestamps(tables["census"]["census_date"]).dropna()
    if census_days.empty:
        raise DataError("census: no census dates, so no as-of date can be chosen")
    first_census = census_days.min().date()
    years = sorted({school_year_of(d.date()) for d in census_days})
    with connect() as con:
        end = data_end(tables, con=con)
        attendance_from = first_attendance_year(tables, con=con)
    starts = [y for y in (first_school_year, attendance_from) if y is not None]
    out = []
    for year in years:
        if starts and year < max(starts):
            continue
        for term in terms:
            day = census_date(year, term)
            if day <= first_census or day > end:
                continue
            if labelled_only and day + timedelta(days=horizon_days) > end:
                continue
            out.append(day)
    return sorted(set(out))


def make_dataset(
    tables: RawTables,
    *,
    as_of_dates: Sequence[date],
    horizon_days: int,
    progress: Callable[[int, int], None] | None = None,
    on_dirty: OnDirty = "count",
    memory_limit: str = "2GB",
    temp_directory: Path | None = None,
    threads: int | None = None,
    data_start: date | None = None,
) -> pd.DataFrame:
    """Features and labels of every pupil on roll at each as-of date, stacked.

    Parameters
    ----------
    tables
        The LA's raw tables (``cme_episodes`` needed for the labels).
    as_of_dates
        The as-of dates (see :func:`as_of_dates_for`).
    horizon_days
        Label window in days after each as-of.
    progress
        Called with (as-of dates done, as-of dates) after each one.
    on_dirty, memory_limit, temp_directory, threads, data_start
        As in :func:`cmerisk.features.build_features`. The data's coverage is
        fixed once for all as-of dates: at an early as-of, features over
        windows reaching before the data starts are missing.

    Returns
    -------
    pandas.DataFrame
        One row per (pupil, as_of): the feature frame's columns plus ``cme`` and
        ``ehe``. ``attrs`` holds the data-quality and cohort counts per as-of
        (``quality_by_as_of``, ``cohort_counts_by_as_of``, keyed by ISO date)
        and the ``coverage`` (first days the records and attendance cover).
    """
    dates = sorted(set(as_of_dates))
    if not dates:
        raise DataError("no as-of dates to build a dataset for")
    frames: list[pd.DataFrame] = []
    quality: dict[str, dict[str, int]] = {}
    cohorts: dict[str, dict[str, int]] = {}
    with connect(
        memory_limit=memory_limit, temp_directory=temp_directory, threads=threads
    ) as con:
        prepared = prepare(tables, on_dirty=on_dirty, con=con, data_start=data_start)
        for i, as_of in enumerate(dates, start=1):
            result = features_at(prepared, as_of=as_of, con=con)
            labels = cme_label(tables, as_of=as_of, horizon_days=horizon_days)
            frame = result.frame.merge(
                labels[["pupil_id", "cme", "ehe"]],
                on="pupil_id",
                how="left",
                validate="1:1",
            )
            frames.append(frame)
            quality[as_of.isoformat()] = result.quality.counts
            cohorts[as_of.isoformat()] = dict(result.cohort_counts)
            if progress is not None:
                progress(i, len(dates))
    for f in frames:
        f.attrs.clear()
    out = pd.concat(frames, ignore_index=True)
    out["cme"] = out["cme"].astype("int8")
    out.attrs.update(
        quality_by_as_of=quality,
        cohort_counts_by_as_of=cohorts,
        attendance_source=prepared.attendance_source,
        horizon_days=horizon_days,
        coverage=prepared.coverage.as_dict(),
    )
    return out


def _tiny() -> RawTables:
    """Two school years of census for the doctests."""
    census = pd.DataFrame(
        {
            "pupil_id": ["a"] * 4,
            "census_date": pd.to_datetime(
                ["2022-10-06", "2023-05-18", "2023-10-05", "2024-05-16"]
            ),
        }
    )
    ehe = pd.DataFrame(
        {"pupil_id": ["a"], "start_date": pd.to_datetime(["2024-07-19"])}
    )
    return RawTables({"census": census, "ehe": ehe})
