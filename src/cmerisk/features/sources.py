"""Which raw tables each feature is made from.

A table an LA lacks makes its features absent from the frame (DESIGN.md);
scoring uses this map to say which tables a model's missing features need.

Examples
--------
>>> FEATURE_SOURCES["absence_rate_this_year"]
('attendance', 'attendance_termly')
>>> FEATURE_SOURCES["longest_unexplained_run_12m"]
('attendance',)
"""

from __future__ import annotations

from typing import Final

from cmerisk.features.attendance_termly import TERMLY_FEATURES
from cmerisk.features.registry import FEATURES, FEATURES_BY_NAME

__all__ = ["FEATURE_SOURCES"]


def _sources() -> dict[str, tuple[str, ...]]:
    """The raw table(s) each feature is made from; any one of them suffices."""
    out: dict[str, tuple[str, ...]] = {}
    for f in FEATURES:
        if f.group == "attendance":
            out[f.name] = (
                ("attendance", "attendance_termly")
                if f.name in TERMLY_FEATURES
                else ("attendance",)
            )
    out.update(
        {
            name: ("census",)
            for name in (
                "sen_any",
                "ehc_plan",
                "semh_need",
                "sen_changed_1y",
                "school_moves_2y",
                "nc_year_num",
                "in_year_6",
                "fsm",
                "school_phase",
            )
        }
    )
    out.update(
        {name: ("pupils",) for name in ("age_months", "summer_born", "idaci_decile")}
    )
    out.update({f.name: ("social_care",) for f in FEATURES if f.group == "social_care"})
    out.update({f.name: ("exclusions",) for f in FEATURES if f.group == "exclusions"})
    out.update(
        {
            name: ("roll_changes",)
            for name in (
                "in_year_admissions_2y",
                "days_since_admission",
                "unknown_destination_deletions_2y",
            )
        }
    )
    out.update(
        previous_ehe=("ehe",),
        previous_cme=("cme_episodes",),
        no_secondary_offer=("secondary_offers",),
    )
    missing = set(FEATURES_BY_NAME) - set(out)
    assert not missing, f"features without a source: {sorted(missing)}"
    return {f.name: out[f.name] for f in FEATURES}


#: Raw table(s) each feature is made from (any one of them suffices); a feature
#: is absent from the frame when none of its tables is present.
FEATURE_SOURCES: Final[dict[str, tuple[str, ...]]] = _sources()
