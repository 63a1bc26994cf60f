"""A tiny hand-written LA for feature tests: six pupils, one as-of.

Who is who at ``AS_OF`` (the summer census day of 2023/24):

* ``p1`` Year 6 at primary 100001: SEN support with SEMH, FSM, an open CIN
  episode, a run of unexplained absence just before ``AS_OF``; no secondary offer.
* ``p2`` Year 9 at secondary 200001: good attendance, one suspension.
* ``p3`` Year 8: deleted from 200001 in March 2024 (off roll at ``AS_OF``).
* ``p4`` Reception, summer-born: not yet of compulsory school age in May.
* ``p5`` Year 4: admitted to 100002 in February 2024 with no census row yet.
* ``p6`` Year 6 at 100001 with a secondary offer.
* census row for ``ghost``: a pupil missing from the pupils table (dirty).
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from cmerisk.data.school_calendar import census_dates, school_days
from cmerisk.data.tables import RawTables

AS_OF = date(2024, 5, 16)  # summer census day 2023/24


def _d(*days: str) -> pd.Series:
    return pd.Series(pd.to_datetime(list(days)))


def pupils() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "pupil_id": ["p1", "p2", "p3", "p4", "p5", "p6"],
            "date_of_birth": _d(
                "2012-11-10",
                "2009-03-03",
                "2010-10-01",
                "2019-06-01",
                "2014-12-02",
                "2013-02-20",
            ),
            "sex": ["F", "M", "F", "M", "F", "M"],
            "ethnicity_major": ["White", "Black", "Asian", "White", None, "Mixed"],
            "idaci_decile": [1, 6, 3, 10, 2, 5],
            "first_language": [
                "English",
                "Other",
                "English",
                "English",
                None,
                "English",
            ],
        }
    )


def census() -> pd.DataFrame:
    rows = []
    days = census_dates(2023)
    layout = {
        "p1": ("100001", "primary", "6", True, "K", "SEMH"),
        "p2": ("200001", "secondary", "9", False, "N", None),
        "p3": ("200001", "secondary", "8", False, "N", None),
        "p4": ("100001", "primary", "R", False, "N", None),
        "p6": ("100001", "primary", "6", False, "N", None),
        "ghost": ("100001", "primary", "5", False, "N", None),
    }
    for term in ("autumn", "spring"):
        for pid, (urn, phase, year, fsm, sen, need) in layout.items():
            if pid == "ghost" and term == "autumn":
                continue
            rows.append(
                (pid, pd.Timestamp(days[term]), urn, phase, year, fsm, sen, need, "C")
            )
    # last year's summer census for p1 (no SEN then) and p2
    last = pd.Timestamp(census_dates(2022)["summer"])
    rows.append(("p1", last, "100001", "primary", "5", True, "N", None, "C"))
    rows.append(("p2", last, "200001", "secondary", "8", False, "N", None, "C"))
    cols = [
        "pupil_id",
        "census_date",
        "school_urn",
        "school_phase",
        "nc_year",
        "fsm_eligible",
        "sen_provision",
        "sen_primary_need",
        "enrolment_status",
    ]
    return pd.DataFrame(rows, columns=cols)


def roll_changes() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "pupil_id": ["p3", "p5"],
            "school_urn": ["200001", "100002"],
            "date": _d("2024-03-04", "2024-02-05"),
            "change": ["deletion", "admission"],
            "deletion_ground": ["moved_away", None],
            "destination_known": [False, None],
        }
    )


def attendance() -> pd.DataFrame:
    """Every school day since September 2022 for p1, p2, p6.

    p1's last 6 days before AS_OF are unexplained; p1 is ill every tenth day.
    """
    days = [d for d in school_days(2022) + school_days(2023) if d < AS_OF]
    rows = []
    for pid, urn in (("p1", "100001"), ("p2", "200001"), ("p6", "100001")):
        for i, d in enumerate(days):
            for session in ("AM", "PM"):
                code = "/" if session == "AM" else "\\"
                if pid == "p1" and i >= len(days) - 6:
                    code = "N" if i >= len(days) - 3 else "O"
                elif pid == "p1" and i % 10 == 0:
                    code = "I"
                rows.append((pid, urn, pd.Timestamp(d), session, code))
    return pd.DataFrame(
        rows, columns=["pupil_id", "school_urn", "date", "session", "code"]
    )


def social_care() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "pupil_id": ["p1", "p1"],
            "status": ["CIN", "CIN"],
            "start_date": _d("2022-02-01", "2024-01-10"),
            "end_date": _d("2022-09-30", None),
        }
    )


def exclusions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "pupil_id": ["p2"],
            "school_urn": ["200001"],
            "start_date": _d("2023-11-20"),
            "category": ["suspension"],
            "sessions": [4],
        }
    )


def secondary_offers() -> pd.DataFrame:
    return pd.DataFrame(
        {"pupil_id": ["p6"], "school_urn": ["200001"], "offer_date": _d("2024-03-01")}
    )


def ehe() -> pd.DataFrame:
    return pd.DataFrame(
        {"pupil_id": ["p2"], "start_date": _d("2024-07-01"), "end_date": _d(None)}
    )


def cme_episodes() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "pupil_id": ["p1", "p3"],
            "start_date": _d("2024-09-10", "2024-03-20"),
            "end_date": _d(None, "2024-06-01"),
            "outcome": [None, "returned_to_school"],
        }
    )


def tiny_tables() -> RawTables:
    """The whole tiny LA, attendance in memory."""
    return RawTables(
        {
            "pupils": pupils(),
            "census": census(),
            "attendance": attendance(),
            "social_care": social_care(),
            "exclusions": exclusions(),
            "roll_changes": roll_changes(),
            "ehe": ehe(),
            "secondary_offers": secondary_offers(),
            "cme_episodes": cme_episodes(),
        }
    )


def attendance_termly() -> pd.DataFrame:
    """Termly totals for p1, p2, p6 (for LAs without session marks)."""
    from cmerisk.data.school_calendar import term_dates

    rows = []
    for year in (2022, 2023):
        for start, _end in term_dates(year).values():
            for pid, urn, absent in (
                ("p1", "100001", 14),
                ("p2", "200001", 2),
                ("p6", "100001", 0),
            ):
                rows.append(
                    (
                        pid,
                        urn,
                        pd.Timestamp(start),
                        126,
                        absent // 2,
                        absent - absent // 2,
                    )
                )
    cols = [
        "pupil_id",
        "school_urn",
        "term_start",
        "sessions_possible",
        "sessions_authorised",
        "sessions_unauthorised",
    ]
    return pd.DataFrame(rows, columns=cols)
