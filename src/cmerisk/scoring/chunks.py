"""Split an LA's raw tables into chunks of pupils, so memory does not grow with the LA.

Every raw table is keyed by ``pupil_id``, and everything scoring checks or
builds (validation keys and references, point-in-time features) looks at one
pupil's records at a time. So one streaming DuckDB pass per table writes the
rows to (at most) ``buckets`` folders by a hash of the pupil id, each folder
a small LA of its own in the input's file format, which
:func:`cmerisk.data.load.read_tables` reads like the original. All of a
pupil's records land in the same bucket.

Rows of the small tables carry their original 1-based row number in a
``__row`` column (:data:`ROW_COLUMN`), so a rejected record is reported by
its row in the LA's file, not in the chunk.

The pass runs with a DuckDB ``memory_limit`` and a spill folder, so peak
memory is set by the chunk size, not by the number of pupils; on Spark the
same split is ``repartition(n, hash(pupil_id))``.

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
>>> parts = [pd.read_csv(next((f / "pupils").iterdir())) for f in folders]
>>> sum(len(p) for p in parts), sorted(pd.concat(parts)["__row"])[:3]
(10, [1, 2, 3])
"""

from __future__ import annotations

import codecs
import hashlib
import math
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Final

import duckdb
import pandas as pd

from cmerisk import duck
from cmerisk.data.contract import REQUIRED_TABLES, TABLES
from cmerisk.data.findings import ValidationReport
from cmerisk.data.load import CSV_ENCODINGS, TableFiles, find_tables
from cmerisk.errors import DataError

if TYPE_CHECKING:
    from cmerisk.features.window import Coverage

#: The SQL expression that places a pupil's records in a bucket; null ids go to 0.
#: Ids are compared as text, as the loader reads them: a number id 123 in one
#: table and the text '123' in another land together, and so do ' abc' in a CSV
#: file (the loader drops the leading space) and 'abc' elsewhere.
BUCKET_SQL: Final[str] = "coalesce(hash({id}) % {n}, 0)"
_ID_TEXT: Final[dict[str, str]] = {
    "parquet": "CAST(pupil_id AS VARCHAR)",
    "csv": "trim(pupil_id)",
}

#: Column holding a record's 1-based row number in the LA's own table.
ROW_COLUMN: Final[str] = "__row"


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _unreadable(table: TableFiles, e: BaseException) -> DataError:
    more = " and other parts" if len(table.files) > 1 else ""
    return DataError(
        f"table {table.name!r}: cannot read {table.files[0].name}{more}: "
        f"{_first_line(e)}"
    )


def _open(table: TableFiles, con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    paths = [str(p) for p in table.files]
    several = len(paths) > 1
    if table.format == "parquet":
        return con.read_parquet(paths, union_by_name=several)
    return con.read_csv(paths, header=True, all_varchar=True, union_by_name=several)


def relation(
    table: TableFiles, con: duckdb.DuckDBPyConnection
) -> duckdb.DuckDBPyRelation:
    """The table as a DuckDB relation; CSV is read as text (the loader types it)."""
    try:
        return _open(table, con)
    except duckdb.Error as e:
        raise _unreadable(table, e) from None


def readable(
    table: TableFiles, *, con: duckdb.DuckDBPyConnection, folder: Path
) -> tuple[TableFiles, duckdb.DuckDBPyRelation]:
    """``table`` (or a UTF-8 copy of it in ``folder``, when it is CSV in another
    encoding) and a DuckDB relation over it."""
    try:
        return table, _open(table, con)
    except duckdb.Error as e:
        if table.format != "csv" or not _is_encoding_error(e):
            raise _unreadable(table, e) from None
    copy = to_utf8(table, folder=folder / table.name)
    return copy, relation(copy, con)


def find_inputs(data: Path) -> dict[str, TableFiles]:
    """The raw tables in folder ``data`` (:func:`cmerisk.data.load.find_tables`).

    Raises :class:`DataError` when ``data`` is not a folder or a table is
    ambiguous (given both as CSV and Parquet, say).
    """
    tables, findings = find_tables(Path(data))
    ValidationReport(findings=tuple(findings)).raise_for_errors()
    return tables


def count_rows(
    table: TableFiles, *, con: duckdb.DuckDBPyConnection | None = None
) -> int:
    """Number of rows of a table (Parquet: from the file footers)."""
    con = con or duck.connect()
    try:
        return int(relation(table, con).aggregate("count(*)").fetchall()[0][0])
    except duckdb.Error as e:
        raise _unreadable(table, e) from None


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
    """A DuckDB connection that spills to ``spill`` rather than pass ``memory_limit``.

    With ``database`` the connection's tables live in that file (buffer-managed,
    so large intermediate tables need not fit in memory).
    """
    spill.mkdir(parents=True, exist_ok=True)
    con = duck.connect(str(database) if database is not None else ":memory:")
    con.execute(f"SET temp_directory = '{spill.as_posix()}'")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET preserve_insertion_order = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def check_inputs(
    inputs: Mapping[str, TableFiles], *, con: duckdb.DuckDBPyConnection, spill: Path
) -> dict[str, TableFiles]:
    """The checks that must pass before the tables can be split by pupil.

    Required tables present and non-empty, every table readable and holding
    its required columns. Everything else is left to per-chunk validation
    (:func:`cmerisk.data.validate.validate_tables`). Returns the tables as DuckDB
    can read them (CSV files not in UTF-8 copied to UTF-8 under ``spill``).
    """
    missing = sorted(REQUIRED_TABLES - set(inputs))
    if missing:
        expected = " and ".join(f"{m}.parquet or {m}.csv" for m in missing)
        raise DataError(
            f"required table(s) missing: {', '.join(missing)} (expected {expected}; "
            f"found: {', '.join(sorted(inputs)) or 'no tables'})"
        )
    out = {}
    for name, original in inputs.items():
        if all(f.stat().st_size == 0 for f in original.files):
            raise DataError(
                f"table {name!r}: {original.files[0].name} is empty (0 bytes)"
            )
        table, rel = readable(original, con=con, folder=spill)
        out[name] = table
        try:
            columns = [str(c) for c in rel.columns]
            absent = [c for c in TABLES[name].required_columns if c not in columns]
            if absent:
                raise DataError(
                    f"table {name!r} ({original.files[0].name}) lacks required "
                    f"column(s) {', '.join(absent)}; "
                    f"columns present: {', '.join(columns) or 'none'}"
                )
            if name in REQUIRED_TABLES and not rel.limit(1).fetchall():
                raise DataError(
                    f"table {name!r} ({original.files[0].name}) has no rows"
                )
        except duckdb.Error as e:
            raise _unreadable(original, e) from None
    return out


def to_utf8(table: TableFiles, *, folder: Path) -> TableFiles:
    """Copy a CSV table into ``folder`` as UTF-8 (DuckDB reads only UTF-8).

    Each file is decoded with the first of the loader's encodings
    (:data:`cmerisk.data.load.CSV_ENCODINGS`) that reads it whole, streaming.
    """
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, path in enumerate(table.files):
        target = folder / f"{table.name}-{i:05d}.csv"
        for encoding in CSV_ENCODINGS:
            try:
                with (
                    open(path, "rb") as src,
                    open(target, "w", encoding="utf-8") as dst,
                ):
                    decoder = codecs.getincrementaldecoder(encoding)()
                    while block := src.read(1 << 20):
                        dst.write(decoder.decode(block))
                    dst.write(decoder.decode(b"", final=True))
                break
            except UnicodeDecodeError:
                continue
        out.append(target)
    return TableFiles(table.name, tuple(out), "csv")


def _is_encoding_error(e: BaseException) -> bool:
    return "unicode" in str(e).lower() or "utf-8" in str(e).lower()


def split_by_pupil(
    inputs: Mapping[str, TableFiles],
    *,
    buckets: int,
    spill: Path,
    con: duckdb.DuckDBPyConnection | None = None,
) -> list[Path]:
    """Write each table's rows into at most ``buckets`` folders by pupil-id hash.

    Returns the bucket folders ``spill/bucket-00000`` ...; each holds, for every
    input table, a folder ``<table>/`` of parts in the input's format (a part
    with the header and no rows when a bucket has none of the table's rows, so
    every bucket has the same tables as the input). Small tables gain
    :data:`ROW_COLUMN`.

    A bucket the hash left without rows in ``pupils`` or in ``census`` (it
    happens when buckets hold a handful of pupils) cannot be validated on its
    own (both are required tables), so its rows join the nearest bucket before
    it that has both (:func:`bucket_homes`): fewer folders than ``buckets``
    may come back, and none lacks a pupil.
    """
    spill = Path(spill)
    con = con or connect(spill=spill / "duckdb-tmp")
    staging = spill / "partitioned"
    staging.mkdir(parents=True, exist_ok=True)
    tables = []
    for table in inputs.values():
        table, _ = readable(table, con=con, folder=spill / "utf8")
        try:
            _partition(table, buckets=buckets, target=staging / table.name, con=con)
        except duckdb.Error as e:
            if table.format != "csv" or not _is_encoding_error(e):
                raise _unreadable(table, e) from None
            # a wrongly encoded byte beyond the part DuckDB sniffed
            table = to_utf8(table, folder=spill / "utf8" / table.name)
            try:
                _partition(table, buckets=buckets, target=staging / table.name, con=con)
            except duckdb.Error as e2:
                raise _unreadable(table, e2) from None
        tables.append(table)
    full = set(range(buckets))
    for name in REQUIRED_TABLES & set(inputs):
        full &= {k for k in range(buckets) if _parts(staging / name, k)}
    homes = bucket_homes(full, buckets=buckets)
    folders = {k: spill / f"bucket-{k:05d}" for k in sorted(set(homes))}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    for table in tables:
        _distribute(table, folders, homes=homes, staging=staging, con=con)
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(spill / "utf8", ignore_errors=True)
    return list(folders.values())


def bucket_homes(full: set[int], *, buckets: int) -> list[int]:
    """The bucket whose folder receives each bucket's rows.

    A bucket in ``full`` (it has rows in every required table) keeps its own
    rows; any other sends them to the nearest full bucket before it, or the
    first full one. With no full bucket at all, everything goes to bucket 0.

    >>> bucket_homes({1, 3}, buckets=5)
    [1, 1, 1, 3, 3]
    >>> bucket_homes(set(), buckets=2)
    [0, 0]
    """
    if not full:
        return [0] * buckets
    homes, home = [], min(full)
    for k in range(buckets):
        home = k if k in full else home
        homes.append(home)
    return homes


def _parts(partitioned: Path, k: int) -> list[Path]:
    part_dir = partitioned / f"__bucket={k}"
    return sorted(part_dir.iterdir()) if part_dir.is_dir() else []


def _options(table: TableFiles) -> str:
    return "FORMAT parquet" if table.format == "parquet" else "FORMAT csv, HEADER"


def _partition(
    table: TableFiles, *, buckets: int, target: Path, con: duckdb.DuckDBPyConnection
) -> None:
    rel = _open(table, con)
    if "pupil_id" not in rel.columns:
        raise DataError(
            f"table {table.name!r} has no column 'pupil_id' "
            f"(columns: {', '.join(map(str, rel.columns))})"
        )
    rel.create_view("__cmerisk_input", replace=True)
    bucket = BUCKET_SQL.format(id=_ID_TEXT[table.format], n=int(buckets))
    numbered = not TABLES[table.name].large
    row = f", row_number() OVER () AS {ROW_COLUMN}" if numbered else ""
    # DuckDB's partitioned CSV writer runs out of memory on a large CSV (a
    # 1.8 GB file of 38 M marks failed at the 1 GB limit; its Parquet writer
    # streams): CSV is partitioned into Parquet (all text, as read) first, and
    # each bucket is then written back as CSV, so the loader reads the same text
    csv = table.format == "csv"
    staged = target.with_name(f"{target.name}-parquet") if csv else target
    # row_number() OVER () follows file order only while insertion order is kept
    con.execute(f"SET preserve_insertion_order = {'true' if numbered else 'false'}")
    try:
        con.execute(
            f"COPY (SELECT *{row}, {bucket} AS __bucket FROM __cmerisk_input) "
            f"TO '{staged.as_posix()}' "
            f"({'FORMAT parquet' if csv else _options(table)}, "
            "PARTITION_BY (__bucket), OVERWRITE_OR_IGNORE)"
        )
    finally:
        con.execute("SET preserve_insertion_order = false")
    if csv:
        _parquet_buckets_to_csv(staged, target=target, con=con)


def _parquet_buckets_to_csv(
    staged: Path, *, target: Path, con: duckdb.DuckDBPyConnection
) -> None:
    """Write each ``__bucket=k`` folder of Parquet parts as one CSV part."""
    for folder in sorted(staged.glob("__bucket=*")):
        out = target / folder.name
        out.mkdir(parents=True, exist_ok=True)
        parts = (folder / "*.parquet").as_posix()
        con.execute(
            f"COPY (SELECT * FROM read_parquet('{parts}', hive_partitioning = false)) "
            f"TO '{(out / 'data_0.csv').as_posix()}' (FORMAT csv, HEADER)"
        )
    shutil.rmtree(staged, ignore_errors=True)


def _distribute(
    table: TableFiles,
    folders: Mapping[int, Path],
    *,
    homes: Sequence[int],
    staging: Path,
    con: duckdb.DuckDBPyConnection,
) -> None:
    """Move the partitioned parts into the bucket folders (an empty part where none)."""
    target = staging / table.name
    for folder in folders.values():
        (folder / table.name).mkdir(exist_ok=True)
    for k, home in enumerate(homes):
        dest = folders[home] / table.name
        for i, part in enumerate(_parts(target, k)):
            os.replace(part, dest / f"part-{k:05d}-{i:05d}{part.suffix}")
    empty: Path | None = None
    for folder in folders.values():
        dest = folder / table.name
        if not any(dest.iterdir()):
            if empty is None:
                empty = _write_empty(table, staging, con)
            shutil.copyfile(empty, dest / f"part-00000{empty.suffix}")
    shutil.rmtree(target, ignore_errors=True)


def _write_empty(
    table: TableFiles, staging: Path, con: duckdb.DuckDBPyConnection
) -> Path:
    """A file with the table's columns (and the row column) and no rows."""
    ext = ".parquet" if table.format == "parquet" else ".csv"
    path = staging / f"{table.name}-empty{ext}"
    row = "" if TABLES[table.name].large else f", CAST(NULL AS BIGINT) AS {ROW_COLUMN}"
    _open(table, con).create_view("__cmerisk_input", replace=True)
    con.execute(
        f"COPY (SELECT *{row} FROM __cmerisk_input LIMIT 0) "
        f"TO '{path.as_posix()}' ({_options(table)})"
    )
    return path


def digest_files(paths: Sequence[Path]) -> str:
    """SHA-256 over the bytes of ``paths`` in order (a fingerprint of the data)."""
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


SPILL_PREFIX = ".cmerisk-score-"


def new_spill_folder(parent: Path) -> Path:
    """A fresh spill folder in ``parent``, after removing those of killed runs.

    Spill folders are named after the process that made them; one whose
    process is gone was left by a run that was killed.
    """
    import psutil

    for old in parent.glob(f"{SPILL_PREFIX}*"):
        pid = old.name[len(SPILL_PREFIX) :].split("-")[0]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{SPILL_PREFIX}{os.getpid()}-", dir=parent))


#: The tables and date columns whose earliest date sets the data's coverage.
_FIRST_DATES: Final[dict[str, str]] = {
    "census": "census_date",
    "attendance_termly": "term_start",
    "attendance": "date",
}


def la_coverage(
    tables: Mapping[str, TableFiles], *, as_of: date, con: duckdb.DuckDBPyConnection
) -> Coverage | None:
    """The whole LA's coverage, for every chunk of pupils to share.

    Each chunk would otherwise read its own (its pupils' earliest census day and
    mark), and a chunk of pupils who all joined late would see its windows as
    uncovered. Only records dated before ``as_of`` count. None when a date
    column holds no ISO date the query can read (each chunk then reads its own
    from the typed tables).
    """
    from cmerisk.features.coverage import data_coverage

    first: dict[str, date | None] = {}
    for name, column in _FIRST_DATES.items():
        if name not in tables:
            continue
        day = f"TRY_CAST({column} AS DATE)"
        value = (
            relation(tables[name], con)
            .filter(f"{day} < DATE '{as_of.isoformat()}'")
            .aggregate(f"min({day})")
            .fetchall()[0][0]
        )
        if value is None:
            return None
        first[name] = value
    frames = {
        name: pd.DataFrame({_FIRST_DATES[name]: [pd.Timestamp(value)]})
        for name, value in first.items()
        if name != "attendance"
    }
    return data_coverage(frames, marks_start=first.get("attendance"))
