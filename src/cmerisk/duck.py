"""One way to open DuckDB connections, so every one behaves the same.

DuckDB draws its own progress bar on long queries (in Jupyter it asks for
ipywidgets, and fails without it). cmerisk shows its own progress with rich, so
each connection turns DuckDB's off; where the setting cannot be changed (some
front-ends refuse it) the connection is used as it is.

>>> con = connect()
>>> con.execute("SELECT current_setting('enable_progress_bar')").fetchone()
(False,)
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import duckdb

ConfigValue = str | bool | int | float | list[str]


def connect(
    database: str | Path = ":memory:",
    *,
    config: dict[str, ConfigValue] | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with DuckDB's own progress bar turned off."""
    con = duckdb.connect(str(database), config=config or {})
    quiet(con)
    return con


def quiet(con: duckdb.DuckDBPyConnection) -> None:
    """Turn off DuckDB's progress bar on ``con`` when the front-end allows it."""
    with contextlib.suppress(duckdb.Error):
        con.execute("SET enable_progress_bar = false")
