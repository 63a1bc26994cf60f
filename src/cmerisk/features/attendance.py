"""Attendance features from session marks: one DuckDB query per as-of.

Session marks can run to hundreds of millions of rows, so they never enter
pandas: DuckDB streams them from Parquet (or from an in-memory frame), cuts
them to ``[start of the previous school year, as_of)`` with
:func:`~cmerisk.features.window.attendance_known_at`, and aggregates them to
one row per pupil in a single pass (marks -> sessions -> school days -> runs
-> pupils). The SQL uses only standard constructs (joins, ``GROUP BY``,
``FILTER``, one window function), so the same query runs on Spark SQL over
Parquet partitioned by LA and school year (docs/features.md).

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
...     "date": pd.to_datetime(["2024-05-13", "2024-05-13", "2024-05-14", "2024-05-14"]),
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

from cmerisk.data import codes
from cmerisk.data.tables import RawTables
from cmerisk.features.quality import DataQuality
from cmerisk.features.window import Windows, attendance_known_at, known_at

__all__ = [
    "aggregate_marks",
    "attendance_features",
    "code_table",
    "connect",
    "registration_intervals",
]

_CATEGORY_RANK = {
    "not_counted": 0,
    "present": 1,
    "approved_activity": 2,
    "authorised": 3,
    "unauthorised": 4,
}

#: Thresholds of the persistent and severe absence flags (share of possible sessions).
PERSISTENT_ABSENCE = 0.10
SEVERE_ABSENCE = 0.50

#: School days an N code may stand before it counts as unresolved.
N_CODE_DAYS = 5

_FAR_PAST = date(1900, 1, 1)
_FAR_FUTURE = date(2999, 12, 31)


def code_table() -> pd.DataFrame:
    """Every accepted code with its 2024 code, category and precedence.

    >>> code_table().set_index("code").loc[["H", "N", "/"], ["norm_code", "category"]].values.tolist()
    [['C', 'authorised'], ['N', 'unauthorised'], ['/', 'present']]
    """
    rows = []
    for code in sorted(codes.ALL_ATTENDANCE_CODES):
        norm = codes.normalise_attendance_code(code)
        category = codes.ATTENDANCE_CATEGORY[norm]
        rows.append((code, norm, category))
    frame = pd.DataFrame(rows, columns=["code", "norm_code", "category"])
    norm_order = {c: i for i, c in enumerate(sorted(set(frame["norm_code"])))}
    frame["priority"] = [
        _CATEGORY_RANK[cat] * 100 + norm_order[n]
        for cat, n in zip(frame["category"], frame["norm_code"], strict=True)
    ]
    return frame


@contextmanager
def connect(
    *,
    memory_limit: str = "2GB",
    temp_directory: Path | None = None,
    threads: int | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection that spills to ``temp_directory`` past ``memory_limit``."""
    with tempfile.TemporaryDirectory(prefix="cmerisk-duckdb-") as tmp:
        config: dict[str, str | int | bool] = {
            "memory_limit": memory_limit,
            "temp_directory": str(temp_directory or tmp),
            "preserve_insertion_order": False,
        }
        if threads:
            config["threads"] = threads
        con = duckdb.connect(config=config)
        try:
            yield con
        finally:
            con.close()


def registration_intervals(roll_changes: pd.DataFrame) -> pd.DataFrame:
    """Disjoint date ranges a pupil was registered at a school, from roll changes.

    An admission opens a range that the next deletion from the same school
    closes (the deletion day included); a first deletion with no admission
    before it closes a range open since before the data. Returns columns
    ``pupil_id``, ``school_urn``, ``reg_start``, ``reg_end`` (dates; far past /
    far future for open ends).

    >>> rc = pd.DataFrame({"pupil_id": ["a", "a", "a"], "school_urn": ["1", "1", "1"],
    ...     "date": pd.to_datetime(["2023-01-10", "2023-09-06", "2024-02-01"]),
    ...     "change": ["deletion", "admission", "deletion"]})
    >>> registration_intervals(rc)[["reg_start", "reg_end"]].astype(str).values.tolist()
    [['1900-01-01', '2023-01-10'], ['2023-09-06', '2024-02-01']]
    """
    cols = ["pupil_id", "school_urn", "reg_start", "reg_end"]
    if roll_changes.empty:
        return pd.DataFrame(columns=cols)
    rc = roll_changes[["pupil_id", "school_urn", "date", "change"]].copy()
    rc["pupil_id"] = rc["pupil_id"].astype(str)
    rc["school_urn"] = rc["school_urn"].astype(str)
    rc["date"] = pd.to_datetime(rc["date"]).dt.normalize()
    # Deletions before admissions on the same day: a same-day re-admission stays registered.
    rc["order"] = (rc["change"] == "admission").astype(int)
    rc = rc.sort_values(["pupil_id", "school_urn", "date", "order"], kind="stable")
    pair = ["pupil_id", "school_urn"]
    is_del = rc["change"] == "deletion"
    # For every change, the date of the next deletion at the same pair (itself if a deletion).
    next_del = rc["date"].where(is_del)
    next_del = next_del.groupby([rc["pupil_id"], rc["school_urn"]]).bfill()
    adm = rc.loc[~is_del].assign(
        reg_start=lambda f: f["date"], reg_end=next_del[~is_del]
    )
    first = rc.groupby(pair, sort=False).head(1)
    lead = first.loc[first["change"] == "deletion"].assign(
        reg_start=pd.Timestamp(_FAR_PAST), reg_end=lambda f: f["date"]
    )
    iv = pd.concat([adm, lead], ignore_index=True)[cols]
    iv["reg_end"] = iv["reg_end"].fillna(pd.Timestamp(_FAR_FUTURE))
    # Merge overlapping ranges within a pair so each date matches at most one.
    iv = iv.sort_values([*pair, "reg_start"], kind="stable").reset_index(drop=True)
    reach = iv.groupby(pair, sort=False)["reg_end"].cummax()
    prev_reach = reach.groupby([iv["pupil_id"], iv["school_urn"]]).shift()
    new_block = prev_reach.isna() | (iv["reg_start"] > prev_reach)
    block = new_block.cumsum()
    merged = iv.groupby(block).agg(
        pupil_id=("pupil_id", "first"),
        school_urn=("school_urn", "first"),
        reg_start=("reg_start", "min"),
        reg_end=("reg_end", "max"),
    )
    merged["reg_start"] = merged["reg_start"].dt.date
    merged["reg_end"] = merged["reg_end"].dt.date
    return merged.reset_index(drop=True)[cols]


_AGG_COLUMNS = [
    "n_marks",
    "n_unknown",
    "n_bad_session",
    "n_outside",
    "dup_identical",
    "dual",
    "conflicting",
    "possible_term",
    "absent_term",
    "authorised_term",
    "unauthorised_term",
    "possible_year",
    "absent_year",
    "authorised_year",
    "unauthorised_year",
    "possible_last_year",
    "absent_last_year",
    "authorised_last_year",
    "unauthorised_last_year",
    "unresolved_n",
    "c2",
    "e",
    "kb",
    "late",
    "counted_days_12m",
    "longest_run",
    "current_run",
]


def _sql(w: Windows, *, n_cutoff: date | None, registration: bool) -> str:
    term = w.term_start.isoformat()
    year = w.year_start.isoformat()
    m12 = w.last_12_months.isoformat()
    ncut = (n_cutoff or _FAR_PAST).isoformat()
    if registration:
        reg_join = """
        LEFT JOIN reg_pairs p ON p.pupil_id = m.pupil_id AND p.school_urn = m.school_urn
        LEFT JOIN reg_intervals i ON i.pupil_id = m.pupil_id AND i.school_urn = m.school_urn
            AND m.date BETWEEN i.reg_start AND i.reg_end"""
        outside = "(p.pupil_id IS NOT NULL AND i.pupil_id IS NULL)"
    else:
        reg_join, outside = "", "false"
    windowed = {
        "term": f"date >= DATE '{term}'",
        "year": f"date >= DATE '{year}'",
        "last_year": f"date < DATE '{year}'",
    }
    day_sums = ",\n".join(
        f"sum({m}) FILTER (WHERE {cond}) AS {m}_{name}"
        for name, cond in windowed.items()
        for m in ("possible", "absent", "authorised", "unauthorised")
    )
    summed = [c for c in _AGG_COLUMNS if c not in ("longest_run", "current_run")]
    pupil_sums = ",\n".join(f"coalesce(sum({c}), 0)::BIGINT AS {c}" for c in summed)
    return f"""
    WITH marks AS (
        SELECT CAST(pupil_id AS VARCHAR) AS pupil_id, CAST(school_urn AS VARCHAR) AS school_urn,
               CAST(date AS DATE) AS date, CAST(session AS VARCHAR) AS session,
               CAST(code AS VARCHAR) AS code
        FROM marks_known
        WHERE pupil_id IS NOT NULL
    ),
    checked AS (
        SELECT m.pupil_id, m.date, m.session, c.norm_code, c.category, c.priority,
               c.category IS NULL AS unknown_code,
               c.category IS NOT NULL AND m.session NOT IN ('AM', 'PM') AS bad_session,
               c.category IS NOT NULL AND m.session IN ('AM', 'PM') AND {outside} AS outside,
               CASE WHEN c.category IS NULL THEN m.code END AS bad_code
        FROM marks m
        LEFT JOIN codes c ON c.code = m.code {reg_join}
    ),
    valid AS (
        SELECT *, NOT (unknown_code OR bad_session OR outside) AS ok,
               NOT (unknown_code OR bad_session OR outside)
                   AND category <> 'not_counted' AS ok_counted
        FROM checked
    ),
    sessions AS (
        SELECT pupil_id, date, session,
               count(*) AS n_marks,
               count(*) FILTER (WHERE unknown_code) AS n_unknown,
               count(*) FILTER (WHERE bad_session) AS n_bad_session,
               count(*) FILTER (WHERE outside) AS n_outside,
               count(*) FILTER (WHERE ok) AS nv,
               count(*) FILTER (WHERE ok_counted) AS nc,
               count(DISTINCT norm_code) FILTER (WHERE ok) AS dv,
               count(DISTINCT norm_code) FILTER (WHERE ok_counted) AS dc,
               arg_max(category, priority) FILTER (WHERE ok) AS category,
               arg_max(norm_code, priority) FILTER (WHERE ok) AS code,
               min(bad_code) AS bad_code
        FROM valid
        GROUP BY pupil_id, date, session
    ),
    days AS (
        SELECT pupil_id, date,
               sum(n_marks) AS n_marks, sum(n_unknown) AS n_unknown,
               sum(n_bad_session) AS n_bad_session, sum(n_outside) AS n_outside,
               sum(CASE WHEN nc >= 1 THEN (CASE WHEN dc = 1 THEN nc - 1 ELSE 0 END)
                        WHEN nv >= 1 AND dv = 1 THEN nv - 1 ELSE 0 END) AS dup_identical,
               sum(CASE WHEN nc >= 1 THEN nv - nc
                        WHEN nv >= 1 AND dv > 1 THEN nv - 1 ELSE 0 END) AS dual,
               sum(CASE WHEN nc >= 1 AND dc > 1 THEN nc - 1 ELSE 0 END) AS conflicting,
               count(*) FILTER (WHERE category <> 'not_counted') AS possible,
               count(*) FILTER (WHERE category IN ('authorised', 'unauthorised')) AS absent,
               count(*) FILTER (WHERE category = 'authorised') AS authorised,
               count(*) FILTER (WHERE category = 'unauthorised') AS unauthorised,
               count(*) FILTER (WHERE code = 'N') AS n_code,
               count(*) FILTER (WHERE code = 'C2') AS c2,
               count(*) FILTER (WHERE code = 'E') AS e,
               count(*) FILTER (WHERE code IN ('K', 'B')) AS kb,
               count(*) FILTER (WHERE code IN ('L', 'U')) AS late,
               bool_and(category = 'unauthorised')
                   FILTER (WHERE category <> 'not_counted') AS unexplained,
               min(bad_code) AS bad_code
        FROM sessions
        GROUP BY pupil_id, date
    ),
    numbered AS (
        SELECT *,
               sum(CASE WHEN unexplained = false THEN 1 ELSE 0 END) OVER (
                   PARTITION BY pupil_id ORDER BY date ROWS UNBOUNDED PRECEDING) AS grp
        FROM days
    ),
    runs AS (
        SELECT pupil_id, grp,
               count(*) FILTER (WHERE unexplained AND date >= DATE '{m12}') AS run_len,
               count(*) FILTER (WHERE unexplained IS NOT NULL
                                AND date >= DATE '{m12}') AS counted_days_12m,
               sum(n_marks) AS n_marks, sum(n_unknown) AS n_unknown,
               sum(n_bad_session) AS n_bad_session, sum(n_outside) AS n_outside,
               sum(dup_identical) AS dup_identical, sum(dual) AS dual,
               sum(conflicting) AS conflicting,
               {day_sums},
               sum(n_code) FILTER (WHERE date >= DATE '{year}'
                                   AND date <= DATE '{ncut}') AS unresolved_n,
               sum(c2) FILTER (WHERE date >= DATE '{year}') AS c2,
               sum(e) FILTER (WHERE date >= DATE '{year}') AS e,
               sum(kb) FILTER (WHERE date >= DATE '{year}') AS kb,
               sum(late) FILTER (WHERE date >= DATE '{year}') AS late,
               min(bad_code) AS bad_code
        FROM numbered
        GROUP BY pupil_id, grp
    )
    SELECT pupil_id,
           {pupil_sums},
           coalesce(max(run_len), 0)::BIGINT AS longest_run,
           arg_max(run_len, grp)::BIGINT AS current_run,
           min(bad_code) AS bad_code
    FROM runs
    GROUP BY pupil_id
    """


def _n_cutoff(con: duckdb.DuckDBPyConnection, w: Windows) -> date | None:
    """The school day on which an N mark has stood five school days unresolved."""
    row = con.sql(
        f"""SELECT date FROM (SELECT DISTINCT CAST(date AS DATE) AS date FROM marks_known
            WHERE date >= DATE '{w.year_start.isoformat()}' AND pupil_id IS NOT NULL)
            ORDER BY date DESC LIMIT 1 OFFSET {N_CODE_DAYS}"""
    ).fetchall()
    return row[0][0] if row else None


def aggregate_marks(
    tables: RawTables,
    *,
    as_of: date,
    roll_changes: pd.DataFrame | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> pd.DataFrame:
    """Per-pupil session counts at ``as_of`` (indexed by ``pupil_id``).

    The columns are counts (see ``_AGG_COLUMNS`` in the source): possible,
    absent, authorised and unauthorised sessions for this term, this school
    year and the previous school year; unresolved N, C2, E, K/B and late
    sessions this school year; counted school days and the longest and current
    unexplained runs in the last 12 months; and the dirty-mark counts. Pupils
    are every pupil with a mark in the window, on roll or not.

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
    """
    if con is None:
        with connect() as own:
            return aggregate_marks(
                tables, as_of=as_of, roll_changes=roll_changes, con=own
            )
    w = Windows.at(as_of)
    known = attendance_known_at(
        tables.attendance_relation(con), as_of=as_of, since=w.earliest_mark
    )
    known.create_view("marks_known", replace=True)
    con.register("codes", code_table())
    registration = roll_changes is not None
    if registration:
        assert roll_changes is not None
        iv = registration_intervals(
            known_at(roll_changes, table="roll_changes", as_of=as_of)
        )
        con.register("reg_intervals", iv)
        con.register("reg_pairs", iv[["pupil_id", "school_urn"]].drop_duplicates())
    sql = _sql(w, n_cutoff=_n_cutoff(con, w), registration=registration)
    out = con.sql(sql).df().set_index("pupil_id")
    out.index = out.index.astype(str)
    return out


def count_undated_marks(tables: RawTables, *, con: duckdb.DuckDBPyConnection) -> int:
    """Marks with no date or no pupil (never known at any as-of)."""
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
) -> pd.DataFrame:
    """Attendance features for ``pupil_ids`` from :func:`aggregate_marks` counts.

    Records the dirty-mark counts in ``quality`` (marks of pupils absent from
    the pupils table included) and returns one row per pupil, in
    ``pupil_ids`` order, indexed by ``pupil_id``.
    """
    orphan = ~agg.index.isin(list(known_pupils))
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
    out = pd.DataFrame(index=a.index)
    for window, suffix in (
        ("term", "this_term"),
        ("year", "this_year"),
        ("last_year", "last_year"),
    ):
        possible = a[f"possible_{window}"]
        out[f"absence_rate_{suffix}"] = _rate(a[f"absent_{window}"], possible)
        out[f"authorised_absence_rate_{suffix}"] = _rate(
            a[f"authorised_{window}"], possible
        )
        out[f"unauthorised_absence_rate_{suffix}"] = _rate(
            a[f"unauthorised_{window}"], possible
        )
    out = add_absence_flags(out)
    out["absence_trend"] = out["absence_rate_this_term"] - out["absence_rate_last_year"]
    has_days = a["counted_days_12m"].fillna(0) > 0
    out["longest_unexplained_run_12m"] = a["longest_run"].astype(float).where(has_days)
    out["current_unexplained_run"] = a["current_run"].astype(float).where(has_days)
    this_year = a["possible_year"].fillna(0) > 0
    for src, name in (
        ("unresolved_n", "unresolved_n_sessions_this_year"),
        ("c2", "part_time_sessions_this_year"),
        ("e", "excluded_no_provision_sessions_this_year"),
        ("kb", "off_site_sessions_this_year"),
        ("late", "late_sessions_this_year"),
    ):
        out[name] = a[src].astype(float).fillna(0).where(this_year)
    return out


def add_absence_flags(frame: pd.DataFrame) -> pd.DataFrame:
    """Persistent (>= 10%) and severe (>= 50%) absence flags this school year (NaN if unknown)."""
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
