"""Attendance features from session marks: one DuckDB pass per as-of.

Session marks can run to hundreds of millions of rows, so they never enter
pandas: DuckDB streams them from Parquet (or from an in-memory frame), cuts
them to ``[start of the previous school year, as_of)`` with
:func:`~cmerisk.features.window.attendance_known_at`, and aggregates them by
pupil in one query (:mod:`~cmerisk.features.attendance_sql`; a large LA's
pupils are split into parts, one pass each). Only per-pupil totals, and the
runs of unexplained days, come back to pandas.

Rules, in the order they are applied:

1. Codes are mapped to their 2024 meaning (legacy ``H``/``F`` -> ``C``, ``J`` ->
   ``J1``). A mark with an unknown code, or a session that is not AM/PM, is
   counted as dirty and never counted as a possible session.
2. With ``roll_changes``, a mark at a school dated before the pupil's admission
   to it or after their deletion from it (the deletion day itself still
   counts) is *outside registration*: counted, not used.
3. One mark per pupil, date and session: when several remain, a counted code
   beats a not-counted one (``D`` at the main school, the real code at the
   other: dual registration); among counted codes unexplained beats
   authorised beats approved activity beats present. Every extra mark is
   counted once, as identical, dual-registration or conflicting.
4. A school day is *unexplained* when all its counted sessions are
   unexplained (``G``, ``N``, ``O``, ``U``). Runs are counted over the pupil's
   days that have at least one counted session; days without one (no marks,
   closures, ``D``, ``X``, ``Y``...) neither break nor extend a run.
5. An ``N`` mark is *unresolved* when it is still ``N`` on the sixth most
   recent school day (a date with any mark in the LA) before ``as_of``, i.e.
   five school days have passed without a reason being entered.

Examples
--------
>>> import pandas as pd
>>> from cmerisk.data.tables import RawTables
>>> marks = pd.DataFrame({"pupil_id": ["a"] * 4, "school_urn": ["100001"] * 4,
...     "date": pd.to_datetime(["2024-05-13"] * 2 + ["2024-05-14"] * 2),
...     "session": ["AM", "PM", "AM", "PM"], "code": ["/", "N", "O", "G"]})
>>> agg = aggregate_marks(RawTables({"attendance": marks}), as_of=date(2024, 5, 16))
>>> agg.loc["a", ["possible_year", "absent_year", "longest_run"]].tolist()
[4, 3, 1]
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from cmerisk import duck
from cmerisk.data.tables import RawTables
from cmerisk.features import attendance_sql as sql
from cmerisk.features.coverage import parquet_mark_files
from cmerisk.features.frames import member_of
from cmerisk.features.quality import DataQuality
from cmerisk.features.window import Windows, attendance_known_at, known_at

__all__ = ["AGG_COLUMNS", "aggregate_marks", "attendance_features", "connect"]

#: Thresholds of the persistent and severe absence flags (share of possible sessions).
PERSISTENT_ABSENCE = 0.10
SEVERE_ABSENCE = 0.50

#: Pupils per pass over the marks (see :func:`aggregate_marks`).
PUPILS_PER_PASS = 100_000

#: The per-pupil counts :func:`aggregate_marks` returns.
AGG_COLUMNS = [
    "n_marks", "n_unknown", "n_bad_session", "n_outside", "dup_identical", "dual",
    "conflicting",
    "possible_term", "absent_term", "authorised_term", "unauthorised_term",
    "possible_year", "absent_year", "authorised_year", "unauthorised_year",
    "possible_last_year", "absent_last_year", "authorised_last_year",
    "unauthorised_last_year",
    "unresolved_n", "c2", "e", "kb", "late", "counted_days_12m", "longest_run",
    "current_run",
]  # fmt: skip


@contextmanager
def connect(
    *,
    memory_limit: str = "2GB",
    temp_directory: Path | None = None,
    threads: int | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection that spills to ``temp_directory`` past ``memory_limit``."""
    with tempfile.TemporaryDirectory(prefix="cmerisk-duckdb-") as tmp:
        config: dict[str, str | bool | int | float | list[str]] = {
            "memory_limit": memory_limit,
            "temp_directory": str(temp_directory or tmp),
            "preserve_insertion_order": False,
        }
        if threads:
            config["threads"] = threads
        con = duck.connect(config=config)
        try:
            yield con
        finally:
            con.close()


def aggregate_marks(
    tables: RawTables,
    *,
    as_of: date,
    roll_changes: pd.DataFrame | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    pupils_per_pass: int = PUPILS_PER_PASS,
) -> pd.DataFrame:
    """Per-pupil session counts at ``as_of`` (indexed by ``pupil_id``).

    The columns (:data:`AGG_COLUMNS`) are counts: possible, absent, authorised
    and unauthorised sessions for this term, this school year and the previous
    school year; unresolved N, C2, E, K/B and late sessions this school year;
    counted school days and the longest and current unexplained runs in the
    last 12 months; and the dirty-mark counts; plus ``bad_code``, an example
    unknown code. Pupils are every pupil with a mark in the window, on roll or
    not.

    Parameters
    ----------
    tables
        Raw tables with session-level ``attendance`` (in memory or on disk).
    as_of
        The scoring date; only marks dated before it are read.
    roll_changes
        Cleaned roll changes (all dates); those known at ``as_of`` define the
        registration check. ``None`` skips the check.
    con
        A DuckDB connection (see :func:`connect`); a default one when ``None``.
    pupils_per_pass
        Pupils aggregated per pass over the marks: an LA with more is split
        into parts by pupil (integer key modulo the number of parts), each part
        a separate pass, so that the groupings stay within memory.
    """
    if con is None:
        with connect() as own:
            return aggregate_marks(
                tables,
                as_of=as_of,
                roll_changes=roll_changes,
                con=own,
                pupils_per_pass=pupils_per_pass,
            )
    w = Windows.at(as_of)
    marks = tables.attendance_relation(con)
    attendance_known_at(marks, as_of=as_of, since=w.earliest_mark).create_view(
        "marks_known", replace=True
    )
    keys = con.sql(
        "SELECT DISTINCT CAST(pupil_id AS VARCHAR) AS pupil_id FROM marks_known "
        "WHERE pupil_id IS NOT NULL"
    ).df()
    keys["k"] = np.arange(len(keys), dtype="int64")
    con.register("codes", sql.code_table())
    registration = roll_changes is not None
    if roll_changes is not None:
        known_changes = known_at(roll_changes, table="roll_changes", as_of=as_of)
        iv = sql.registration_intervals(known_changes).merge(keys, on="pupil_id")
        iv = iv[["k", "school_urn", "reg_start", "reg_end"]]
        con.register("reg_intervals", iv)
        con.register("reg_pairs", iv[["k", "school_urn"]].drop_duplicates())
    cut = con.sql(sql.n_cutoff_sql(w)).fetchall()
    n_cutoff = cut[0][0] if cut else None
    parts = max(1, -(-len(keys) // pupils_per_pass))
    keys["part"] = keys["k"] % parts
    con.register("pupil_keys", keys)
    out = pd.concat(
        [
            _one_part(con, w, n_cutoff=n_cutoff, registration=registration, part=part)
            for part in (range(parts) if parts > 1 else [None])
        ]
    )
    out = out.reindex(columns=[*AGG_COLUMNS, "n_invalid", "n_extra"]).fillna(0)
    out = out.astype("int64")
    assert (
        out["n_unknown"] + out["n_bad_session"] + out["n_outside"] == out["n_invalid"]
    ).all()
    assert (
        out["dup_identical"] + out["dual"] + out["conflicting"] == out["n_extra"]
    ).all()
    out.index = pd.Index(
        keys["pupil_id"].to_numpy()[out.index.to_numpy()], name="pupil_id"
    )
    example = (
        con.sql(sql.example_code_sql()).fetchall() if out["n_unknown"].any() else []
    )
    out["bad_code"] = example[0][0] if example else None
    return out[[*AGG_COLUMNS, "bad_code"]].sort_index()


def _one_part(
    con: duckdb.DuckDBPyConnection,
    w: Windows,
    *,
    n_cutoff: date | None,
    registration: bool,
    part: int | None,
) -> pd.DataFrame:
    """The per-pupil counts of one part of the pupils (all when ``part`` is None)."""
    query = sql.marks_sql(w, n_cutoff=n_cutoff, registration=registration, part=part)
    result = con.sql(query).df()
    is_run = (result["kind"] == "run").to_numpy()
    pupils = (
        result.loc[~is_run, ["k", *sql.PUPIL_COLUMNS]].astype("int64").set_index("k")
    )
    out = pupils.join(_from_runs(result.loc[is_run], pupils["explained_days_12m"]))
    # The dirty kinds, only when the main pass found dirty marks.
    dirty = [("n_invalid", sql.quality_sql), ("n_extra", sql.duplicates_sql)]
    for total, make in dirty:
        if out[total].sum() > 0:
            found = con.sql(make(w, registration=registration, part=part)).df()
            out = out.join(found.set_index("k"))
    return out


def _from_runs(runs: pd.DataFrame, explained: pd.Series) -> pd.DataFrame:
    """Longest run, and the current one: the run after the last explained day
    (numbered by the count of explained days before it)."""
    runs = runs.astype({"k": "int64", "grp": "int64", "run_len": "int64"})
    longest = runs.groupby("k")["run_len"].max()
    last = explained.reindex(runs["k"]).fillna(0).to_numpy()
    current = runs.loc[runs["grp"].to_numpy() == last].set_index("k")["run_len"]
    return pd.DataFrame({"longest_run": longest, "current_run": current})


def count_undated_marks(tables: RawTables, *, con: duckdb.DuckDBPyConnection) -> int:
    """Marks with no date or no pupil (never known at any as-of).

    Parquet files record null counts in their metadata: when they say there
    are none, the marks are not scanned.
    """
    files = parquet_mark_files(tables)
    if files:
        meta = con.sql(
            "SELECT count(*) - count(stats_null_count), sum(stats_null_count) "
            "FROM parquet_metadata($files) "
            "WHERE path_in_schema IN ('date', 'pupil_id')",
            params={"files": files},
        ).fetchall()
        if meta and meta[0][0] == 0 and meta[0][1] == 0:
            return 0
    rel = tables.attendance_relation(con)
    rows = rel.filter("date IS NULL OR pupil_id IS NULL").count("*").fetchall()
    return int(rows[0][0]) if rows else 0


def _rate(num: pd.Series, den: pd.Series) -> pd.Series:
    den = den.astype(float)
    return (num.astype(float) / den).where(den > 0)


def attendance_features(
    agg: pd.DataFrame,
    pupil_ids: pd.Series,
    *,
    known_pupils: set[str],
    quality: DataQuality,
    w: Windows | None = None,
) -> pd.DataFrame:
    """Attendance features for ``pupil_ids`` from :func:`aggregate_marks` counts.

    Records the dirty-mark counts in ``quality`` (marks of pupils absent from
    the pupils table included) and returns one row per pupil, in
    ``pupil_ids`` order, indexed by ``pupil_id``.

    With ``w``, features over a window the attendance does not cover
    (:meth:`~cmerisk.features.window.Windows.covers`) are missing: this term's,
    this school year's and last school year's rates and counts, and the
    longest run of the last 12 months. The current run is missing when the
    12 months are not covered and the run reaches back to the pupil's first
    counted day in them (it may have begun before the data).
    """
    orphan = ~member_of(agg.index, known_pupils)
    quality.add("attendance_without_pupil", int(agg.loc[orphan, "n_marks"].sum()))
    mine = agg.loc[~orphan]
    bad = mine["bad_code"].dropna()
    quality.add(
        "attendance_unknown_code",
        int(mine["n_unknown"].sum()),
        example=bad.min() if len(bad) else None,
    )
    quality.add("attendance_unknown_session", int(mine["n_bad_session"].sum()))
    quality.add("attendance_outside_registration", int(mine["n_outside"].sum()))
    quality.add("attendance_duplicate_identical", int(mine["dup_identical"].sum()))
    quality.add("attendance_dual_registration", int(mine["dual"].sum()))
    quality.add("attendance_duplicate_conflicting", int(mine["conflicting"].sum()))

    a = mine.reindex(pd.Index(pupil_ids.astype(str), name="pupil_id"))
    covered = _covered(w)
    out = pd.DataFrame(index=a.index)
    for window, suffix in (
        ("term", "this_term"),
        ("year", "this_year"),
        ("last_year", "last_year"),
    ):
        possible = a[f"possible_{window}"]
        if not covered[window]:
            possible = possible * 0  # rates of an uncovered window: missing
        out[f"absence_rate_{suffix}"] = _rate(a[f"absent_{window}"], possible)
        out[f"authorised_absence_rate_{suffix}"] = _rate(
            a[f"authorised_{window}"], possible
        )
        out[f"unauthorised_absence_rate_{suffix}"] = _rate(
            a[f"unauthorised_{window}"], possible
        )
    out = add_absence_flags(out)
    out["absence_trend"] = out["absence_rate_this_term"] - out["absence_rate_last_year"]
    days = a["counted_days_12m"].fillna(0)
    has_days = days > 0
    longest = a["longest_run"].astype(float).where(has_days)
    current = a["current_run"].astype(float).where(has_days)
    if not covered["12m"]:
        longest[:] = np.nan
        current = current.where(current < days)  # may have begun before the data
    out["longest_unexplained_run_12m"] = longest
    out["current_unexplained_run"] = current
    this_year = (a["possible_year"].fillna(0) > 0) & covered["year"]
    for src, name in (
        ("unresolved_n", "unresolved_n_sessions_this_year"),
        ("c2", "part_time_sessions_this_year"),
        ("e", "excluded_no_provision_sessions_this_year"),
        ("kb", "off_site_sessions_this_year"),
        ("late", "late_sessions_this_year"),
    ):
        out[name] = a[src].astype(float).fillna(0).where(this_year)
    return out


def _covered(w: Windows | None) -> dict[str, bool]:
    """Whether the attendance covers each window (all, without ``w``)."""
    if w is None:
        return dict.fromkeys(("term", "year", "last_year", "12m"), True)
    return {
        "term": w.covers(w.term_start, attendance=True),
        "year": w.covers(w.year_start, attendance=True),
        "last_year": w.covers(w.last_year_start, attendance=True),
        "12m": w.covers(w.last_12_months, attendance=True),
    }


def add_absence_flags(frame: pd.DataFrame) -> pd.DataFrame:
    """Persistent (>= 10%) and severe (>= 50%) absence flags this school year.

    Missing when the rate is.
    """
    rate = frame["absence_rate_this_year"]
    # Rates are compared with a small tolerance so that 38/380 counts as 10%.
    eps = 1e-9
    frame["persistent_absence_this_year"] = np.where(
        rate.isna(), np.nan, (rate >= PERSISTENT_ABSENCE - eps).astype(float)
    )
    frame["severe_absence_this_year"] = np.where(
        rate.isna(), np.nan, (rate >= SEVERE_ABSENCE - eps).astype(float)
    )
    return frame
