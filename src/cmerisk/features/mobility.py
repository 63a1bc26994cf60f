"""Mobility: school moves, in-year admissions, earlier EHE/CME, unknown destinations.

Definitions (records before ``as_of`` only):

* a **school move** is a change in the school a pupil is registered at, seen
  in the sequence of their single/main census rows and admissions, dated by
  the first record at the new school. The normal transfer from a primary to a
  secondary school is not a move.
* an **in-year admission** is an admission dated outside August and September
  (the normal start-of-year admission round).
* the counts over the last 2 years are missing when the data does not cover
  those 2 years (:meth:`~cmerisk.features.window.Windows.covers`): a part of
  the window would read as "no moves".
* ``days_since_admission`` counts up to 730 (2 years): a pupil whose latest
  admission is older, or who has none in the data while the data covers the
  last 2 years, has 730. Uncapped, its largest values would grow with the
  length of the extract (a training year early in the data could not reach the
  values of a later one). It is missing when no admission is in the data and
  the data does not cover the last 2 years: how long ago is unknown.
* ``previous_ehe`` and ``previous_cme`` ("ever") read every record held, back
  to the start of the data.

Examples
--------
>>> import pandas as pd
>>> from datetime import date
>>> census = pd.DataFrame({"pupil_id": ["a", "a"],
...     "census_date": pd.to_datetime(["2023-10-05", "2024-01-18"]),
...     "school_urn": ["1", "1"], "school_phase": ["primary"] * 2,
...     "enrolment_status": ["C", "C"]})
>>> roll = pd.DataFrame({"pupil_id": ["a", "a"], "school_urn": ["1", "2"],
...     "date": pd.to_datetime(["2024-02-01", "2024-02-05"]),
...     "change": ["deletion", "admission"],
...     "deletion_ground": ["moved_school", None], "destination_known": [False, None]})
>>> f = mobility_features(pd.Series(["a"]), {"census": census, "roll_changes": roll},
...                       w=Windows.at(date(2024, 5, 16)))
>>> f[["school_moves_2y", "in_year_admissions_2y", "days_since_admission",
...    "unknown_destination_deletions_2y"]].values.tolist()
[[1.0, 1.0, 101.0, 1.0]]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cmerisk.features.cohort import MAIN_REGISTRATION, school_phases
from cmerisk.features.frames import member_of
from cmerisk.features.window import Windows, known_at

__all__ = ["mobility_features", "school_phases"]  # school_phases: from cohort

#: Months of the normal start-of-year admission round.
NORMAL_ADMISSION_MONTHS = (8, 9)

#: ``days_since_admission`` counts up to this (the 2-year window).
ADMISSION_DAYS_CAP = 730


def mobility_features(
    pupil_ids: pd.Series,
    frames: dict[str, pd.DataFrame],
    *,
    w: Windows,
    phases: pd.Series | None = None,
) -> pd.DataFrame:
    """Mobility features for ``pupil_ids`` from the tables present.

    ``school_moves_2y`` needs only the census; admissions, days since the last
    admission and unknown-destination deletions need ``roll_changes``;
    ``previous_ehe`` and ``previous_cme`` need ``ehe`` and ``cme_episodes``.
    Counts over 2 years the data does not cover are missing, and so are the
    days since admission of a pupil with no admission in the data then; the
    days count up to :data:`ADMISSION_DAYS_CAP`.
    ``phases`` (school URN -> phase, see
    :func:`~cmerisk.features.cohort.school_phases`) is derived from the census
    when not given.
    """
    index = pd.Index(pupil_ids.astype(str), name="pupil_id")
    out = pd.DataFrame(index=index)
    as_of = pd.Timestamp(w.as_of)
    two_years = pd.Timestamp(w.last_2_years)

    census = known_at(frames["census"], table="census", as_of=w.as_of)
    is_main = census["enrolment_status"].isin(MAIN_REGISTRATION).to_numpy()
    main = census.loc[is_main, ["pupil_id", "census_date", "school_urn"]]
    regs = [main.set_axis(["pupil_id", "date", "school_urn"], axis=1).assign(order=0)]
    roll = None
    if "roll_changes" in frames:
        roll = known_at(frames["roll_changes"], table="roll_changes", as_of=w.as_of)
        adm = roll.loc[
            (roll["change"] == "admission").to_numpy(),
            ["pupil_id", "date", "school_urn"],
        ]
        regs.append(adm.assign(order=1))
    reg = pd.concat(regs, ignore_index=True)
    reg = reg.loc[member_of(reg["pupil_id"], index)]
    # Each pupil's registrations in date order, on integer codes.
    pupil, pupils = pd.factorize(reg["pupil_id"].astype(str))
    urn, urns = pd.factorize(reg["school_urn"].astype(str))
    day = reg["date"].to_numpy(dtype="datetime64[ns]")
    order = np.lexsort((reg["order"].to_numpy(), day, pupil))
    pupil, urn, day = pupil[order], urn[order], day[order]
    prev = np.r_[-1, urn[:-1]]
    same_pupil = np.r_[False, pupil[1:] == pupil[:-1]]
    if phases is None:
        phases = school_phases(census[["school_urn", "school_phase"]])
    phase = phases.reindex(pd.Index(urns)).to_numpy()
    transfer = np.zeros(len(urn), dtype=bool)
    has_prev = same_pupil & (prev >= 0)
    transfer[has_prev] = (phase[prev[has_prev]] == "primary") & (
        phase[urn[has_prev]] == "secondary"
    )
    moved = same_pupil & (urn != prev) & ~transfer & (day >= np.datetime64(two_years))
    moves = np.bincount(pupil[moved], minlength=len(pupils))
    out["school_moves_2y"] = (
        pd.Series(moves, index=pd.Index(pupils)).reindex(index).fillna(0).astype(float)
    )

    if roll is not None:
        roll = roll.assign(pupil_id=roll["pupil_id"].astype(str))
        adm = roll.loc[(roll["change"] == "admission").to_numpy()]
        in_year = (adm["date"] >= two_years) & ~adm["date"].dt.month.isin(
            NORMAL_ADMISSION_MONTHS
        )
        out["in_year_admissions_2y"] = (
            in_year.groupby(adm["pupil_id"])
            .sum()
            .reindex(index)
            .fillna(0)
            .astype(float)
        )
        last_adm = adm.groupby("pupil_id")["date"].max().reindex(index)
        days = (as_of - last_adm).dt.days.astype(float)
        if w.covers(w.last_2_years):  # no admission seen in 2 years: 2 years or more
            days = days.fillna(ADMISSION_DAYS_CAP)
        out["days_since_admission"] = days.clip(upper=ADMISSION_DAYS_CAP)
        dele = roll.loc[(roll["change"] == "deletion").to_numpy()]
        unknown = (dele["date"] >= two_years) & (
            ~dele["destination_known"].astype("boolean")
        )
        out["unknown_destination_deletions_2y"] = (
            unknown.fillna(False)
            .groupby(dele["pupil_id"])
            .sum()
            .reindex(index)
            .fillna(0)
            .astype(float)
        )
    if not w.covers(w.last_2_years):
        two_year = ["in_year_admissions_2y", "unknown_destination_deletions_2y"]
        out[["school_moves_2y", *[c for c in two_year if c in out]]] = np.nan
    for table, name in (("ehe", "previous_ehe"), ("cme_episodes", "previous_cme")):
        if table in frames:
            episodes = known_at(frames[table], table=table, as_of=w.as_of)
            seen = episodes["pupil_id"].astype(str).unique()
            out[name] = member_of(index, seen).astype(float)
    return out
