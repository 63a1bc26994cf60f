"""What a missing feature value means, per feature.

A feature is missing (NaN) when it is unknown, never when it is zero: no marks
yet this school year, a window that reaches before the data starts
(:mod:`~cmerisk.features.coverage`), no admission in the records held. The
docs' feature table quotes these sentences; explanations speak a missing
value as "<feature>: not recorded" (:mod:`cmerisk.explain_wording`).

Examples
--------
>>> MISSING_WHEN["school_moves_2y"]
'the data does not cover the last 2 years'
>>> set(MISSING_WHEN) <= {f.name for f in FEATURES}
True
"""

from __future__ import annotations

from typing import Final

from cmerisk.features.registry import FEATURES

__all__ = ["MISSING_WHEN"]

_TERM = "no possible sessions this term yet, or the attendance does not cover the term"
_YEAR = (
    "no possible sessions this school year yet, or the attendance does not cover "
    "it from 1 September"
)
_LAST_YEAR = (
    "no possible sessions last school year, or the attendance does not cover all of it"
)
_CENSUS = "the latest census row does not record it (or there is no census row yet)"


def _missing_when() -> dict[str, str]:
    out: dict[str, str] = {}
    for f in FEATURES:
        if f.group != "attendance":
            continue
        if f.name.endswith("_this_term"):
            out[f.name] = _TERM
        elif f.name.endswith("_this_year"):
            out[f.name] = _YEAR
        elif f.name.endswith("_last_year"):
            out[f.name] = _LAST_YEAR
    out.update(
        absence_trend="this term's or last school year's absence rate is missing",
        longest_unexplained_run_12m=(
            "no counted school day in the last 12 months, or the attendance does "
            "not cover them"
        ),
        current_unexplained_run=(
            "no counted school day in the last 12 months, or the attendance does "
            "not cover them and the run goes back to the pupil's first day in the "
            "data (it may have begun before)"
        ),
        sen_any=_CENSUS,
        ehc_plan=_CENSUS,
        semh_need=_CENSUS,
        fsm=_CENSUS,
        sen_changed_1y=(
            "fewer than two census rows in the last 12 months, or the data does not "
            "cover them"
        ),
        social_care_any_3y="the data does not cover the last 3 years",
        social_care_episodes_3y="the data does not cover the last 3 years",
        school_moves_2y="the data does not cover the last 2 years",
        in_year_admissions_2y="the data does not cover the last 2 years",
        unknown_destination_deletions_2y="the data does not cover the last 2 years",
        days_since_admission=(
            "no admission is in the data and the data does not cover the last 2 "
            "years: the pupil was admitted before it starts, how long before is "
            "unknown"
        ),
        nc_year_num="the NC year is unknown",
        in_year_6="the NC year is unknown",
        no_secondary_offer=(
            "the pupil is not in Year 6, or the data does not cover this school year"
        ),
        school_phase=(
            "the pupil has no census row at their current school yet (admitted "
            "since the latest census)"
        ),
        suspensions_1y="the data does not cover the last 12 months",
        suspension_sessions_1y="the data does not cover the last 12 months",
    )
    return out


#: Feature name -> when its value is missing ("... when <sentence>").
MISSING_WHEN: Final[dict[str, str]] = _missing_when()
