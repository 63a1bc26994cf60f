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
from cmerisk.features.attendance import AGG_COLUMNS
from cmerisk.features.window import Windows

RANK = {
    "not_counted": 0,
    "present": 1,
    "approved_activity": 2,
    "authorised": 3,
    "unauthorised": 4,
}

#: The columns both implementations return (besides bad_code).
COUNT_COLUMNS = list(AGG_COLUMNS)


def _code_frame() -> pd.DataFrame:
    rows = []
    norms = sorted(
        {codes.normalise_attendance_code(c) for c in codes.ALL_ATTENDANCE_CODES}
    )
    for code in codes.ALL_ATTENDANCE_CODES:
        norm = codes.normalise_attendance_code(code)
        cat = codes.ATTENDANCE_CATEGORY[norm]
        rows.append((code, norm, cat, RANK[cat] * 100 + norms.index(norm)))
    return pd.DataFrame(rows, columns=["code", "norm_code", "category", "priority"])


def _outside(
    marks: pd.DataFrame,
    roll: pd.DataFrame,
    as_of: date,
    pupils: pd.Index,
    urns: pd.Index,
) -> np.ndarray:
    """Marks dated before an admission to / after a deletion from their school.

    ``marks`` has pupils and schools as integer codes into ``pupils``/``urns``.
    """
    roll = roll.copy()
    roll["date"] = pd.to_datetime(roll["date"])
    roll = roll.loc[roll["date"] < pd.Timestamp(as_of)]
    roll["pupil_id"] = pupils.get_indexer(roll["pupil_id"].astype(str))
    roll["school_urn"] = urns.get_indexer(roll["school_urn"].astype(str))
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
        zip(
            *(roll.loc[roll["change"] == "admission", c] for c in [*pair, "date"]),
            strict=True,
        )
    )
    keep = [
        not (ch == "deletion" and (p, s, d) in adm_days)
        for p, s, d, ch in zip(
            roll["pupil_id"],
            roll["school_urn"],
            roll["date"],
            roll["change"],
            strict=True,
        )
    ]
    changes = roll.loc[keep].copy()
    # A deletion takes effect the day after (the deletion day still counts).
    changes["effective"] = changes["date"] + pd.to_timedelta(
        (changes["change"] == "deletion").astype(int), unit="D"
    )
    changes["effective"] = changes["effective"].astype("datetime64[us]")
    # On equal effective dates an admission (e.g. re-admitted the day after a
    # deletion) is the later change: merge_asof takes the last one.
    changes["is_admission"] = (changes["change"] == "admission").astype(int)
    changes = changes.sort_values(["effective", "is_admission"], kind="stable")
    changes = changes[[*pair, "effective", "change"]]
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
    m = m.loc[
        (m["date"] >= pd.Timestamp(w.earliest_mark)) & (m["date"] < pd.Timestamp(as_of))
    ]
    m = m.loc[m["pupil_id"].notna()].reset_index(drop=True)
    # Integer codes for ids and categories for codes keep 19 M rows in memory.
    pid, pupils = pd.factorize(m["pupil_id"].astype(str))
    urn, urns = pd.factorize(m["school_urn"].astype(str))
    m["pupil_id"], m["school_urn"] = pid, urn
    m["session"] = m["session"].astype("category")
    code = m["code"].astype("category")
    table = _code_frame().set_index("code")
    for col in ("norm_code", "category", "priority"):
        m[col] = code.map(table[col].to_dict()).astype(
            "float64" if col == "priority" else "category"
        )
    m["code"] = code
    m["unknown_code"] = m["category"].isna()
    m["bad_session"] = ~m["unknown_code"] & ~m["session"].isin(["AM", "PM"])
    outside = (
        _outside(m, roll_changes, as_of, pd.Index(pupils), pd.Index(urns))
        if roll_changes is not None
        else np.zeros(len(m), dtype=bool)
    )
    m["outside"] = ~m["unknown_code"] & ~m["bad_session"] & outside
    m["ok"] = ~(m["unknown_code"] | m["bad_session"] | m["outside"])
    m["ok_counted"] = m["ok"] & (m["category"] != "not_counted")
    unknown = m.loc[m["unknown_code"], "code"].astype(str)
    example = unknown.min() if len(unknown) else None  # one example for the message

    key = ["pupil_id", "date", "session"]
    g = m.groupby(key, sort=False, observed=True)
    s = pd.DataFrame(
        {
            "n_marks": g.size(),
            "n_unknown": g["unknown_code"].sum(),
            "n_bad_session": g["bad_session"].sum(),
            "n_outside": g["outside"].sum(),
            "nv": g["ok"].sum(),
            "nc": g["ok_counted"].sum(),
        }
    ).astype("int32")
    del g
    ok = m.loc[m["ok"]]
    s["dv"] = ok.groupby(key, observed=True)["norm_code"].nunique()
    okc = m.loc[m["ok_counted"]]
    s["dc"] = okc.groupby(key, observed=True)["norm_code"].nunique()
    del okc
    s[["dv", "dc"]] = s[["dv", "dc"]].fillna(0).astype("int32")
    # The kept mark of each session: the usable one of highest precedence.
    best = (
        ok.sort_values("priority", ascending=False).drop_duplicates(key).set_index(key)
    )
    s["category"] = best["category"].reindex(s.index)
    s["code"] = best["norm_code"].reindex(s.index)
    del ok, best, m
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

    quality = [
        "n_marks",
        "n_unknown",
        "n_bad_session",
        "n_outside",
        "dup_identical",
        "dual",
        "conflicting",
    ]
    per = s.groupby("pupil_id")[quality].sum()

    cat, code = s["category"], s["code"]
    counted = cat.notna() & (cat != "not_counted")
    flags = pd.DataFrame(
        {
            "possible": counted,
            "absent": cat.isin(["authorised", "unauthorised"]),
            "authorised": cat == "authorised",
            "unauthorised": cat == "unauthorised",
            "c2": code == "C2",
            "e": code == "E",
            "kb": code.isin(["K", "B"]),
            "late": code.isin(["L", "U"]),
        }
    )
    year = (s["date"] >= pd.Timestamp(w.year_start)).to_numpy()
    windows = {
        "term": (s["date"] >= pd.Timestamp(w.term_start)).to_numpy(),
        "year": year,
        "last_year": ~year,
    }
    for name, mask in windows.items():
        cols = ["possible", "absent", "authorised", "unauthorised"]
        part = flags.loc[mask, cols].groupby(s.loc[mask, "pupil_id"]).sum()
        for col in cols:
            per[f"{col}_{name}"] = part[col]
    this_year = (
        flags.loc[year, ["c2", "e", "kb", "late"]]
        .groupby(s.loc[year, "pupil_id"])
        .sum()
    )
    for col in ("c2", "e", "kb", "late"):
        per[col] = this_year[col]

    # An N stands unresolved once five school days (LA-wide dates) have followed it.
    this_year_days = np.sort(s.loc[year, "date"].unique())[::-1]
    if len(this_year_days) > 5:
        settled = (
            year
            & (code == "N").to_numpy()
            & (s["date"] <= this_year_days[5]).to_numpy()
        )
        per["unresolved_n"] = s.loc[settled].groupby("pupil_id").size()
    else:
        per["unresolved_n"] = 0
    per["bad_code"] = example

    # Runs over counted school days of the last 12 months.
    recent = (
        counted.to_numpy() & (s["date"] >= pd.Timestamp(w.last_12_months)).to_numpy()
    )
    cs = s.loc[recent, ["pupil_id", "date"]].assign(
        unexpl=flags.loc[recent, "unauthorised"].to_numpy()
    )
    del flags
    # A day is unexplained when all its counted sessions are.
    days = cs.groupby(["pupil_id", "date"])["unexpl"].min().reset_index()
    days = days.sort_values(["pupil_id", "date"])
    days["run_id"] = (~days["unexpl"]).astype(int).groupby(days["pupil_id"]).cumsum()
    runs = days.groupby(["pupil_id", "run_id"])["unexpl"].sum().reset_index()
    per["counted_days_12m"] = days.groupby("pupil_id").size()
    per["longest_run"] = runs.groupby("pupil_id")["unexpl"].max()
    per["current_run"] = runs.sort_values("run_id").groupby("pupil_id")["unexpl"].last()
    per[COUNT_COLUMNS] = per[COUNT_COLUMNS].fillna(0).astype("int64")
    per.index = pd.Index(np.asarray(pupils)[per.index.to_numpy()]).astype(str)
    per.index.name = "pupil_id"
    return per[[*COUNT_COLUMNS, "bad_code"]].sort_index()
