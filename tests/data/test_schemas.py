from __future__ import annotations

import datetime as dt

import pandas as pd
import pandera.pandas as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cmerisk.data.contract import TABLES, Column
from cmerisk.data.schemas import (
    PANDAS_DTYPES,
    coerce_column,
    coerce_table,
    date_range,
    table_schema,
)


@pytest.mark.parametrize("name", list(TABLES))
def test_each_schema_declares_exactly_the_contract(name: str) -> None:
    table = TABLES[name]
    schema = table_schema(name)
    assert list(schema.columns) == [c.name for c in table.columns]
    for c in table.columns:
        col = schema.columns[c.name]
        assert str(col.dtype) == str(pa.Column(PANDAS_DTYPES[c.kind]).dtype)
        assert (col.nullable, col.required) == (c.nullable, c.required)
    assert schema.unique == (list(table.key) if table.key else None)


@pytest.mark.parametrize(
    ("table", "column", "bad", "error"),
    [
        ("census", "nc_year", "13", "unknown_code"),
        ("pupils", "idaci_decile", 0, "out_of_range"),
        ("pupils", "date_of_birth", pd.Timestamp("1990-01-01"), "implausible_date"),
        ("exclusions", "sessions", -2, "out_of_range"),
    ],
)
def test_schema_checks_carry_their_rule_id(
    table: str, column: str, bad: object, error: str
) -> None:
    col = TABLES[table].column(column)
    schema = pa.DataFrameSchema({column: table_schema(table).columns[column]})
    values, _ = coerce_column(pd.Series([bad]), col)
    with pytest.raises(pa.errors.SchemaErrors) as e:
        schema.validate(pd.DataFrame({column: values}), lazy=True)
    assert set(e.value.failure_cases["check"]) == {error}


def test_dates_of_birth_have_their_own_plausible_range() -> None:
    dob = TABLES["pupils"].column("date_of_birth")
    event = TABLES["census"].column("census_date")
    assert date_range(dob) == (dt.date(1995, 1, 1), dt.date(2025, 12, 31))
    assert date_range(event) == (dt.date(2000, 1, 1), dt.date(2100, 12, 31))


def _col(kind: str) -> Column:
    return Column("x", kind, "test column", nullable=True)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "given_values", "expected", "unreadable"),
    [
        (
            "date",
            ["2023-09-04", "04/09/2023", "", None],
            ["2023-09-04", "2023-09-04", None, None],
            [],
        ),
        ("date", ["2023-02-30", "yesterday"], [None, None], [0, 1]),
        ("date", [dt.date(2023, 9, 4), None], ["2023-09-04", None], []),
        ("date", pd.to_datetime(["2023-09-04 13:45"]), ["2023-09-04"], []),
        ("date", [20230904], [None], [0]),
        (
            "int",
            ["3", "3.0", " 4 ", "2.5", "x", ""],
            [3, 3, 4, None, None, None],
            [3, 4],
        ),
        ("int", [1.0, None], [1, None], []),
        (
            "bool",
            ["TRUE", "no", "Y", "0", "1", "maybe", ""],
            [True, False, True, False, True, None, None],
            [5],
        ),
        ("bool", [True, False], [True, False], []),
        ("string", [7, 12], ["7", "12"], []),
        ("string", [7.0, None, 2.5], ["7", None, "2.5"], []),
        ("string", ["  K ", ""], ["K", None], []),
        ("float", ["0.5", "x"], [0.5, None], [1]),
    ],
)
def test_coerce_column_reads_the_usual_spellings_and_names_the_rest(
    kind: str, given_values: list, expected: list, unreadable: list[int]
) -> None:
    values, bad = coerce_column(pd.Series(given_values), _col(kind))
    assert str(values.dtype) == PANDAS_DTYPES[kind]
    shown = [
        None if pd.isna(v) else (str(v.date()) if isinstance(v, pd.Timestamp) else v)
        for v in values
    ]
    assert shown == expected
    assert list(bad[bad].index) == unreadable


def test_categorical_columns_are_read_as_their_values() -> None:
    values, bad = coerce_column(
        pd.Series(["N", None, "K"], dtype="category"),
        TABLES["census"].column("sen_provision"),
    )
    assert values.tolist()[0] == "N" and pd.isna(values.iloc[1]) and not bad.any()


@given(
    st.lists(
        st.one_of(
            st.none(),
            st.dates(dt.date(1990, 1, 1), dt.date(2030, 1, 1)).map(str),
            st.text(max_size=8),
        ),
        max_size=12,
    )
)
def test_coercion_is_idempotent_and_unreadable_means_missing(values: list) -> None:
    column = TABLES["ehe"].column("end_date")
    once, bad = coerce_column(pd.Series(values, dtype=object), column)
    twice, bad_again = coerce_column(once, column)
    pd.testing.assert_series_equal(once, twice)
    assert not bad_again.any()
    assert once[bad].isna().all()


def test_coerce_table_keeps_unknown_columns_and_resets_the_index() -> None:
    frame = pd.DataFrame(
        {
            "pupil_id": ["a"],
            "start_date": ["2023-01-01"],
            "end_date": [None],
            "note": ["x"],
        },
        index=[7],
    )
    out, bad = coerce_table(frame, "ehe")
    assert list(out.index) == [0] and out["note"].tolist() == ["x"] and bad == {}
