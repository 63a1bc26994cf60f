"""Checks on the small tables (everything but session marks), with pandera.

:func:`check_frame` converts one table to the contract's types, runs its
pandera schema (:func:`cmerisk.data.schemas.table_schema`) lazily so that every
failure is collected, and adds what a schema cannot see: unreadable values,
exact copies, references to ``pupils``, episodes ending before they start, and
records dated on or after ``as_of``. It returns findings, one reject row per
rejected record and rule, and the table without its rejected rows.

Examples
--------
>>> import pandas as pd
>>> ehe = pd.DataFrame({"pupil_id": ["p1", "p2"], "start_date": ["2023-01-09"] * 2,
...                     "end_date": ["2023-03-01", "2022-12-01"]})
>>> result = check_frame(ehe, "ehe", valid_pupils=None, rejected_pupils=None,
...                      as_of=None)
>>> [(f.rule, f.count, f.examples) for f in result.findings]
[('end_before_start', 1, ("row 2: '2022-12-01 before 2023-01-09'",))]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Final

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as arrow
import pyarrow.compute as pc

from cmerisk.data.contract import REQUIRED_TABLES, TABLES
from cmerisk.data.findings import (
    MAX_EXAMPLES,
    MIN_VALUES_FOR_WRONG_TYPE,
    REJECT_COLUMNS,
    RULES,
    Finding,
    TableSummary,
)
from cmerisk.data.schemas import coerce_table, table_schema

#: The shape of a raw UPN (case-insensitive): ids must be pseudonymised first.
RAW_UPN_PATTERN: Final = re.compile(
    r"^[A-HJ-NP-RT-Z][0-9]{11}[0-9A-HJ-NP-RT-Z]$", re.IGNORECASE
)

#: pandera's own names for the checks it runs itself, and our rules for them.
_PANDERA_RULES: Final[dict[str, str]] = {
    "not_nullable": "missing_value",
    "field_uniqueness": "duplicate_key",
    "multiple_fields_uniqueness": "duplicate_key",
    "unknown_code": "unknown_code",
    "implausible_date": "implausible_date",
    "out_of_range": "out_of_range",
}


@dataclass
class _Rows:
    """Row-level rejects of one table, gathered rule by rule."""

    table: str
    frame: pd.DataFrame
    rejects: list[pd.DataFrame] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def add(
        self,
        rule: str,
        column: str | None,
        rows: np.ndarray,
        *,
        show: pd.Series | None = None,
        detail: str = "",
        row_details: pd.Series | None = None,
    ) -> None:
        """Reject rows (0-based positions); ``show`` gives values to display."""
        rows = np.unique(np.asarray(rows, dtype="int64"))
        if not len(rows):
            return
        if show is not None:
            shown = show.iloc[rows].map(lambda v: "" if pd.isna(v) else _display(v))
            examples = tuple(
                f"row {r + 1}" + (f": {s}" if s else "")
                for r, s in zip(rows, shown, strict=True)
            )
            details = (f"{column} " + shown).where(shown != "", f"{column} empty")
        else:
            examples = tuple(f"row {r + 1}" for r in rows)
            details = pd.Series([detail or RULES[rule].words] * len(rows))
        if row_details is not None:
            details = row_details.iloc[rows]
        self.findings.append(
            Finding(
                self.table,
                column,
                rule,
                count=len(rows),
                examples=examples[:MAX_EXAMPLES],
                detail=detail,
            )
        )
        ids = (
            self.frame["pupil_id"]
            if "pupil_id" in self.frame
            else pd.Series(pd.NA, index=self.frame.index)
        )
        self.rejects.append(
            pd.DataFrame(
                {
                    "pupil_id": ids.iloc[rows].astype("str").to_numpy(),
                    "table": self.table,
                    "row": pd.array(rows + 1, dtype="Int64"),
                    "column": column,
                    "rule": rule,
                    "detail": pd.Series(details).astype("str").to_numpy(),
                    "rows": np.ones(len(rows), dtype="int64"),
                },
                columns=list(REJECT_COLUMNS),
            )
        )

    @property
    def rejected(self) -> np.ndarray:
        if not self.rejects:
            return np.empty(0, dtype="int64")
        return np.unique(
            np.concatenate([r["row"].to_numpy(dtype="int64") - 1 for r in self.rejects])
        )


def isin(values: pd.Series, among: pd.Series) -> pd.Series:
    """``values.isin(among)`` for text, in Arrow (pandas' own is slow for big sets)."""
    found = pc.is_in(
        arrow.array(values.astype(object), type=arrow.string(), from_pandas=True),
        value_set=arrow.array(among.dropna().astype(object), type=arrow.string()),
    )
    return pd.Series(
        found.fill_null(False).to_numpy(zero_copy_only=False), index=values.index
    )


def _display(value: object) -> str:
    if isinstance(value, pd.Timestamp):
        return str(value.date())
    return repr(value.item() if isinstance(value, np.generic) else value)


@dataclass
class TableResult:
    findings: list[Finding]
    rejects: list[pd.DataFrame]
    summary: TableSummary | None
    rejected_rows: np.ndarray
    usable: bool
    clean: pd.DataFrame | None = None


def _structure(frame: pd.DataFrame, name: str) -> list[Finding]:
    table = TABLES[name]
    known = {c.name for c in table.columns}
    out = [
        Finding(name, str(c), "unknown_column") for c in frame.columns if c not in known
    ]
    out += [
        Finding(name, c, "missing_column")
        for c in table.required_columns
        if c not in frame.columns
    ]
    return out


def check_frame(
    frame: pd.DataFrame,
    name: str,
    *,
    valid_pupils: pd.Series | None,
    rejected_pupils: pd.Series | None,
    as_of: date | None,
) -> TableResult:
    table = TABLES[name]
    findings = _structure(frame, name)
    if any(f.severity == "error" for f in findings):
        return TableResult(
            findings, [], TableSummary(name, len(frame)), np.empty(0, "int64"), False
        )
    if frame.empty:
        rule = "empty_table" if name in REQUIRED_TABLES else "no_rows"
        findings.append(Finding(name, None, rule))
        return TableResult(
            findings, [], TableSummary(name, 0), np.empty(0, "int64"), rule == "no_rows"
        )
    raw = frame.reset_index(drop=True)
    coerced, unreadable = coerce_table(raw, name)
    rows = _Rows(name, coerced)

    # Whole columns of the wrong type make the table unusable; odd values reject rows.
    for column, bad in unreadable.items():
        present = raw[column].notna() & raw[column].astype("str").str.strip().ne("")
        if bad.sum() == present.sum() >= MIN_VALUES_FOR_WRONG_TYPE:
            sample = raw.loc[bad, column].drop_duplicates().head(MAX_EXAMPLES)
            kind = table.column(column).kind
            shown = () if kind == "id" else tuple(_display(v) for v in sample)
            findings.append(
                Finding(
                    name,
                    column,
                    "wrong_type",
                    count=int(bad.sum()),
                    examples=shown,
                    detail=f"expected {kind}",
                )
            )
    if "pupil_id" in coerced:
        upn_like = (
            coerced["pupil_id"]
            .str.fullmatch(RAW_UPN_PATTERN)
            .fillna(False)
            .astype(bool)
        )
        if upn_like.any():
            where = np.flatnonzero(upn_like.to_numpy())
            findings.append(
                Finding(
                    name,
                    "pupil_id",
                    "raw_upn",
                    count=len(where),
                    examples=tuple(f"row {r + 1}" for r in where[:MAX_EXAMPLES]),
                )
            )
    if any(f.severity == "error" for f in findings):
        return TableResult(
            findings, [], TableSummary(name, len(raw)), np.empty(0, "int64"), False
        )
    for column, bad in unreadable.items():
        rows.add(
            "unreadable_value", column, np.flatnonzero(bad.to_numpy()), show=raw[column]
        )

    # Exact copies: keep the first. Then the pandera schema on the rest.
    contract_cols = [c.name for c in table.columns if c.name in coerced]
    copies = coerced[contract_cols].duplicated(keep="first").to_numpy()
    rows.add("duplicate_row", None, np.flatnonzero(copies))
    _pandera(coerced.loc[~copies, contract_cols], name, rows, unreadable)

    if table.references_pupils and valid_pupils is not None:
        ids = coerced["pupil_id"]
        unknown = ids.notna() & ~isin(ids, valid_pupils)
        if unknown.any():
            was_rejected = (
                isin(ids, rejected_pupils)
                if rejected_pupils is not None
                else unknown & False
            )
            why = pd.Series(
                np.where(was_rejected, "its pupils row was rejected", "not in pupils"),
                index=ids.index,
            )
            n_rejected = int((unknown & was_rejected).sum())
            detail = (
                f"{int(unknown.sum()) - n_rejected} not in pupils, "
                f"{n_rejected} whose pupils row was rejected"
            )
            rows.add(
                "unknown_pupil",
                "pupil_id",
                np.flatnonzero(unknown.to_numpy()),
                detail=detail,
                row_details=why,
            )
    if table.end_date and table.event_date:
        start, end = coerced[table.event_date], coerced[table.end_date]
        backwards = (end < start).fillna(False).to_numpy(dtype=bool)
        shown = end.dt.strftime("%Y-%m-%d") + " before " + start.dt.strftime("%Y-%m-%d")
        rows.add(
            "end_before_start",
            table.end_date,
            np.flatnonzero(backwards),
            show=shown.map(lambda s: s if isinstance(s, str) else pd.NA),
        )
    findings += rows.findings
    rejected = rows.rejected
    kept = coerced.drop(index=rejected)
    if as_of is not None and table.event_date:
        late = kept[table.event_date] >= pd.Timestamp(as_of)
        if late.any():
            dates = (
                kept.loc[late, table.event_date].sort_values().dt.strftime("%Y-%m-%d")
            )
            findings.append(
                Finding(
                    name,
                    table.event_date,
                    "after_as_of",
                    count=int(late.sum()),
                    examples=tuple(dates.drop_duplicates().head(MAX_EXAMPLES)),
                )
            )
    return TableResult(
        findings, rows.rejects, _summarise(kept, name, len(raw)), rejected, True, kept
    )


def _pandera(
    frame: pd.DataFrame, name: str, rows: _Rows, unreadable: dict[str, pd.Series]
) -> None:
    """Run the table's pandera schema and turn its failure cases into rejects."""
    schema = table_schema(name)
    try:
        schema.validate(frame, lazy=True)
        return
    except pa.errors.SchemaErrors as e:
        cases = e.failure_cases
    cases = cases[cases["index"].notna()]
    key_cols = list(TABLES[name].key or ())
    for (column, check), group in cases.groupby(["column", "check"], sort=False):
        rule = _PANDERA_RULES.get(str(check))
        if rule is None:
            raise RuntimeError(f"unexpected pandera check {check!r} on {name}.{column}")
        where = group["index"].astype("int64").to_numpy()
        if rule == "missing_value" and column in unreadable:
            # Already rejected as unreadable: do not report the same value twice.
            where = where[~unreadable[column].to_numpy()[where]]
        if rule == "duplicate_key":
            if column != key_cols[0]:
                continue  # pandera lists a duplicate once per key column
            rows.add(
                rule, ", ".join(key_cols), where, detail="key " + " + ".join(key_cols)
            )
            continue
        show = rows.frame[column] if TABLES[name].column(column).kind != "id" else None
        rows.add(rule, str(column), where, show=show)


def _summarise(frame: pd.DataFrame, name: str, n_rows: int) -> TableSummary:
    table = TABLES[name]
    pupils = int(frame["pupil_id"].nunique()) if "pupil_id" in frame else None
    when = table.event_date or ("date_of_birth" if name == "pupils" else None)
    if when is None or when not in frame or frame[when].isna().all():
        return TableSummary(name, n_rows, pupils=pupils)
    return TableSummary(
        name,
        n_rows,
        pupils=pupils,
        date_column=when,
        first=frame[when].min().date(),
        last=frame[when].max().date(),
    )
