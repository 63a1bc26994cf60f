"""Row numbers travel with chunks: rejects and messages name the LA file's row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cmerisk.data.tables import RawTables
from cmerisk.scoring.prepare import original_row, remap_message, take_row_numbers


def _tables() -> RawTables:
    pupils = pd.DataFrame({"pupil_id": ["a", "b", "c"], "__row": [7, 2, 11]})
    census = pd.DataFrame({"pupil_id": ["a"], "census_date": ["2024-10-03"]})
    return RawTables({"pupils": pupils, "census": census})


def test_row_column_is_taken_out_and_kept_aside():
    tables, rows = take_row_numbers(_tables())
    assert "__row" not in tables["pupils"].columns
    assert list(tables["pupils"]["pupil_id"]) == ["a", "b", "c"]
    assert rows["pupils"].tolist() == [7, 2, 11] and "census" not in rows


@pytest.mark.parametrize(
    ("table", "row", "expected"),
    [("pupils", 1, 7), ("pupils", 3, 11), ("census", 1, 1)],
)
def test_chunk_rows_map_to_la_rows(table, row, expected):
    _, rows = take_row_numbers(_tables())
    assert original_row(rows, table, row) == expected


def test_missing_row_stays_missing():
    _, rows = take_row_numbers(_tables())
    assert original_row(rows, "pupils", None) is None
    assert original_row(rows, "pupils", pd.NA) is pd.NA


def test_messages_quote_la_rows():
    rows = {"census": np.array([40.0, 12.0, 9.0])}
    text = "census.nc_year: unknown code (2 rows; e.g. row 2: '13', row 3: '14')"
    assert remap_message(text, table="census", rows=rows) == (
        "census.nc_year: unknown code (2 rows; e.g. row 12: '13', row 9: '14')"
    )
    assert remap_message(text, table="pupils", rows=rows) == text
