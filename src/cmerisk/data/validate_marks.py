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


def _flags(present: Sequence[Column], *, check_pupils: bool) -> list[_Flag]:
    out: list[_Flag] = []
    for c in present:
        raw, val = f"raw_{c.name}", _ident(c.name)
        if not c.nullable:
            out.append(_Flag("missing_value", c.name, f"{raw} IS NULL", ""))
        if c.kind not in ("id", "string"):
            out.append(
                _Flag(
                    "unreadable_value",
                    c.name,
                    f"{raw} IS NOT NULL AND {val} IS NULL",
                    raw,
                )
            )
        if c.allowed is not None:
            out.append(
                _Flag("unknown_code", c.name, f"{val} NOT IN ({_lits(c.allowed)})", val)
            )
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
    if check_pupils:
        out.append(
            _Flag(
                "unknown_pupil",
                "pupil_id",
                "NOT pupil_known AND pupil_id IS NOT NULL",
                "",
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
        selects = [f"{_raw(c.name, trim=trim)} AS raw_{c.name}" for c in self.present]
        selects += [
            f"{_coerced(c, self.source_types[c.name], trim=trim)} AS {_ident(c.name)}"
            for c in self.present
        ]
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW marks_coerced AS SELECT {', '.join(selects)} FROM marks_raw"
        )
        self.check_pupils = valid_pupils is not None
        if self.check_pupils:
            known = pd.DataFrame({"pupil_id": pd.unique(valid_pupils.dropna())}).astype(
                "str"
            )
            con.register("valid_pupils", known)
            join = (
                "SELECT m.*, v.pupil_id IS NOT NULL AS pupil_known FROM marks_coerced m "
                "LEFT JOIN valid_pupils v ON m.pupil_id = v.pupil_id"
            )
        else:
            join = "SELECT *, true AS pupil_known FROM marks_coerced"
        self.flags = _flags(self.present, check_pupils=self.check_pupils)
        cols = ", ".join(
            f"COALESCE({f.condition}, false) AS f{i}" for i, f in enumerate(self.flags)
        )
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW marks_flagged AS SELECT *, {cols} FROM ({join})"
        )
        self.any_flag = " OR ".join(f"f{i}" for i in range(len(self.flags))) or "false"
        self.key = [k for k in MARKS.key or ()]
        self.values = [c.name for c in self.present if c.name not in self.key]

    @property
    def typed(self) -> bool:
        """Whether the source already has the contract's types (no rewrite needed)."""
        return all(self.source_types[c.name] == SQL_TYPES[c.kind] for c in self.present)

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
    con, flags = marks.con, marks.flags
    counts = [f"count(*) FILTER (WHERE f{i}) AS c{i}" for i in range(len(flags))]
    present = [f"count(raw_{c.name}) AS p_{c.name}" for c in marks.present]
    warn = [
        f"count(*) FILTER (WHERE {where} AND NOT ({marks.any_flag})) AS {stat}"
        for stat, _, _, where in _warning_checks(as_of)
    ]
    sql = (
        "SELECT count(*) AS n_rows, count(DISTINCT pupil_id) AS n_pupils, min(date) AS first, "
        f"max(date) AS last, count(*) FILTER (WHERE {marks.any_flag}) AS n_flagged, "
        + ", ".join(counts + present + warn)
        + " FROM marks_flagged"
    )
    stats = con.execute(sql).fetchdf().iloc[0]
    n_rows = int(stats["n_rows"])
    result.summary = TableSummary(
        "attendance",
        n_rows,
        pupils=int(stats["n_pupils"]),
        date_column="date",
        first=None if pd.isna(stats["first"]) else pd.Timestamp(stats["first"]).date(),
        last=None if pd.isna(stats["last"]) else pd.Timestamp(stats["last"]).date(),
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
    reject_frames = []
    n_flagged = int(stats["n_flagged"])
    if n_flagged:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE marks_bad AS SELECT * FROM marks_flagged WHERE {marks.any_flag}"
        )
        for i, f in enumerate(flags):
            if not stats[f"c{i}"]:
                continue
            value = f.value or "CAST(NULL AS VARCHAR)"
            groups = con.execute(
                f"SELECT pupil_id, {value} AS value, count(*) AS n, CAST(min(date) AS VARCHAR) AS first_date, "
                f"arg_min(session, date) AS first_session FROM marks_bad WHERE f{i} "
                "GROUP BY ALL ORDER BY n DESC, first_date"
            ).fetchdf()
            result.findings.append(
                Finding(
                    "attendance",
                    f.column,
                    f.rule,
                    count=int(stats[f"c{i}"]),
                    examples=_examples(groups, "value" if f.value else ""),
                )
            )
            reject_frames.append(
                _reject_rows(groups, f.column, f.rule, "value" if f.value else "")
            )
    dups = _check_duplicates(marks, result, reject_frames)
    result.dropped = n_flagged + dups
    result.rejects = (
        pd.concat(reject_frames, ignore_index=True) if reject_frames else None
    )
    result.needs_rewrite = marks.on_disk and (
        marks.csv or not marks.typed or result.dropped > 0
    )
    _warnings(marks, result, stats, as_of=as_of)
    if roll_changes is not None and len(roll_changes):
        _registration(marks, result, roll_changes)


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


def _check_duplicates(
    marks: _Marks, result: MarksCheck, reject_frames: list[pd.DataFrame]
) -> int:
    """One mark per pupil, date and session: find the keys held more than once.

    A first pass groups on a 64-bit hash of the key (cheap even for 100 M marks);
    only the few colliding keys are then grouped on their real values.
    """
    con = marks.con
    key = ", ".join(_ident(k) for k in marks.key)
    not_null = " AND ".join(f"{_ident(k)} IS NOT NULL" for k in marks.key)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE marks_dup_hash AS SELECT hash({key}) AS h "
        f"FROM marks_flagged WHERE {not_null} GROUP BY h HAVING count(*) > 1"
    )
    if not con.execute("SELECT count(*) FROM marks_dup_hash").fetchall()[0][0]:
        return 0
    values = ", ".join(_ident(v) for v in marks.values)
    anys = ", ".join(f"any_value({_ident(v)}) AS {_ident(v)}" for v in marks.values)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE marks_dups AS SELECT {key}, count(*) AS n, "
        f"count(DISTINCT hash({values})) AS variants, "
        f"count(*) FILTER (WHERE {marks.any_flag}) AS n_flagged, {anys} "
        f"FROM marks_flagged WHERE {not_null} AND hash({key}) IN (SELECT h FROM marks_dup_hash) "
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
        result.findings.append(
            Finding(
                "attendance",
                "session",
                rule,
                count=int(groups["n"].sum()),
                examples=_examples(groups, ""),
                detail="one mark per pupil, date and session",
            )
        )
        reject_frames.append(_reject_rows(groups, "session", rule, ""))
    return dropped


def _warning_checks(as_of: date | None) -> list[tuple[str, str, str, str]]:
    """(statistic, rule, column, SQL condition) of the warnings on marks."""
    legacy = _lits(sorted(codes.LEGACY_ATTENDANCE_CODES))
    new = _lits(sorted(CODES_NEW_IN_2024))
    since = f"DATE '{codes.CODES_2024_FROM}'"
    checks = [
        (
            "w_legacy",
            "legacy_code_after_2024",
            "code",
            f"code IN ({legacy}) AND date >= {since}",
        ),
        (
            "w_new",
            "new_code_before_2024",
            "code",
            f"code IN ({new}) AND date < {since}",
        ),
    ]
    if as_of is not None:
        checks.insert(0, ("w_after", "after_as_of", "date", f"date >= DATE '{as_of}'"))
    return checks


def _warnings(
    marks: _Marks, result: MarksCheck, stats: pd.Series, *, as_of: date | None
) -> None:
    con = marks.con
    for stat, rule, column, where in _warning_checks(as_of):
        n = int(stats[stat])
        if not n:
            continue
        if column == "code":
            sample = con.execute(
                f"SELECT code, count(*), CAST(min(date) AS VARCHAR) AS first FROM marks_flagged "
                f"WHERE {where} AND NOT ({marks.any_flag}) GROUP BY code ORDER BY first "
                f"LIMIT {MAX_EXAMPLES}"
            ).fetchall()
            examples = tuple(f"{c!r} x{k} from {d}" for c, k, d in sample)
        else:
            sample = con.execute(
                f"SELECT CAST(date AS VARCHAR) AS d, count(*) FROM marks_flagged "
                f"WHERE {where} AND NOT ({marks.any_flag}) GROUP BY d ORDER BY d "
                f"LIMIT {MAX_EXAMPLES}"
            ).fetchall()
            examples = tuple(f"{d} x{k}" for d, k in sample)
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
