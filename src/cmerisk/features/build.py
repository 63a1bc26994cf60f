"""Assemble the feature frame at ``as_of``: cohort, then each feature group.

The small tables are cleaned once (:func:`prepare`); each as-of then cuts
them with the window helper and runs one DuckDB query over the session marks
(:func:`features_at`). :func:`build_feature_frame` does both for one as-of.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

import duckdb
import pandas as pd
import pyarrow as pa

from cmerisk.data.contract import REQUIRED_TABLES, TABLES
from cmerisk.data.tables import RawTables
from cmerisk.errors import DataError
from cmerisk.features import attendance as att
from cmerisk.features.attendance_termly import termly_attendance_features
from cmerisk.features.clean import clean_tables
from cmerisk.features.cohort import cohort_at
from cmerisk.features.context import context_features
from cmerisk.features.coverage import data_coverage, first_mark
from cmerisk.features.exclusions import exclusion_features
from cmerisk.features.mobility import mobility_features
from cmerisk.features.needs import needs_features
from cmerisk.features.quality import DataQuality, OnDirty
from cmerisk.features.registry import AUDIT_COLUMNS, CARRY, FEATURES
from cmerisk.features.social_care import social_care_features
from cmerisk.features.transition import transition_features
from cmerisk.features.window import Coverage, Windows, known_at

__all__ = ["FeatureFrame", "Prepared", "build_feature_frame", "features_at", "prepare"]

AttendanceSource = Literal["sessions", "termly", "none"]
Progress = Callable[[int, int], None]

#: Steps reported to a progress callback, in order.
STEPS = (
    "cohort",
    "needs",
    "social care",
    "mobility",
    "transition",
    "exclusions",
    "context",
    "attendance",
)


@dataclass(frozen=True)
class Prepared:
    """Raw tables with their small tables cleaned, ready for any as-of.

    ``coverage`` is the period the data covers
    (:func:`~cmerisk.features.coverage.data_coverage`), the same at every as-of.
    """

    tables: RawTables
    frames: dict[str, pd.DataFrame]
    quality: DataQuality
    coverage: Coverage = field(default_factory=Coverage)

    @property
    def attendance_source(self) -> AttendanceSource:
        if self.tables.has("attendance"):
            return "sessions"
        if "attendance_termly" in self.frames:
            return "termly"
        return "none"


@dataclass(frozen=True)
class FeatureFrame:
    """Features at one as-of, with what was left out and why.

    ``frame`` has one row per pupil on roll: ``pupil_id``, ``as_of``, the
    features present (registry order), the audit columns, then the carried
    columns. ``quality`` counts dirty records by rule; ``cohort_counts``
    counts pupils left out of the cohort by reason; ``coverage`` is the period
    the data covers (features over windows reaching before it are missing).
    """

    frame: pd.DataFrame
    quality: DataQuality
    cohort_counts: dict[str, int] = field(default_factory=dict)
    attendance_source: AttendanceSource = "none"
    coverage: Coverage = field(default_factory=Coverage)


def _check_columns(tables: RawTables, con: duckdb.DuckDBPyConnection | None) -> None:
    missing = sorted(REQUIRED_TABLES - set(tables.names))
    if missing:
        raise DataError(
            f"cannot build features without the {' and '.join(missing)} table(s); "
            f"tables present: {', '.join(tables.names) or 'none'}"
        )
    for name in tables.names:
        if name == "attendance":
            if con is None:
                continue
            present = set(tables.attendance_relation(con).columns)
        else:
            present = set(tables[name].columns)
        absent = [c for c in TABLES[name].required_columns if c not in present]
        if absent:
            raise DataError(
                f"{name}: required column(s) {', '.join(absent)} missing "
                f"(columns present: {', '.join(sorted(present))})"
            )


def prepare(
    tables: RawTables,
    *,
    on_dirty: OnDirty = "count",
    con: duckdb.DuckDBPyConnection | None = None,
    data_start: date | None = None,
    coverage: Coverage | None = None,
) -> Prepared:
    """Check the tables' columns, clean the small tables once, fix the coverage.

    ``data_start`` is the first day the records are complete from; by default
    it is read from the tables (:mod:`~cmerisk.features.coverage`). A
    ``coverage`` measured by the caller (scoring, over the whole LA before it
    is split into chunks of pupils) is used as it is.

    Raises
    ------
    DataError
        ``pupils`` or ``census`` is missing, a table lacks a required column,
        or (with ``on_dirty="raise"``) a dirty record is met.
    """
    _check_columns(tables, con)
    quality = DataQuality(on_dirty)
    frames = clean_tables(tables, quality=quality)
    marks_start = None
    if tables.has("attendance"):
        if con is None:
            if coverage is None:
                with att.connect() as own:
                    marks_start = first_mark(tables, con=own)
        else:
            quality.add("attendance_undated", att.count_undated_marks(tables, con=con))
            if coverage is None:
                marks_start = first_mark(tables, con=con)
    if coverage is None:
        coverage = data_coverage(frames, marks_start=marks_start, data_start=data_start)
    return Prepared(tables=tables, frames=frames, quality=quality, coverage=coverage)


def features_at(
    prepared: Prepared,
    *,
    as_of: date,
    con: duckdb.DuckDBPyConnection,
    progress: Progress | None = None,
) -> FeatureFrame:
    """The feature frame at ``as_of`` from prepared tables (one DuckDB query)."""
    quality = DataQuality(prepared.quality.on_dirty)
    quality.extend(prepared.quality)
    # Each small table cut once; the groups cut again for safety, at no cost.
    frames = {
        name: known_at(f, table=name, as_of=as_of)
        for name, f in prepared.frames.items()
    }
    w = Windows.at(as_of, coverage=prepared.coverage)
    step = _stepper(progress)

    cohort = cohort_at(frames, as_of=as_of)
    ids = cohort.frame["pupil_id"]
    index = pd.Index(ids, name="pupil_id")
    step()
    parts: list[pd.DataFrame] = []
    parts.append(needs_features(cohort.frame, frames["census"], w=w))
    step()
    if "social_care" in frames:
        parts.append(social_care_features(ids, frames["social_care"], w=w))
    step()
    parts.append(mobility_features(ids, frames, w=w, phases=cohort.school_phases))
    step()
    parts.append(transition_features(cohort.frame, frames.get("secondary_offers"), w=w))
    step()
    if "exclusions" in frames:
        parts.append(exclusion_features(ids, frames["exclusions"], w=w))
    step()
    parts.append(context_features(cohort.frame, frames["pupils"]))
    step()
    # Attendance last: DuckDB's memory peaks once the pandas steps are done.
    source = prepared.attendance_source
    if source == "sessions":
        agg = att.aggregate_marks(
            prepared.tables,
            as_of=as_of,
            roll_changes=frames.get("roll_changes"),
            con=con,
        )
        known = pd.Index(frames["pupils"]["pupil_id"])
        parts.insert(
            0,
            att.attendance_features(agg, ids, known_pupils=known, quality=quality, w=w),
        )
    elif source == "termly":
        parts.insert(
            0, termly_attendance_features(ids, frames["attendance_termly"], w=w)
        )
    step()

    wide = pd.concat([p.reindex(index) for p in parts], axis=1)
    c = cohort.frame.set_index("pupil_id")
    for col in ("school_urn", "nc_year"):
        wide[col] = c[col].astype("str").where(c[col].notna())
    frame = _ordered(wide.reset_index(), as_of=as_of)
    frame.attrs.update(
        quality=quality,
        cohort_counts=dict(cohort.counts),
        attendance_source=source,
        coverage=prepared.coverage.as_dict(),
    )
    return FeatureFrame(
        frame=frame,
        quality=quality,
        cohort_counts=dict(cohort.counts),
        attendance_source=source,
        coverage=prepared.coverage,
    )


def _stepper(progress: Progress | None) -> Callable[[], None]:
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        # Hand the Arrow memory the last step freed back to the system.
        pa.default_memory_pool().release_unused()
        if progress is not None:
            progress(done, len(STEPS))

    return step


def _ordered(wide: pd.DataFrame, *, as_of: date) -> pd.DataFrame:
    """Columns in contract order: id, as_of, features, audit, carried."""
    feature_cols = [f.name for f in FEATURES if f.name in wide.columns]
    for f in FEATURES:
        if f.name in wide.columns and not f.categorical:
            wide[f.name] = wide[f.name].astype(float)
    audit = [c for c in AUDIT_COLUMNS if c in wide.columns]
    carry = [c for c in CARRY if c in wide.columns and c not in feature_cols]
    out = wide[["pupil_id", *feature_cols, *audit, *carry]].copy()
    out.insert(1, "as_of", pd.Timestamp(as_of))
    out["as_of"] = out["as_of"].astype("datetime64[us]")
    return out.sort_values("pupil_id", ignore_index=True)


def build_feature_frame(
    tables: RawTables,
    *,
    as_of: date,
    on_dirty: OnDirty = "count",
    memory_limit: str = "2GB",
    temp_directory: Path | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
    data_start: date | None = None,
    coverage: Coverage | None = None,
) -> FeatureFrame:
    """Features of every pupil on roll at ``as_of``, with data-quality counts.

    See :func:`cmerisk.features.build_features` for the parameters.
    """
    with att.connect(
        memory_limit=memory_limit, temp_directory=temp_directory, threads=threads
    ) as con:
        prepared = prepare(
            tables, on_dirty=on_dirty, con=con, data_start=data_start, coverage=coverage
        )
        return features_at(prepared, as_of=as_of, con=con, progress=progress)
