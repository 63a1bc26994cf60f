"""The SQL that aggregates session marks, and the small tables it joins.

One query per as-of, a single streaming pass over the marks
(:func:`marks_sql`), and two more (:func:`quality_sql`,
:func:`duplicates_sql`) only when it finds dirty marks. It groups marks by
pupil and day (both sessions of a day in one row, the duplicate rules applied
per session), then sums the days by pupil and period, and numbers the runs of
unexplained days with one window function.

The queries read the view ``marks_known`` (the marks cut by the window
helper) and the registered tables ``pupil_keys`` (pupil id -> integer ``k``
and the ``part`` of the pupils a pass reads; the large groupings and the
window sort run on integers), ``codes`` (:func:`code_table`) and, for the
registration check, ``reg_intervals`` and ``reg_pairs``
(:func:`registration_intervals`). They use only joins, ``GROUP BY``, ``CASE``,
``greatest``, ``UNION ALL`` and one window ``sum``: SQL that Spark runs as it
is.

Examples
--------
>>> table = code_table().set_index("code")
>>> table.loc[["H", "N", "/"], ["norm_code", "category"]].values.tolist()
[['C', 'authorised'], ['N', 'unauthorised'], ['/', 'present']]
"""

from __future__ import annotations

import functools
from datetime import date

import pandas as pd

from cmerisk.data import codes
from cmerisk.features.window import Windows

__all__ = [
    "code_table",
    "duplicates_sql",
    "example_code_sql",
    "marks_sql",
    "n_cutoff_sql",
    "quality_sql",
    "registration_intervals",
]

_CATEGORY_RANK = {
    "not_counted": 0,
    "present": 1,
    "approved_activity": 2,
    "authorised": 3,
    "unauthorised": 4,
}

FAR_PAST = date(1900, 1, 1)
FAR_FUTURE = date(2999, 12, 31)

#: School days an N code may stand before it counts as unresolved.
N_CODE_DAYS = 5


@functools.cache
def _code_frame() -> pd.DataFrame:
    rows = []
    for code in sorted(codes.ALL_ATTENDANCE_CODES):
        norm = codes.normalise_attendance_code(code)
        rows.append((code, norm, codes.ATTENDANCE_CATEGORY[norm]))
    frame = pd.DataFrame(rows, columns=["code", "norm_code", "category"])
    norm_order = {c: i for i, c in enumerate(sorted(set(frame["norm_code"])))}
    frame["priority"] = [
        _CATEGORY_RANK[cat] * 100 + norm_order[n]
        for cat, n in zip(frame["category"], frame["norm_code"], strict=True)
    ]
    return frame


def code_table() -> pd.DataFrame:
    """Every accepted code with its 2024 code, category and precedence.

    ``priority`` is ``100 * rank + position`` with rank 0 (not counted), 1
    (present), 2 (approved activity), 3 (authorised), 4 (unexplained): the
    higher wins a session, counted codes have 100 or more, and
    ``priority // 100`` is the rank.
    """
    return _code_frame().copy()


def _p(*names: str) -> str:
    """Priorities of current codes, as a SQL list."""
    table = _code_frame()
    found = table.loc[table["code"].isin(names), "priority"]
    return ", ".join(str(int(p)) for p in sorted(found))


def registration_intervals(roll_changes: pd.DataFrame) -> pd.DataFrame:
    """Disjoint date ranges a pupil was registered at a school, from roll changes.

    An admission opens a range that the next deletion from the same school
    closes (the deletion day included); a first deletion with no admission
    before it closes a range open since before the data. On one day, a
    deletion comes before an admission (a same-day re-admission stays
    registered). Returns ``pupil_id``, ``school_urn``, ``reg_start``,
    ``reg_end`` (dates; far past / far future for open ends).

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
    rc["order"] = (rc["change"] == "admission").astype(int)
    rc = rc.sort_values(["pupil_id", "school_urn", "date", "order"], kind="stable")
    pair = ["pupil_id", "school_urn"]
    is_del = rc["change"] == "deletion"
    # For every change, the date of the next deletion at the same pair (itself if one).
    next_del = (
        rc["date"].where(is_del).groupby([rc["pupil_id"], rc["school_urn"]]).bfill()
    )
    adm = rc.loc[~is_del].assign(
        reg_start=lambda f: f["date"], reg_end=next_del[~is_del]
    )
    first = rc.groupby(pair, sort=False).head(1)
    lead = first.loc[first["change"] == "deletion"].assign(
        reg_start=pd.Timestamp(FAR_PAST), reg_end=lambda f: f["date"]
    )
    iv = pd.concat([adm, lead], ignore_index=True)[cols]
    iv["reg_end"] = iv["reg_end"].fillna(pd.Timestamp(FAR_FUTURE))
    # Merge overlapping ranges within a pair so each date matches at most one.
    iv = iv.sort_values([*pair, "reg_start"], kind="stable").reset_index(drop=True)
    reach = iv.groupby(pair, sort=False)["reg_end"].cummax()
    prev_reach = reach.groupby([iv["pupil_id"], iv["school_urn"]]).shift()
    block = (prev_reach.isna() | (iv["reg_start"] > prev_reach)).cumsum()
    merged = iv.groupby(block).agg(
        pupil_id=("pupil_id", "first"),
        school_urn=("school_urn", "first"),
        reg_start=("reg_start", "min"),
        reg_end=("reg_end", "max"),
    )
    merged["reg_start"] = merged["reg_start"].dt.date
    merged["reg_end"] = merged["reg_end"].dt.date
    return merged.reset_index(drop=True)[cols]


def _valid_marks(*, since: date, registration: bool, part: int | None) -> str:
    """CTEs ``marks`` and ``valid``: each mark with its checks and, when usable,
    its precedence ``ok_p`` (NULL for unknown codes, bad sessions and marks
    outside registration). With ``part``, only the pupils of that part."""
    if registration:
        reg_join = """
        LEFT JOIN reg_pairs p ON p.k = m.k AND p.school_urn = m.school_urn
        LEFT JOIN reg_intervals i ON i.k = m.k AND i.school_urn = m.school_urn
            AND m.date BETWEEN i.reg_start AND i.reg_end"""
        outside = "(p.k IS NOT NULL AND i.k IS NULL)"
    else:
        reg_join, outside = "", "false"
    part_filter = "" if part is None else f" AND k.part = {int(part)}"
    return f"""
    marks AS (
        SELECT k.k, CAST(m.school_urn AS VARCHAR) AS school_urn,
               CAST(m.date AS DATE) AS date, CAST(m.session AS VARCHAR) AS session,
               CAST(m.code AS VARCHAR) AS code
        FROM marks_known m
        JOIN pupil_keys k ON k.pupil_id = CAST(m.pupil_id AS VARCHAR){part_filter}
        WHERE m.date >= DATE '{since.isoformat()}'
    ),
    valid AS (
        SELECT m.k, m.date, m.session,
               CASE WHEN c.priority IS NULL THEN 1 ELSE 0 END AS unknown_code,
               CASE WHEN c.priority IS NOT NULL AND m.session NOT IN ('AM', 'PM')
                    THEN 1 ELSE 0 END AS bad_session,
               CASE WHEN c.priority IS NOT NULL AND m.session IN ('AM', 'PM')
                         AND {outside}
                    THEN 1 ELSE 0 END AS outside,
               CASE WHEN c.priority IS NOT NULL AND m.session IN ('AM', 'PM')
                         AND NOT {outside} THEN c.priority END AS ok_p
        FROM marks m
        LEFT JOIN codes c ON c.code = m.code {reg_join}
    )"""


def _dup_classes(nv: str, nc: str, p: str, pmin: str, pcmin: str) -> dict[str, str]:
    """How a session's extra marks are counted: identical copies, not-counted
    marks beside the kept one (dual registration), or conflicting codes."""
    return {
        "dup_identical": f"CASE WHEN {nc} >= 1 THEN (CASE WHEN {pcmin} = {p} "
        f"THEN {nc} - 1 ELSE 0 END) "
        f"WHEN {nv} >= 1 AND {pmin} = {p} THEN {nv} - 1 ELSE 0 END",
        "dual": f"CASE WHEN {nc} >= 1 THEN {nv} - {nc} "
        f"WHEN {nv} >= 1 AND {pmin} < {p} THEN {nv} - 1 ELSE 0 END",
        "conflicting": f"CASE WHEN {nc} >= 1 AND {pcmin} < {p} "
        f"THEN {nc} - 1 ELSE 0 END",
    }


def _kept(s: str) -> dict[str, str]:
    """Per-session day columns from the kept mark (precedence ``p_max_<s>``)."""
    p = f"p_max_{s}"
    rank = f"({p} // 100)"

    def one_of(*names: str) -> str:
        return f"CASE WHEN {p} IN ({_p(*names)}) THEN 1 ELSE 0 END"

    return {
        "possible": f"CASE WHEN {p} >= 100 THEN 1 ELSE 0 END",
        "absent": f"CASE WHEN {rank} IN (3, 4) THEN 1 ELSE 0 END",
        "authorised": f"CASE WHEN {rank} = 3 THEN 1 ELSE 0 END",
        "unauthorised": f"CASE WHEN {rank} = 4 THEN 1 ELSE 0 END",
        "n_code": one_of("N"),
        "c2": one_of("C2"),
        "e": one_of("E"),
        "kb": one_of("K", "B"),
        "late": one_of("L", "U"),
    }


def _per_session(names: tuple[str, ...]) -> str:
    exprs = {
        "nv": "count(CASE WHEN session = '{S}' THEN ok_p END)",
        "p_max": "max(CASE WHEN session = '{S}' THEN ok_p END)",
    }
    return ",\n               ".join(
        exprs[n].format(S=s.upper()) + f" AS {n}_{s}"
        for s in ("am", "pm")
        for n in names
    )


#: Day sums per pupil and period, before the per-pupil pivot.
PERIOD_SUMS = (
    "n_marks", "n_invalid", "n_extra", "possible", "absent", "authorised",
    "unauthorised", "n_code", "c2", "e", "kb", "late", "counted_days", "explained_days",
)  # fmt: skip


def _pupil_columns() -> dict[str, str]:
    """Per-pupil column -> sum over the (pupil, period) rows."""
    out = {c: f"sum({c})" for c in ("n_marks", "n_invalid", "n_extra")}
    windows = {"term": "period = 2", "year": "period >= 1", "last_year": "period = 0"}
    for name, cond in windows.items():
        for c in ("possible", "absent", "authorised", "unauthorised"):
            out[f"{c}_{name}"] = f"sum(CASE WHEN {cond} THEN {c} ELSE 0 END)"
    out["unresolved_n"] = (
        "sum(CASE WHEN period >= 1 AND settled THEN n_code ELSE 0 END)"
    )
    for c in ("c2", "e", "kb", "late"):
        out[c] = f"sum(CASE WHEN period >= 1 THEN {c} ELSE 0 END)"
    out["counted_days_12m"] = "sum(CASE WHEN recent THEN counted_days ELSE 0 END)"
    out["explained_days_12m"] = "sum(CASE WHEN recent THEN explained_days ELSE 0 END)"
    return out


#: The per-pupil columns of :func:`marks_sql` (rows of ``kind = 'pupil'``).
PUPIL_COLUMNS = tuple(_pupil_columns())


def marks_sql(
    w: Windows, *, n_cutoff: date | None, registration: bool, part: int | None = None
) -> str:
    """The one pass over the marks: period sums and runs, per pupil key ``k``.

    Marks are grouped by pupil and school day (both sessions in one row, the
    kept mark of each session being the usable one of highest precedence).
    The days are summed per pupil and *period* - ``period`` (0 previous school
    year, 1 this year before this term, 2 this term), ``settled`` (dated on or
    before the N cut-off) and ``recent`` (in the last 12 months) - then
    pivoted to one row per pupil (``kind = 'pupil'``, :data:`PUPIL_COLUMNS`);
    and the runs of unexplained days of the last 12 months are numbered, one
    row per run (``kind = 'run'``, ``grp`` = the number of explained days
    before it, ``run_len``).

    A day counts when it has a counted session, and is unexplained when all
    its counted sessions are; days without a counted session neither break nor
    extend a run. ``n_invalid`` counts marks not used (unknown code, bad
    session, outside registration) and ``n_extra`` the extra marks of sessions
    with several: :func:`quality_sql` and :func:`duplicates_sql` say which
    kind, and are run only when there are any.
    """
    am, pm = _kept("am"), _kept("pm")
    day_cols = ",\n               ".join(f"({am[c]}) + ({pm[c]}) AS {c}" for c in am)
    sums = [f"sum({c}) AS {c}" for c in PERIOD_SUMS[:-2]] + [
        "sum(CASE WHEN possible > 0 THEN 1 ELSE 0 END) AS counted_days",
        "sum(CASE WHEN possible > 0 AND unauthorised < possible THEN 1 ELSE 0 END)"
        " AS explained_days",
    ]
    cut = (n_cutoff or FAR_PAST).isoformat()
    m12 = w.last_12_months.isoformat()
    pupil_cols = ",\n           ".join(
        f"{e} AS {c}" for c, e in _pupil_columns().items()
    )
    null_cols = ", ".join(f"NULL AS {c}" for c in PUPIL_COLUMNS)
    return f"""
    WITH {_valid_marks(since=w.earliest_mark, registration=registration, part=part)},
    day_marks AS (
        SELECT k, date, count(*) AS n_marks,
               {_per_session(("nv", "p_max"))}
        FROM valid
        GROUP BY k, date
    ),
    days AS (
        SELECT k, date, n_marks,
               n_marks - nv_am - nv_pm AS n_invalid,
               greatest(nv_am - 1, 0) + greatest(nv_pm - 1, 0) AS n_extra,
               {day_cols}
        FROM day_marks
    ),
    numbered AS (
        SELECT k, date, unauthorised = possible AS unexplained,
               sum(CASE WHEN unauthorised < possible THEN 1 ELSE 0 END)
                   OVER (PARTITION BY k ORDER BY date
                         ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS grp
        FROM days
        WHERE possible > 0 AND date >= DATE '{m12}'
    ),
    periods AS (
        SELECT k,
               CASE WHEN date >= DATE '{w.term_start.isoformat()}' THEN 2
                    WHEN date >= DATE '{w.year_start.isoformat()}' THEN 1
                    ELSE 0 END AS period,
               date <= DATE '{cut}' AS settled,
               date >= DATE '{m12}' AS recent,
               {", ".join(sums)}
        FROM days
        GROUP BY 1, 2, 3, 4
    )
    SELECT 'pupil' AS kind, k,
           {pupil_cols},
           NULL AS grp, NULL AS run_len
    FROM periods
    GROUP BY k
    UNION ALL
    SELECT 'run' AS kind, k, {null_cols}, grp, count(*) AS run_len
    FROM numbered
    WHERE unexplained
    GROUP BY k, grp
    """


def quality_sql(w: Windows, *, registration: bool, part: int | None = None) -> str:
    """Per pupil key ``k``: marks with an unknown code, a bad session, or
    outside registration."""
    return f"""
    WITH {_valid_marks(since=w.earliest_mark, registration=registration, part=part)}
    SELECT k, sum(unknown_code) AS n_unknown, sum(bad_session) AS n_bad_session,
           sum(outside) AS n_outside
    FROM valid
    GROUP BY k
    """


def duplicates_sql(w: Windows, *, registration: bool, part: int | None = None) -> str:
    """Per pupil key ``k``: the extra marks of sessions with several usable
    ones, by kind (identical, dual registration, conflicting)."""
    kinds = _dup_classes("nv", "nc", "p", "p_min", "pc_min")
    sums = ",\n           ".join(
        f"sum({expr}) AS {name}" for name, expr in kinds.items()
    )
    return f"""
    WITH {_valid_marks(since=w.earliest_mark, registration=registration, part=part)},
    sessions AS (
        SELECT k, count(ok_p) AS nv,
               count(CASE WHEN ok_p >= 100 THEN 1 END) AS nc,
               max(ok_p) AS p, min(ok_p) AS p_min,
               min(CASE WHEN ok_p >= 100 THEN ok_p END) AS pc_min
        FROM valid
        GROUP BY k, date, session
        HAVING count(ok_p) > 1
    )
    SELECT k,
           {sums}
    FROM sessions
    GROUP BY k
    """


def n_cutoff_sql(w: Windows) -> str:
    """The sixth most recent school day (a date with any mark) before ``as_of``
    this school year: N marks on or before it have stood five school days."""
    return f"""
    SELECT date FROM (
        SELECT DISTINCT CAST(date AS DATE) AS date FROM marks_known
        WHERE date >= DATE '{w.year_start.isoformat()}' AND pupil_id IS NOT NULL
    ) AS school_days
    ORDER BY date DESC LIMIT 1 OFFSET {N_CODE_DAYS}
    """


def example_code_sql() -> str:
    """The smallest unknown code among the marks read (for the message)."""
    return """
    SELECT min(CAST(m.code AS VARCHAR)) FROM marks_known m
    LEFT JOIN codes c ON c.code = CAST(m.code AS VARCHAR)
    WHERE c.code IS NULL AND m.pupil_id IS NOT NULL
    """
