"""Who is on roll at ``as_of``: the pupils a feature frame has one row for.

A pupil is in the cohort at ``as_of`` when, from records dated before it:

1. **Registered.** Their latest *registration* is a single (``C``) or main
   dual (``M``) census row or an admission (``roll_changes``); subsidiary dual
   registrations (``S``) never place a pupil (their main school does). On a
   tie a census row comes before an admission on the same day.
2. **Not deleted since.** No deletion from that same school is dated on or
   after that registration. (A deletion from another school, e.g. the
   subsidiary one or a school already left, does not take them off roll.)
3. **Still seen.** The registration is no older than the LA's latest census
   day before ``as_of``: a pupil missing from that census and not admitted
   since has left without a deletion record reaching the LA.
4. **Of compulsory school age** on ``as_of``: from the prescribed day (31
   March, 31 August or 31 December) on or after their fifth birthday until the
   last Friday in June of the school year in which they turn 16. So a
   summer-born Reception child is not in a May cohort.

The school is that of the latest registration; the census characteristics
(FSM, SEN, NC year) come from the pupil's latest single/main census row, with
the NC year moved on by the school years since that census. Every pupil seen
(in a census row or an admission before ``as_of``) is either on roll or
counted by the reason they are not, in :attr:`Cohort.counts`.

Examples
--------
>>> import pandas as pd
>>> pupils = pd.DataFrame({"pupil_id": ["a", "b"],
...     "date_of_birth": pd.to_datetime(["2012-10-01", "2012-11-01"])})
>>> census = pd.DataFrame({"pupil_id": ["a", "b"],
...     "census_date": pd.to_datetime(["2024-01-18"] * 2),
...     "school_urn": ["100001", "100001"], "school_phase": ["primary"] * 2,
...     "nc_year": ["6", "6"], "fsm_eligible": [True, False],
...     "sen_provision": ["N", "K"],
...     "sen_primary_need": [None, "SEMH"], "enrolment_status": ["C", "C"]})
>>> moves = pd.DataFrame({"pupil_id": ["b"], "school_urn": ["100001"],
...     "date": pd.to_datetime(["2024-03-01"]), "change": ["deletion"],
...     "deletion_ground": ["moved_away"], "destination_known": [False]})
>>> c = cohort_at({"pupils": pupils, "census": census, "roll_changes": moves},
...               as_of=date(2024, 5, 16))
>>> c.frame["pupil_id"].tolist(), c.counts["deleted_from_roll"]
(['a'], 1)
>>> compulsory_school_age_bounds(date(2024, 5, 16))
(datetime.date(2007, 9, 1), datetime.date(2019, 3, 31))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from cmerisk.data.codes import NC_YEARS
from cmerisk.data.school_calendar import school_year_of
from cmerisk.errors import DataError
from cmerisk.features.frames import member_of
from cmerisk.features.window import known_at

__all__ = [
    "Cohort",
    "age_in_months",
    "cohort_at",
    "compulsory_school_age_bounds",
    "school_phases",
]

MAIN_REGISTRATION = ("C", "M")


@dataclass(frozen=True)
class Cohort:
    """Pupils on roll at ``as_of`` and how many were left out, by reason.

    ``frame`` has one row per pupil: ``pupil_id``, ``school_urn``,
    ``school_phase``, ``nc_year`` (string R/1..11), ``date_of_birth``,
    ``registered_since`` (date of the latest registration), ``census_date``
    (of the latest single/main census row, or NaT) and that row's
    ``fsm_eligible``, ``sen_provision`` and ``sen_primary_need``.

    ``counts``: ``seen`` (pupils with a census row or an admission before
    ``as_of``) = ``deleted_from_roll`` + ``subsidiary_registration_only`` +
    ``not_in_latest_census`` + ``no_date_of_birth`` +
    ``not_compulsory_school_age`` + ``on_roll``.
    """

    as_of: date
    frame: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)
    school_phases: pd.Series | None = None


def _last_friday_of_june(year: int) -> date:
    day = date(year, 6, 30)
    return day - timedelta(days=(day.weekday() - 4) % 7)


def compulsory_school_age_bounds(day: date) -> tuple[date, date]:
    """Dates of birth (earliest, latest) of the children of compulsory school age.

    A child starts on the prescribed day (31 March, 31 August, 31 December) on
    or after their fifth birthday, and stops after the last Friday in June of
    the school year in which they turn 16.
    """
    prescribed = [
        date(y, m, d)
        for y in (day.year - 1, day.year)
        for m, d in ((3, 31), (8, 31), (12, 31))
    ]
    last_prescribed = max(p for p in prescribed if p <= day)
    latest = last_prescribed.replace(year=last_prescribed.year - 5)
    year = school_year_of(day)
    # Those who turn 16 in school year `year` were born from 1 Sept (year - 16).
    leavers_year = year if day <= _last_friday_of_june(year + 1) else year + 1
    earliest = date(leavers_year - 16, 9, 1)
    return earliest, latest


def age_in_months(date_of_birth: pd.Series, day: date) -> pd.Series:
    """Whole months of age on ``day`` (float; NaN when the birth date is missing).

    >>> born = pd.Series(pd.to_datetime(["2013-05-17", "2013-05-16"]))
    >>> age_in_months(born, date(2024, 5, 16)).tolist()
    [131.0, 132.0]
    """
    dob = pd.to_datetime(date_of_birth)
    months = (day.year - dob.dt.year) * 12 + (day.month - dob.dt.month)
    months = months - (dob.dt.day > day.day).astype(int)
    return months.astype(float)


def _advance_nc_year(nc_year: pd.Series, years: pd.Series) -> pd.Series:
    order = {y: i for i, y in enumerate(NC_YEARS)}
    idx = pd.to_numeric(nc_year.map(order), errors="coerce") + years
    names = np.array(NC_YEARS, dtype=object)
    ok = idx.notna() & (idx >= 0) & (idx < len(NC_YEARS))
    out = pd.Series(None, index=nc_year.index, dtype=object)
    out[ok] = names[idx[ok].astype(int).to_numpy()]
    return out


def school_phases(census: pd.DataFrame) -> pd.Series:
    """The most often recorded phase of each school (index ``school_urn``)."""
    c = census.dropna(subset=["school_phase"])
    if c.empty:
        return pd.Series(dtype=object)
    counts = c.groupby([c["school_urn"].astype(str), "school_phase"]).size()
    top = counts.sort_values(ascending=False, kind="stable").reset_index()
    return top.drop_duplicates("school_urn").set_index("school_urn")["school_phase"]


def cohort_at(frames: dict[str, pd.DataFrame], *, as_of: date) -> Cohort:
    """The cohort on roll at ``as_of`` (see the module docstring for the rules).

    Parameters
    ----------
    frames
        Cleaned tables (``pupils`` and ``census`` required; ``roll_changes``
        used when present), dates as ``datetime64``.
    as_of
        The scoring date.
    """
    census = known_at(frames["census"], table="census", as_of=as_of)
    if census.empty:
        raise DataError(
            f"census: no census rows dated before {as_of.isoformat()}, "
            "so no pupil can be "
            "placed on roll; choose a later --as-of date"
        )
    census = census.assign(pupil_id=census["pupil_id"].astype(str))
    # Row filters take only the columns they need (census is the big table).
    is_main = census["enrolment_status"].isin(MAIN_REGISTRATION).to_numpy()
    main = census.loc[is_main, ["pupil_id", "census_date", "school_urn"]]
    regs = [main.rename(columns={"census_date": "reg_date"}).assign(reg_order=0)]
    deletions = pd.DataFrame(columns=["pupil_id", "date", "school_urn"])
    if "roll_changes" in frames:
        roll = known_at(frames["roll_changes"], table="roll_changes", as_of=as_of)
        adm = roll.loc[(roll["change"] == "admission").to_numpy()]
        regs.append(
            adm[["pupil_id", "date", "school_urn"]]
            .rename(columns={"date": "reg_date"})
            .assign(reg_order=1)
        )
        deletions = roll.loc[
            (roll["change"] == "deletion").to_numpy(),
            ["pupil_id", "date", "school_urn"],
        ]
    reg = pd.concat(regs, ignore_index=True)
    reg["school_urn"] = reg["school_urn"].astype(str)
    # The latest registration per pupil (ties: census before admission, then
    # URN order). Sorting numbers, then a hash de-duplication, spares sorting
    # the string ids of every census row.
    urn_rank = pd.factorize(reg["school_urn"], sort=True)[0]
    order = np.lexsort(
        (urn_rank, reg["reg_order"].to_numpy(), reg["reg_date"].to_numpy())
    )
    reg = reg.iloc[order].drop_duplicates("pupil_id", keep="last").set_index("pupil_id")
    seen = pd.Index(census["pupil_id"].unique()).union(reg.index)
    counts: dict[str, int] = {"seen": len(seen)}

    # 2. deleted from that school since.
    dl = deletions.assign(school_urn=deletions["school_urn"].astype(str)).join(
        reg[["reg_date", "school_urn"]].rename(columns={"school_urn": "reg_urn"}),
        on="pupil_id",
    )
    off = dl.loc[
        (
            (dl["date"] >= dl["reg_date"]) & (dl["school_urn"] == dl["reg_urn"])
        ).to_numpy()
    ]
    deleted = member_of(reg.index, off["pupil_id"].unique())
    counts["deleted_from_roll"] = int(deleted.sum())
    reg = reg.loc[~deleted]

    # 3. still seen at the LA's latest census (subsidiary-only pupils never are).
    latest_census = census["census_date"].max()
    stale = reg["reg_date"] < latest_census
    sub_rows = (census["census_date"] == latest_census).to_numpy() & (
        census["enrolment_status"] == "S"
    ).to_numpy()
    subsidiary = census.loc[sub_rows, "pupil_id"].unique()
    never_main = seen.difference(reg.index).difference(
        pd.Index(off["pupil_id"].unique())
    )
    sub = stale & member_of(reg.index, subsidiary)
    counts["subsidiary_registration_only"] = int(sub.sum()) + len(never_main)
    counts["not_in_latest_census"] = int((stale & ~sub).sum())
    reg = reg.loc[~stale.to_numpy()]

    # 4. compulsory school age.
    pupils = frames["pupils"].set_index("pupil_id")
    dob = pupils["date_of_birth"].reindex(reg.index)
    counts["no_date_of_birth"] = int(dob.isna().sum())
    earliest, latest = compulsory_school_age_bounds(as_of)
    of_age = (dob >= pd.Timestamp(earliest)) & (dob <= pd.Timestamp(latest))
    counts["not_compulsory_school_age"] = int((dob.notna() & ~of_age).sum())
    reg = reg.loc[of_age.to_numpy()]
    counts["on_roll"] = len(reg)

    # Census characteristics from the latest single/main census row.
    latest = (
        main[["pupil_id", "census_date"]]
        .sort_values("census_date", kind="stable")
        .drop_duplicates("pupil_id", keep="last")
        .index
    )
    last_row = census.loc[latest].set_index("pupil_id")
    last_row["school_urn"] = last_row["school_urn"].astype(str)
    cols = [
        "census_date",
        "school_urn",
        "school_phase",
        "nc_year",
        "fsm_eligible",
        "sen_provision",
        "sen_primary_need",
    ]
    last_row = last_row[[c for c in cols if c in last_row.columns]].reindex(reg.index)
    out = pd.DataFrame(index=reg.index)
    out["school_urn"] = reg["school_urn"]
    out["registered_since"] = reg["reg_date"]
    out["date_of_birth"] = dob.reindex(reg.index)
    out["census_date"] = last_row["census_date"]
    years_on = (
        school_year_of(as_of)
        - last_row["census_date"].dt.year
        + (last_row["census_date"].dt.month < 9).astype(float)
    )
    from_census = _advance_nc_year(last_row["nc_year"], years_on)
    from_age = (
        school_year_of(as_of)
        - (
            out["date_of_birth"].dt.year
            - (out["date_of_birth"].dt.month < 9).astype(int)
        )
        - 5
    )
    out["nc_year"] = from_census.where(
        from_census.notna(), _advance_nc_year(pd.Series("R", index=out.index), from_age)
    )
    phase_of_school = school_phases(census[["school_urn", "school_phase"]])
    same_school = last_row["school_urn"] == out["school_urn"]
    out["school_phase"] = last_row["school_phase"].where(
        same_school, out["school_urn"].map(phase_of_school)
    )
    for col in ("fsm_eligible", "sen_provision", "sen_primary_need"):
        out[col] = last_row[col] if col in last_row.columns else None
    out = out.reset_index().rename(columns={"index": "pupil_id"})
    return Cohort(
        as_of=as_of,
        frame=out.sort_values("pupil_id", ignore_index=True),
        counts=counts,
        school_phases=phase_of_school,
    )
