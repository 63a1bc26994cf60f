r"""Pseudonymise a whole folder of raw tables: every UPN becomes its keyed id.

:func:`pseudonymise_folder` checks each ``pupil_id`` as a UPN (format and check
letter, :mod:`cmerisk.data.upn`), replaces valid ones by
:func:`cmerisk.data.pseudonymise.pseudonymise_upn` and lists the rows of
invalid ones (by file, row number and problem, never by value) in a rejects
file. Columns the contract does not know are not copied. Parquet streams
through DuckDB, CSV through pandas in chunks, so memory stays bounded.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> from cmerisk.data.pseudonymise import pseudonymise_upn
>>> raw, out = Path(tempfile.mkdtemp()), Path(tempfile.mkdtemp()) / "out"
>>> rows = ["pupil_id,start_date,end_date,name", "B801200005001,2024-01-08,,Ann",
...         "B80120000500X,2024-01-08,,Bo"]
>>> _ = (raw / "ehe.csv").write_text("\n".join(rows) + "\n")
>>> summary = pseudonymise_folder(raw, out, key=b"an example key, never use this one")
>>> summary.rows_out, summary.rejected, summary.dropped_columns
({'ehe': 1}, {'ehe': 1}, {'ehe': ('name',)})
>>> (out / "ehe.csv").read_text().splitlines()[1].startswith(
...     pseudonymise_upn("B801200005001", key=b"an example key, never use this one"))
True
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import numpy as np
import pandas as pd

from cmerisk import duck
from cmerisk.atomic import temp_sibling
from cmerisk.data.pseudonymise import (
    looks_pseudonymised,
    pseudonymise_many,
)
from cmerisk.data.upn import upn_problem
from cmerisk.errors import PseudonymKeyError

if TYPE_CHECKING:
    from cmerisk.data.load import TableFiles

__all__ = ["REJECTS_FILE", "SUMMARY_FILE", "PseudonymiseSummary", "pseudonymise_folder"]

#: Files the pseudonymiser writes beside the tables (a leading ``_`` keeps the
#: loader from taking them for tables).
REJECTS_FILE = "_pseudonymise_rejects.csv"
SUMMARY_FILE = "_pseudonymise.json"


@dataclass(frozen=True)
class PseudonymiseSummary:
    """What :func:`pseudonymise_folder` did, in counts (never an identifier).

    ``rows_in``, ``rows_out`` and ``rejected`` are per table; ``rows_in`` =
    ``rows_out`` + ``rejected``. ``dropped_columns`` lists, per table, the
    columns left out because the contract does not know them (they might hold
    names or addresses); ``skipped_files`` are files that are not tables.
    """

    out_dir: Path
    rows_in: dict[str, int]
    rows_out: dict[str, int]
    rejected: dict[str, int]
    problems: dict[str, int]
    pupils: int
    dropped_columns: dict[str, tuple[str, ...]]
    skipped_files: tuple[str, ...]
    rejects_file: Path

    def to_dict(self) -> dict[str, object]:
        return {
            "out_dir": str(self.out_dir),
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "rejected": self.rejected,
            "problems": self.problems,
            "pupils": self.pupils,
            "dropped_columns": {k: list(v) for k, v in self.dropped_columns.items()},
            "skipped_files": list(self.skipped_files),
            "rejects_file": self.rejects_file.name,
        }


def _normalise(values: pd.Series) -> pd.Series:
    return values.astype("str").str.strip().str.upper()


def _upn_map(
    distinct: Iterable[str], *, key: bytes
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Valid (normalised) UPNs with their ids, and the problem of each invalid value."""
    valid: list[str] = []
    problems: dict[str, str] = {}
    for value in distinct:
        if not value:
            continue  # empty: reported as "empty"
        problem = upn_problem(value)
        if problem is None:
            valid.append(value)
        else:
            if looks_pseudonymised(value.lower()):
                problem += " (looks already pseudonymised)"
            problems[value] = problem
    ids = pseudonymise_many(valid, key=key)
    if len(set(ids)) != len(ids):  # pragma: no cover - 96-bit ids: p ~ 1e-12 per LA
        raise PseudonymKeyError("two UPNs gave the same id: choose another key")
    return pd.DataFrame({"upn": valid, "pupil_id": ids}, dtype="str"), problems


def _atomic_write(target: Path, write: Callable[[Path], object]) -> None:
    """Write ``target`` via a temporary file in the same folder, then rename."""
    tmp = temp_sibling(target, suffix=".partial")  # unique: runs may overlap
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            if tmp.is_dir():
                shutil.rmtree(tmp)
            else:
                tmp.unlink()


def pseudonymise_folder(
    in_dir: Path, out_dir: Path, *, key: bytes
) -> PseudonymiseSummary:
    """Copy a folder of raw tables, replacing every UPN by its keyed id.

    Every table's ``pupil_id`` is checked as a UPN (format and check letter,
    after trimming blanks and upper-casing). Valid UPNs become
    :func:`pseudonymise_upn` ids; rows with an invalid or empty one are not
    copied but listed in ``_pseudonymise_rejects.csv`` by table, file, row
    number and problem, never by value. Columns the contract does not know are
    left out (they might hold names or addresses). Parquet streams through
    DuckDB (a join against the distinct UPNs) and CSV through pandas in chunks,
    so any size fits in memory. Each output file is written to a temporary
    name and renamed when complete.

    Parameters
    ----------
    in_dir
        Folder of raw tables (as for :func:`cmerisk.data.load.read_tables`).
    out_dir
        A new or empty folder (not inside ``in_dir``); tables keep their format.
    key
        The LA's secret (see :func:`get_key`).

    Raises
    ------
    DataError
        When ``out_dir`` is not empty or lies inside ``in_dir``, a table has no
        ``pupil_id`` column, or a file cannot be read.
    """
    from cmerisk.data.load import find_tables
    from cmerisk.errors import DataError

    in_dir, out_dir = Path(in_dir), Path(out_dir)
    located, findings = find_tables(in_dir)
    resolved_in, resolved_out = in_dir.resolve(), out_dir.resolve()
    if resolved_out == resolved_in or resolved_in in resolved_out.parents:
        raise DataError(
            f"the output folder {out_dir} must not be (inside) the input folder"
        )
    if out_dir.exists() and any(out_dir.iterdir()):
        raise DataError(
            f"the output folder {out_dir} is not empty: choose a new folder"
        )
    blocking = [f.message for f in findings if f.severity == "error"]
    if blocking:
        raise DataError(
            "cannot pseudonymise:\n" + "\n".join(f"  - {m}" for m in blocking)
        )
    skipped = tuple(sorted(f.detail or f.table for f in findings))
    tables = [_TableCopy(t, in_dir) for t in located.values()]
    distinct: set[str] = set()
    for t in tables:
        distinct |= t.distinct_upns()
    mapping, problems = _upn_map(sorted(distinct), key=key)
    out_dir.mkdir(parents=True, exist_ok=True)
    for t in tables:
        t.copy(mapping, problems, out_dir=out_dir)
    rejects = (
        pd.concat([t.rejects for t in tables], ignore_index=True) if tables else None
    )
    if rejects is None or rejects.empty:
        rejects = pd.DataFrame(columns=list(_REJECT_COLUMNS))
    rejects_path = out_dir / REJECTS_FILE
    _atomic_write(rejects_path, lambda p: rejects.to_csv(p, index=False))
    summary = PseudonymiseSummary(
        out_dir=out_dir,
        rows_in={t.name: t.rows_in for t in tables},
        rows_out={t.name: t.rows_out for t in tables},
        rejected={t.name: t.rows_in - t.rows_out for t in tables},
        problems={
            str(k): int(v) for k, v in rejects.groupby("problem")["rows"].sum().items()
        },
        pupils=len(mapping),
        dropped_columns={t.name: t.dropped for t in tables if t.dropped},
        skipped_files=skipped,
        rejects_file=rejects_path,
    )
    text = json.dumps(summary.to_dict(), indent=2) + "\n"
    _atomic_write(
        out_dir / SUMMARY_FILE, lambda p: p.write_text(text, encoding="utf-8")
    )
    return summary


_REJECT_COLUMNS = ("table", "file", "row", "rows", "problem")

#: Rows of a CSV file pseudonymised at a time.
CSV_CHUNK_ROWS = 500_000


class _TableCopy:
    """One table on its way from the input folder to the output folder."""

    def __init__(self, table: TableFiles, in_dir: Path) -> None:
        from cmerisk.data.contract import TABLES
        from cmerisk.errors import DataError

        self.table, self.name, self.in_dir = table, table.name, in_dir
        self.where = _files(table, in_dir)
        self.columns = self._columns()
        if "pupil_id" not in self.columns:
            raise DataError(f"{self.name}: no pupil_id column (in {self.where})")
        known = [c.name for c in TABLES[self.name].columns]
        self.keep = [c for c in self.columns if c in known]
        self.dropped = tuple(c for c in self.columns if c not in known)
        self.rows_in = self.rows_out = 0
        self.rejects = pd.DataFrame(columns=list(_REJECT_COLUMNS))

    def _fail(self, error: Exception) -> NoReturn:
        from cmerisk.errors import DataError

        first = str(error).strip().splitlines()[0][:160] if str(error).strip() else ""
        raise DataError(
            f"{self.name}: cannot read {self.where}: {type(error).__name__} {first}"
        )

    def _columns(self) -> list[str]:
        try:
            if self.table.format == "parquet":
                import pyarrow.parquet as pq

                return list(pq.read_schema(self.table.files[0]).names)
            return list(self._read_csv(self.table.files[0], nrows=0).columns)
        except Exception as e:
            self._fail(e)

    @staticmethod
    def _read_csv(path: Path, **kwargs: object) -> pd.DataFrame:
        from cmerisk.data.load import CSV_ENCODINGS

        for encoding in CSV_ENCODINGS:
            try:
                return pd.read_csv(
                    path, dtype=str, keep_default_na=False, encoding=encoding, **kwargs
                )
            except UnicodeDecodeError:
                continue
        raise AssertionError("latin-1 decodes any bytes")  # pragma: no cover

    def _csv_chunks(self, path: Path, columns: list[str]) -> Iterator[pd.DataFrame]:
        from cmerisk.data.load import CSV_ENCODINGS

        for encoding in CSV_ENCODINGS:
            try:
                # Decode the whole file first, so a bad byte cannot stop us mid-way.
                with path.open(encoding=encoding) as fh:
                    for _ in fh:
                        pass
            except UnicodeDecodeError:
                continue
            yield from pd.read_csv(
                path,
                dtype=str,
                keep_default_na=False,
                encoding=encoding,
                usecols=columns,
                chunksize=CSV_CHUNK_ROWS,
            )
            return

    def distinct_upns(self) -> set[str]:
        """The distinct normalised ``pupil_id`` values of the table."""
        out: set[str] = set()
        try:
            if self.table.format == "parquet":
                with duck.connect() as con:
                    rows = con.execute(
                        "SELECT DISTINCT upper(trim(CAST(pupil_id AS VARCHAR))) "
                        "FROM read_parquet(?)",
                        [[str(f) for f in self.table.files]],
                    ).fetchall()
                return {r[0] for r in rows if r[0] is not None}
            for f in self.table.files:
                for chunk in self._csv_chunks(f, ["pupil_id"]):
                    out.update(_normalise(chunk["pupil_id"]).unique())
        except Exception as e:
            self._fail(e)
        return out

    def _target(self, out_dir: Path, n: int) -> Path:
        fmt = self.table.format
        if len(self.table.files) == 1:
            return out_dir / f"{self.name}.{fmt}"
        (out_dir / self.name).mkdir(exist_ok=True)
        return out_dir / self.name / f"part-{n:05d}.{fmt}"

    def copy(
        self, mapping: pd.DataFrame, problems: dict[str, str], *, out_dir: Path
    ) -> None:
        rejects = []
        for n, path in enumerate(self.table.files):
            target = self._target(out_dir, n)
            if self.table.format == "parquet":
                rows_in, rows_out, bad = self._copy_parquet(
                    path, target, mapping, problems
                )
            else:
                rows_in, rows_out, bad = self._copy_csv(path, target, mapping, problems)
            self.rows_in += rows_in
            self.rows_out += rows_out
            bad.insert(0, "file", str(path.relative_to(self.in_dir)))
            bad.insert(0, "table", self.name)
            rejects.append(bad)
        self.rejects = pd.concat(rejects, ignore_index=True)[list(_REJECT_COLUMNS)]

    def _copy_parquet(
        self, path: Path, target: Path, mapping: pd.DataFrame, problems: dict[str, str]
    ) -> tuple[int, int, pd.DataFrame]:
        with duck.connect() as con:
            con.register("upn_map", mapping)
            con.register("upn_problems", _problem_frame(problems))
            con.execute(
                "CREATE VIEW src AS SELECT *, "
                "upper(trim(CAST(pupil_id AS VARCHAR))) AS upn__, "
                f"file_row_number + 1 AS row__ FROM read_parquet({_sql_path(path)}, "
                "file_row_number = true)"
            )
            cols = ", ".join(
                "m.pupil_id AS pupil_id" if c == "pupil_id" else f's."{c}"'
                for c in self.keep
            )
            good = (
                f"SELECT {cols} FROM src s JOIN upn_map m ON s.upn__ = m.upn "
                "ORDER BY s.row__"
            )
            bad = con.execute(
                "SELECT min(s.row__) AS row, count(*) AS rows, "
                "COALESCE(p.problem, 'empty') AS problem FROM src s "
                "LEFT JOIN upn_problems p ON s.upn__ = p.upn "
                "WHERE s.upn__ IS NULL OR s.upn__ = '' OR p.problem IS NOT NULL "
                "GROUP BY s.upn__, p.problem ORDER BY 1"
            ).fetchdf()
            rows_in = con.execute("SELECT count(*) FROM src").fetchall()[0][0]
            _atomic_write(
                target,
                lambda tmp: con.execute(
                    f"COPY ({good}) TO {_sql_path(tmp)} (FORMAT parquet)"
                ),
            )
        bad = bad.astype({"row": "int64", "rows": "int64", "problem": "str"})
        return int(rows_in), int(rows_in - bad["rows"].sum()), bad

    def _copy_csv(
        self, path: Path, target: Path, mapping: pd.DataFrame, problems: dict[str, str]
    ) -> tuple[int, int, pd.DataFrame]:
        ids = pd.Series(mapping["pupil_id"].to_numpy(), index=mapping["upn"].to_numpy())
        counts = {"in": 0, "out": 0}
        bad_parts: list[pd.DataFrame] = []

        def write(tmp: Path) -> None:
            header = True
            for chunk in self._csv_chunks(path, self.keep):
                chunk = chunk[self.keep]
                rows = np.arange(counts["in"], counts["in"] + len(chunk)) + 1
                upn = _normalise(chunk["pupil_id"])
                pid = upn.map(ids)
                ok = pid.notna().to_numpy()
                if not ok.all():
                    why = upn[~ok].map(
                        lambda u: problems.get(u, "empty") if u else "empty"
                    )
                    bad_parts.append(
                        pd.DataFrame(
                            {
                                "row": rows[~ok],
                                "key": upn[~ok].to_numpy(),
                                "problem": why.to_numpy(),
                            }
                        )
                    )
                out = chunk.loc[ok].assign(pupil_id=pid[ok])
                out.to_csv(tmp, mode="w" if header else "a", header=header, index=False)
                header = False
                counts["in"] += len(chunk)
                counts["out"] += int(ok.sum())
            if header:  # no rows at all: still write the header
                pd.DataFrame(columns=self.keep).to_csv(tmp, index=False)

        try:
            _atomic_write(target, write)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as e:
            self._fail(e)
        if bad_parts:
            bad = pd.concat(bad_parts, ignore_index=True)
            bad = (
                bad.groupby(["key", "problem"], sort=False)
                .agg(row=("row", "min"), rows=("row", "size"))
                .reset_index()
                .drop(columns="key")
                .sort_values("row")
            )
        else:
            bad = pd.DataFrame({"row": [], "rows": [], "problem": []})
        bad = bad.astype({"row": "int64", "rows": "int64", "problem": "str"})
        return counts["in"], counts["out"], bad[["row", "rows", "problem"]]


def _sql_path(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _problem_frame(problems: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        {"upn": list(problems), "problem": list(problems.values())}, dtype="str"
    )


def _files(table: TableFiles, root: Path) -> str:
    first = table.files[0].relative_to(root)
    return str(first) if len(table.files) == 1 else f"{first.parts[0]}/"
