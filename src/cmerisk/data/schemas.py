"""Pandera schemas for the raw tables, built from the contract declarations.

Nothing here restates a column: :func:`table_schema` reads
:data:`cmerisk.data.contract.TABLES` and turns each declared column into a
pandera column with its type, nullability, allowed codes and range, and each
declared key into a uniqueness check. Every check carries the id of the rule it
enforces (see :mod:`cmerisk.data.findings`), so a failure maps straight onto a
finding.

:func:`coerce_table` turns whatever a file held (strings from CSV, integers for
codes, ``datetime.date`` objects from Parquet) into the contract's types, and
says which values could not be read, so validation can reject those rows by
name instead of silently emptying them.

Examples
--------
>>> import pandas as pd
>>> frame = pd.DataFrame({"pupil_id": ["p1"], "start_date": ["2023-09-04"],
...                       "end_date": ["04/10/2023"]})
>>> coerced, bad = coerce_table(frame, "ehe")
>>> str(coerced["end_date"].iloc[0].date()), dict(bad)
('2023-10-04', {})
>>> sorted(table_schema("ehe").columns)
['end_date', 'pupil_id', 'start_date']
"""

from __future__ import annotations

from datetime import date
from functools import cache
from typing import Final

import numpy as np
import pandas as pd
import pandera.pandas as pa

from cmerisk.data.contract import TABLES, Column, ColumnKind

#: pandas dtype of each kind of column once loaded.
PANDAS_DTYPES: Final[dict[ColumnKind, str]] = {
    "id": "str",
    "string": "str",
    "date": "datetime64[us]",
    "int": "Int64",
    "float": "Float64",
    "bool": "boolean",
}

#: Plausible dates of birth for pupils of compulsory school age in the data years.
BIRTH_DATE_RANGE: Final[tuple[date, date]] = (date(1995, 1, 1), date(2025, 12, 31))
#: Plausible dates for every other event (census days, marks, episodes).
EVENT_DATE_RANGE: Final[tuple[date, date]] = (date(2000, 1, 1), date(2100, 12, 31))

#: Spellings read as booleans (compared lower-cased, blanks stripped).
TRUE_SPELLINGS: Final[frozenset[str]] = frozenset({"true", "t", "yes", "y", "1", "1.0"})
FALSE_SPELLINGS: Final[frozenset[str]] = frozenset(
    {"false", "f", "no", "n", "0", "0.0"}
)

#: Date formats tried, in order, on text: ISO 8601, then the UK day-first form.
DATE_FORMATS: Final[tuple[str, ...]] = ("ISO8601", "%d/%m/%Y")


def date_range(column: Column) -> tuple[date, date]:
    """The plausible range of a date column (dates of birth differ from events)."""
    return BIRTH_DATE_RANGE if column.name == "date_of_birth" else EVENT_DATE_RANGE


def _checks(column: Column) -> list[pa.Check]:
    checks: list[pa.Check] = []
    if column.allowed is not None:
        checks.append(pa.Check.isin(list(column.allowed), error="unknown_code"))
    if column.kind == "date":
        low, high = date_range(column)
        checks.append(
            pa.Check.in_range(
                pd.Timestamp(low), pd.Timestamp(high), error="implausible_date"
            )
        )
    if column.low is not None:
        checks.append(pa.Check.ge(column.low, error="out_of_range"))
    if column.high is not None:
        checks.append(pa.Check.le(column.high, error="out_of_range"))
    return checks


def column_schema(column: Column) -> pa.Column:
    """The pandera column for one contract column."""
    return pa.Column(
        PANDAS_DTYPES[column.kind],
        checks=_checks(column),
        nullable=column.nullable,
        required=column.required,
        name=column.name,
        description=column.description,
    )


@cache
def table_schema(name: str) -> pa.DataFrameSchema:
    """The pandera schema of raw table ``name``, from its contract declaration.

    Columns outside the contract are allowed (validation warns about them);
    the table's key, when it has one, must be unique.
    """
    table = TABLES[name]
    return pa.DataFrameSchema(
        {c.name: column_schema(c) for c in table.columns},
        unique=list(table.key) if table.key else None,
        report_duplicates="all",
        strict=False,
        name=name,
        description=table.grain,
    )


# --- coercion ----------------------------------------------------------------


def _blank_to_na(values: pd.Series) -> pd.Series:
    text = values.astype("str").str.strip()
    return text.mask(text == "")


def _as_text(values: pd.Series) -> pd.Series:
    """Strings as they were written; whole-number floats lose their ``.0``."""
    if pd.api.types.is_float_dtype(values.dtype):
        whole = values.notna() & (values == values.round())
        text = values.astype("str")
        ints = values[whole].astype("int64").astype("str")
        return _blank_to_na(text.mask(whole, ints))
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(
        values.dtype
    ):
        return _blank_to_na(values.astype("str").mask(values.isna()))
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return _blank_to_na(values.dt.strftime("%Y-%m-%d"))
    return _blank_to_na(values)


def _as_dates(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        if getattr(values.dt, "tz", None) is not None:
            values = values.dt.tz_localize(None)
        return values.dt.normalize().astype(PANDAS_DTYPES["date"])
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(
        values.dtype
    ):
        # A number is not a date (an Excel serial day, say): every value is unreadable.
        return pd.Series(pd.NaT, index=values.index, dtype=PANDAS_DTYPES["date"])
    if values.dtype == object and values.map(lambda v: hasattr(v, "year")).all():
        # datetime.date objects, as pyarrow gives for date32 columns.
        return pd.to_datetime(values).astype(PANDAS_DTYPES["date"])
    text = _blank_to_na(values)
    out = pd.Series(pd.NaT, index=values.index, dtype=PANDAS_DTYPES["date"])
    todo = text.notna()
    for fmt in DATE_FORMATS:
        if not todo.any():
            break
        parsed = pd.to_datetime(text[todo], format=fmt, errors="coerce")
        out[todo] = parsed.dt.normalize().astype(PANDAS_DTYPES["date"])
        todo &= out.isna()
    return out


def _as_numbers(values: pd.Series, kind: ColumnKind) -> pd.Series:
    if pd.api.types.is_bool_dtype(values.dtype):
        numbers = pd.Series(np.nan, index=values.index)
    elif pd.api.types.is_numeric_dtype(values.dtype):
        numbers = values.astype("float64")
    else:
        numbers = pd.to_numeric(_blank_to_na(values), errors="coerce").astype("float64")
    if kind == "int":
        numbers = numbers.where(numbers == numbers.round())
        return numbers.astype("Int64")
    return numbers.astype("Float64")


def _as_booleans(values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("boolean")
    text = _as_text(values).str.lower()
    out = pd.Series(pd.NA, index=values.index, dtype="boolean")
    out[text.isin(TRUE_SPELLINGS)] = True
    out[text.isin(FALSE_SPELLINGS)] = False
    return out


def coerce_column(values: pd.Series, column: Column) -> tuple[pd.Series, pd.Series]:
    """Convert one column to its contract type.

    Returns the converted column and a boolean mask of the values that were
    present but could not be read (they are missing in the converted column).
    Blank strings count as missing, not as unreadable.

    >>> from cmerisk.data.contract import TABLES
    >>> col = TABLES["roll_changes"].column("destination_known")
    >>> out, bad = coerce_column(pd.Series(["Yes", "n", "", "maybe"]), col)
    >>> out.tolist(), bad.tolist()
    ([True, False, <NA>, <NA>], [False, False, False, True])
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(values.cat.categories.dtype)
    present = values.notna()
    if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
        present &= values.astype("str").str.strip().ne("")
    if column.kind in ("id", "string"):
        out = _as_text(values)
    elif column.kind == "date":
        out = _as_dates(values)
    elif column.kind in ("int", "float"):
        out = _as_numbers(values, column.kind)
    else:
        out = _as_booleans(values)
    bad = (present & out.isna()).astype(bool)
    return out, bad


def coerce_table(
    frame: pd.DataFrame, name: str
) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """Convert the contract columns of ``frame`` to their types.

    Columns the contract does not know are kept as they are. Returns the
    converted table (index reset to 0..n-1) and, for each column with values
    that could not be read, a boolean mask of those rows.
    """
    frame = frame.reset_index(drop=True)
    table = TABLES[name]
    converted: dict[str, pd.Series] = {}
    bad: dict[str, pd.Series] = {}
    for column in table.columns:
        if column.name not in frame.columns:
            continue
        values, unreadable = coerce_column(frame[column.name], column)
        converted[column.name] = values
        if unreadable.any():
            bad[column.name] = unreadable
    return frame.assign(**converted), bad
