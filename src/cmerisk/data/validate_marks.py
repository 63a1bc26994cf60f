"""Checks on session marks, in DuckDB SQL generated from the contract.

An LA's session marks can run to hundreds of millions of rows, more than
pandas (or pandera on pandas) can hold, so they are checked where they lie,
as SQL over their Parquet or CSV files (or over an in-memory frame when
small). The SQL is generated from :data:`cmerisk.data.contract.TABLES`
(``attendance``): each column's type, nullability, allowed codes and plausible
date range, the key (one mark per pupil, date and session), and the reference
to ``pupils`` become the same rules that :mod:`cmerisk.data.validate` applies
to the small tables with pandera.

Rejected marks are grouped per pupil, rule and value (``rows`` counts them),
so the rejects stay small even when one bad code runs through a whole year.

Examples
--------
>>> import pandas as pd
>>> from cmerisk.data.tables import RawTables
>>> marks = pd.DataFrame({"pupil_id": ["p1", "p1"], "school_urn": ["100001"] * 2,
...                       "date": ["2023-09-04"] * 2, "session": ["AM", "PM"],
...                       "code": ["/", "ZZ"]})
>>> result = check_marks(RawTables({"attendance": marks}), valid_pupils=None,
...                      roll_changes=None)
>>> [(f.rule, f.column, f.count) for f in result.findings], result.dropped
([('unknown_code', 'code', 1)], 1)
"""

from dataclasses import dataclass, field
from datetime import date

import duckdb
import pandas as pd

from cmerisk import duck
from cmerisk.data.findings import (
    MAX_EXAMPLES,
    MIN_VALUES_FOR_WRONG_TYPE,
    REJECT_COLUMNS,
    Finding,
    TableSummary,
)
from cmerisk.data.marks_sql import (
    MarksViews,
    build_duplicate_table,
    marks_outside_registration,
    warning_checks,
)
from cmerisk.data.tables import RawTables


@dataclass
class MarksCheck:
    """What the checks on session marks found."""

    findings: list[Finding] = field(default_factory=list)
    rejects: pd.DataFrame | None = None
    summary: TableSummary | None = None
    dropped: int = 0
    usable: bool = True
    needs_rewrite: bool = False


def _examples(frame: pd.DataFrame, value_col: str) -> tuple[str, ...]:
    out = []
    for row in frame.head(MAX_EXAMPLES).itertuples(index=False):
        value = getattr(row, value_col) if value_col else None
        what = f"{value!r} " if value is not None and not pd.isna(value) else ""
        out.append(f"{what}x{row.n} from {row.first_date} {row.first_session}".strip())
    return tuple(out)


def check_marks(
    tables: RawTables,
    *,
    valid_pupils: pd.Series | None,
    roll_changes: pd.DataFrame | None,
    as_of: date | None = None,
) -> MarksCheck:
    """Check session marks with DuckDB: types, codes, dates, key, pupils, registration.

    ``valid_pupils`` are the ids of usable ``pupils`` rows (``None`` skips the
    reference check); ``roll_changes`` (already validated) enables the
    outside-registration warning.
    """
    result = MarksCheck()
    con = duck.connect()
    marks: MarksViews | None = None
    try:
        try:
            marks = MarksViews(tables, con, valid_pupils=valid_pupils)
        except duckdb.Error as e:
            result.findings.append(
                Finding(
                    "attendance", None, "unreadable_file", detail=_duckdb_message(e)
                )
            )
            result.usable = False
            return result
        for name in marks.extra:
            result.findings.append(Finding("attendance", name, "unknown_column"))
        for name in marks.missing:
            result.findings.append(Finding("attendance", name, "missing_column"))
        if marks.missing:
            result.usable = False
            return result
        try:
            _run_checks(marks, result, roll_changes=roll_changes, as_of=as_of)
        except duckdb.Error as e:
            result.findings.append(
                Finding(
                    "attendance", None, "unreadable_file", detail=_duckdb_message(e)
                )
            )
            result.usable = False
        return result
    finally:
        if marks is not None:
            marks.close()
        con.close()


def _duckdb_message(error: duckdb.Error) -> str:
    # DuckDB messages can quote a line of the file; keep only the first sentence.
    return str(error).splitlines()[0][:200]


def _run_checks(
    marks: MarksViews,
    result: MarksCheck,
    *,
    roll_changes: pd.DataFrame | None,
    as_of: date | None,
) -> None:
    """One pass over the marks, aggregated per pupil; then work on the few bad ones.

    The pass counts every rule and warning per pupil (a small hash aggregate,
    some tens of thousands of groups); the reference to ``pupils`` is then
    checked on those per-pupil rows, not on every mark.
    """
    con, flags = marks.con, marks.flags
    checks = warning_checks(as_of, seen=marks.seen.get("code"))
    per_pupil = [f"count(*) FILTER (WHERE f{i}) AS c{i}" for i in range(len(flags))]
    per_pupil += [
        f"count(raw_{f.column}) AS p_{f.column}"
        for f in flags
        if f.rule == "unreadable_value"
    ]
    per_pupil += [
        f"count(*) FILTER (WHERE {where} AND NOT row_flag) AS {stat}"
        for stat, _, _, where in checks
    ]
    if as_of is not None:
        late = f"date >= DATE '{as_of}' AND NOT row_flag"
        per_pupil += [
            f"min(date) FILTER (WHERE {late}) AS w_after_first",
            f"max(date) FILTER (WHERE {late}) AS w_after_last",
        ]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE marks_by_pupil AS SELECT pupil_id, "
        "count(*) AS n, min(date) AS first, max(date) AS last, "
        "count(*) FILTER (WHERE row_flag) AS n_flag, "
        "CAST(min(date) AS VARCHAR) AS first_date, "
        "arg_min(session, date) AS first_session, "
        + ", ".join(per_pupil)
        + " FROM marks_rows GROUP BY pupil_id"
    )
    if marks.check_pupils:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE marks_by_pupil AS SELECT b.*, "
            "(b.pupil_id IS NULL OR v.pupil_id IS NOT NULL) AS known "
            "FROM marks_by_pupil b "
            "LEFT JOIN valid_pupils v ON b.pupil_id = v.pupil_id"
        )
    else:
        con.execute("ALTER TABLE marks_by_pupil ADD COLUMN known BOOLEAN DEFAULT true")
    sums = [f"sum(c{i}) AS c{i}" for i in range(len(flags))]
    sums += [
        f"sum(p_{f.column}) AS p_{f.column}"
        for f in flags
        if f.rule == "unreadable_value"
    ]
    sums += [f"sum({stat}) FILTER (WHERE known) AS {stat}" for stat, _, _, _ in checks]
    if as_of is not None:
        sums += [
            "min(w_after_first) FILTER (WHERE known) AS w_after_first",
            "max(w_after_last) FILTER (WHERE known) AS w_after_last",
        ]
    cursor = con.execute(
        "SELECT sum(n) AS n_rows, count(pupil_id) AS n_pupils, min(first) AS first, "
        "max(last) AS last, sum(CASE WHEN known THEN n_flag ELSE n END) AS n_flagged, "
        "sum(n_flag) AS n_row_flagged, sum(n) FILTER (WHERE NOT known) AS c_unknown, "
        + ", ".join(sums)
        + " FROM marks_by_pupil"
    )
    names = [d[0] for d in cursor.description]
    row = cursor.fetchall()[0]
    # Sums over no rows are NULL: count them as 0 (dates stay None).
    stats = {
        k: (v if v is not None or k in _DATE_STATS else 0)
        for k, v in zip(names, row, strict=True)
    }
    n_rows = int(stats["n_rows"])
    result.summary = TableSummary(
        "attendance",
        n_rows,
        pupils=int(stats["n_pupils"]),
        date_column="date",
        first=_day(stats["first"]),
        last=_day(stats["last"]),
    )
    if n_rows == 0:
        result.findings.append(Finding("attendance", None, "no_rows"))
        return
    # A column none of whose values can be read has the wrong type: unusable.
    for i, f in enumerate(flags):
        if (
            f.rule == "unreadable_value"
            and MIN_VALUES_FOR_WRONG_TYPE <= stats[f"c{i}"] == stats[f"p_{f.column}"]
        ):
            sample = con.execute(
                f"SELECT DISTINCT raw_{f.column} FROM marks_coerced "
                f"WHERE raw_{f.column} IS NOT NULL LIMIT {MAX_EXAMPLES}"
            ).fetchall()
            result.findings.append(
                Finding(
                    "attendance",
                    f.column,
                    "wrong_type",
                    count=int(stats[f"c{i}"]),
                    examples=tuple(repr(v[0]) for v in sample),
                    detail=f"expected {f.column} as a date",
                )
            )
            result.usable = False
    if not result.usable:
        return
    reject_frames: list[pd.DataFrame] = []
    if stats["n_row_flagged"]:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE marks_bad AS "
            "SELECT * FROM marks_rows WHERE row_flag"
        )
        for i, f in enumerate(flags):
            if not stats[f"c{i}"]:
                continue
            value = f.value or "CAST(NULL AS VARCHAR)"
            groups = con.execute(
                f"SELECT pupil_id, {value} AS value, count(*) AS n, "
                "CAST(min(date) AS VARCHAR) AS first_date, "
                f"arg_min(session, date) AS first_session FROM marks_bad WHERE f{i} "
                "GROUP BY ALL ORDER BY n DESC, first_date"
            ).fetchdf()
            _add_rejects(
                result,
                reject_frames,
                groups,
                f.column,
                f.rule,
                int(stats[f"c{i}"]),
                value_col="value" if f.value else "",
            )
    if stats["c_unknown"]:
        groups = con.execute(
            "SELECT pupil_id, n, first_date, first_session FROM marks_by_pupil "
            "WHERE NOT known ORDER BY n DESC, first_date"
        ).fetchdf()
        _add_rejects(
            result,
            reject_frames,
            groups,
            "pupil_id",
            "unknown_pupil",
            int(stats["c_unknown"]),
        )
    dups = _check_duplicates(marks, result, reject_frames)
    result.dropped = int(stats["n_flagged"]) + dups
    result.rejects = (
        pd.concat(reject_frames, ignore_index=True) if reject_frames else None
    )
    result.needs_rewrite = marks.on_disk and (
        marks.csv or not marks.typed or result.dropped > 0
    )
    _warnings(marks, result, stats, as_of=as_of)
    if roll_changes is not None and len(roll_changes):
        _registration(marks, result, roll_changes)


_DATE_STATS = frozenset({"first", "last", "w_after_first", "w_after_last"})


def _day(value: object) -> date | None:
    return None if value is None else pd.Timestamp(value).date()


def _add_rejects(
    result: MarksCheck,
    reject_frames: list[pd.DataFrame],
    groups: pd.DataFrame,
    column: str,
    rule: str,
    count: int,
    *,
    value_col: str = "",
    detail: str = "",
) -> None:
    result.findings.append(
        Finding(
            "attendance",
            column,
            rule,
            count=count,
            examples=_examples(groups, value_col),
            detail=detail,
        )
    )
    reject_frames.append(_reject_rows(groups, column, rule, value_col))


def _reject_rows(
    groups: pd.DataFrame, column: str, rule: str, value_col: str
) -> pd.DataFrame:
    what = (
        groups[value_col].map(lambda v: "" if v is None or pd.isna(v) else f"{v!r}: ")
        if value_col
        else pd.Series("", index=groups.index)
    )
    detail = (
        what
        + groups["n"].astype("str")
        + " marks from "
        + groups["first_date"].astype("str")
        + " "
        + groups["first_session"].fillna("").astype("str")
    ).str.strip()
    return pd.DataFrame(
        {
            "pupil_id": groups["pupil_id"].astype("str"),
            "table": "attendance",
            "row": pd.array([pd.NA] * len(groups), dtype="Int64"),
            "column": column,
            "rule": rule,
            "detail": detail.astype("str"),
            "rows": groups["n"].astype("int64"),
        },
        columns=list(REJECT_COLUMNS),
    )


#: Longest span of session slots (days x 2) checked with per-pupil bitmaps;
#: longer spans fall back to a hash aggregate over every mark.
def _check_duplicates(
    marks: MarksViews, result: MarksCheck, reject_frames: list[pd.DataFrame]
) -> int:
    """One mark per pupil, date and session: find the keys held more than once.

    Exact copies keep one mark (``duplicate_row``); marks that disagree are
    all rejected (``duplicate_key``). Returns how many marks that removes
    beyond those already rejected by other rules.
    """
    con = marks.con
    if not build_duplicate_table(marks):
        return 0
    dropped = 0
    for rule, where, extra in (
        ("duplicate_row", "variants = 1", "n - 1"),
        ("duplicate_key", "variants > 1", "n"),
    ):
        groups = con.execute(
            f"SELECT pupil_id, sum({extra})::BIGINT AS n, "
            "CAST(min(date) AS VARCHAR) AS first_date, "
            f"arg_min(session, date) AS first_session, "
            "sum(CASE WHEN variants = 1 AND n_flagged = 0 THEN n - 1 "
            "ELSE n - n_flagged END)::BIGINT AS newly_dropped "
            f"FROM marks_dups WHERE {where} GROUP BY pupil_id "
            "ORDER BY n DESC, first_date"
        ).fetchdf()
        if groups.empty:
            continue
        dropped += int(groups["newly_dropped"].sum())
        _add_rejects(
            result,
            reject_frames,
            groups,
            "session",
            rule,
            int(groups["n"].sum()),
            detail="one mark per pupil, date and session",
        )
    return dropped


def _warnings(
    marks: MarksViews, result: MarksCheck, stats: dict, *, as_of: date | None
) -> None:
    """Warnings counted in the per-pupil pass; examples from a short sample."""
    con = marks.con
    for stat, rule, column, where in warning_checks(as_of, seen=marks.seen.get("code")):
        n = int(stats[stat])
        if not n:
            continue
        if column == "code":
            # LIMIT without ORDER BY lets DuckDB stop at the first rows it finds.
            sample = con.execute(
                f"SELECT code, CAST(date AS VARCHAR) FROM marks_rows "
                f"WHERE {where} AND NOT row_flag LIMIT 1000"
            ).fetchall()
            first: dict[str, str] = {}
            for code, day in sample:
                first[code] = min(first.get(code, day), day)
            examples = tuple(
                f"{c!r} on {d}" for c, d in sorted(first.items())[:MAX_EXAMPLES]
            )
        else:
            low, high = _day(stats["w_after_first"]), _day(stats["w_after_last"])
            examples = (f"{low} to {high}",)
        result.findings.append(
            Finding("attendance", column, rule, count=n, examples=examples)
        )


def _registration(
    marks: MarksViews, result: MarksCheck, roll_changes: pd.DataFrame
) -> None:
    """Warn about marks at a school the pupil had left, or had not yet joined."""
    n, sample = marks_outside_registration(marks, roll_changes, limit=MAX_EXAMPLES)
    if not n:
        return
    examples = tuple(
        f"{d} {s} at {urn}"
        + (f" (deleted {left})" if left is not None else " (before admission)")
        for d, s, urn, left in sample
    )
    result.findings.append(
        Finding(
            "attendance", "date", "outside_registration", count=n, examples=examples
        )
    )
