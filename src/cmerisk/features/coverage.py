"""What period the data covers, read from the tables themselves.

An LA's extract starts somewhere: before that day the tables are empty, not
because nothing happened but because nothing was extracted. A feature whose
window reaches before it (last school year's attendance, moves in the last 2
years, social care in the last 3 years) would count only part of the window
and read as "no absence" or "no moves". The build therefore fixes the data's
:class:`~cmerisk.features.window.Coverage` once, and each feature group
leaves a feature missing when its window is not covered
(:meth:`~cmerisk.features.window.Windows.covers`).

Derived coverage (when no ``data_start`` is given):

* **attendance** starts at the first session mark (or the first term of
  termly totals);
* **records** (the census and the event tables) start at the earliest of
  that and the start of the term of the first census day: the records an
  extract holds are taken to start when its first census or attendance does.
  Episodes and events are sparse, so their own earliest dates say nothing.

Either date is moved back over the holiday before it when it falls on a
term's first days (:func:`~cmerisk.features.window.coverage_start`). A
``data_start`` given by the caller replaces the records' start; attendance
never starts before its first mark.

Examples
--------
>>> import pandas as pd
>>> census = pd.DataFrame({"census_date": pd.to_datetime(["2022-10-06", "2023-01-19"])})
>>> data_coverage({"census": census}).as_dict()
{'records': '2022-07-23', 'attendance': '2022-07-23'}
>>> data_coverage({"census": census}, data_start=date(2021, 9, 1)).as_dict()
{'records': '2021-07-23', 'attendance': '2021-07-23'}
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd

from cmerisk.data.school_calendar import term_start
from cmerisk.data.tables import RawTables
from cmerisk.features.window import Coverage, coverage_start, to_timestamps

__all__ = ["data_coverage", "first_mark"]


def parquet_mark_files(tables: RawTables) -> list[str]:
    """The marks' files when all are Parquet on disk (their metadata can answer
    some questions without a scan), else an empty list."""
    files = [str(f) for f in tables.attendance_files]
    on_disk = "attendance" not in tables.frames
    if on_disk and files and all(f.endswith(".parquet") for f in files):
        return files
    return []


def first_mark(tables: RawTables, *, con: duckdb.DuckDBPyConnection) -> date | None:
    """The date of the earliest session mark (None without marks).

    Parquet files record each column's minimum in their metadata: when every
    row group has one, the marks are not scanned.
    """
    files = parquet_mark_files(tables)
    if files:
        rows = con.sql(
            "SELECT count(*) - count(stats_min_value), min(TRY_CAST(stats_min_value "
            "AS DATE)), count(*) - count(TRY_CAST(stats_min_value AS DATE)) "
            "FROM parquet_metadata($files) WHERE path_in_schema = 'date'",
            params={"files": files},
        ).fetchall()
        if rows and rows[0][0] == 0 and rows[0][2] == 0 and rows[0][1] is not None:
            return _as_date(rows[0][1])
    # TRY_CAST: marks read as text (a CSV) compare as dates, not strings; a date
    # DuckDB cannot read is left to validation, never taken as the start
    rows = (
        tables.attendance_relation(con)
        .aggregate("min(TRY_CAST(date AS DATE))")
        .fetchall()
    )
    return _as_date(rows[0][0]) if rows else None


def _as_date(value: object) -> date | None:
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).date()


def _first(frame: pd.DataFrame | None, column: str) -> date | None:
    if frame is None or frame.empty:
        return None
    return _as_date(to_timestamps(frame[column]).min())


def data_coverage(
    frames: dict[str, pd.DataFrame],
    *,
    marks_start: date | None = None,
    data_start: date | None = None,
) -> Coverage:
    """The data's coverage from its (cleaned) small tables and first mark.

    Parameters
    ----------
    frames
        The small tables by name (``census`` and, for LAs without session
        marks, ``attendance_termly`` are read).
    marks_start
        The earliest session mark (:func:`first_mark`), if there are marks.
    data_start
        The first day the caller knows the records to be complete from;
        replaces the start derived from the census.
    """
    termly = _first(frames.get("attendance_termly"), "term_start")
    first_attendance = marks_start or termly
    attendance = None if first_attendance is None else coverage_start(first_attendance)
    if data_start is not None:
        records: date | None = coverage_start(data_start)
    else:
        census = _first(frames.get("census"), "census_date")
        starts = [d for d in (attendance,) if d is not None]
        if census is not None:
            starts.append(coverage_start(term_start(census)))
        records = min(starts) if starts else None
    if attendance is None or (records is not None and records > attendance):
        attendance = records
    return Coverage(records=records, attendance=attendance)
