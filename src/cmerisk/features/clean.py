"""Apply the dirty-record rules to the small tables, once, before any as-of cut.

Each rule is in :data:`cmerisk.features.quality.RULES` and docs/features.md;
each record it touches is counted there. Session marks are too large for
pandas and are checked inside the attendance SQL instead
(:mod:`cmerisk.features.attendance`).

Examples
--------
>>> import pandas as pd
>>> from cmerisk.data.tables import RawTables
>>> pupils = pd.DataFrame({"pupil_id": ["a"], "date_of_birth": ["2013-03-01"],
...     "sex": ["F"], "ethnicity_major": ["White"], "idaci_decile": [3]})
>>> ehe = pd.DataFrame({"pupil_id": ["a", "zz"],
...     "start_date": ["2024-02-01", "2024-03-01"], "end_date": [None, None]})
>>> q = DataQuality()
>>> frames = clean_tables(RawTables({"pupils": pupils, "ehe": ehe}), quality=q)
>>> frames["ehe"]["pupil_id"].tolist(), q.counts
(['a'], {'ehe_without_pupil': 1})
"""

from __future__ import annotations

import pandas as pd

from cmerisk.data.contract import TABLES, Table
from cmerisk.data.tables import RawTables
from cmerisk.features.frames import member_of
from cmerisk.features.quality import ESSENTIAL_CODE_COLUMNS, DataQuality
from cmerisk.features.window import to_timestamps

__all__ = ["clean_tables"]

#: Tables read with pandas (everything but session marks).
SMALL_TABLES = tuple(name for name in TABLES if name != "attendance")


def clean_tables(tables: RawTables, *, quality: DataQuality) -> dict[str, pd.DataFrame]:
    """The small tables present, cleaned by the dirty-record rules.

    Dates come back as ``datetime64`` and ids as strings. ``pupils`` is
    required (a :class:`~cmerisk.errors.DataError` is raised by the caller when
    it is missing).
    """
    pupils = _clean_pupils(tables["pupils"], quality=quality)
    known_ids = pd.Index(pupils["pupil_id"])
    out = {"pupils": pupils}
    for name in SMALL_TABLES:
        if name == "pupils" or not tables.has(name):
            continue
        if name == "attendance_termly" and tables.has("attendance"):
            continue  # session marks win: termly totals are not read
        out[name] = _clean_events(
            tables[name], TABLES[name], known_ids, quality=quality
        )
    return out


def _dates(frame: pd.DataFrame, table: Table) -> pd.DataFrame:
    """``frame`` (a shallow copy) with its date columns as ``datetime64``."""
    for col in table.columns:
        if col.kind == "date" and col.name in frame.columns:
            frame[col.name] = to_timestamps(frame[col.name])
    return frame


def _clean_pupils(frame: pd.DataFrame, *, quality: DataQuality) -> pd.DataFrame:
    table = TABLES["pupils"]
    frame = _dates(frame.copy(deep=False), table)
    frame["pupil_id"] = frame["pupil_id"].astype(str)
    dupes = frame.duplicated("pupil_id")
    quality.add("pupils_duplicate", int(dupes.sum()))
    if dupes.any():
        frame = frame.loc[~dupes.to_numpy()]
    frame = _unknown_values(frame, table, quality=quality)
    quality.add(
        "pupils_missing_date_of_birth", int(frame["date_of_birth"].isna().sum())
    )
    return frame.reset_index(drop=True)


def _clean_events(
    frame: pd.DataFrame, table: Table, known_ids: pd.Index, *, quality: DataQuality
) -> pd.DataFrame:
    frame = _dates(frame.copy(deep=False), table)
    frame["pupil_id"] = frame["pupil_id"].astype(str)
    assert table.event_date is not None
    undated = frame[table.event_date].isna()
    quality.add(f"{table.name}_undated", int(undated.sum()))
    if undated.any():
        frame = frame.loc[~undated.to_numpy()]
    orphan = pd.Series(~member_of(frame["pupil_id"], known_ids), index=frame.index)
    if orphan.any():
        if table.name == "census":
            example = frame.loc[orphan, "census_date"].min().date().isoformat()
            quality.add("census_without_pupil", int(orphan.sum()), example=example)
        else:
            quality.add(f"{table.name}_without_pupil", int(orphan.sum()))
    if orphan.any():
        frame = frame.loc[~orphan.to_numpy()]
    frame = _unknown_values(frame, table, quality=quality)
    if table.end_date is not None:
        start, end = frame[table.event_date], frame[table.end_date]
        backwards = (end < start).fillna(False)
        if backwards.any():
            example = start[backwards].min().date().isoformat()
            quality.add(
                f"{table.name}_end_before_start", int(backwards.sum()), example=example
            )
            frame.loc[backwards, table.end_date] = start[backwards]
    if table.name == "census":
        frame = _one_main_registration(frame, quality=quality)
    return frame.reset_index(drop=True)


def _unknown_values(
    frame: pd.DataFrame, table: Table, *, quality: DataQuality
) -> pd.DataFrame:
    """Null values outside the contract's allowed values or range; drop rows
    whose essential code column is unknown."""
    essential = ESSENTIAL_CODE_COLUMNS.get(table.name)
    bad_rows = pd.Series(False, index=frame.index)
    total = 0
    example = None
    for col in table.columns:
        if col.name not in frame.columns:
            continue
        values = frame[col.name]
        if col.allowed is not None:
            bad = ~values.isin(col.allowed) & (values.notna() | (not col.nullable))
        elif col.low is not None or col.high is not None:
            num = pd.to_numeric(values, errors="coerce")
            bad = values.notna() & (
                num.isna()
                | (num < (col.low if col.low is not None else -float("inf")))
                | (num > (col.high if col.high is not None else float("inf")))
            )
        else:
            continue
        n = int(bad.sum())
        if not n:
            continue
        total += n
        if example is None:
            example = f"{col.name}={values[bad].iloc[0]!s}"
        if col.name == essential:
            bad_rows |= bad
        else:
            frame[col.name] = values.where(~bad)
    if total:
        quality.add(f"{table.name}_unknown_value", total, example=example)
    return frame.loc[~bad_rows.to_numpy()] if bad_rows.any() else frame


def _one_main_registration(
    frame: pd.DataFrame, *, quality: DataQuality
) -> pd.DataFrame:
    """At most one single/main registration per pupil and census day (lowest URN)."""
    main = frame.loc[frame["enrolment_status"].isin(["C", "M"]).to_numpy()]
    key = ["pupil_id", "census_date"]
    clash = main.loc[main.duplicated(key, keep=False).to_numpy()]
    if clash.empty:
        return frame
    clash = clash.assign(_urn=clash["school_urn"].astype(str)).sort_values(
        [*key, "_urn"], kind="stable"
    )
    extra = clash.loc[clash.duplicated(key).to_numpy()]
    example = extra["census_date"].min().date().isoformat()
    quality.add("census_conflicting_main", len(extra), example=example)
    return frame.drop(index=extra.index)
