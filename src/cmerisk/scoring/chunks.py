"""Split an LA's raw tables into chunks of pupils, so memory does not grow with the LA.

Every raw table is keyed by ``pupil_id``, and everything scoring checks or
builds (validation keys and references, point-in-time features) looks at one
pupil's records at a time. So one streaming DuckDB pass per table writes the
rows to ``buckets`` folders by a hash of the pupil id, each folder a small LA
of its own in the same file format, which :func:`cmerisk.data.load.read_tables`
reads like the original. Every record of a pupil lands in the same bucket.

The pass runs with a DuckDB ``memory_limit`` and a spill folder, so peak memory
is set by the chunk size, not by the number of pupils; on Spark the same split
is ``repartition(n, hash(pupil_id))``.

Examples
--------
>>> import tempfile, pandas as pd
>>> data = Path(tempfile.mkdtemp())
>>> pd.DataFrame({"pupil_id": [f"p{i}" for i in range(10)], "x": range(10)}).to_csv(
...     data / "pupils.csv", index=False)
>>> inputs = find_inputs(data)
>>> inputs["pupils"].format, count_rows(inputs["pupils"])
('csv', 10)
>>> folders = split_by_pupil(inputs, buckets=3, spill=Path(tempfile.mkdtemp()))
>>> sum(len(pd.read_csv(next((f / "pupils").iterdir()))) for f in folders)
10
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb

from cmerisk.data.contract import REQUIRED_TABLES, TABLES
from cmerisk.errors import DataError

FileFormat = Literal["parquet", "csv"]
_EXTENSIONS: dict[str, FileFormat] = {".parquet": "parquet", ".csv": "csv"}

#: The SQL expression that places a pupil's records in a bucket; null ids go to 0.
#: Ids are compared trimmed and lower-cased so a stray space never splits a pupil.
BUCKET_SQL = "coalesce(hash(lower(trim(CAST(pupil_id AS VARCHAR)))) % {n}, 0)"


@dataclass(frozen=True)
class InputTable:
    """The files holding one raw table (one file, or a folder of parts)."""

    name: str
    files: tuple[Path, ...]
    format: FileFormat

    def relation(self, con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
        """The table as a DuckDB relation; CSV is read as text (the loader types it)."""
        paths = [str(p) for p in self.files]
        try:
            if self.format == "parquet":
                return con.read_parquet(paths, union_by_name=len(paths) > 1)
            return con.read_csv(
                paths, header=True, all_varchar=True, union_by_name=len(paths) > 1
            )
        except duckdb.Error as e:
            raise DataError(
                f"table {self.name!r}: cannot read {self.files[0].name}"
                f"{' and other parts' if len(paths) > 1 else ''}: {_first_line(e)}"
            ) from None


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def find_inputs(data: Path) -> dict[str, InputTable]:
    """The raw tables in folder ``data``: ``<table>.parquet|.csv`` or a folder ``<table>/`` of parts.

    Files whose names are not tables of the contract (e.g. ``manifest.json``) are
    ignored. Raises :class:`DataError` when ``data`` is not a folder or a table
    is given twice.
    """
    data = Path(data)
    if not data.is_dir():
        raise DataError(f"data folder {str(data)!r} does not exist or is not a folder")
    found: dict[str, InputTable] = {}
    for entry in sorted(data.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            name = entry.name
            parts = sorted(
                p
                for p in entry.rglob("*")
                if p.is_file() and p.suffix.lower() in _EXTENSIONS
            )
            if name not in TABLES or not parts:
                continue
            formats = {_EXTENSIONS[p.suffix.lower()] for p in parts}
            if len(formats) > 1:
                raise DataError(
                    f"table {name!r}: folder {entry.name}/ mixes CSV and Parquet parts; use one"
                )
            table = InputTable(name, tuple(parts), formats.pop())
        else:
            name = entry.stem
            fmt = _EXTENSIONS.get(entry.suffix.lower())
            if fmt is None or name not in TABLES:
                continue
            table = InputTable(name, (entry,), fmt)
        if name in found:
            raise DataError(
                f"table {name!r} is given twice ({found[name].files[0].name} and {entry.name}); "
                "keep one"
            )
        found[name] = table
    return found


def count_rows(
    table: InputTable, *, con: duckdb.DuckDBPyConnection | None = None
) -> int:
    """Number of rows of a table (Parquet: from the file footers)."""
    con = con or duckdb.connect()
    rel = table.relation(con)
    try:
        return int(rel.aggregate("count(*)").fetchall()[0][0])
    except duckdb.Error as e:
        raise DataError(
            f"table {table.name!r}: cannot read {table.files[0].name}: {_first_line(e)}"
        ) from None


def bucket_count(pupils: int, *, chunk_size: int) -> int:
    """How many buckets hold ``pupils`` with about ``chunk_size`` pupils each.

    >>> bucket_count(100_000, chunk_size=50_000), bucket_count(10, chunk_size=50_000)
    (2, 1)
    """
    return max(1, math.ceil(pupils / chunk_size))


def connect(
    *,
    spill: Path,
    database: Path | None = None,
    memory_limit: str = "1GB",
    threads: int | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that spills to ``spill`` instead of growing past ``memory_limit``.

    With ``database`` the connection's tables live in that file (buffer-managed,
    so large intermediate tables need not fit in memory).
    """
    spill.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(database) if database is not None else ":memory:")
    con.execute(f"SET temp_directory = '{spill.as_posix()}'")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET preserve_insertion_order = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def check_inputs(
    inputs: Mapping[str, InputTable], *, con: duckdb.DuckDBPyConnection
) -> None:
    """The checks that must pass before the tables can be split by pupil.

    Required tables present and non-empty, every table readable and holding
    its required columns. Everything else is left to per-chunk validation
    (:func:`cmerisk.data.validate.validate_tables`).
    """
    missing = sorted(REQUIRED_TABLES - set(inputs))
    if missing:
        raise DataError(
            f"required table(s) missing: {', '.join(missing)} (expected "
            f"{' and '.join(f'{m}.parquet or {m}.csv' for m in missing)}; found: "
            f"{', '.join(sorted(inputs)) or 'no tables'})"
        )
    for table in inputs.values():
        columns = _columns(table, con)
        absent = [c for c in TABLES[table.name].required_columns if c not in columns]
        if absent:
            raise DataError(
                f"table {table.name!r} ({table.files[0].name}) lacks required column(s) "
                f"{', '.join(absent)}; columns present: {', '.join(columns) or 'none'}"
            )
        if table.name in REQUIRED_TABLES and count_rows(table, con=con) == 0:
            raise DataError(f"table {table.name!r} ({table.files[0].name}) has no rows")


def _columns(table: InputTable, con: duckdb.DuckDBPyConnection) -> list[str]:
    rel = table.relation(con)
    try:
        return [str(c) for c in rel.columns]
    except duckdb.Error as e:
        raise DataError(
            f"table {table.name!r}: cannot read {table.files[0].name}: {_first_line(e)}"
        ) from None


def split_by_pupil(
    inputs: Mapping[str, InputTable],
    *,
    buckets: int,
    spill: Path,
    con: duckdb.DuckDBPyConnection | None = None,
) -> list[Path]:
    """Write each table's rows into ``buckets`` folders by pupil-id hash.

    Returns the bucket folders ``spill/bucket-00000`` ...; each holds, for every
    input table, a folder ``<table>/`` of parts in the input's format (a part
    with no rows but the header when a bucket has none of that table's rows,
    so every bucket has the same tables as the input).
    """
    spill = Path(spill)
    con = con or connect(spill=spill / "duckdb-tmp")
    folders = [spill / f"bucket-{k:05d}" for k in range(buckets)]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    staging = spill / "partitioned"
    staging.mkdir(parents=True, exist_ok=True)
    for table in inputs.values():
        rel = table.relation(con)
        if "pupil_id" not in rel.columns:
            raise DataError(
                f"table {table.name!r} has no column 'pupil_id' (columns: {', '.join(rel.columns)})"
            )
        target = staging / table.name
        options = (
            "FORMAT parquet" if table.format == "parquet" else "FORMAT csv, HEADER"
        )
        bucket = BUCKET_SQL.format(n=int(buckets))
        try:
            rel.create_view("__cmerisk_input", replace=True)
            con.execute(
                f"COPY (SELECT *, {bucket} AS __bucket FROM __cmerisk_input) "
                f"TO '{target.as_posix()}' "
                f"({options}, PARTITION_BY (__bucket), OVERWRITE_OR_IGNORE)"
            )
        except duckdb.Error as e:
            raise DataError(
                f"table {table.name!r}: cannot read {table.files[0].name}: {_first_line(e)}"
            ) from None
        empty = None
        for k, folder in enumerate(folders):
            dest = folder / table.name
            dest.mkdir(exist_ok=True)
            part_dir = target / f"__bucket={k}"
            parts = sorted(part_dir.iterdir()) if part_dir.is_dir() else []
            for i, part in enumerate(parts):
                os.replace(part, dest / f"part-{i:05d}{part.suffix}")
            if not parts:
                if empty is None:
                    empty = _write_empty(rel, table, staging, con)
                shutil.copyfile(empty, dest / f"part-00000{empty.suffix}")
        shutil.rmtree(target, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)
    return folders


def _write_empty(
    rel: duckdb.DuckDBPyRelation,
    table: InputTable,
    staging: Path,
    con: duckdb.DuckDBPyConnection,
) -> Path:
    """A file with the table's columns and no rows."""
    ext = ".parquet" if table.format == "parquet" else ".csv"
    path = staging / f"{table.name}-empty{ext}"
    options = "FORMAT parquet" if table.format == "parquet" else "FORMAT csv, HEADER"
    rel.create_view("__cmerisk_empty", replace=True)
    con.execute(
        f"COPY (SELECT * FROM __cmerisk_empty LIMIT 0) TO '{path.as_posix()}' ({options})"
    )
    if table.format == "csv" and path.stat().st_size == 0:
        path.write_text(",".join(rel.columns) + "\n", encoding="utf-8")
    return path


def digest_files(paths: Sequence[Path]) -> str:
    """SHA-256 over the bytes of ``paths`` in order (a fingerprint of the input data)."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        with open(p, "rb") as f:
            h.update(hashlib.file_digest(f, "sha256").digest())
    return h.hexdigest()


def combine_digests(digests: Mapping[str, str]) -> str:
    """One SHA-256 over per-table digests (sorted by table name)."""
    h = hashlib.sha256()
    for name in sorted(digests):
        h.update(f"{name}={digests[name]};".encode())
    return h.hexdigest()
