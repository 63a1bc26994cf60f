"""Remove rejected session marks, streaming, and give them the contract's types.

Small in-memory marks are cleaned into a pandas frame; marks on disk are
rewritten by DuckDB as typed Parquet (only when something must change), so
memory stays bounded whatever their size. The marks removed are exactly those
:func:`cmerisk.data.validate_marks.check_marks` reported: the same SQL flags
and duplicate table decide both.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from cmerisk import duck
from cmerisk.data.marks_sql import MarksViews, build_duplicate_table, lit
from cmerisk.data.tables import RawTables


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
    con = duck.connect()
    marks: MarksViews | None = None
    try:
        marks = MarksViews(tables, con, valid_pupils=valid_pupils)
        if marks.on_disk and not (has_rejects or marks.csv or not marks.typed):
            return tables
        build_duplicate_table(marks)
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
            f"COPY ({sql}) TO {lit(str(staging))} "
            "(FORMAT parquet, PER_THREAD_OUTPUT true, FILENAME_PATTERN 'part-{i}')"
        )
        staging.replace(target)
        files = tuple(sorted(target.glob("*.parquet")))
        return RawTables(tables.frames, attendance_files=files, source=tables.source)
    finally:
        if marks is not None:
            marks.close()
        con.close()


def _new_folder(work_dir: Path | None) -> Path:
    if work_dir is None:
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
