"""Social care: current and recent CIN / CPP / CLA episodes.

Children in need (CIN) include those on a child protection plan (CPP) and
looked-after children (CLA), as in DfE statistics: ``cin_current`` is any open
episode; ``cpp_current`` and ``cla_current`` narrow it.

Examples
--------
>>> import pandas as pd
>>> from datetime import date
>>> care = pd.DataFrame({"pupil_id": ["a", "a", "b"], "status": ["CIN", "CPP", "CIN"],
...     "start_date": pd.to_datetime(["2021-01-04", "2024-02-01", "2020-01-06"]),
...     "end_date": pd.to_datetime(["2021-06-01", "2024-09-01", "2020-05-01"])})
>>> w = Windows.at(date(2024, 5, 16))
>>> f = social_care_features(pd.Series(["a", "b", "c"]), care, w=w)
>>> cols = ["cin_current", "cpp_current", "social_care_episodes_3y", "cin_status"]
>>> f[cols].values.tolist()
[[1.0, 1.0, 2.0, 'CPP'], [0.0, 0.0, 0.0, 'none'], [0.0, 0.0, 0.0, 'none']]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cmerisk.features.window import Windows, known_at

__all__ = ["social_care_features"]


def social_care_features(
    pupil_ids: pd.Series, social_care: pd.DataFrame, *, w: Windows
) -> pd.DataFrame:
    """Social-care features for ``pupil_ids`` (indexed by ``pupil_id``).

    An episode is open at ``as_of`` when it started before ``as_of`` and its
    end is missing or not yet known (on or after ``as_of``). It counts in the
    last 3 years when it was open at any time in ``[as_of - 3 years, as_of)``;
    when the data does not cover those 3 years, ``social_care_any_3y`` and
    ``social_care_episodes_3y`` are missing (an episode that ended before the
    data started is not in it). Also returns the audit column ``cin_status``
    (CLA > CPP > CIN > none).
    """
    sc = known_at(social_care, table="social_care", as_of=w.as_of)
    index = pd.Index(pupil_ids.astype(str), name="pupil_id")
    is_open = sc["end_date"].isna()
    recent = is_open | (sc["end_date"] >= pd.Timestamp(w.last_3_years))
    per = pd.DataFrame(
        {
            "pupil_id": sc["pupil_id"].astype(str),
            "open": is_open,
            "cpp": is_open & (sc["status"] == "CPP"),
            "cla": is_open & (sc["status"] == "CLA"),
            "recent": recent,
        }
    )
    g = per.groupby("pupil_id")
    agg = pd.DataFrame(
        {
            "cin_current": g["open"].any(),
            "cpp_current": g["cpp"].any(),
            "cla_current": g["cla"].any(),
            "social_care_any_3y": g["recent"].any(),
            "social_care_episodes_3y": g["recent"].sum(),
        }
    ).reindex(index)
    out = agg.fillna(0).astype(float)
    if not w.covers(w.last_3_years):
        out[["social_care_any_3y", "social_care_episodes_3y"]] = np.nan
    status = pd.Series("none", index=index, dtype=object)
    status[out["cin_current"] == 1] = "CIN"
    status[out["cpp_current"] == 1] = "CPP"
    status[out["cla_current"] == 1] = "CLA"
    out["cin_status"] = status.astype("str")
    return out
