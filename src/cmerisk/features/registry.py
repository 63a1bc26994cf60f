"""Every CME feature, declared once: group, reason, actionability, monotonicity.

Explanations, reports, the model card and the docs all read these
declarations. Reason templates are :meth:`str.format` strings filled with the
pupil's ``value``, the ``reference`` (the LA median in the training data) and
any column of the pupil's row (e.g. ``{nc_year}``). They are written for the
risk-raising direction of the feature: explanations quote only the features
that raise a pupil's risk.

``monotone=+1`` marks features where more never lowers risk (more unexplained
absence, more suspensions...); the model may enforce it.

Examples
--------
>>> FEATURES_BY_NAME["absence_rate_this_year"].render_reason(value=0.31, reference=0.05)
'missed 31% of sessions this school year (LA median 5%)'
>>> FEATURES_BY_NAME["longest_unexplained_run_12m"].render_reason(value=12, reference=0)
'12 school days in a row of unexplained absence in the last 12 months (LA median 0)'
>>> sorted(set(PROTECTED) & set(FEATURES_BY_NAME))
[]
"""

from __future__ import annotations

from typing import Any, Final

from cmerisk.spec import DEFAULT_PROTECTED, FeatureSpec, SensitiveSpec

__all__ = [
    "AUDIT_COLUMNS",
    "CARRY",
    "FEATURES",
    "FEATURES_BY_NAME",
    "PROTECTED",
    "SENSITIVE",
]


def _f(name: str, group: str, reason: str, **kw: Any) -> FeatureSpec:
    return FeatureSpec(name=name, group=group, reason=reason, **kw)  # type: ignore[arg-type]


def _attendance() -> list[FeatureSpec]:
    out: list[FeatureSpec] = []
    periods = {
        "this_term": "this term",
        "this_year": "this school year",
        "last_year": "last school year",
    }
    for suffix, words in periods.items():
        out += [
            _f(
                f"absence_rate_{suffix}",
                "attendance",
                f"missed {{value:.0%}} of sessions {words} "
                "(LA median {reference:.0%})",
                kind="rate",
                monotone=1,
                description=f"Absent sessions / possible sessions, {words}.",
            ),
            _f(
                f"authorised_absence_rate_{suffix}",
                "attendance",
                "authorised absence (illness, appointments...) in {value:.0%} of "
                f"sessions {words} (LA median {{reference:.0%}})",
                kind="rate",
                description=f"Authorised absence / possible sessions, {words}.",
            ),
            _f(
                f"unauthorised_absence_rate_{suffix}",
                "attendance",
                f"unauthorised absence in {{value:.0%}} of sessions {words} "
                f"(LA median {{reference:.0%}})",
                kind="rate",
                monotone=1,
                description=f"Unauthorised (G, N, O, U) / possible sessions, {words}.",
            ),
        ]
    out += [
        _f(
            "persistent_absence_this_year",
            "attendance",
            "persistently absent this school year: missed "
            "{absence_rate_this_year:.0%} of sessions (10% or more)",
            kind="flag",
            monotone=1,
            description="1 when the absence rate this school year is at least 10%.",
        ),
        _f(
            "severe_absence_this_year",
            "attendance",
            "severely absent this school year: missed {absence_rate_this_year:.0%} of "
            "sessions (half or more)",
            kind="flag",
            monotone=1,
            description="1 when the absence rate this school year is at least 50%.",
        ),
        _f(
            "absence_trend",
            "attendance",
            "absence this term {absence_rate_this_term:.0%}, against "
            "{absence_rate_last_year:.0%} over last school year",
            kind="number",
            description="Absence rate this term minus last school year's.",
        ),
        _f(
            "longest_unexplained_run_12m",
            "attendance",
            "{value:.0f} school days in a row of unexplained absence in the last "
            "12 months (LA median {reference:.0f})",
            kind="days",
            monotone=1,
            description="Longest run of school days whose counted sessions were all "
            "unexplained (G, N, O, U), in the last 12 months.",
        ),
        _f(
            "current_unexplained_run",
            "attendance",
            "absent without explanation for the last {value:.0f} school days in a row",
            kind="days",
            monotone=1,
            description="The run of unexplained school days still going on the pupil's "
            "last school day before as_of (0 if that day was not unexplained).",
        ),
        _f(
            "unresolved_n_sessions_this_year",
            "attendance",
            "{value:.0f} sessions this school year still coded N (no reason given) "
            "after 5 school days",
            kind="count",
            monotone=1,
            description="N marks this school year still N five school days later.",
        ),
        _f(
            "part_time_sessions_this_year",
            "attendance",
            "{value:.0f} sessions on a part-time timetable (code C2) this school year",
            kind="count",
            monotone=1,
            description="Sessions coded C2 (part-time timetable) this school year.",
        ),
        _f(
            "excluded_no_provision_sessions_this_year",
            "attendance",
            "{value:.0f} sessions excluded with no alternative provision (code E) this "
            "school year",
            kind="count",
            monotone=1,
            description="Sessions coded E this school year.",
        ),
        _f(
            "off_site_sessions_this_year",
            "attendance",
            "{value:.0f} sessions in LA-arranged or other off-site provision "
            "(codes K, B) this school year",
            kind="count",
            description="Sessions coded K or B this school year.",
        ),
        _f(
            "late_sessions_this_year",
            "attendance",
            "late for {value:.0f} sessions this school year "
            "(LA median {reference:.0f})",
            kind="count",
            description="Sessions coded L or U this school year.",
        ),
    ]
    return out


def _others() -> list[FeatureSpec]:
    ctx = {"actionable": False}
    return [
        # needs
        _f(
            "sen_any",
            "needs",
            "has special educational needs (SEN support or an EHC plan)",
            kind="flag",
            monotone=1,
            description="SEN provision K or E at the latest census.",
        ),
        _f(
            "ehc_plan",
            "needs",
            "has an education, health and care (EHC) plan",
            kind="flag",
            description="SEN provision E at the latest census.",
        ),
        _f(
            "semh_need",
            "needs",
            "primary need is social, emotional and mental health (SEMH)",
            kind="flag",
            monotone=1,
            description="Primary SEN need SEMH at the latest census.",
        ),
        _f(
            "sen_changed_1y",
            "needs",
            "SEN provision changed in the last 12 months",
            kind="flag",
            description="1 when the census rows of the last 12 months disagree on "
            "SEN provision.",
        ),
        # social care
        _f(
            "cin_current",
            "social_care",
            "currently a child in need (open social-care episode: {cin_status})",
            kind="flag",
            monotone=1,
            description="An open CIN, CPP or CLA episode at as_of.",
        ),
        _f(
            "cpp_current",
            "social_care",
            "currently on a child protection plan",
            kind="flag",
            monotone=1,
            description="An open CPP episode at as_of.",
        ),
        _f(
            "cla_current",
            "social_care",
            "currently looked after by the local authority",
            kind="flag",
            description="An open CLA episode at as_of.",
        ),
        _f(
            "social_care_any_3y",
            "social_care",
            "involved with children's social care in the last 3 years",
            kind="flag",
            monotone=1,
            description="Any social-care episode open during the last 3 years.",
        ),
        _f(
            "social_care_episodes_3y",
            "social_care",
            "{value:.0f} social-care episodes in the last 3 years",
            kind="count",
            monotone=1,
            description="Social-care episodes open at any time in the last 3 years.",
        ),
        # mobility
        _f(
            "school_moves_2y",
            "mobility",
            "{value:.0f} school moves in the last 2 years (not counting the move to "
            "secondary school)",
            kind="count",
            monotone=1,
            **ctx,
            description="Changes of registered school in the last 2 years, "
            "excluding the normal primary-to-secondary transfer.",
        ),
        _f(
            "in_year_admissions_2y",
            "mobility",
            "{value:.0f} admissions to a school mid-year in the last 2 years",
            kind="count",
            monotone=1,
            **ctx,
            description="Admissions outside August-September in the last 2 years.",
        ),
        _f(
            "days_since_admission",
            "mobility",
            "last admitted to a school {value:.0f} days ago (counted up to 730)",
            kind="days",
            **ctx,
            description=(
                "Days since the latest admission to any school, counted up to 730 "
                "(2 years)."
            ),
        ),
        _f(
            "previous_ehe",
            "mobility",
            "has been electively home educated before",
            kind="flag",
            monotone=1,
            **ctx,
            description="An EHE episode started before as_of, in the records held.",
        ),
        _f(
            "previous_cme",
            "mobility",
            "has been missing from education before",
            kind="flag",
            monotone=1,
            **ctx,
            description="A CME episode started before as_of, in the records held.",
        ),
        _f(
            "unknown_destination_deletions_2y",
            "mobility",
            "{value:.0f} deletions from a school roll to an unknown destination in "
            "the last 2 years",
            kind="count",
            monotone=1,
            **ctx,
            description="Deletions with destination_known false in the last 2 years.",
        ),
        # transition
        _f(
            "nc_year_num",
            "transition",
            "in national curriculum year {nc_year}",
            kind="number",
            **ctx,
            description="NC year as a number (Reception = 0).",
        ),
        _f(
            "in_year_6",
            "transition",
            "in Year 6, about to move to secondary school",
            kind="flag",
            monotone=1,
            **ctx,
            description="NC year 6 at as_of.",
        ),
        _f(
            "age_months",
            "transition",
            "aged {age_years} ({value:.0f} months)",
            kind="number",
            **ctx,
            description="Age in whole months at as_of.",
        ),
        _f(
            "summer_born",
            "transition",
            "summer-born (among the youngest in the year group)",
            kind="flag",
            **ctx,
            description="Born 1 April to 31 August.",
        ),
        _f(
            "no_secondary_offer",
            "transition",
            "in Year 6 with no secondary school place recorded",
            kind="flag",
            monotone=1,
            description="Year 6 pupil with no secondary offer before as_of "
            "(missing for other years).",
        ),
        # exclusions
        _f(
            "suspensions_1y",
            "exclusions",
            "{value:.0f} suspensions in the last 12 months",
            kind="count",
            monotone=1,
            description="Suspensions starting in the last 12 months.",
        ),
        _f(
            "suspension_sessions_1y",
            "exclusions",
            "{value:.0f} sessions lost to suspension in the last 12 months",
            kind="count",
            monotone=1,
            description="Sessions lost to suspensions starting in the last 12 months.",
        ),
        _f(
            "permanent_exclusion_ever",
            "exclusions",
            "has been permanently excluded before",
            kind="flag",
            monotone=1,
            description="A permanent exclusion before as_of, in the records held.",
        ),
        # context
        _f(
            "fsm",
            "context",
            "eligible for free school meals",
            kind="flag",
            **ctx,
            description="FSM eligibility at the latest census.",
        ),
        _f(
            "idaci_decile",
            "context",
            "lives in an area in IDACI decile {value:.0f} (1 = the most deprived 10%)",
            kind="number",
            **ctx,
            description="Home-area IDACI decile (1 = most deprived).",
        ),
        _f(
            "school_phase",
            "context",
            "attends a school of phase: {value}",
            kind="category",
            categorical=True,
            **ctx,
            description="Phase of the current school (primary, secondary, special, "
            "ap).",
        ),
    ]


#: Every feature, in the order frames and docs list them.
FEATURES: Final[tuple[FeatureSpec, ...]] = (*_attendance(), *_others())
FEATURES_BY_NAME: Final[dict[str, FeatureSpec]] = {f.name: f for f in FEATURES}

#: Protected characteristics: carried for audits, never features or reasons.
PROTECTED: Final[tuple[str, ...]] = DEFAULT_PROTECTED

#: Audit groups (the fairness audit's default ``groups``), with readable labels.
SENSITIVE: Final[tuple[SensitiveSpec, ...]] = (
    SensitiveSpec(
        name="sex",
        label="Sex",
        value_labels={"F": "girls", "M": "boys", "U": "sex unknown"},
    ),
    SensitiveSpec(name="ethnicity_major", label="Ethnicity (major group)"),
    SensitiveSpec(
        name="first_language",
        label="First language",
        value_labels={
            "English": "first language English",
            "Other": "first language other than English",
            "Unclassified": "first language unclassified",
        },
    ),
    SensitiveSpec(
        name="sen_provision",
        label="SEN provision",
        value_labels={"N": "No SEN", "K": "SEN support", "E": "EHC plan"},
    ),
    SensitiveSpec(name="semh", label="SEMH primary need"),
    SensitiveSpec(name="fsm_eligible", label="FSM eligible"),
    SensitiveSpec(
        name="idaci_quintile",
        label="IDACI quintile (1 = most deprived)",
        value_labels={
            q: f"IDACI quintile {q}" for q in ("1 (most deprived)", "2", "3", "4", "5")
        },
    ),
    SensitiveSpec(
        name="cin_status",
        label="Social care status",
        value_labels={
            "none": "no open social-care episode",
            "CIN": "children in need",
            "CPP": "child protection plans",
            "CLA": "looked-after children",
        },
    ),
)
AUDIT_COLUMNS: Final[tuple[str, ...]] = tuple(s.name for s in SENSITIVE)

#: Columns carried alongside for outputs and reason templates.
CARRY: Final[tuple[str, ...]] = (
    "school_urn",
    "school_phase",
    "nc_year",
    "age_years",
    "secondary_offer_urn",
)
