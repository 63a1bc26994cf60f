"""A straightforward pandas implementation of the session-mark aggregation.

The reference the DuckDB query (:func:`cmerisk.features.attendance.aggregate_marks`)
is checked against, in the tests and in ``features_benchmark``: the same
rules (docs/features.md), written independently and plainly, with the whole
table in memory. It is not part of the package.

Where the SQL uses registration *intervals* and a window function, this uses
``merge_asof`` on roll changes and a per-pupil cumulative sum, so that a
shared bug is unlikely.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from cmerisk.data import codes
from cmerisk.features.window import Windows

RANK = {"not_counted": 0, "present": 1, "approved_activity": 2, "authorised": 3,
        "unauthorised": 4}

#: The columns both implementations return (besides bad_code).
COUNT_COLUMNS = [
    "n_marks", "n_unknown", "n_bad_session", "n_outside", "dup_identical", "dual",
    "conflicting",
    "possible_term", "absent_term", "authorised_term", "unauthorised_term",
    "possible_year", "absent_year", "authorised_year", "unauthorised_year",
    "possible_last_year", "absent_last_year", "authorised_last_year",
    "unauthorised_last_year",
    "unresolved_n", "c2", "e", "kb", "late", "counted_days_12m", "longest_run",
    "current_run",
]  # fmt: skip


def _code_frame() -> pd.DataFrame:
    rows = []
    norms = sorted({codes.normalise_attendance_code(c) for c in codes.ALL_ATTENDANCE_CODES})
    for code in codes.ALL_ATTENDANCE_CODES:
        norm = codes.normalise_attendance_code(code)
        cat = codes.ATTENDANCE_CATEGORY[norm]
        rows.append((code, norm, cat, RANK[cat] * 100 + norms.index(norm)))
    return pd.DataFrame(rows, columns=["code", "norm_code", "category", "priority"])


def _outside(marks: pd.DataFrame, roll: pd.DataFrame, as_of: date) -> np.ndarray:
    """Marks dated before an admission to / after a deletion from their school."""
    roll = roll.copy()
    roll["date"] = pd.to_datetime(roll["date"])
    roll = roll.loc[roll["date"] < pd.Timestamp(as_of)]
    roll["pupil_id"] = roll["pupil_id"].astype(str)
    roll["school_urn"] = roll["school_urn"].astype(str)
    if roll.empty:
        return np.zeros(len(marks), dtype=bool)
    pair = ["pupil_id", "school_urn"]
    # The first change of each pair (deletions before admissions on the same day).
    roll["order"] = (roll["change"] == "admission").astype(int)
    first = (
        roll.sort_values([*pair, "date", "order"])
        .drop_duplicates(pair)
        .set_index(pair)["change"]
        .rename("first_change")
    )
    # A same-day admission outweighs a deletion from the same school.
    adm_days = set(
        zip(*(roll.loc[roll["change"] == "admission", c] for c in [*pair, "date"]),
            strict=True)
    )
    keep = [
        not (ch == "deletion" and (p, s, d) in adm_days)
        for p, s, d, ch in zip(roll["pupil_id"], roll["school_urn"], roll["date"],
                               roll["change"], strict=True)
    ]
    changes = roll.loc[keep].copy()
    # A deletion takes effect the day after (the deletion day still counts).
    changes["effective"] = changes["date"] + pd.to_timedelta(
        (changes["change"] == "deletion").astype(int), unit="D"
    )
    changes["effective"] = changes["effective"].astype("datetime64[us]")
    changes = changes.sort_values("effective")[[*pair, "effective", "change"]]
    m = marks[[*pair, "date"]].reset_index().rename(columns={"index": "_row"})
    m["date"] = pd.to_datetime(m["date"]).astype("datetime64[us]")
    m = m.sort_values("date")
    merged = pd.merge_asof(
        m, changes, left_on="date", right_on="effective", by=pair, direction="backward"
    )
    merged = merged.join(first, on=pair)
    out = np.where(
        merged["change"].isna(),
        merged["first_change"] == "admission",
        merged["change"] == "deletion",
    )
    result = np.zeros(len(marks), dtype=bool)
    result[merged["_row"].to_numpy()] = out
    return result


def pandas_aggregate_marks(
    marks: pd.DataFrame, *, as_of: date, roll_changes: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per-pupil session counts at ``as_of``: same columns and rules as the SQL."""
    w = Windows.at(as_of)
    m = marks.copy()
    m["date"] = pd.to_datetime(m["date"]).dt.normalize()
    m = m.loc[(m["date"] >= pd.Timestamp(w.earliest_mark)) & (m["date"] < pd.Timestamp(as_of))]
    m = m.loc[m["pupil_id"].notna()].reset_index(drop=True)
    m["pupil_id"] = m["pupil_id"].astype(str)
    m["school_urn"] = m["school_urn"].astype(str)
    m = m.merge(_code_frame(), on="code", how="left")
    m["unknown_code"] = m["category"].isna()
    m["bad_session"] = ~m["unknown_code"] & ~m["session"].isin(["AM", "PM"])
    outside = (
        _outside(m, roll_changes, as_of) if roll_changes is not None
        else np.zeros(len(m), dtype=bool)
    )
    m["outside"] = ~m["unknown_code"] & ~m["bad_session"] & outside
    m["ok"] = ~(m["unknown_code"] | m["bad_session"] | m["outside"])
    m["ok_counted"] = m["ok"] & (m["category"] != "not_counted")
    m["bad_code"] = m["code"].where(m["unknown_code"])

    key = ["pupil_id", "date", "session"]
    g = m.groupby(key, sort=False)
    ok = m.loc[m["ok"]]
    okc = m.loc[m["ok_counted"]]
    s = pd.DataFrame(
        {
            "n_marks": g.size(),
            "n_unknown": g["unknown_code"].sum(),
            "n_bad_session": g["bad_session"].sum(),
            "n_outside": g["outside"].sum(),
            "bad_code": g["bad_code"].min(),
        }
    )
    s["nv"] = ok.groupby(key).size().reindex(s.index, fill_value=0)
    s["nc"] = okc.groupby(key).size().reindex(s.index, fill_value=0)
    s["dv"] = ok.groupby(key)["norm_code"].nunique().reindex(s.index, fill_value=0)
    s["dc"] = okc.groupby(key)["norm_code"].nunique().reindex(s.index, fill_value=0)
    best = ok.sort_values("priority", ascending=False).drop_duplicates(key).set_index(key)
    s["category"] = best["category"].reindex(s.index)
    s["code"] = best["norm_code"].reindex(s.index)
    extra_counted = np.where(s["nc"] >= 1, s["nc"] - 1, 0)
    s["dup_identical"] = np.where(
        s["nc"] >= 1,
        np.where(s["dc"] == 1, extra_counted, 0),
        np.where(s["dv"] == 1, s["nv"] - 1, 0),
    )
    s["conflicting"] = np.where((s["nc"] >= 1) & (s["dc"] > 1), extra_counted, 0)
    s["dual"] = np.where(
        s["nc"] >= 1, s["nv"] - s["nc"], np.where(s["dv"] > 1, s["nv"] - 1, 0)
    )
    s = s.reset_index()

    counted = s["category"].notna() & (s["category"] != "not_counted")
    s["possible"] = counted.astype(int)
    s["absent"] = s["category"].isin(["authorised", "unauthorised"]).astype(int)
    s["authorised"] = (s["category"] == "authorised").astype(int)
    s["unauthorised"] = (s["category"] == "unauthorised").astype(int)
    year = s["date"] >= pd.Timestamp(w.year_start)
    windows = {
        "term": s["date"] >= pd.Timestamp(w.term_start),
        "year": year,
        "last_year": ~year,
    }
    for name, mask in windows.items():
        for col in ("possible", "absent", "authorised", "unauthorised"):
            s[f"{col}_{name}"] = s[col].where(mask, 0)

    # An N stands unresolved once five school days (LA-wide dates) have followed it.
    this_year_days = np.sort(s.loc[year, "date"].unique())[::-1]
    cutoff = this_year_days[5] if len(this_year_days) > 5 else None
    s["unresolved_n"] = (
        (s["code"] == "N") & year & (s["date"] <= cutoff if cutoff is not None else False)
    ).astype(int)
    s["c2"] = ((s["code"] == "C2") & year).astype(int)
    s["e"] = ((s["code"] == "E") & year).astype(int)
    s["kb"] = (s["code"].isin(["K", "B"]) & year).astype(int)
    s["late"] = (s["code"].isin(["L", "U"]) & year).astype(int)

    sums = [c for c in COUNT_COLUMNS if c not in ("counted_days_12m", "longest_run",
                                                  "current_run")]
    per = s.groupby("pupil_id")[sums].sum()
    per["bad_code"] = s.groupby("pupil_id")["bad_code"].min()

    # Runs over counted school days of the last 12 months.
    s["unexpl_session"] = s["category"] == "unauthorised"
    cs = s.loc[counted]
    days = cs.groupby(["pupil_id", "date"])["unexpl_session"].all().reset_index()
    days = days.loc[days["date"] >= pd.Timestamp(w.last_12_months)]
    days = days.sort_values(["pupil_id", "date"])
    days["run_id"] = (~days["unexpl_session"]).astype(int).groupby(days["pupil_id"]).cumsum()
    runs = days.groupby(["pupil_id", "run_id"])["unexpl_session"].sum().reset_index()
    per["counted_days_12m"] = days.groupby("pupil_id").size()
    per["longest_run"] = runs.groupby("pupil_id")["unexpl_session"].max()
    per["current_run"] = (
        runs.sort_values("run_id").groupby("pupil_id")["unexpl_session"].last()
    )
    for col in ("counted_days_12m", "longest_run", "current_run"):
        per[col] = per[col].fillna(0)
    per[COUNT_COLUMNS] = per[COUNT_COLUMNS].astype("int64")
    per.index = per.index.astype(str)
    per.index.name = "pupil_id"
    return per[[*COUNT_COLUMNS, "bad_code"]].sort_index()
