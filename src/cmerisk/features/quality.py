"""Dirty records met while building features: counted by rule, never silently lost.

Every record a feature build reads is either used once or lands in exactly one
explicit category here, with the rule that put it there (docs/features.md,
"Dirty records"). With ``on_dirty="raise"`` the first category met stops the
build with a :class:`~cmerisk.errors.DataError` naming the table, column and an
example value (codes and dates only: never an identifier).

Examples
--------
>>> q = DataQuality()
>>> q.add("attendance_unknown_code", 3, example="ZZ")
>>> q.counts
{'attendance_unknown_code': 3}
>>> print(q.describe()[0])  # doctest: +NORMALIZE_WHITESPACE
attendance.code: 3 marks with a code not in the 2024 regulations or the legacy
map (e.g. 'ZZ'); not counted as possible sessions
>>> q = DataQuality(on_dirty="raise")
>>> q.add("census_without_pupil", 1, example="2024-01-18")  # doctest: +ELLIPSIS
Traceback (most recent call last):
    ...
cmerisk.errors.DataError: census.pupil_id: 1 census rows whose pupil is not in the ...
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import pandas as pd

from cmerisk.data.contract import TABLES
from cmerisk.errors import DataError

OnDirty = Literal["count", "raise"]


class Rule(NamedTuple):
    """Where a dirty-record category applies, what it counts and what happens."""

    table: str
    column: str
    what: str
    outcome: str
    example_label: str = ""


#: Every category of dirty record, in the order the docs list them.
RULES: dict[str, Rule] = {
    "attendance_unknown_code": Rule(
        "attendance",
        "code",
        "marks with a code not in the 2024 regulations or the legacy map",
        "not counted as possible sessions",
    ),
    "attendance_unknown_session": Rule(
        "attendance", "session", "marks whose session is not AM or PM", "not counted"
    ),
    "attendance_undated": Rule(
        "attendance",
        "date",
        "marks with no date or no pupil",
        "never known, not counted",
    ),
    "attendance_outside_registration": Rule(
        "attendance",
        "date",
        "marks at a school dated before the pupil's admission to it or after their "
        "deletion from it",
        "not counted",
    ),
    "attendance_duplicate_identical": Rule(
        "attendance",
        "session",
        "extra copies of a mark (same pupil, date, session and code)",
        "the session is counted once",
    ),
    "attendance_dual_registration": Rule(
        "attendance",
        "code",
        "not-counted marks (e.g. D) alongside one counted mark for the same session",
        "the counted mark is kept",
    ),
    "attendance_duplicate_conflicting": Rule(
        "attendance",
        "code",
        "marks for a session that already has a different counted code",
        "one mark kept by precedence (unexplained > authorised > approved activity > "
        "present)",
        "kept code",
    ),
    "attendance_without_pupil": Rule(
        "attendance",
        "pupil_id",
        "marks whose pupil is not in the pupils table",
        "not used",
    ),
    "census_without_pupil": Rule(
        "census",
        "pupil_id",
        "census rows whose pupil is not in the pupils table",
        "their pupils cannot join the cohort",
        "census_date",
    ),
    "census_conflicting_main": Rule(
        "census",
        "school_urn",
        "extra single/main registrations of a pupil on the same census day",
        "the row at the lowest URN is used",
        "census_date",
    ),
    "pupils_missing_date_of_birth": Rule(
        "pupils",
        "date_of_birth",
        "pupils with no date of birth",
        "left out of the cohort (compulsory school age unknown)",
    ),
    "pupils_duplicate": Rule(
        "pupils", "pupil_id", "extra rows for the same pupil", "the first row is used"
    ),
}


#: Code columns a record cannot be used without (an unknown value drops the row).
ESSENTIAL_CODE_COLUMNS: dict[str, str] = {
    "census": "enrolment_status",
    "social_care": "status",
    "exclusions": "category",
    "roll_changes": "change",
}


def _per_table_rules() -> dict[str, Rule]:
    """The rules every small event table shares, one category per table."""
    out: dict[str, Rule] = {}
    for name, table in TABLES.items():
        if name == "attendance":
            continue
        if table.event_date is not None:
            out[f"{name}_undated"] = Rule(
                name,
                table.event_date,
                "records with no (or an unreadable) date",
                "never known, not used",
            )
        if table.references_pupils and name != "census":
            out[f"{name}_without_pupil"] = Rule(
                name,
                "pupil_id",
                "records whose pupil is not in the pupils table",
                "not used",
            )
        if any(
            c.allowed or c.low is not None or c.high is not None for c in table.columns
        ):
            essential = ESSENTIAL_CODE_COLUMNS.get(name)
            outcome = "the value is set to missing"
            if essential:
                outcome += f"; a row with an unknown {essential} is not used"
            out[f"{name}_unknown_value"] = Rule(
                name,
                "code columns",
                "values outside the contract's allowed values or range",
                outcome,
                "column=value",
            )
        if table.end_date is not None:
            out[f"{name}_end_before_start"] = Rule(
                name,
                table.end_date,
                "episodes ending before they start",
                "treated as ending on their start day",
                "start_date",
            )
    return out


RULES.update(_per_table_rules())


class Finding(NamedTuple):
    category: str
    records: int
    example: str


class DataQuality(dict[str, int]):
    """Counts of dirty records by category (see :data:`RULES`).

    A ``dict`` of category -> count (so it travels in ``DataFrame.attrs`` and
    JSON), plus one example value per category.

    Parameters
    ----------
    on_dirty
        ``"count"`` (default) records each category and carries on by its rule;
        ``"raise"`` stops at the first with a :class:`~cmerisk.errors.DataError`.
    """

    def __init__(self, on_dirty: OnDirty = "count") -> None:
        super().__init__()
        self.on_dirty: OnDirty = on_dirty
        self.examples: dict[str, str] = {}

    def add(self, category: str, count: int, *, example: Any = None) -> None:
        """Record ``count`` dirty records of ``category`` (nothing when 0)."""
        if category not in RULES:
            raise KeyError(f"unknown data-quality category {category!r}")
        count = int(count)
        if count <= 0:
            return
        shown = "" if example is None else str(example)
        if self.on_dirty == "raise":
            raise DataError(_sentence(Finding(category, count, shown)))
        self[category] = self.get(category, 0) + count
        if shown:
            self.examples.setdefault(category, shown)

    def extend(self, other: DataQuality) -> None:
        """Add another result's counts to this one."""
        for category, count in other.items():
            self.add(category, count, example=other.examples.get(category))

    @property
    def counts(self) -> dict[str, int]:
        """Count per category, in :data:`RULES` order."""
        return {k: self[k] for k in RULES if k in self}

    @property
    def findings(self) -> list[Finding]:
        return [Finding(k, n, self.examples.get(k, "")) for k, n in self.counts.items()]

    @property
    def clean(self) -> bool:
        return not self

    def describe(self) -> list[str]:
        """One plain sentence per category met."""
        return [_sentence(f) for f in self.findings]

    def to_frame(self) -> pd.DataFrame:
        """Findings as rows: category, table, column, count, example, outcome."""
        rows = []
        for f in self.findings:
            rule = RULES[f.category]
            rows.append(
                {
                    "category": f.category,
                    "table": rule.table,
                    "column": rule.column,
                    "count": f.records,
                    "example": f.example,
                    "outcome": rule.outcome,
                }
            )
        cols = ["category", "table", "column", "count", "example", "outcome"]
        return pd.DataFrame(rows, columns=cols)


def _sentence(f: Finding) -> str:
    rule = RULES[f.category]
    where = f"{rule.table}.{rule.column}"
    example = ""
    if f.example:
        label = f"{rule.example_label} " if rule.example_label else ""
        shown = f.example if rule.example_label else repr(f.example)
        example = f" (e.g. {label}{shown})"
    return f"{where}: {f.records} {rule.what}{example}; {rule.outcome}"


def rules_markdown() -> str:
    """The dirty-record table of docs/features.md, generated from :data:`RULES`.

    >>> rules_markdown().splitlines()[0]
    '| category | table.column | what is counted | what happens |'
    """
    lines = [
        "| category | table.column | what is counted | what happens |",
        "|---|---|---|---|",
    ]
    for category, rule in RULES.items():
        lines.append(
            f"| `{category}` | {rule.table}.{rule.column} | {rule.what} "
            f"| {rule.outcome} |"
        )
    return "\n".join(lines) + "\n"
