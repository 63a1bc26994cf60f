"""Exclusions: suspensions and sessions lost in the last year, any permanent exclusion.

Examples
--------
>>> import pandas as pd
>>> from datetime import date
>>> ex = pd.DataFrame({"pupil_id": ["a", "a", "a"], "school_urn": ["1"] * 3,
...     "start_date": pd.to_datetime(["2022-01-10", "2024-01-10", "2024-06-01"]),
...     "category": ["permanent", "suspension", "suspension"], "sessions": [0, 6, 4]})
>>> w = Windows.at(date(2024, 5, 16))
>>> exclusion_features(pd.Series(["a", "b"]), ex, w=w).values.tolist()
[[1.0, 6.0, 1.0], [0.0, 0.0, 0.0]]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cmerisk.features.window import Windows, known_at

__all__ = ["exclusion_features"]


def exclusion_features(
    pupil_ids: pd.Series, exclusions: pd.DataFrame, *, w: Windows
) -> pd.DataFrame:
    """Suspensions starting in the last 12 months, the sessions they cost (as
    recorded when each started), and whether the pupil was ever permanently
    excluded before ``as_of`` (in the records held: "ever" reaches back to the
    start of the data). The 12-month counts are missing when the data does not
    cover the 12 months."""
    ex = known_at(exclusions, table="exclusions", as_of=w.as_of)
    index = pd.Index(pupil_ids.astype(str), name="pupil_id")
    recent_susp = (ex["category"] == "suspension") & (
        ex["start_date"] >= pd.Timestamp(w.last_12_months)
    )
    per = pd.DataFrame(
        {
            "pupil_id": ex["pupil_id"].astype(str),
            "suspensions_1y": recent_susp.astype(float),
            "suspension_sessions_1y": pd.to_numeric(ex["sessions"], errors="coerce")
            .fillna(0)
            .where(recent_susp, 0.0),
            "permanent_exclusion_ever": (ex["category"] == "permanent").astype(float),
        }
    )
    g = per.groupby("pupil_id")
    agg = pd.DataFrame(
        {
            "suspensions_1y": g["suspensions_1y"].sum(),
            "suspension_sessions_1y": g["suspension_sessions_1y"].sum(),
            "permanent_exclusion_ever": g["permanent_exclusion_ever"].max(),
        }
    )
    out = agg.reindex(index).fillna(0.0).astype(float)
    if not w.covers(w.last_12_months):
        out[["suspensions_1y", "suspension_sessions_1y"]] = np.nan
    return out
