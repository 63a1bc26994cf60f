"""The generator's knobs: rates, effect sizes and durations, in one place.

The defaults were tuned (by running the generator and reading
:func:`cmerisk.data.synthetic.report.calibration_report`, seeds 0-4, 20,000
pupils) so that a national LA meets the targets in
:mod:`cmerisk.data.synthetic.targets`; they are not published figures
themselves. :func:`params_for` shifts a few of them towards one LA's published
rates for ``--like``.

Rates are per pupil per school year unless said otherwise; effects are on the
log-hazard (or logit) scale and multiply a pupil's latent traits (see
:mod:`cmerisk.data.synthetic.population`). Every hazard is normalised over
the pupils so that its base rate is the LA-wide average.

Examples
--------
>>> p = Params()
>>> p.cme_duration_median_days > 0
True
>>> params_for(like=None) == p
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from scipy.stats import norm


@dataclass(frozen=True)
class Params:
    # --- population ---------------------------------------------------------------
    join_rate: float = 0.040  # pupils moving into the LA, per pupil on roll a year
    joiner_mobility: float = 0.5
    special_share: float = 0.015
    deprivation_shift: float = 0.0
    fsm_intercept: float = -1.55
    sen_intercept: float = -1.72
    ehc_intercept: float = -1.35
    # --- absence (logit of a pupil-year's absence rate) ------------------------------
    absence_intercept: float = -4.38
    absence_u: float = 1.4
    absence_year_sd: float = 0.8
    absence_phase: dict[str, float] = field(
        default_factory=lambda: {
            "primary": 0.0,
            "secondary": 0.55,
            "special": 0.75,
            "ap": 1.6,
        }
    )
    absence_nc_slope: float = 0.05  # per NC year beyond Year 7
    absence_reception: float = 0.15
    absence_fsm: float = 0.40
    absence_sen_k: float = 0.22
    absence_sen_e: float = 0.30
    absence_semh: float = 0.30
    absence_dep: float = 0.08
    absence_cin: float = 0.7  # while a social-care episode is open (mean effect)
    absence_cin_sd: float = 1.2  # ...varying between pupils
    holiday_rate: dict[str, float] = field(
        default_factory=lambda: {"primary": 0.16, "secondary": 0.09}
    )
    # --- social care ------------------------------------------------------------------
    social_care_rate: float = 0.033  # new episodes a year
    social_care_adv: float = 1.15
    social_care_dep: float = 0.25
    social_care_share: tuple[float, float, float] = (0.80, 0.12, 0.08)  # CIN, CPP, CLA
    social_care_days: tuple[float, float, float] = (300.0, 270.0, 1000.0)
    cin_to_cpp_rate: float = 0.10
    cin_to_cla_rate: float = 0.03
    cpp_to_cla_rate: float = 0.10
    # --- mobility ---------------------------------------------------------------------
    leave_rate: float = 0.034  # moving out of the LA with a known destination
    move_rate: float = 0.025  # changing school within the LA
    summer_share: float = 0.35  # share of a year's moves made over the summer
    independent_at_transition: float = 0.025
    ap_return_rate: float = 0.7
    # --- disengagement: the latent process that precedes most CME and EHE -------------
    disengage_rate: float = 0.021
    disengage_u: float = 0.45
    disengage_vul: float = 0.70
    disengage_dep: float = 0.0
    disengage_cin: float = 0.9
    disengage_semh: float = 0.25
    disengage_sen: float = 0.15
    disengage_recent_event: float = (
        0.5  # a suspension or school move in the last 90 days
    )
    disengage_by_nc: tuple[float, ...] = (
        0.15,
        0.2,
        0.25,
        0.3,
        0.4,
        0.55,
        1.0,
        1.4,
        1.3,
        1.3,
        1.2,
        0.8,
    )
    disengage_y6_summer: float = 2.2
    disengage_y7_autumn: float = 1.6
    disengage_days: tuple[int, int] = (15, 75)  # ramp length, school days
    disengage_peak: tuple[float, float] = (0.35, 0.85)
    #: Outcome shares: recover, CME after 20 days, moved away (unknown), EHE,
    #: moved away (known), school move.
    disengage_outcomes: tuple[float, ...] = (0.645, 0.11, 0.05, 0.12, 0.035, 0.04)
    disengage_cme_dep: float = 0.0
    disengage_cme_cin: float = 0.2
    # --- CME without warning ----------------------------------------------------------
    vanish_rate: float = 0.0007  # in term, no prior decline
    summer_vanish_rate: float = 0.0007
    vanish_mob: float = 0.5
    vanish_dep: float = 0.0
    vanish_cin: float = 0.5
    transition_noshow: float = 0.0025  # Year 6 pupils who never arrive in Year 7
    noshow_no_offer: float = 1.2
    noshow_disengaged: float = 1.3
    noshow_cin: float = 0.5
    cme_lag_days: tuple[int, int] = (1, 14)
    cme_duration_median_days: float = 58.0
    cme_duration_sigma: float = 1.8
    # --- offers -----------------------------------------------------------------------
    no_offer_rate: float = 0.025
    feeder_share: float = 0.75
    late_offer_weekly: float = 0.06
    # --- exclusions, part-time timetables, dual registration --------------------------
    suspension_rate: dict[str, float] = field(
        default_factory=lambda: {
            "primary": 0.025,
            "secondary": 0.19,
            "special": 0.12,
            "ap": 0.4,
        }
    )
    permanent_rate: dict[str, float] = field(
        default_factory=lambda: {
            "primary": 0.0002,
            "secondary": 0.0017,
            "special": 0.0005,
            "ap": 0.0,
        }
    )
    exclusion_disengaged: float = 1.4
    part_time_rate: float = 0.010
    dual_rate: float = 0.006
    # --- EHE --------------------------------------------------------------------------
    ehe_rate: float = 0.0001  # without prior disengagement
    ehe_mean_days: float = 900.0


def _probit_shift(target_pct: float, reference_pct: float, *, scale: float) -> float:
    """Logit shift moving a share above a threshold from ``reference`` to ``target``."""
    p1 = min(max(target_pct / 100, 0.01), 0.99)
    p0 = min(max(reference_pct / 100, 0.01), 0.99)
    return scale * (norm.ppf(p1) - norm.ppf(p0))


#: Spread (logit scale) of pupil-year absence rates, for translating a change in
#: persistent absence into a shift of the absence intercept.
ABSENCE_SPREAD = 1.25


def params_for(*, like: str | None = None) -> Params:
    """Parameters for a national LA, or moved towards LA ``like``'s published rates."""
    base = Params()
    if like is None:
        return base
    from cmerisk.data.synthetic.targets import la_rates, national_targets

    rates, nat = la_rates(like), national_targets()
    phase = dict(base.absence_phase)
    shift = 0.0
    if rates["persistent_absence"] is not None:
        shift = _probit_shift(
            rates["persistent_absence"],
            nat["persistent_absence"].value,
            scale=ABSENCE_SPREAD,
        )
    for ph in ("primary", "secondary"):
        value = rates[f"persistent_absence_{ph}"]
        if value is not None:
            phase[ph] += (
                _probit_shift(
                    value, nat[f"persistent_absence_{ph}"].value, scale=ABSENCE_SPREAD
                )
                - shift
            )
    cin_absence = base.absence_cin
    if rates["persistent_absence_cin"] is not None:
        cin_absence += (
            _probit_shift(
                rates["persistent_absence_cin"],
                nat["persistent_absence_cin"].value,
                scale=ABSENCE_SPREAD,
            )
            - shift
        )
    cin_index = rates["cin_index"] or 1.0
    sen_index = rates["sen_support_index"] or 1.0
    ehc_index = rates["ehc_plan_index"] or 1.0
    return replace(
        base,
        absence_intercept=base.absence_intercept + shift,
        absence_phase=phase,
        absence_cin=cin_absence,
        social_care_rate=base.social_care_rate * cin_index,
        # Children in need cluster in deprived areas: use the LA's CIN rate as a
        # (rough) deprivation proxy, the reference subset having no IDACI by LA.
        deprivation_shift=max(-0.6, min(0.6, 0.5 * math.log(cin_index))),
        sen_intercept=base.sen_intercept + math.log(sen_index),
        ehc_intercept=base.ehc_intercept + math.log(ehc_index),
    )
