"""Ranks and bands: who is on the list the team has capacity for.

Pupils are ranked by calibrated probability, highest first. Calibration
(isotonic) maps many margins to the same probability, so ties are broken by
the raw model margin and then by pupil id: the order is total and the same on
every run. Bands:

- ``flagged``: ranks 1..``capacity`` (the team's caseload);
- ``watch``: the next ``watch_capacity`` ranks, for those whose probability
  reaches ``watch_min_probability``;
- ``low``: everyone else.

Ranking runs in DuckDB, which sorts out of core, so the whole LA need not fit
in memory.

Examples
--------
>>> import duckdb, pandas as pd
>>> scores = pd.DataFrame({"pupil_id": list("abcde"),
...                        "probability": [0.1, 0.4, 0.4, 0.01, 0.3],
...                        "margin": [-2.0, 0.1, 0.2, -4.0, -0.5]})
>>> con = duckdb.connect()
>>> ranked = rank_and_band(con.from_df(scores), capacity=2, watch_capacity=2,
...                        watch_min_probability=0.05)
>>> out = ranked.order("rank").df()
>>> out["pupil_id"].tolist(), out["rank"].tolist()
(['c', 'b', 'e', 'a', 'd'], [1, 2, 3, 4, 5])
>>> out["band"].tolist()
['flagged', 'flagged', 'watch', 'watch', 'low']
"""

from __future__ import annotations

from typing import Final, Literal

import duckdb

Band = Literal["flagged", "watch", "low"]
BANDS: Final[tuple[Band, ...]] = ("flagged", "watch", "low")

#: Bands whose pupils get reasons (and, for ``flagged``, reviewer pages) by default.
LISTED_BANDS: Final[tuple[Band, ...]] = ("flagged", "watch")


def band_sql(
    *, capacity: int, watch_capacity: int, watch_min_probability: float
) -> str:
    """The SQL ``CASE`` giving a pupil's band from its ``rank`` and ``probability``."""
    if capacity < 0 or watch_capacity < 0:
        raise ValueError("capacities cannot be negative")
    if not 0 <= watch_min_probability <= 1:
        raise ValueError("watch_min_probability must be within [0, 1]")
    return (
        f"CASE WHEN rank <= {int(capacity)} THEN 'flagged' "
        f"WHEN rank <= {int(capacity) + int(watch_capacity)} "
        f"AND probability >= {float(watch_min_probability)!r} THEN 'watch' "
        "ELSE 'low' END"
    )


def rank_and_band(
    scores: duckdb.DuckDBPyRelation,
    *,
    capacity: int,
    watch_capacity: int,
    watch_min_probability: float,
) -> duckdb.DuckDBPyRelation:
    """Add ``rank`` (1 = highest risk) and ``band`` to a relation of scores.

    ``scores`` needs ``pupil_id``, ``probability`` and ``margin`` columns; every
    other column is kept.
    """
    ranked = scores.select(
        "*, CAST(row_number() OVER (ORDER BY probability DESC, margin DESC, pupil_id) "
        "AS BIGINT) AS rank"
    )
    case = band_sql(
        capacity=capacity,
        watch_capacity=watch_capacity,
        watch_min_probability=watch_min_probability,
    )
    return ranked.select(f"*, {case} AS band")
