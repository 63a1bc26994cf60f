"""What the synthetic LA is calibrated to: every target, its tolerance and its source.

A :class:`Target` is one published (or DOMAIN.md) figure the generator aims at,
with the band inside which the achieved value passes. :func:`targets_for`
returns the national set, or, with ``like="330"``, the same set with one real
LA's published rates (absence, SEN, children in need) put in place of the
national ones. The LA figures come from the small DfE subset shipped in
``cmerisk/data/reference`` (see its ``SOURCE.md``).

How each achieved value is measured is in :mod:`cmerisk.data.synthetic.report`;
the ``measure`` text of each target says it in one line.

Examples
--------
>>> t = targets_for()
>>> pa = t["persistent_absence"]
>>> pa.value, pa.low, pa.high
(20.5, 18.0, 23.0)
>>> t["cme_ratio_cin"].passes(2.5), t["cme_ratio_cin"].passes(3.5)
(True, False)
>>> b = targets_for(like="330")
>>> b["persistent_absence"].value, "Birmingham" in b["persistent_absence"].source
(22.03, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Final

from cmerisk.data.synthetic.reference import la_names, la_rates

DFE_ABSENCE: Final = (
    "DfE, Pupil attendance in schools, 2024/25 year to date (EES_ytd_data.csv)"
)
DFE_CIN_ABSENCE: Final = (
    "DfE, Outcomes for children in need, including children looked after, absence of "
    "CINO at 31 March (absence_la.csv)"
)
DFE_CIN_COUNTS: Final = "DfE, Characteristics of children in need, table B1 (2025)"
DFE_SEN_CIN: Final = (
    "DfE, Outcomes for children in need: SEN of CINO at 31 March, 2021/22 (sen_la.csv)"
)
DFE_SEN_NATIONAL: Final = (
    "DfE, Outcomes for children in need: all pupils comparison, 2021/22 "
    "(sen_national.csv)"
)
DOMAIN: Final = "DOMAIN.md (Children's Commissioner for England 2024; DfE statistics)"
BRIEF: Final = "issue 2 acceptance criteria"


@dataclass(frozen=True)
class Target:
    """One calibration target: a value and the band ``[low, high]`` that passes.

    ``check=False`` marks a row shown for information only (no pass/fail),
    e.g. a national figure kept for an LA the reference data says nothing about.
    """

    name: str
    label: str
    value: float
    low: float
    high: float
    unit: str
    source: str
    measure: str
    check: bool = True

    def passes(self, achieved: float | None) -> bool:
        """Whether ``achieved`` lies in the band (``None``/NaN never passes)."""
        if achieved is None or math.isnan(achieved):
            return False
        return self.low <= achieved <= self.high


def _band(
    value: float, *, rel: float | None = None, pp: float | None = None
) -> tuple[float, float]:
    if rel is not None:
        return round(value * (1 - rel), 4), round(value * (1 + rel), 4)
    assert pp is not None
    return round(value - pp, 4), round(value + pp, 4)


def _t(
    name: str,
    label: str,
    value: float,
    band: tuple[float, float],
    unit: str,
    source: str,
    measure: str,
) -> Target:
    return Target(name, label, value, band[0], band[1], unit, source, measure)


def national_targets() -> dict[str, Target]:
    """The targets for a typical English LA (national figures)."""
    pct, ratio = "%", "ratio"
    rows = [
        # --- census prevalences -------------------------------------------------
        _t(
            "fsm",
            "FSM eligible",
            25.0,
            _band(25.0, pp=4),
            pct,
            DOMAIN,
            "share of census rows with fsm_eligible",
        ),
        _t(
            "sen_support",
            "SEN support (K)",
            13.6,
            _band(13.6, pp=1.6),
            pct,
            DOMAIN,
            "share of census rows with sen_provision K",
        ),
        _t(
            "ehc_plan",
            "EHC plan (E)",
            4.8,
            _band(4.8, pp=0.8),
            pct,
            DOMAIN,
            "share of census rows with sen_provision E",
        ),
        _t(
            "cin",
            "Child in need (CIN, CPP or CLA open)",
            3.0,
            _band(3.0, pp=0.6),
            pct,
            DOMAIN,
            "share of census rows with a social-care episode open on the census day",
        ),
        _t(
            "cla",
            "Looked after (CLA open)",
            0.7,
            _band(0.7, pp=0.25),
            pct,
            DOMAIN,
            "share of census rows with a CLA episode open on the census day",
        ),
        _t(
            "semh_share_secondary",
            "SEMH share of SEN, secondary",
            24.0,
            _band(24.0, pp=6),
            pct,
            DOMAIN + "; " + DFE_SEN_NATIONAL,
            "share of secondary census rows with SEN whose primary need is SEMH",
        ),
        _t(
            "semh_secondary_minus_primary",
            "SEMH share: secondary minus primary",
            8.0,
            (2.0, 20.0),
            "pp",
            DOMAIN,
            "SEMH share of SEN, secondary minus primary",
        ),
        # --- absence ------------------------------------------------------------
        _t(
            "overall_absence",
            "Overall absence rate",
            6.9,
            _band(6.9, pp=0.8),
            pct,
            DFE_ABSENCE,
            "absent / possible sessions over all enrolments",
        ),
        _t(
            "persistent_absence",
            "Persistent absence (>=10%)",
            20.5,
            _band(20.5, pp=2.5),
            pct,
            DOMAIN + " (22.3% 2022/23, 18.7% 2024/25)",
            "share of enrolments (pupil x school x year) missing >=10% of sessions",
        ),
        _t(
            "persistent_absence_primary",
            "Persistent absence, primary",
            15.5,
            _band(15.5, pp=2.5),
            pct,
            DOMAIN + " (17% 2022/23, 13.5% 2024/25)",
            "as persistent_absence, primary schools",
        ),
        _t(
            "persistent_absence_secondary",
            "Persistent absence, secondary",
            26.5,
            _band(26.5, pp=2.5),
            pct,
            DOMAIN + " (28% 2022/23, 24.3% 2024/25)",
            "as persistent_absence, secondary schools",
        ),
        _t(
            "severe_absence",
            "Severe absence (>=50%)",
            2.0,
            _band(2.0, pp=0.8),
            pct,
            DOMAIN,
            "share of enrolments missing >=50% of possible sessions",
        ),
        _t(
            "persistent_absence_cin",
            "Persistent absence, children in need",
            46.0,
            _band(46.0, pp=6),
            pct,
            DFE_CIN_ABSENCE + ", England 2024/25",
            "as persistent_absence, pupils with a CIN (not CPP/CLA) on 31 March",
        ),
        _t(
            "severe_absence_cin",
            "Severe absence, children in need",
            11.0,
            _band(11.0, pp=3.5),
            pct,
            DFE_CIN_ABSENCE + ", England 2024/25",
            "as severe_absence, pupils with a CIN episode open on 31 March",
        ),
        # --- children missing education ----------------------------------------
        _t(
            "cme_incidence",
            "New CME episodes per 100 pupils a year",
            0.4,
            (0.25, 0.6),
            "per 100",
            DOMAIN + "; " + BRIEF,
            "episodes starting in a school year / pupils on roll at its autumn census",
        ),
        _t(
            "cme_peak_nc_year",
            "NC year with the highest new-CME rate",
            7,
            (6, 7),
            "year",
            DOMAIN,
            "NC year (by date of birth) of the school year each episode starts in",
        ),
        _t(
            "cme_transition_ratio",
            "New-CME rate in Year 7 / mean of other years",
            2.0,
            (1.5, 4.0),
            ratio,
            DOMAIN,
            "incidence in NC year 7 over the mean of the rest",
        ),
        _t(
            "cme_ratio_idaci1",
            "P(IDACI decile 1 | new CME) / P(IDACI decile 1)",
            1.5,
            _band(1.5, rel=0.2),
            ratio,
            DOMAIN,
            "episode starts vs census rows",
        ),
        _t(
            "cme_ratio_sen",
            "P(SEN K or E | new CME) / P(SEN)",
            1.4,
            _band(1.4, rel=0.2),
            ratio,
            DOMAIN,
            "SEN at the pupil's last census before the start, vs census rows",
        ),
        _t(
            "cme_ratio_cin",
            "P(CIN | new CME) / P(CIN)",
            2.7,
            _band(2.7, rel=0.2),
            ratio,
            DOMAIN,
            "a social-care episode open in the 12 months to the start, vs census rows",
        ),
        _t(
            "cme_open_12_weeks",
            "CME episodes lasting > 12 weeks",
            40.0,
            _band(40.0, pp=8),
            pct,
            DOMAIN,
            "episodes starting >= 1 year before the data end; to end or data end",
        ),
        _t(
            "cme_open_1_year",
            "CME episodes lasting > 1 year",
            13.0,
            _band(13.0, pp=5),
            pct,
            DOMAIN,
            "as cme_open_12_weeks, > 365 days",
        ),
        # --- EHE, offers, leakage ----------------------------------------------
        _t(
            "ehe_after_persistent_absence",
            "EHE starts preceded by persistent absence",
            85.0,
            (80.0, 100.0),
            pct,
            DOMAIN,
            "EHE episodes whose pupil missed >=10% of sessions in the year before",
        ),
        _t(
            "secondary_offer_rate",
            "Year 6 pupils with a secondary offer on offer day",
            96.0,
            (90.0, 99.5),
            pct,
            BRIEF,
            "Y6 pupils on roll at the spring census",
        ),
        _t(
            "max_single_column_auc",
            "Largest AUC of one census/pupil column for new CME",
            0.7,
            (0.0, 0.9),
            "AUC",
            BRIEF,
            "each pupil/census column at the summer census vs CME in the next 245 days",
        ),
    ]
    return {t.name: t for t in rows}


def targets_for(*, like: str | None = None) -> dict[str, Target]:
    """The targets: national, or with LA ``like``'s published rates where it has them.

    Figures the reference data lacks for that LA (suppressed, or not published by
    LA) stay national; rows the LA's rates would move but that have no LA figure
    (FSM, IDACI-linked ratios) become information only (``check=False``).
    """
    targets = national_targets()
    if like is None:
        return targets
    rates = la_rates(like)
    name = la_names()[like]
    where = f"{name} ({like}): "
    for key in (
        "overall_absence",
        "persistent_absence",
        "persistent_absence_primary",
        "persistent_absence_secondary",
        "persistent_absence_cin",
        "severe_absence_cin",
    ):
        value = rates[key]
        if value is None:
            continue
        old = targets[key]
        half = (old.high - old.low) / 2
        src = DFE_CIN_ABSENCE if key.endswith("_cin") else DFE_ABSENCE
        targets[key] = replace(
            old,
            value=value,
            low=round(value - half, 2),
            high=round(value + half, 2),
            source=where + src,
        )
    if rates["cin_index"] is not None:
        idx = rates["cin_index"]
        for key in ("cin", "cla"):
            old = targets[key]
            value = round(old.value * idx, 2)
            targets[key] = replace(
                old,
                value=value,
                low=round(value * 0.8, 2),
                high=round(value * 1.2, 2),
                source=where + DFE_CIN_COUNTS + " / pupils enrolled, "
                f"x England's {old.value}%",
            )
    for key, index_key in (
        ("sen_support", "sen_support_index"),
        ("ehc_plan", "ehc_plan_index"),
    ):
        sen_idx = rates[index_key]
        if sen_idx is None:
            continue
        old = targets[key]
        value = round(old.value * sen_idx, 2)
        half = (old.high - old.low) / 2
        targets[key] = replace(
            old,
            value=value,
            low=round(value - half, 2),
            high=round(value + half, 2),
            source=where + "England's rate x the LA/England ratio among "
            "children in need (proxy), " + DFE_SEN_CIN,
        )
    targets["fsm"] = replace(
        targets["fsm"],
        check=False,
        source="England (no LA figure in the reference data)",
    )
    return targets
