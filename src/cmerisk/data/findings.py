"""What validation found: the rules, one finding per broken rule, and the report.

Each rule has a short id, plain words and a severity:

- ``error``: the table or file cannot be used (a required table or column is
  missing, a file cannot be read, no value of a column has the right type);
- ``reject``: particular rows cannot be used; they are listed by
  :meth:`ValidationReport.rejects` and removed by
  :func:`cmerisk.data.validate.drop_rejected`;
- ``warning``: usable but suspicious (records dated on or after ``as_of``,
  legacy codes after August 2024, marks outside a pupil's registration).

Examples never show an identifier: a finding names rows by their position
(``row 3``) and shows codes and dates, which are not personal data.

Examples
--------
>>> RULES["unknown_code"].severity, RULES["unknown_code"].words
('reject', 'value is not one of the allowed codes')
>>> f = Finding("census", "nc_year", "unknown_code", count=2, examples=("row 3: '13'",))
>>> f.severity
'reject'
>>> f.message
"census.nc_year: value is not one of the allowed codes (2 rows; e.g. row 3: '13')"
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final, Literal

import pandas as pd

from cmerisk.errors import DataError

Severity = Literal["error", "reject", "warning"]

#: How many example values a finding keeps.
MAX_EXAMPLES: Final[int] = 5

#: A column is of the wrong type (an error) when none of its values can be read
#: and it has at least this many; with fewer, its rows are rejected one by one.
MIN_VALUES_FOR_WRONG_TYPE: Final[int] = 2

#: Columns of :meth:`ValidationReport.rejects`.
REJECT_COLUMNS: Final[tuple[str, ...]] = (
    "pupil_id",
    "table",
    "row",
    "column",
    "rule",
    "detail",
    "rows",
)


@dataclass(frozen=True)
class Rule:
    """One validation rule: a short id, its severity and its meaning in plain words."""

    id: str
    severity: Severity
    words: str


RULES: Final[dict[str, Rule]] = {
    r.id: r
    for r in (
        # errors: the table or file cannot be used
        Rule("missing_table", "error", "a required table is missing"),
        Rule(
            "ambiguous_table", "error", "more than one file or folder holds this table"
        ),
        Rule("unreadable_file", "error", "the file cannot be read"),
        Rule("empty_table", "error", "a required table has no rows"),
        Rule("missing_column", "error", "a required column is missing"),
        Rule("wrong_type", "error", "no value in the column can be read as its type"),
        Rule(
            "raw_upn",
            "error",
            "identifiers look like raw UPNs: run `cmerisk pseudonymise` first",
        ),
        # rejects: these rows cannot be used
        Rule("unreadable_value", "reject", "value cannot be read as the column's type"),
        Rule("missing_value", "reject", "a required value is empty"),
        Rule("unknown_code", "reject", "value is not one of the allowed codes"),
        Rule("out_of_range", "reject", "number outside its allowed range"),
        Rule("implausible_date", "reject", "date outside the plausible range"),
        Rule("duplicate_key", "reject", "several rows share a key but disagree"),
        Rule("duplicate_row", "reject", "an exact copy of an earlier row"),
        Rule(
            "unknown_pupil",
            "reject",
            "pupil_id not in the pupils table (or its pupils row was rejected)",
        ),
        Rule("end_before_start", "reject", "end date before start date"),
        # warnings: usable but suspicious
        Rule(
            "after_as_of",
            "warning",
            "dated on or after as_of: ignored by point-in-time features",
        ),
        Rule(
            "legacy_code_after_2024",
            "warning",
            "legacy code (H, F, J) used on or after 2024-08-19",
        ),
        Rule(
            "new_code_before_2024",
            "warning",
            "code introduced in August 2024 used before 2024-08-19",
        ),
        Rule(
            "outside_registration",
            "warning",
            "session mark while the pupil was not on that school's roll",
        ),
        Rule("unknown_column", "warning", "column not in the contract: ignored"),
        Rule(
            "unknown_file", "warning", "file or folder is not a contract table: ignored"
        ),
        Rule("no_rows", "warning", "an optional table has no rows"),
    )
}


@dataclass(frozen=True)
class Finding:
    """One broken rule in one table (and column, when it concerns one).

    ``count`` is the number of rows concerned (0 for findings about a whole
    table, file or column); ``examples`` are a few of them, identifiers redacted.
    """

    table: str
    column: str | None
    rule: str
    count: int = 0
    examples: tuple[str, ...] = ()
    detail: str = ""

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"unknown rule {self.rule!r}")

    @property
    def severity(self) -> Severity:
        return RULES[self.rule].severity

    @property
    def words(self) -> str:
        return RULES[self.rule].words

    @property
    def where(self) -> str:
        return self.table if self.column is None else f"{self.table}.{self.column}"

    @property
    def message(self) -> str:
        text = f"{self.where}: {self.words}"
        if self.detail:
            text += f" ({self.detail})"
        parts = []
        if self.count:
            parts.append(f"{self.count} {'row' if self.count == 1 else 'rows'}")
        if self.examples:
            parts.append("e.g. " + ", ".join(self.examples))
        return text + (f" ({'; '.join(parts)})" if parts else "")


@dataclass(frozen=True)
class TableSummary:
    """Row count, distinct pupils and date range of one table."""

    table: str
    rows: int
    pupils: int | None = None
    date_column: str | None = None
    first: date | None = None
    last: date | None = None


def _empty_rejects() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "pupil_id": pd.Series(dtype="str"),
            "table": pd.Series(dtype="str"),
            "row": pd.Series(dtype="Int64"),
            "column": pd.Series(dtype="str"),
            "rule": pd.Series(dtype="str"),
            "detail": pd.Series(dtype="str"),
            "rows": pd.Series(dtype="int64"),
        }
    )


@dataclass(frozen=True)
class ValidationReport:
    """Everything validation found in an LA's tables.

    Parameters
    ----------
    findings
        One :class:`Finding` per broken rule, table and column.
    reject_rows
        One row per rejected record and rule (columns :data:`REJECT_COLUMNS`):
        ``row`` is the record's 1-based position in its table; session marks
        are grouped per pupil, rule and value, with ``row`` empty and ``rows``
        counting the marks.
    summaries
        Row counts and date ranges of the tables read.
    dropped_rows
        Per table, how many rows :func:`~cmerisk.data.validate.drop_rejected` removes.
    as_of
        The as-of date the tables were checked against, if any.
    """

    findings: tuple[Finding, ...] = ()
    reject_rows: pd.DataFrame = field(default_factory=_empty_rejects)
    summaries: tuple[TableSummary, ...] = ()
    dropped_rows: Mapping[str, int] = field(default_factory=dict)
    as_of: date | None = None

    @property
    def errors(self) -> list[Finding]:
        """Findings that make a table or file unusable."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def reject_findings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "reject"]

    @property
    def ok(self) -> bool:
        """True when nothing is unusable and no row is rejected (warnings allowed)."""
        return not self.errors and not self.reject_findings

    @property
    def unusable_tables(self) -> list[str]:
        """Tables with an error finding (they cannot be used at all)."""
        return sorted({f.table for f in self.errors})

    def summary(self, table: str) -> TableSummary | None:
        return next((s for s in self.summaries if s.table == table), None)

    def to_frame(self) -> pd.DataFrame:
        """The findings as a table: table, column, rule, severity, words, count..."""
        return pd.DataFrame(
            {
                "table": [f.table for f in self.findings],
                "column": [f.column for f in self.findings],
                "rule": [f.rule for f in self.findings],
                "severity": [f.severity for f in self.findings],
                "words": [f.words for f in self.findings],
                "detail": [f.detail for f in self.findings],
                "count": pd.Series([f.count for f in self.findings], dtype="int64"),
                "examples": ["; ".join(f.examples) for f in self.findings],
            }
        )

    def rejects(self) -> pd.DataFrame:
        """Rejected records: pupil_id, table, row, column, rule, detail, rows."""
        return self.reject_rows.copy()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready account (no identifiers): findings, summaries, dropped rows."""
        return {
            "ok": self.ok,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "findings": [
                {
                    "table": f.table,
                    "column": f.column,
                    "rule": f.rule,
                    "severity": f.severity,
                    "words": f.words,
                    "detail": f.detail,
                    "count": f.count,
                    "examples": list(f.examples),
                }
                for f in self.findings
            ],
            "tables": [
                {
                    "table": s.table,
                    "rows": s.rows,
                    "pupils": s.pupils,
                    "date_column": s.date_column,
                    "first": s.first.isoformat() if s.first else None,
                    "last": s.last.isoformat() if s.last else None,
                    "rows_rejected": int(self.dropped_rows.get(s.table, 0)),
                }
                for s in self.summaries
            ],
        }

    def raise_for_errors(self) -> None:
        """Raise :class:`~cmerisk.errors.DataError` listing every error finding."""
        if self.errors:
            lines = "\n".join(f"  - {f.message}" for f in self.errors)
            raise DataError(f"the tables cannot be used:\n{lines}")
