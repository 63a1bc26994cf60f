"""Validate an LA's raw tables against the contract, collecting every problem at once.

:func:`validate_tables` checks each table present: the small tables with the
pandera schemas of :mod:`cmerisk.data.schemas`, session marks with DuckDB SQL
(:mod:`cmerisk.data.validate_marks`), both generated from
:data:`cmerisk.data.contract.TABLES`. Then the checks across tables: every
``pupil_id`` must be in ``pupils``, episodes must not end before they start,
records dated on or after ``as_of`` are flagged. It returns a
:class:`~cmerisk.data.findings.ValidationReport`; :func:`drop_rejected` removes
the rejected rows (and the unusable tables), and only those.

Examples
--------
>>> import pandas as pd
>>> from cmerisk.data.tables import RawTables
>>> pupils = pd.DataFrame({"pupil_id": ["p1", "p2"], "sex": ["F", "X"],
...                        "date_of_birth": ["2012-03-01"] * 2,
...                        "ethnicity_major": ["White"] * 2, "idaci_decile": [3, 4]})
>>> report = validate_tables(RawTables({"pupils": pupils}))
>>> [(f.table, f.column, f.rule) for f in report.findings]
[('census', None, 'missing_table'), ('pupils', 'sex', 'unknown_code')]
>>> report.rejects()[["table", "row", "rule", "detail"]].to_dict("records")
[{'table': 'pupils', 'row': 2, 'rule': 'unknown_code', 'detail': "sex 'X'"}]
>>> len(drop_rejected(RawTables({"pupils": pupils}), report)["pupils"])
1
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from cmerisk.data.contract import REQUIRED_TABLES, TABLES
from cmerisk.data.findings import (
    Finding,
    TableSummary,
    ValidationReport,
)
from cmerisk.data.marks_clean import clean_marks
from cmerisk.data.schemas import coerce_table
from cmerisk.data.tables import RawTables
from cmerisk.data.validate_frames import RAW_UPN_PATTERN, TableResult, check_frame, isin
from cmerisk.data.validate_marks import check_marks

__all__ = ["ValidationReport", "drop_rejected", "validate_tables"]


def validate_tables(
    tables: RawTables, *, as_of: date | None = None
) -> ValidationReport:
    """Check every table present against the contract; collect all findings at once.

    Parameters
    ----------
    tables
        The LA's raw tables, as :func:`cmerisk.data.load.read_tables` gives them
        (or built in memory: columns are converted to the contract's types here).
    as_of
        When given, records dated on or after it are reported (as warnings: the
        point-in-time features ignore them).

    Returns
    -------
    ValidationReport
        Findings (errors, rejects, warnings), rejected rows, and a summary of
        each table's rows and dates.
    """
    findings: list[Finding] = []
    rejects: list[pd.DataFrame] = []
    summaries: list[TableSummary] = []
    dropped: dict[str, int] = {}
    findings += [
        Finding(t, None, "missing_table")
        for t in sorted(REQUIRED_TABLES)
        if not tables.has(t)
    ]

    valid_pupils, rejected_pupils = None, None
    results: dict[str, TableResult] = {}
    for name in tables.names:
        if name == "attendance":
            continue
        if name == "pupils":
            res = check_frame(
                tables["pupils"],
                "pupils",
                valid_pupils=None,
                rejected_pupils=None,
                as_of=as_of,
            )
            if res.usable and res.clean is not None:
                valid_pupils = res.clean["pupil_id"].dropna()
                raw_ids = coerce_table(tables["pupils"], "pupils")[0]["pupil_id"]
                rejected_pupils = raw_ids[~isin(raw_ids, valid_pupils)]
            results[name] = res
    for name in tables.names:
        if name in ("attendance", "pupils"):
            continue
        results[name] = check_frame(
            tables[name],
            name,
            valid_pupils=valid_pupils,
            rejected_pupils=rejected_pupils,
            as_of=as_of,
        )
    for name, res in results.items():
        findings += res.findings
        rejects += res.rejects
        if res.summary is not None:
            summaries.append(res.summary)
        dropped[name] = len(res.rejected_rows)
    if tables.has("attendance"):
        rc = results.get("roll_changes")
        marks = check_marks(
            tables,
            valid_pupils=valid_pupils,
            roll_changes=rc.clean if rc is not None and rc.usable else None,
            as_of=as_of,
        )
        findings += marks.findings
        if marks.rejects is not None:
            rejects.append(marks.rejects)
        if marks.summary is not None:
            summaries.append(marks.summary)
        dropped["attendance"] = marks.dropped
    reject_rows = (
        pd.concat(rejects, ignore_index=True)
        if rejects
        else ValidationReport().reject_rows
    )
    findings += _redact_raw_upns(reject_rows)
    order = {name: i for i, name in enumerate(TABLES)}
    rank = {"error": 0, "reject": 1, "warning": 2}
    findings.sort(key=lambda f: (rank[f.severity], order.get(f.table, len(order))))
    summaries.sort(key=lambda s: order[s.table])
    return ValidationReport(
        findings=tuple(findings),
        reject_rows=reject_rows,
        summaries=tuple(summaries),
        dropped_rows=dropped,
        as_of=as_of,
    )


def _redact_raw_upns(reject_rows: pd.DataFrame) -> list[Finding]:
    """Never let a raw UPN out through the rejects: blank it and say so."""
    if reject_rows.empty:
        return []
    ids = reject_rows["pupil_id"].astype("str")
    upn_like = ids.str.fullmatch(RAW_UPN_PATTERN).fillna(False).astype(bool)
    if not upn_like.any():
        return []
    reject_rows.loc[upn_like, "pupil_id"] = "<raw UPN redacted>"
    tables = reject_rows.loc[upn_like, "table"].unique()
    return [
        Finding(
            str(t),
            "pupil_id",
            "raw_upn",
            count=int((upn_like & (reject_rows["table"] == t)).sum()),
        )
        for t in tables
    ]


def drop_rejected(
    tables: RawTables,
    report: ValidationReport,
    *,
    work_dir: Path | None = None,
) -> RawTables:
    """Remove what ``report`` rejected: its rejected rows and its unusable tables.

    Every row removed is listed in ``report.rejects()`` (session marks by pupil,
    rule and value, with a count) and every table removed has an error finding,
    so nothing disappears unreported. The tables kept have the contract's types.

    Parameters
    ----------
    tables
        The tables ``report`` was made from.
    report
        Their :func:`validate_tables` report.
    work_dir
        Where rewritten session marks go when they are on disk (see
        :func:`cmerisk.data.validate_marks.clean_marks`).
    """
    unusable = set(report.unusable_tables)
    frames: dict[str, pd.DataFrame] = {}
    rejects = report.reject_rows
    for name, frame in tables.frames.items():
        if name in unusable or name == "attendance":
            continue
        summary = report.summary(name)
        if summary is None or summary.rows != len(frame):
            raise ValueError(f"table {name!r} is not the one this report was made from")
        rows = rejects.loc[(rejects["table"] == name) & rejects["row"].notna(), "row"]
        keep = np.ones(len(frame), dtype=bool)
        keep[rows.to_numpy(dtype="int64") - 1] = False
        frames[name] = coerce_table(frame.reset_index(drop=True).loc[keep], name)[0]
    out = RawTables(frames, source=tables.source)
    if not tables.has("attendance") or "attendance" in unusable:
        return out
    marks = tables.without(*tables.frames.keys() - {"attendance"})
    valid = frames["pupils"]["pupil_id"] if "pupils" in frames else None
    cleaned = clean_marks(
        marks,
        valid_pupils=valid,
        has_rejects=report.dropped_rows.get("attendance", 0) > 0,
        work_dir=work_dir,
    )
    if "attendance" in cleaned.frames:
        return out.with_frames(attendance=cleaned.frames["attendance"])
    return RawTables(
        frames, attendance_files=cleaned.attendance_files, source=tables.source
    )
