"""Attendance features from termly totals, for LAs without session marks.

A term's totals are known only once the term has ended
(:func:`~cmerisk.features.window.known_at`), so "this school year" is the terms
of this school year that ended before ``as_of`` and "the previous school
year" is all its terms. "This term" has not ended at ``as_of``, and runs,
codes and lates need session marks: those features are absent with termly
data.

Examples
--------
>>> import pandas as pd
>>> from datetime import date
>>> termly = pd.DataFrame({"pupil_id": ["a"] * 3, "school_urn": ["1"] * 3,
...     "term_start": pd.to_datetime(["2023-09-06", "2024-01-03", "2024-04-08"]),
...     "sessions_possible": [140, 120, 100], "sessions_authorised": [10, 6, 0],
...     "sessions_unauthorised": [4, 6, 50]})
>>> w = Windows.at(date(2024, 5, 16))
>>> f = termly_attendance_features(pd.Series(["a"]), termly, w=w)
>>> float(round(f.loc["a", "absence_rate_this_year"], 4))   # autumn + spring only
0.1
"""

from __future__ import annotations

import pandas as pd

from cmerisk.features.attendance import add_absence_flags
from cmerisk.features.window import Windows, known_at

__all__ = ["TERMLY_FEATURES", "termly_attendance_features"]

#: The attendance features termly totals can make.
TERMLY_FEATURES = (
    "absence_rate_this_year",
    "authorised_absence_rate_this_year",
    "unauthorised_absence_rate_this_year",
    "absence_rate_last_year",
    "authorised_absence_rate_last_year",
    "unauthorised_absence_rate_last_year",
    "persistent_absence_this_year",
    "severe_absence_this_year",
)


def termly_attendance_features(
    pupil_ids: pd.Series, termly: pd.DataFrame, *, w: Windows
) -> pd.DataFrame:
    """Absence rates and flags for ``pupil_ids`` from ended terms (all schools).

    A school year the termly totals do not cover from its start
    (:meth:`~cmerisk.features.window.Windows.covers`) gives missing rates.
    """
    t = known_at(termly, table="attendance_termly", as_of=w.as_of)
    t = t.assign(pupil_id=t["pupil_id"].astype(str))
    index = pd.Index(pupil_ids.astype(str), name="pupil_id")
    counts = ["sessions_possible", "sessions_authorised", "sessions_unauthorised"]
    t[counts] = t[counts].apply(pd.to_numeric, errors="coerce")
    this_year = t["term_start"] >= pd.Timestamp(w.year_start)
    last_year = ~this_year & (t["term_start"] >= pd.Timestamp(w.last_year_start))
    out = pd.DataFrame(index=index)
    for mask, suffix, start in (
        (this_year, "this_year", w.year_start),
        (last_year, "last_year", w.last_year_start),
    ):
        s = t.loc[mask.to_numpy()].groupby("pupil_id")[counts].sum().reindex(index)
        covered = w.covers(start, attendance=True)
        possible = s["sessions_possible"].where((s["sessions_possible"] > 0) & covered)
        auth = s["sessions_authorised"] / possible
        unauth = s["sessions_unauthorised"] / possible
        out[f"absence_rate_{suffix}"] = auth + unauth
        out[f"authorised_absence_rate_{suffix}"] = auth
        out[f"unauthorised_absence_rate_{suffix}"] = unauth
    out = add_absence_flags(out)
    return out[list(TERMLY_FEATURES)]
