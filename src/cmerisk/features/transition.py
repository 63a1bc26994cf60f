"""Transition: NC year, Year 6, age, summer birth and the Year 6 secondary offer.

Examples
--------
>>> import pandas as pd
>>> from datetime import date
>>> cohort = pd.DataFrame({"pupil_id": ["a", "b"], "nc_year": ["6", "R"],
...     "date_of_birth": pd.to_datetime(["2013-06-30", "2019-01-15"])})
>>> offers = pd.DataFrame({"pupil_id": ["a"], "school_urn": ["200001"],
...     "offer_date": pd.to_datetime(["2024-03-01"])})
>>> f = transition_features(cohort, offers, w=Windows.at(date(2024, 5, 16)))
>>> f[["nc_year_num", "in_year_6", "summer_born", "no_secondary_offer",
...    "secondary_offer_urn"]].values.tolist()
[[6.0, 1.0, 1.0, 0.0, '200001'], [0.0, 0.0, 0.0, nan, nan]]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cmerisk.data.codes import NC_YEARS
from cmerisk.features.cohort import age_in_months
from cmerisk.features.window import Windows, known_at

__all__ = ["transition_features"]

#: Months of birth of summer-born children (1 April to 31 August).
SUMMER_MONTHS = (4, 5, 6, 7, 8)


def transition_features(
    cohort: pd.DataFrame, secondary_offers: pd.DataFrame | None, *, w: Windows
) -> pd.DataFrame:
    """Transition features for the cohort (indexed by ``pupil_id``).

    ``no_secondary_offer`` is 1 for a Year 6 pupil with no secondary offer
    dated before ``as_of``, 0 for one with an offer, missing for other years
    and when the data does not cover this school year (offers are made in it);
    it and the carried ``secondary_offer_urn`` (the latest offer) are present
    only with the ``secondary_offers`` table. Also carries ``age_years``.
    """
    c = cohort.set_index("pupil_id")
    out = pd.DataFrame(index=c.index)
    order = {y: float(i) for i, y in enumerate(NC_YEARS)}
    out["nc_year_num"] = c["nc_year"].map(order).astype(float)
    year6 = c["nc_year"] == "6"
    out["in_year_6"] = np.where(c["nc_year"].isna(), np.nan, year6.astype(float))
    months = age_in_months(c["date_of_birth"], w.as_of)
    out["age_months"] = months
    out["age_years"] = (months // 12).astype("Int64")
    dob = pd.to_datetime(c["date_of_birth"])
    out["summer_born"] = np.where(
        dob.isna(), np.nan, dob.dt.month.isin(SUMMER_MONTHS).astype(float)
    )
    if secondary_offers is not None:
        offers = known_at(secondary_offers, table="secondary_offers", as_of=w.as_of)
        latest = (
            offers.assign(pupil_id=offers["pupil_id"].astype(str))
            .sort_values(["pupil_id", "offer_date"], kind="stable")
            .drop_duplicates("pupil_id", keep="last")
            .set_index("pupil_id")["school_urn"]
            .astype(str)
            .reindex(c.index)
        )
        has = latest.notna()
        covered = w.covers(w.year_start)
        out["no_secondary_offer"] = np.where(
            year6 & covered, (~has).astype(float), np.nan
        )
        out["secondary_offer_urn"] = latest.where(year6 & has)
    return out
