"""DuckDB SQL for session marks, generated from the contract.

The building blocks that :mod:`cmerisk.data.validate_marks` runs: expressions
converting each column of ``attendance`` to its contract type, one flag per
row-level rule, the views over an LA's marks (:class:`MarksViews`), the
duplicate-key search and the warning conditions. Everything comes from
:data:`cmerisk.data.contract.TABLES`; nothing restates a column.

Examples
--------
>>> from cmerisk.data.contract import TABLES
>>> coerced_expr(TABLES["attendance"].column("date"), "VARCHAR").startswith("COALESCE(")
True
>>> [f.rule for f in row_flags([TABLES["attendance"].column("session")])]
['missing_value', 'unknown_code']
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Final

import duckdb
import pandas as pd

from cmerisk import duck
from cmerisk.data import codes
from cmerisk.data.contract import TABLES, Column
from cmerisk.data.schemas import FALSE_SPELLINGS, TRUE_SPELLINGS, date_range
from cmerisk.data.tables import RawTables

MARKS: Final = TABLES["attendance"]

#: Codes the 2024 regulations introduced; seen before 2024-08-19 they are suspicious.
CODES_NEW_IN_2024: Final[frozenset[str]] = frozenset(
    {"C1", "C2", "J1", "K", "Q", "Y1", "Y2", "Y3", "Y4", "Y5", "Y6", "Y7"}
)

#: The DuckDB type each kind of contract column is written with.
SQL_TYPES: Final[dict[str, str]] = {
    "id": "VARCHAR",
    "string": "VARCHAR",
    "date": "DATE",
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
}


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def lits(values: Sequence[str]) -> str:
    return ", ".join(lit(v) for v in values)


def raw_text(name: str, *, trim: bool = True) -> str:
    """The value as text, NULL when empty (or blank, with ``trim``)."""
    text = f"CAST({ident(name)} AS VARCHAR)"
    return f"NULLIF({f'TRIM({text})' if trim else text}, '')"


def coerced_expr(column: Column, source_type: str, *, trim: bool = True) -> str:
    """SQL turning the source column into its contract type (NULL when unreadable)."""
    col, raw = ident(column.name), raw_text(column.name, trim=trim)
    numeric = source_type in {"DOUBLE", "FLOAT", "REAL"} or source_type.startswith(
        "DECIMAL"
    )
    if column.kind in ("id", "string"):
        if numeric:
            return (
                f"CASE WHEN {col} = ROUND({col}) "
                f"THEN CAST(CAST({col} AS BIGINT) AS VARCHAR) "
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
                f"COALESCE(TRY_CAST({raw} AS DATE), "
                f"TRY_CAST(TRY_CAST({raw} AS TIMESTAMP) AS DATE), "
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
        f"CASE WHEN lower({raw}) IN ({lits(sorted(TRUE_SPELLINGS))}) THEN true "
        f"WHEN lower({raw}) IN ({lits(sorted(FALSE_SPELLINGS))}) THEN false END"
    )


@dataclass(frozen=True)
class Flag:
    """One row-level rule on one column: its SQL condition and the value to report."""

    rule: str
    column: str
    condition: str
    value: str  # SQL for the offending value shown in rejects ('' when none)


def row_flags(
    present: Sequence[Column],
    *,
    typed: frozenset[str] = frozenset(),
    seen: dict[str, set[str]] | None = None,
) -> list[Flag]:
    """The row-level rules (the reference to ``pupils`` is checked per pupil).

    Columns in ``typed`` already have their contract type in the source, so
    none of their values can be unreadable and that rule is left out. With
    ``seen`` (the distinct values of the code columns), a code column is
    tested only against the values seen that are not allowed.
    """
    out: list[Flag] = []
    for c in present:
        raw, val = f"raw_{c.name}", ident(c.name)
        if not c.nullable:
            out.append(Flag("missing_value", c.name, f"{raw} IS NULL", ""))
        if c.kind not in ("id", "string") and c.name not in typed:
            out.append(
                Flag(
                    "unreadable_value",
                    c.name,
                    f"{raw} IS NOT NULL AND {val} IS NULL",
                    raw,
                )
            )
        if c.allowed is not None:
            if seen is None:
                cond = f"{val} NOT IN ({lits(c.allowed)})"
            else:
                unknown = sorted(seen[c.name] - set(c.allowed))
                cond = f"{val} IN ({lits(unknown)})" if unknown else ""
            if cond:
                out.append(Flag("unknown_code", c.name, cond, val))
        if c.kind == "date":
            low, high = date_range(c)
            cond = f"{val} NOT BETWEEN DATE '{low}' AND DATE '{high}'"
            out.append(
                Flag("implausible_date", c.name, cond, f"CAST({val} AS VARCHAR)")
            )
        if c.low is not None or c.high is not None:
            bounds = [f"{val} < {c.low}"] if c.low is not None else []
            bounds += [f"{val} > {c.high}"] if c.high is not None else []
            out.append(
                Flag(
                    "out_of_range",
                    c.name,
                    " OR ".join(bounds),
                    f"CAST({val} AS VARCHAR)",
                )
            )
    return out


class MarksViews:
    """The SQL views over one LA's marks on one connection."""

    def __init__(
        self,
        tables: RawTables,
        con: duckdb.DuckDBPyConnection,
        *,
        valid_pupils: pd.Series | None,
    ) -> None:
        self.con = con
        self._copy: tempfile.TemporaryDirectory[str] | None = None  # of CSV marks
        duck.quiet(con)
        self.on_disk = "attendance" not in tables.frames
        self.csv = self.on_disk and not all(
            str(p).endswith(".parquet") for p in tables.attendance_files
        )
        if self.csv:
            # All text: DuckDB's type sniffing could read 04/09/2023 as 9 April.
            files = [str(p) for p in tables.attendance_files]
            rel = con.read_csv(files, header=True, all_varchar=True)
        else:
            rel = tables.attendance_relation(con)
        self.source_types = dict(
            zip(rel.columns, (str(t) for t in rel.types), strict=True)
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
            coerced_expr(c, self.source_types[c.name], trim=trim)
            + f" AS {ident(c.name)}"
            for c in self.present
        ]
        con.execute(
            "CREATE OR REPLACE TEMP VIEW marks_coerced AS SELECT "
            + ", ".join(selects)
            + " FROM marks_raw"
        )
        if self.csv:
            self._materialise_coerced()
        # Code columns hold few distinct values: find them once, so that each mark
        # is tested only against the unknown ones seen (usually none), not
        # against every allowed code.
        coded = [c for c in self.present if c.allowed is not None]
        self.seen: dict[str, set[str]] = {c.name: set() for c in coded}
        if coded:
            names = ", ".join(ident(c.name) for c in coded)
            for row in con.execute(
                f"SELECT {names} FROM marks_coerced GROUP BY ALL"
            ).fetchall():
                for c, value in zip(coded, row, strict=True):
                    if value is not None:
                        self.seen[c.name].add(value)
        self.flags = row_flags(self.present, typed=self._typed_columns, seen=self.seen)
        cols = ", ".join(
            f"COALESCE({f.condition}, false) AS f{i}" for i, f in enumerate(self.flags)
        )
        row_flag = " OR ".join(f"f{i}" for i in range(len(self.flags))) or "false"
        con.execute(
            "CREATE OR REPLACE TEMP VIEW marks_rows AS SELECT *, "
            f"({row_flag}) AS row_flag FROM (SELECT *, {cols} FROM marks_coerced)"
        )
        self.check_pupils = valid_pupils is not None
        if valid_pupils is not None:
            known = pd.DataFrame({"pupil_id": pd.unique(valid_pupils.dropna())})
            con.register("valid_pupils", known.astype("str"))
            con.execute(
                "CREATE OR REPLACE TEMP VIEW marks_flagged AS SELECT m.*, "
                "(m.row_flag OR (m.pupil_id IS NOT NULL AND v.pupil_id IS NULL)) "
                "AS any_flag "
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

    def _materialise_coerced(self) -> None:
        """Parse and convert CSV marks once, into Parquet in a temporary folder.

        Every check scans the marks again; over a CSV each scan would parse
        the text and convert every value anew (a 19 M-mark chunk: about 9 s
        for the duplicate search alone, 0.3 s over the Parquet). The folder
        goes with :meth:`close` (or when the views are garbage-collected).
        """
        self._copy = tempfile.TemporaryDirectory(prefix="cmerisk-marks-csv-")
        target = Path(self._copy.name) / "coerced.parquet"
        (kept,) = self.con.execute(
            "SELECT current_setting('preserve_insertion_order')"
        ).fetchall()[0]
        # in file order, DuckDB would buffer what its threads read ahead
        self.con.execute("SET preserve_insertion_order = false")
        try:
            self.con.execute(
                f"COPY (SELECT * FROM marks_coerced) TO {lit(str(target))} "
                "(FORMAT parquet, COMPRESSION zstd)"
            )
        finally:
            self.con.execute(f"SET preserve_insertion_order = {bool(kept)}")
        self.con.execute(
            "CREATE OR REPLACE TEMP VIEW marks_coerced AS SELECT * FROM "
            f"read_parquet({lit(str(target))})"
        )

    def close(self) -> None:
        """Remove the temporary copy of CSV marks (if any); the views stop working."""
        if self._copy is not None:
            self._copy.cleanup()
            self._copy = None

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
                return f"NULLIF({ident(column.name)}, '')"
            return ident(column.name)
        return raw_text(column.name, trim=trim)

    def clean_sql(self, *, has_dups: bool) -> str:
        cols = ", ".join(ident(c.name) for c in self.present)
        keep = f"SELECT {cols} FROM marks_flagged WHERE NOT ({self.any_flag})"
        if not has_dups:
            return keep
        key = ", ".join(ident(k) for k in self.key)
        return (
            f"SELECT {cols} FROM ({keep}) ANTI JOIN marks_dups USING ({key}) "
            f"UNION ALL SELECT {cols} FROM marks_dups "
            "WHERE variants = 1 AND n_flagged = 0"
        )


MAX_BITMAP_SLOTS: Final[int] = 16_384


def key_ok(marks: MarksViews) -> str:
    """Rows whose key (pupil, date, session) is complete and well-formed."""
    session = MARKS.column("session")
    low, high = date_range(MARKS.column("date"))
    return (
        f"pupil_id IS NOT NULL AND session IN ({lits(session.allowed or ())}) "
        f"AND date BETWEEN DATE '{low}' AND DATE '{high}'"
    )


def find_duplicate_pupils(marks: MarksViews) -> None:
    """Fill table ``marks_dup_pupils`` with the pupils holding a key more than once.

    Each pupil's marks set bits in a bitmap of session slots (day x AM/PM,
    DuckDB's ``bitstring_agg``); a pupil has a duplicate exactly when it has
    more marks than set bits. That is one streaming aggregate over some tens
    of thousands of pupils, several times faster than grouping on every mark.
    """
    con, ok = marks.con, key_ok(marks)
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
    key = ", ".join(ident(k) for k in marks.key)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE marks_dup_pupils AS "
        "SELECT DISTINCT pupil_id FROM "
        f"(SELECT any_value(pupil_id) AS pupil_id FROM marks_coerced WHERE {ok} "
        f"GROUP BY hash({key}) HAVING count(*) > 1)"
    )


def warning_checks(
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
                    f"code IN ({lits(present)}) AND date {when} {since}",
                )
            )
    if as_of is not None:
        checks.insert(0, ("w_after", "after_as_of", "date", f"date >= DATE '{as_of}'"))
    return checks


def marks_outside_registration(
    marks: MarksViews, roll_changes: pd.DataFrame, *, limit: int
) -> tuple[int, list[tuple]]:
    """Marks at a school the pupil had left, or had not yet joined: count and a sample.

    From the roll changes of each pupil at each school come the spans off its
    roll: after a deletion until the next change, and before a first change
    that is an admission. Marks join those few spans by pupil and school (a
    hash join), so the check costs about one scan of the marks. The sample
    rows are (date, session, school, deletion date or None).
    """
    con = marks.con
    rc = roll_changes[["pupil_id", "school_urn", "date", "change"]].dropna()
    con.register("roll_changes_in", rc)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE off_roll AS WITH ordered AS ("
        "SELECT pupil_id::VARCHAR AS pupil_id, school_urn::VARCHAR AS school_urn, "
        "CAST(date AS DATE) AS date, change::VARCHAR AS change, "
        "lead(CAST(date AS DATE)) OVER w AS next_date, row_number() OVER w AS k "
        "FROM roll_changes_in "
        "WINDOW w AS (PARTITION BY pupil_id, school_urn ORDER BY date, change)) "
        "SELECT pupil_id, school_urn, date AS off_from, next_date AS off_to "
        "FROM ordered WHERE change = 'deletion' UNION ALL "
        "SELECT pupil_id, school_urn, NULL, date FROM ordered "
        "WHERE k = 1 AND change = 'admission'"
    )
    outside = (
        "SELECT m.date, m.session, m.school_urn, o.off_from FROM marks_coerced m "
        "JOIN off_roll o ON m.pupil_id = o.pupil_id AND m.school_urn = o.school_urn "
        "WHERE (o.off_from IS NULL OR m.date > o.off_from) "
        "AND (o.off_to IS NULL OR m.date < o.off_to)"
    )
    n = con.execute(f"SELECT count(*) FROM ({outside})").fetchall()[0][0]
    if not n:
        return 0, []
    sample = con.execute(
        f"SELECT * FROM ({outside}) ORDER BY 1, 2 LIMIT {limit}"
    ).fetchall()
    return int(n), sample


def build_duplicate_table(marks: MarksViews) -> bool:
    """Fill table ``marks_dups``: each key held more than once, with its counts.

    Columns: the key, ``n`` (marks with that key), ``variants`` (distinct
    versions of the other columns: 1 means exact copies), ``n_flagged`` (of
    them, marks rejected by another rule) and one value of each other column.
    :func:`find_duplicate_pupils` finds the pupils concerned in one pass; only
    their marks are grouped by key. Returns whether any key is duplicated.
    """
    con = marks.con
    find_duplicate_pupils(marks)
    if not con.execute("SELECT count(*) FROM marks_dup_pupils").fetchall()[0][0]:
        return False
    key = ", ".join(ident(k) for k in marks.key)
    values = ", ".join(ident(v) for v in marks.values)
    anys = ", ".join(f"any_value({ident(v)}) AS {ident(v)}" for v in marks.values)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE marks_dups AS SELECT {key}, count(*) AS n, "
        f"count(DISTINCT hash({values})) AS variants, "
        f"count(*) FILTER (WHERE {marks.any_flag}) AS n_flagged, {anys} "
        f"FROM marks_flagged WHERE {key_ok(marks)} "
        "AND pupil_id IN (SELECT pupil_id FROM marks_dup_pupils) "
        f"GROUP BY {key} HAVING count(*) > 1"
    )
    marks.has_dups = True
    return True
