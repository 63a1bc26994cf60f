"""Needs: SEN provision, SEMH, and change in SEN status, from the school census.

Examples
--------
>>> import pandas as pd
>>> from datetime import date
>>> cohort = pd.DataFrame({"pupil_id": ["a", "b"], "sen_provision": ["K", "N"],
...     "sen_primary_need": ["SEMH", None]})
>>> census = pd.DataFrame({"pupil_id": ["a", "b", "a", "b"],
...     "census_date": pd.to_datetime(["2023-05-18"] * 2 + ["2024-01-18"] * 2),
...     "enrolment_status": ["C"] * 4, "sen_provision": ["N", "N", "K", "N"]})
>>> needs_features(cohort, census, w=Windows.at(date(2024, 5, 16)))[
...     ["sen_any", "semh_need", "sen_changed_1y"]].values.tolist()
[[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cmerisk.features.cohort import MAIN_REGISTRATION
from cmerisk.features.window import Windows, known_at

__all__ = ["needs_features"]


def _flag(mask: pd.Series, known: pd.Series) -> pd.Series:
    return pd.Series(np.where(known, mask.astype(float), np.nan), index=mask.index)


def needs_features(
    cohort: pd.DataFrame, census: pd.DataFrame, *, w: Windows
) -> pd.DataFrame:
    """SEN features for the cohort (indexed by ``pupil_id``).

    ``sen_any``, ``ehc_plan`` and ``semh_need`` read the pupil's latest
    single/main census row before ``as_of``. ``sen_changed_1y`` looks at the
    pupil's single/main census rows of the last 12 months: 1 when their SEN
    provision differs, 0 when it does not, missing with fewer than two rows or
    when the data does not cover the 12 months. Also returns the audit columns
    ``sen_provision`` (N/K/E) and ``semh`` (boolean).
    """
    c = cohort.set_index("pupil_id")
    prov = c["sen_provision"]
    known = prov.notna()
    out = pd.DataFrame(index=c.index)
    out["sen_any"] = _flag(prov.isin(["K", "E"]), known)
    out["ehc_plan"] = _flag(prov == "E", known)
    out["semh_need"] = _flag(c["sen_primary_need"] == "SEMH", known)

    cols = ["pupil_id", "census_date", "enrolment_status", "sen_provision"]
    recent = known_at(census[cols], table="census", as_of=w.as_of)
    recent = recent.loc[
        recent["enrolment_status"].isin(MAIN_REGISTRATION).to_numpy()
        & (recent["census_date"] >= pd.Timestamp(w.last_12_months)).to_numpy()
    ]
    g = recent.assign(pupil_id=recent["pupil_id"].astype(str)).groupby("pupil_id")[
        "sen_provision"
    ]
    rows = g.size().reindex(c.index).fillna(0)
    kinds = g.nunique().reindex(c.index).fillna(0)
    covered = w.covers(w.last_12_months)
    out["sen_changed_1y"] = _flag(kinds > 1, known & (rows >= 2) & covered)

    out["sen_provision"] = prov.astype("str").where(known)
    semh = (c["sen_primary_need"] == "SEMH").astype("boolean")
    out["semh"] = semh.where(known, pd.NA)
    return out
