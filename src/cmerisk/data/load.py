"""Read an LA's folder of raw tables, validate them, and set rejected rows aside.

A folder holds one file per table, named after it (``pupils.csv``,
``census.parquet``), or a folder of parts (``attendance/part-00000.parquet``).
Small tables are read into pandas with the contract's types (dates as
``datetime64[us]``, booleans from the usual spellings, codes as strings).
Session marks with more than ``max_rows_in_memory`` rows stay on disk and are
read with DuckDB when needed.

- :func:`read_tables` reads (and raises :class:`~cmerisk.errors.DataError`,
  naming every file it could not read);
- :func:`validate_folder` reads and validates, reporting every problem;
- :func:`load_tables` reads, validates and drops the rejected rows: what
  scoring and training start from.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> folder = Path(tempfile.mkdtemp())
>>> text = "pupil_id,start_date,end_date\\np1,2023-09-04,\\n"
>>> _ = (folder / "ehe.csv").write_text(text)
>>> tables = read_tables(folder)
>>> tables.names, str(tables["ehe"]["start_date"].dtype)
(['ehe'], 'datetime64[us]')
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Final, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cmerisk.data.contract import TABLES
from cmerisk.data.findings import Finding, ValidationReport
from cmerisk.data.schemas import coerce_table
from cmerisk.data.tables import RawTables
from cmerisk.data.validate import drop_rejected, validate_tables
from cmerisk.errors import DataError

#: Session marks with more rows than this stay on disk (read with DuckDB).
DEFAULT_MAX_ROWS_IN_MEMORY: Final[int] = 1_000_000

#: Rough bytes per session mark in a CSV file, to estimate its rows from its size.
CSV_BYTES_PER_MARK: Final[int] = 48

#: Text read as missing in CSV files (besides blank cells).
NA_STRINGS: Final[tuple[str, ...]] = ("NA", "N/A", "NULL", "null", "None", "NaN", "nan")

#: Encodings tried, in order, on CSV files (LA systems often export Windows-1252).
CSV_ENCODINGS: Final[tuple[str, ...]] = ("utf-8-sig", "cp1252", "latin-1")

_SUFFIXES: Final[tuple[str, ...]] = (".parquet", ".csv")


@dataclass(frozen=True)
class TableFiles:
    """The file(s) holding one table: a single file, or the parts of a folder."""

    name: str
    files: tuple[Path, ...]
    format: Literal["parquet", "csv"]

    @property
    def size(self) -> int:
        return sum(f.stat().st_size for f in self.files)


def find_tables(path: Path) -> tuple[dict[str, TableFiles], list[Finding]]:
    """Find the contract tables in folder ``path``.

    Returns the tables found and findings about the folder: ambiguous tables
    (both a CSV and a Parquet), empty part folders (errors), and files that are
    not contract tables (warnings). Files other than ``.csv`` and ``.parquet``
    (a ``manifest.json``, say) are not tables and pass without comment.
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(
            f"{path} is not a folder of tables (expected e.g. {path}/pupils.csv)"
        )
    found: dict[str, list[TableFiles]] = {}
    findings: list[Finding] = []
    for entry in sorted(path.iterdir()):
        if entry.name.startswith((".", "_")):
            continue
        if entry.is_dir():
            name = entry.name
            parts = {
                s: sorted(p for p in entry.rglob(f"*{s}") if p.is_file())
                for s in _SUFFIXES
            }
            if name not in TABLES:
                if any(parts.values()):
                    findings.append(
                        Finding(
                            name, None, "unknown_file", detail=f"folder {entry.name}/"
                        )
                    )
                continue
            if parts[".parquet"] and parts[".csv"]:
                findings.append(
                    Finding(
                        name,
                        None,
                        "ambiguous_table",
                        detail=f"{entry.name}/ mixes CSV and Parquet parts",
                    )
                )
                continue
            fmt: Literal["parquet", "csv"] = "parquet" if parts[".parquet"] else "csv"
            files = parts[f".{fmt}"]
            if not files:
                findings.append(
                    Finding(
                        name,
                        None,
                        "unreadable_file",
                        detail=f"folder {entry.name}/ has no .csv or .parquet parts",
                    )
                )
                continue
            found.setdefault(name, []).append(TableFiles(name, tuple(files), fmt))
        elif entry.suffix.lower() in _SUFFIXES:
            name = entry.name[: -len(entry.suffix)]
            if name not in TABLES:
                findings.append(Finding(name, None, "unknown_file", detail=entry.name))
                continue
            fmt = "parquet" if entry.suffix.lower() == ".parquet" else "csv"
            found.setdefault(name, []).append(TableFiles(name, (entry,), fmt))
    tables: dict[str, TableFiles] = {}
    for name, candidates in found.items():
        if len(candidates) > 1:
            where = ", ".join(_describe(c, path) for c in candidates)
            findings.append(Finding(name, None, "ambiguous_table", detail=where))
        else:
            tables[name] = candidates[0]
    return tables, findings


def _describe(table: TableFiles, root: Path) -> str:
    first = table.files[0].relative_to(root)
    return (
        str(first)
        if len(table.files) == 1
        else f"{first.parts[0]}/ ({len(table.files)} parts)"
    )


def _read_csv(path: Path) -> pd.DataFrame:
    for encoding in CSV_ENCODINGS:
        try:
            return pd.read_csv(
                path,
                dtype=str,
                keep_default_na=False,
                na_values=list(NA_STRINGS),
                encoding=encoding,
                skipinitialspace=True,
            )
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes any bytes")  # pragma: no cover


def _read_parquet(path: Path) -> pa.Table:
    return pq.read_table(path)


def _read_frame(table: TableFiles) -> pd.DataFrame:
    """Read one table's file(s) into pandas, as written (raises on unreadable files)."""
    if table.format == "csv":
        frames = [_read_csv(f) for f in table.files]
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    parts = [_read_parquet(f) for f in table.files]
    arrow = (
        pa.concat_tables(parts, promote_options="permissive")
        if len(parts) > 1
        else parts[0]
    )
    return arrow.to_pandas(date_as_object=False)


def _problem(error: Exception) -> str:
    """A one-line account of why a file could not be read (no data values)."""
    if isinstance(error, pd.errors.EmptyDataError):
        return "empty file"
    if isinstance(error, pd.errors.ParserError):
        return "not valid CSV: " + str(error).strip().splitlines()[-1][:160]
    if isinstance(error, pa.ArrowInvalid | pa.ArrowTypeError | OSError):
        first = (
            str(error).strip().splitlines()[0]
            if str(error).strip()
            else type(error).__name__
        )
        return "not a readable Parquet file: " + first[:160]
    return f"{type(error).__name__}"


def _estimated_rows(table: TableFiles) -> int:
    """Rows of a table: exact for Parquet (from its metadata), estimated for CSV."""
    if table.format == "parquet":
        return sum(pq.read_metadata(f).num_rows for f in table.files)
    return table.size // CSV_BYTES_PER_MARK


def _empty_file(table: TableFiles) -> bool:
    return all(f.stat().st_size == 0 for f in table.files)


def _read_folder(
    path: Path,
    *,
    tables: Sequence[str] | None,
    max_rows_in_memory: int,
) -> tuple[RawTables, list[Finding]]:
    if tables is not None:
        unknown = sorted(set(tables) - set(TABLES))
        if unknown:
            raise ValueError(
                f"unknown table name(s) {unknown}; expected names from {sorted(TABLES)}"
            )
    located, findings = find_tables(path)
    frames: dict[str, pd.DataFrame] = {}
    attendance_files: tuple[Path, ...] = ()
    for name, table in located.items():
        if tables is not None and name not in tables:
            continue
        if _empty_file(table):
            findings.append(
                Finding(name, None, "unreadable_file", detail="empty file (0 bytes)")
            )
            continue
        if name == "attendance":
            try:
                rows = _estimated_rows(table)
            except (pa.ArrowException, OSError) as e:
                findings.append(
                    Finding(name, None, "unreadable_file", detail=_problem(e))
                )
                continue
            if rows > max_rows_in_memory:
                attendance_files = table.files
                continue
        try:
            raw = _read_frame(table)
        except (
            pd.errors.EmptyDataError,
            pd.errors.ParserError,
            pa.ArrowException,
            OSError,
        ) as e:
            findings.append(Finding(name, None, "unreadable_file", detail=_problem(e)))
            continue
        frames[name] = _typed(raw, name)
    return RawTables(
        frames, attendance_files=attendance_files, source=str(path)
    ), findings


def _typed(raw: pd.DataFrame, name: str) -> pd.DataFrame:
    """Apply the contract's types, leaving as written any column with unreadable
    values (validation then names them)."""
    coerced, unreadable = coerce_table(raw, name)
    raw = raw.reset_index(drop=True)
    for column in unreadable:
        coerced[column] = raw[column]
    return coerced


def read_tables(
    path: Path,
    *,
    tables: Sequence[str] | None = None,
    max_rows_in_memory: int = DEFAULT_MAX_ROWS_IN_MEMORY,
) -> RawTables:
    """Read a folder of CSV or Parquet tables with the contract's types.

    Parameters
    ----------
    path
        Folder holding ``<table>.csv``, ``<table>.parquet`` or ``<table>/`` part
        folders, named as in :data:`cmerisk.data.contract.TABLES`.
    tables
        Read only these tables (default: every contract table present).
    max_rows_in_memory
        Session marks with more rows than this stay on disk (DuckDB reads them
        when needed); the row count of Parquet comes from its metadata, that of
        CSV is estimated from the file size.

    Raises
    ------
    DataError
        When a file cannot be read (naming every such file), or ``path`` is not
        a folder. Values of the wrong type do not raise: such a column is kept
        as written, for :func:`cmerisk.data.validate.validate_tables` to report.
    """
    raw, findings = _read_folder(
        path, tables=tables, max_rows_in_memory=max_rows_in_memory
    )
    ValidationReport(findings=tuple(findings)).raise_for_errors()
    return raw


def validate_folder(
    path: Path,
    *,
    as_of: date | None = None,
    tables: Sequence[str] | None = None,
    max_rows_in_memory: int = DEFAULT_MAX_ROWS_IN_MEMORY,
) -> ValidationReport:
    """Read and validate a folder, reporting every problem (unreadable files too)."""
    raw, findings = _read_folder(
        path, tables=tables, max_rows_in_memory=max_rows_in_memory
    )
    return _merge(findings, validate_tables(raw, as_of=as_of))


def _merge(read_findings: list[Finding], report: ValidationReport) -> ValidationReport:
    unread = {f.table for f in read_findings if f.severity == "error"}
    kept = [
        f
        for f in report.findings
        if not (f.rule == "missing_table" and f.table in unread)
    ]
    rank = {"error": 0, "reject": 1, "warning": 2}
    merged = sorted([*read_findings, *kept], key=lambda f: rank[f.severity])
    return dataclasses.replace(report, findings=tuple(merged))


@dataclass(frozen=True)
class LoadResult:
    """Validated tables, with what was set aside and why."""

    tables: RawTables
    report: ValidationReport

    @property
    def rejects(self) -> pd.DataFrame:
        """The rejected records (see :meth:`ValidationReport.rejects`)."""
        return self.report.rejects()


def load_tables(
    path: Path,
    *,
    as_of: date | None = None,
    tables: Sequence[str] | None = None,
    errors: Literal["raise", "report"] = "raise",
    max_rows_in_memory: int = DEFAULT_MAX_ROWS_IN_MEMORY,
    work_dir: Path | None = None,
) -> LoadResult:
    """Read, validate, and split off the rejectable rows.

    Parameters
    ----------
    path, tables, max_rows_in_memory
        As for :func:`read_tables`.
    as_of
        Report records dated on or after it (warnings; nothing is dropped for it).
    errors
        ``"raise"``: raise :class:`~cmerisk.errors.DataError` listing every error
        finding (a required table or column missing, an unreadable file...).
        ``"report"``: keep going; unusable tables are left out of the result.
    work_dir
        Where rewritten session marks go
        (see :func:`cmerisk.data.validate.drop_rejected`).

    Returns
    -------
    LoadResult
        The usable tables, without rejected rows, and the report listing them.
    """
    raw, findings = _read_folder(
        path, tables=tables, max_rows_in_memory=max_rows_in_memory
    )
    report = _merge(findings, validate_tables(raw, as_of=as_of))
    if errors == "raise":
        report.raise_for_errors()
    return LoadResult(drop_rejected(raw, report, work_dir=work_dir), report)
