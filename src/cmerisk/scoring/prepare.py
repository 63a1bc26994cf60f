"""One chunk of pupils, from raw files to a feature table, with every rejection kept.

:func:`prepare_chunk` reads a chunk folder with the loader, validates it
against the contract, sets the rejected records aside (with their row numbers
in the LA's own files), and builds the point-in-time features at ``as_of``
from what is left. It returns what the run needs to account for each pupil:
the ids that came in, the features of those on roll, the rejects, and the
warnings and data-quality counts to add up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from cmerisk.data.findings import Finding, ValidationReport
from cmerisk.data.load import read_tables
from cmerisk.data.tables import RawTables
from cmerisk.data.validate import drop_rejected, validate_tables
from cmerisk.errors import DataError
from cmerisk.features import build_features
from cmerisk.features.window import Coverage
from cmerisk.scoring.chunks import ROW_COLUMN
from cmerisk.scoring.summary import StageTimer

#: Columns of a chunk's rejects (the run adds ``outcome``).
CHUNK_REJECT_COLUMNS = (
    "pupil_id",
    "table",
    "row",
    "column",
    "rule",
    "detail",
    "records",
)

#: Warnings about a chunk that say nothing about the LA's data as a whole.
_CHUNK_ONLY_RULES = frozenset({"no_rows"})

_ROW_MENTION = re.compile(r"\brow (\d+)\b")


@dataclass
class Chunk:
    """What one chunk of pupils gave."""

    features: pd.DataFrame
    rejects: pd.DataFrame
    ids_in: set[str]
    warnings: list[Finding] = field(default_factory=list)
    quality: dict[str, int] = field(default_factory=dict)
    left_out: dict[str, int] = field(default_factory=dict)


def take_row_numbers(tables: RawTables) -> tuple[RawTables, dict[str, np.ndarray]]:
    """Take :data:`~cmerisk.scoring.chunks.ROW_COLUMN` out of each table, kept aside.

    Returns the tables without it and, per table that had it, the original
    1-based row number of each row (in the table's order).
    """
    rows: dict[str, np.ndarray] = {}
    frames = {}
    for name, frame in tables.frames.items():
        if ROW_COLUMN in frame.columns:
            rows[name] = pd.to_numeric(frame[ROW_COLUMN], errors="coerce").to_numpy(
                dtype="float64"
            )
            frames[name] = frame.drop(columns=ROW_COLUMN)
    if not frames:
        return tables, rows
    return tables.with_frames(**frames), rows


def original_row(rows: dict[str, np.ndarray], table: str, row: object) -> object:
    """The LA-file row number of a chunk's ``row`` of ``table`` (as is if unknown)."""
    if table not in rows or row is None or pd.isna(row):
        return row
    value = rows[table][int(row) - 1]  # type: ignore[call-overload]
    return pd.NA if np.isnan(value) else int(value)


def remap_message(message: str, *, table: str, rows: dict[str, np.ndarray]) -> str:
    """Rewrite "row N" in a finding's message to the LA-file row number."""
    if table not in rows:
        return message
    return _ROW_MENTION.sub(
        lambda m: f"row {original_row(rows, table, int(m.group(1)))}", message
    )


def _raise_for_errors(report: ValidationReport, rows: dict[str, np.ndarray]) -> None:
    if report.errors:
        lines = "\n".join(
            f"  - {remap_message(f.message, table=f.table, rows=rows)}"
            for f in report.errors
        )
        raise DataError(f"the tables cannot be used:\n{lines}")


def rejects_frame(
    report: ValidationReport, rows: dict[str, np.ndarray]
) -> pd.DataFrame:
    """A validation report's rejected records, with LA-file row numbers."""
    r = report.rejects()
    row = [original_row(rows, t, v) for t, v in zip(r["table"], r["row"], strict=True)]
    return pd.DataFrame(
        {
            "pupil_id": r["pupil_id"].astype("string"),
            "table": r["table"].astype("string"),
            "row": pd.array(row, dtype="Int64"),
            "column": r["column"].astype("string"),
            "rule": r["rule"].astype("string"),
            "detail": r["detail"].astype("string"),
            "records": pd.array(
                r["rows"] if "rows" in r else np.ones(len(r)), dtype="Int64"
            ),
        },
        columns=list(CHUNK_REJECT_COLUMNS),
    )


def pupil_ids(tables: RawTables) -> set[str]:
    """Distinct pupil ids in a chunk's ``pupils`` and ``census`` tables."""
    ids: set[str] = set()
    for name in ("pupils", "census"):
        frame = tables.get_frame(name)
        if frame is not None and "pupil_id" in frame.columns:
            ids.update(frame["pupil_id"].dropna().astype(str).unique().tolist())
    return ids


def prepare_chunk(
    folder: Path,
    *,
    as_of: date,
    work_dir: Path,
    timer: StageTimer | None = None,
    coverage: Coverage | None = None,
) -> Chunk:
    """Read, validate and featurise one chunk folder.

    Parameters
    ----------
    folder
        A chunk of the LA (or the whole LA when it fits in one chunk).
    as_of
        Scoring date.
    work_dir
        Scratch space (created): session marks rewritten without their
        rejected rows, and DuckDB's spill folder for the features.
    timer
        Adds the time spent to its ``load_validate`` and ``features`` stages.
    coverage
        The whole LA's coverage (:func:`~cmerisk.scoring.chunks.la_coverage`),
        so every chunk's windows are judged alike; None: read from the chunk.

    Raises
    ------
    DataError
        A table cannot be used at all (the validator's error findings, with row
        numbers as in the LA's files).
    """
    timer = timer or StageTimer()
    # made here, not only when marks are rewritten: DuckDB makes its spill folder
    # below it when a large chunk's features pass the memory limit, but not parents
    work_dir.mkdir(parents=True, exist_ok=True)
    with timer("load_validate"):
        # session marks stay on disk, streamed by DuckDB: memory stays flat
        tables, rows = take_row_numbers(read_tables(folder, max_rows_in_memory=0))
        report = validate_tables(tables, as_of=as_of)
        _raise_for_errors(report, rows)
        rejects = rejects_frame(report, rows)
        usable = drop_rejected(tables, report, work_dir=work_dir)
    with timer("features"):
        features = build_features(
            usable,
            as_of=as_of,
            memory_limit="1GB",
            temp_directory=work_dir / "duckdb",
            coverage=coverage,
        )
    quality = features.attrs.get("quality")
    cohort_counts = features.attrs.get("cohort_counts") or {}
    return Chunk(
        features=features,
        rejects=rejects,
        ids_in=pupil_ids(tables),
        warnings=[w for w in report.warnings if w.rule not in _CHUNK_ONLY_RULES],
        quality=dict(quality.counts) if quality is not None else {},
        left_out={k: int(v) for k, v in cohort_counts.items()},
    )
