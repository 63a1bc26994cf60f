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
>>> result = check_marks(RawTables({"attendance": marks}), valid_pupils=None, roll_changes=None)
>>> [(f.rule, f.column, f.count) for f in result.findings], result.dropped
([('unknown_code', 'code', 1)], 1)
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Final

import duckdb
import pandas as pd

from cmerisk.data import codes
from cmerisk.data.contract import TABLES, Column
from cmerisk.data.findings import MAX_EXAMPLES, REJECT_COLUMNS, Finding, TableSummary
from cmerisk.data.schemas import FALSE_SPELLINGS, TRUE_SPELLINGS, date_range
from cmerisk.data.tables import RawTables

MARKS: Final = TABLES["attendance"]

#: Codes the 2024 regulations introduced; seen before 2024-08-19 they are suspicious.
CODES_NEW_IN_2024: Final[frozenset[str]] = frozenset(
    {"C1", "C2", "J1", "K", "Q", "Y1", "Y2", "Y3", "Y4", "Y5", "Y6", "Y7"}
)

#: As for the small tables: no value readable, and at least this many, is a wrong type.
MIN_VALUES_FOR_WRONG_TYPE: Final[int] = 2

#: The DuckDB type each kind of contract column is written with.
SQL_TYPES: Final[dict[str, str]] = {
    "id": "VARCHAR",
    "string": "VARCHAR",
    "date": "DATE",
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
}


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _lits(values: Sequence[str]) -> str:
    return ", ".join(_lit(v) for v in values)


def _raw(name: str, *, trim: bool = True) -> str:
    """The value as text, NULL when empty (or blank, with ``trim``)."""
    text = f"CAST({_ident(name)} AS VARCHAR)"
    return f"NULLIF({f'TRIM({text})' if trim else text}, '')"


def _coerced(column: Column, source_type: str, *, trim: bool = True) -> str:
    """SQL turning the source column into its contract type (NULL when unreadable)."""
    col, raw = _ident(column.name), _raw(column.name, trim=trim)
    numeric = source_type in {"DOUBLE", "FLOAT", "REAL"} or source_type.startswith(
        "DECIMAL"
    )
    if column.kind in ("id", "string"):
        if numeric:
            return (
                f"CASE WHEN {col} = ROUND({col}) THEN CAST(CAST({col} AS BIGINT) AS VARCHAR) "
                f"ELSE {raw} END"
            )
        return raw
    if column.kind == "date":
        if source_type == "DATE":
            return col
        if source_type.startswith("TIMESTAMP"):
            return f"CAST({col} AS DATE)"
        if source_type == "VARCHAR":
            return (
                f"COALESCE(TRY_CAST({raw} AS DATE), TRY_CAST(TRY_CAST({raw} AS TIMESTAMP) AS DATE), "
                f"TRY_CAST(TRY_STRPTIME({raw}, '%d/%m/%Y') AS DATE))"
            )
        return "CAST(NULL AS DATE)"
    if column.kind == "int":
        return (
            f"CASE WHEN TRY_CAST({raw} AS DOUBLE) = ROUND(TRY_CAST({raw} AS DOUBLE)) "
            f"THEN CAST(TRY_CAST({raw} AS DOUBLE) AS BIGINT) END"
        )
    if column.kind == "float":
        return f"TRY_CAST({raw} AS DOUBLE)"
    if source_type == "BOOLEAN":
        return col
    return (
        f"CASE WHEN lower({raw}) IN ({_lits(sorted(TRUE_SPELLINGS))}) THEN true "
        f"WHEN lower({raw}) IN ({_lits(sorted(FALSE_SPELLINGS))}) THEN false END"
    )


@dataclass(frozen=True)
class _Flag:
    """One row-level rule on one column: its SQL condition and the value to report."""

    rule: str
    column: str
    condition: str
    value: str  # SQL for the offending value shown in rejects ('' when none)


def _flags(
    present: Sequence[Column],
    *,
    typed: frozenset[str] = frozenset(),
    seen: dict[str, set[str]] | None = None,
) -> list[_Flag]:
    """The row-level rules (the reference to ``pupils`` is checked per pupil).

    Columns in ``typed`` already have their contract type in the source, so
    none of their values can be unreadable and that rule is left out. With
    ``seen`` (the distinct values of the code columns), a code column is
    tested only against the values seen that are not allowed.
    """
    out: list[_Flag] = []
    for c in present:
        raw, val = f"raw_{c.name}", _ident(c.name)
        if not c.nullable:
            out.append(_Flag("missing_value", c.name, f"{raw} IS NULL", ""))
        if c.kind not in ("id", "string") and c.name not in typed:
            out.append(
                _Flag(
                    "unreadable_value",
                    c.name,
                    f"{raw} IS NOT NULL AND {val} IS NULL",
                    raw,
                )
            )
        if c.allowed is not None:
            if seen is None:
                cond = f"{val} NOT IN ({_lits(c.allowed)})"
            else:
                unknown = sorted(seen[c.name] - set(c.allowed))
                cond = f"{val} IN ({_lits(unknown)})" if unknown else ""
            if cond:
                out.append(_Flag("unknown_code", c.name, cond, val))
        if c.kind == "date":
            low, high = date_range(c)
            cond = f"{val} NOT BETWEEN DATE '{low}' AND DATE '{high}'"
            out.append(
                _Flag("implausible_date", c.name, cond, f"CAST({val} AS VARCHAR)")
            )
        if c.low is not None or c.high is not None:
            bounds = [f"{val} < {c.low}"] if c.low is not None else []
            bounds += [f"{val} > {c.high}"] if c.high is not None else []
            out.append(
                _Flag(
                    "out_of_range",
                    c.name,
                    " OR ".join(bounds),
                    f"CAST({val} AS VARCHAR)",
                )
            )
    return out


@dataclass
class MarksCheck:
    """What the checks on session marks found."""

    findings: list[Finding] = field(default_factory=list)
    rejects: pd.DataFrame | None = None
    summary: TableSummary | None = None
    dropped: int = 0
    usable: bool = True
    needs_rewrite: bool = False


class _Marks:
    """The SQL views over one LA's marks on one connection."""

    def __init__(
        self,
        tables: RawTables,
        con: duckdb.DuckDBPyConnection,
        *,
        valid_pupils: pd.Series | None,
    ) -> None:
        self.con = con
        con.execute("SET enable_progress_bar = false")
        rel = tables.attendance_relation(con)
        self.source_types = dict(
            zip(rel.columns, (str(t) for t in rel.types), strict=True)
        )
        self.on_disk = "attendance" not in tables.frames
        self.csv = self.on_disk and not all(
            str(p).endswith(".parquet") for p in tables.attendance_files
        )
        if self.on_disk:
            rel.create_view("marks_raw")
        else:  # scanning a pandas frame is slow: copy it into DuckDB once
            rel.create("marks_raw")
        self.present = [c for c in MARKS.columns if c.name in self.source_types]
        self.missing = [
            c.name
            for c in MARKS.columns
            if c.required and c.name not in self.source_types
        ]
        self.extra = [
            n for n in self.source_types if n not in {c.name for c in MARKS.columns}
        ]
        self.has_dups = False
        if self.missing:
            return
        # Text from CSV is trimmed; typed Parquet is taken as written (a stray
        # blank then shows up as an unknown code rather than being fixed silently).
        trim = self.csv
        selects = [f"{self._raw(c, trim=trim)} AS raw_{c.name}" for c in self.present]
        selects += [
            f"{_coerced(c, self.source_types[c.name], trim=trim)} AS {_ident(c.name)}"
            for c in self.present
        ]
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW marks_coerced AS SELECT {', '.join(selects)} FROM marks_raw"
        )
        # Code columns hold few distinct values: find them once, so that each mark
        # is tested only against the unknown ones seen (usually none), not
        # against every allowed code.
        coded = [c for c in self.present if c.allowed is not None]
        self.seen: dict[str, set[str]] = {c.name: set() for c in coded}
        if coded:
            names = ", ".join(_ident(c.name) for c in coded)
            for row in con.execute(
                f"SELECT {names} FROM marks_coerced GROUP BY ALL"
            ).fetchall():
                for c, value in zip(coded, row, strict=True):
                    if value is not None:
                        self.seen[c.name].add(value)
        self.flags = _flags(self.present, typed=self._typed_columns, seen=self.seen)
        cols = ", ".join(
            f"COALESCE({f.condition}, false) AS f{i}" for i, f in enumerate(self.flags)
        )
        row_flag = " OR ".join(f"f{i}" for i in range(len(self.flags))) or "false"
        con.execute(
            "CREATE OR REPLACE TEMP VIEW marks_rows AS SELECT *, "
            f"({row_flag}) AS row_flag FROM (SELECT *, {cols} FROM marks_coerced)"
        )
        self.check_pupils = valid_pupils is not None
        if self.check_pupils:
            known = pd.DataFrame({"pupil_id": pd.unique(valid_pupils.dropna())})
            con.register("valid_pupils", known.astype("str"))
            con.execute(
                "CREATE OR REPLACE TEMP VIEW marks_flagged AS SELECT m.*, "
                "(m.row_flag OR (m.pupil_id IS NOT NULL AND v.pupil_id IS NULL)) AS any_flag "
                "FROM marks_rows m LEFT JOIN valid_pupils v ON m.pupil_id = v.pupil_id"
            )
        else:
            con.execute(
                "CREATE OR REPLACE TEMP VIEW marks_flagged AS "
                "SELECT *, row_flag AS any_flag FROM marks_rows"
            )
        self.any_flag = "any_flag"
        self.key = [k for k in MARKS.key or ()]
        self.values = [c.name for c in self.present if c.name not in self.key]

    @property
    def _typed_columns(self) -> frozenset[str]:
        return frozenset(
            c.name
            for c in self.present
            if self.source_types[c.name] == SQL_TYPES[c.kind]
        )

    @property
    def typed(self) -> bool:
        """Whether the source already has the contract's types (no rewrite needed)."""
        return len(self._typed_columns) == len(self.present)

    def _raw(self, column: Column, *, trim: bool) -> str:
        """The value as written, NULL when empty: no text cast when already typed."""
        if column.name in self._typed_columns and not trim:
            if SQL_TYPES[column.kind] == "VARCHAR":
                return f"NULLIF({_ident(column.name)}, '')"
            return _ident(column.name)
        return _raw(column.name, trim=trim)

    def clean_sql(self, *, has_dups: bool) -> str:
        cols = ", ".join(_ident(c.name) for c in self.present)
        keep = f"SELECT {cols} FROM marks_flagged WHERE NOT ({self.any_flag})"
        if not has_dups:
            return keep
        key = ", ".join(_ident(k) for k in self.key)
        return (
            f"SELECT {cols} FROM ({keep}) ANTI JOIN marks_dups USING ({key}) "
            f"UNION ALL SELECT {cols} FROM marks_dups WHERE variants = 1 AND n_flagged = 0"
        )


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
    con = duckdb.connect()
    try:
        try:
            marks = _Marks(tables, con, valid_pupils=valid_pupils)
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
        con.close()


def _duckdb_message(error: duckdb.Error) -> str:
    # DuckDB messages can quote a line of the file; keep only the first sentence.
    return str(error).splitlines()[0][:200]


def _run_checks(
    marks: _Marks,
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
    checks = _warning_checks(as_of, seen=marks.seen.get("code"))
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
        "CREATE OR REPLACE TEMP TABLE marks_by_pupil AS SELECT pupil_id, count(*) AS n, "
        "min(date) AS first, max(date) AS last, count(*) FILTER (WHERE row_flag) AS n_flag, "
        "CAST(min(date) AS VARCHAR) AS first_date, arg_min(session, date) AS first_session, "
        + ", ".join(per_pupil)
        + " FROM marks_rows GROUP BY pupil_id"
    )
    if marks.check_pupils:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE marks_by_pupil AS SELECT b.*, "
            "(b.pupil_id IS NULL OR v.pupil_id IS NOT NULL) AS known FROM marks_by_pupil b "
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
            "CREATE OR REPLACE TEMP TABLE marks_bad AS SELECT * FROM marks_rows WHERE row_flag"
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
MAX_BITMAP_SLOTS: Final[int] = 16_384


def _key_ok(marks: _Marks) -> str:
    """Rows whose key (pupil, date, session) is complete and well-formed."""
    session = MARKS.column("session")
    low, high = date_range(MARKS.column("date"))
    return (
        f"pupil_id IS NOT NULL AND session IN ({_lits(session.allowed or ())}) "
        f"AND date BETWEEN DATE '{low}' AND DATE '{high}'"
    )


def _dup_pupils(marks: _Marks) -> None:
    """Fill table ``marks_dup_pupils`` with the pupils holding a key more than once.

    Each pupil's marks set bits in a bitmap of session slots (day x AM/PM,
    DuckDB's ``bitstring_agg``); a pupil has a duplicate exactly when it has
    more marks than set bits. That is one streaming aggregate over some tens
    of thousands of pupils, several times faster than grouping on every mark.
    """
    con, ok = marks.con, _key_ok(marks)
    first, last = con.execute(
        f"SELECT min(date), max(date) FROM marks_coerced WHERE {ok}"
    ).fetchall()[0]
    if first is None:
        con.execute("CREATE OR REPLACE TEMP TABLE marks_dup_pupils (pupil_id VARCHAR)")
        return
    slots = (last - first).days * 2 + 1
    if slots <= MAX_BITMAP_SLOTS:
        slot = f"((date - DATE '{first}') * 2 + (session = 'PM')::INTEGER)::BIGINT"
        con.execute(
            "CREATE OR REPLACE TEMP TABLE marks_dup_pupils AS SELECT pupil_id FROM "
            f"marks_coerced WHERE {ok} GROUP BY pupil_id "
            f"HAVING count(*) > bit_count(bitstring_agg({slot}, 0, {slots}))"
        )
        return
    key = ", ".join(_ident(k) for k in marks.key)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE marks_dup_pupils AS SELECT DISTINCT pupil_id FROM "
        f"(SELECT any_value(pupil_id) AS pupil_id FROM marks_coerced WHERE {ok} "
        f"GROUP BY hash({key}) HAVING count(*) > 1)"
    )


def _check_duplicates(
    marks: _Marks, result: MarksCheck, reject_frames: list[pd.DataFrame]
) -> int:
    """One mark per pupil, date and session: find the keys held more than once.

    :func:`_dup_pupils` finds the pupils concerned in one pass; only their
    marks are then grouped by key. Exact copies keep one mark
    (``duplicate_row``); marks that disagree are all rejected (``duplicate_key``).
    """
    con = marks.con
    key = ", ".join(_ident(k) for k in marks.key)
    _dup_pupils(marks)
    if not con.execute("SELECT count(*) FROM marks_dup_pupils").fetchall()[0][0]:
        return 0
    not_null = _key_ok(marks)
    values = ", ".join(_ident(v) for v in marks.values)
    anys = ", ".join(f"any_value({_ident(v)}) AS {_ident(v)}" for v in marks.values)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE marks_dups AS SELECT {key}, count(*) AS n, "
        f"count(DISTINCT hash({values})) AS variants, "
        f"count(*) FILTER (WHERE {marks.any_flag}) AS n_flagged, {anys} "
        f"FROM marks_flagged WHERE {not_null} "
        f"AND pupil_id IN (SELECT pupil_id FROM marks_dup_pupils) "
        f"GROUP BY {key} HAVING count(*) > 1"
    )
    marks.has_dups = True
    dropped = 0
    for rule, where, extra in (
        ("duplicate_row", "variants = 1", "n - 1"),
        ("duplicate_key", "variants > 1", "n"),
    ):
        groups = con.execute(
            f"SELECT pupil_id, sum({extra})::BIGINT AS n, CAST(min(date) AS VARCHAR) AS first_date, "
            f"arg_min(session, date) AS first_session, "
            "sum(CASE WHEN variants = 1 AND n_flagged = 0 THEN n - 1 "
            "ELSE n - n_flagged END)::BIGINT AS newly_dropped "
            f"FROM marks_dups WHERE {where} GROUP BY pupil_id ORDER BY n DESC, first_date"
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


def _warning_checks(
    as_of: date | None, *, seen: set[str] | None = None
) -> list[tuple[str, str, str, str]]:
    """(statistic, rule, column, SQL condition) of the warnings on marks.

    With ``seen`` (the codes present), checks on codes that never occur are left out.
    """
    since = f"DATE '{codes.CODES_2024_FROM}'"
    checks = []
    for stat, rule, listed, when in (
        ("w_legacy", "legacy_code_after_2024", codes.LEGACY_ATTENDANCE_CODES, ">="),
        ("w_new", "new_code_before_2024", CODES_NEW_IN_2024, "<"),
    ):
        present = sorted(set(listed) & seen) if seen is not None else sorted(listed)
        if present:
            checks.append(
                (
                    stat,
                    rule,
                    "code",
                    f"code IN ({_lits(present)}) AND date {when} {since}",
                )
            )
    if as_of is not None:
        checks.insert(0, ("w_after", "after_as_of", "date", f"date >= DATE '{as_of}'"))
    return checks


def _warnings(
    marks: _Marks, result: MarksCheck, stats: dict, *, as_of: date | None
) -> None:
    """Warnings counted in the per-pupil pass; examples from a short sample."""
    con = marks.con
    for stat, rule, column, where in _warning_checks(
        as_of, seen=marks.seen.get("code")
    ):
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
    marks: _Marks, result: MarksCheck, roll_changes: pd.DataFrame
) -> None:
    """Warn about marks at a school the pupil had left, or had not yet joined.

    From the roll changes of each pupil at each school come the spans off its
    roll: after a deletion until the next change, and before a first change
    that is an admission. Marks join those few spans by pupil and school
    (a hash join), so the check costs about one scan of the marks.
    """
    con = marks.con
    rc = roll_changes[["pupil_id", "school_urn", "date", "change"]].dropna()
    con.register("roll_changes_in", rc)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE off_roll AS WITH ordered AS ("
        "SELECT pupil_id::VARCHAR AS pupil_id, school_urn::VARCHAR AS school_urn, "
        "CAST(date AS DATE) AS date, change::VARCHAR AS change, "
        "lead(CAST(date AS DATE)) OVER w AS next_date, row_number() OVER w AS k "
        "FROM roll_changes_in WINDOW w AS (PARTITION BY pupil_id, school_urn ORDER BY date, change)) "
        "SELECT pupil_id, school_urn, date AS off_from, next_date AS off_to FROM ordered "
        "WHERE change = 'deletion' UNION ALL "
        "SELECT pupil_id, school_urn, NULL, date FROM ordered WHERE k = 1 AND change = 'admission'"
    )
    outside = (
        "SELECT m.date, m.session, m.school_urn, o.off_from FROM marks_coerced m "
        "JOIN off_roll o ON m.pupil_id = o.pupil_id AND m.school_urn = o.school_urn "
        "WHERE (o.off_from IS NULL OR m.date > o.off_from) AND (o.off_to IS NULL OR m.date < o.off_to)"
    )
    n = con.execute(f"SELECT count(*) FROM ({outside})").fetchall()[0][0]
    if not n:
        return
    sample = con.execute(
        f"SELECT * FROM ({outside}) ORDER BY 1, 2 LIMIT {MAX_EXAMPLES}"
    ).fetchall()
    examples = tuple(
        f"{d} {s} at {urn}"
        + (f" (deleted {left})" if left is not None else " (before admission)")
        for d, s, urn, left in sample
    )
    result.findings.append(
        Finding(
            "attendance",
            "date",
            "outside_registration",
            count=int(n),
            examples=examples,
        )
    )


def clean_marks(
    tables: RawTables,
    *,
    valid_pupils: pd.Series | None,
    has_rejects: bool,
    work_dir: Path | None = None,
) -> RawTables:
    """``tables`` with rejected marks removed and the contract's types applied.

    Small in-memory marks stay in memory. Marks on disk are rewritten, streamed
    by DuckDB, as typed Parquet under ``work_dir`` (a new temporary folder when
    ``None``, removed when the interpreter exits) only when something must
    change: rejected marks, CSV files or columns of the wrong type. Otherwise
    the files are used as they are.
    """
    con = duckdb.connect()
    try:
        marks = _Marks(tables, con, valid_pupils=valid_pupils)
        if marks.on_disk and not (has_rejects or marks.csv or not marks.typed):
            return tables
        _check_duplicates(marks, MarksCheck(), [])
        sql = marks.clean_sql(has_dups=marks.has_dups)
        if not marks.on_disk:
            frame = con.execute(sql).fetchdf()
            for c in marks.present:
                if c.kind in ("id", "string"):
                    frame[c.name] = frame[c.name].astype("str")
                elif c.kind == "date":
                    frame[c.name] = frame[c.name].astype("datetime64[us]")
            return tables.with_frames(attendance=frame)
        target = _new_folder(work_dir)
        staging = target.with_name(target.name + ".partial")
        con.execute("SET preserve_insertion_order = false")
        con.execute(
            f"COPY ({sql}) TO {_lit(str(staging))} "
            "(FORMAT parquet, PER_THREAD_OUTPUT true, FILENAME_PATTERN 'part-{i}')"
        )
        staging.replace(target)
        files = tuple(sorted(target.glob("*.parquet")))
        return RawTables(tables.frames, attendance_files=files, source=tables.source)
    finally:
        con.close()


def _new_folder(work_dir: Path | None) -> Path:
    if work_dir is None:
        import atexit

        base = Path(tempfile.mkdtemp(prefix="cmerisk-marks-"))
        atexit.register(shutil.rmtree, base, ignore_errors=True)
    else:
        base = Path(work_dir)
        base.mkdir(parents=True, exist_ok=True)
    n = 0
    while (base / f"attendance-{n}").exists() or (
        base / f"attendance-{n}.partial"
    ).exists():
        n += 1
    return base / f"attendance-{n}"
