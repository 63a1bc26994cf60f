"""The pupils of a synthetic LA and the traits they carry through their school life.

Every pupil who will ever appear is drawn up front: the pupils on roll on the
first day (Reception to Year 11), each later Reception intake, and the pupils
who move into the LA during the years. A pupil's protected characteristics
(sex, ethnicity, first language) are drawn for the audit tables only: no later
step reads them. What drives the pupil's story are a few latent traits,
correlated with each other and with home-area deprivation:

``dep``  home-area deprivation (standard normal; IDACI decile 1 = top 10%)
``adv``  family adversity (raises social care, SEN/SEMH, absence)
``u``    absence propensity (persistent across years)
``mob``  residential mobility (school moves, leaving the LA, vanishing)
``vul``  vulnerability to disengage from school
``cin_z`` how much an open social-care episode changes the pupil's attendance

Examples
--------
>>> import numpy as np
>>> from cmerisk.data.synthetic.params import Params
>>> from cmerisk.data.synthetic.schools import make_schools
>>> from cmerisk.data.synthetic.timeline import Timeline
>>> tl = Timeline.build(2021, 2)
>>> rng = np.random.default_rng(0)
>>> s = make_schools(pupils=2_400, rng=rng)
>>> p = make_pupils(2_400, timeline=tl, schools=s, params=Params(), rng=rng)
>>> bool(2_400 < len(p) < 3_000), set(p.first_nc[p.arrival_day == 0]) == set(range(12))
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit
from scipy.stats import norm

from cmerisk.data import codes
from cmerisk.data.synthetic.params import Params
from cmerisk.data.synthetic.schools import Schools, choose_school
from cmerisk.data.synthetic.timeline import Timeline
from cmerisk.data.upn import random_upns

#: Other LAs' numbers, for the UPNs of pupils who move in (a few real ones).
OTHER_LA_NUMBERS = (202, 306, 341, 350, 380, 420, 805, 841, 873, 886, 919, 936)

ETHNICITY_P = {
    "White": 0.655,
    "Asian": 0.125,
    "Black": 0.06,
    "Mixed": 0.07,
    "Other": 0.025,
    "Unclassified": 0.065,
}
#: P(first language other than English | ethnicity).
EAL_P = {
    "White": 0.08,
    "Asian": 0.62,
    "Black": 0.30,
    "Mixed": 0.10,
    "Other": 0.70,
    "Unclassified": 0.20,
}

#: Primary-need shares (mainstream SEN support in primary, in secondary, EHC plans,
#: special schools). SEMH is reweighted per pupil by adversity.
NEEDS = tuple(codes.SEN_PRIMARY_NEEDS)
NEED_SHARES = {
    "k_primary": dict(
        SLCN=0.32,
        SEMH=0.12,
        MLD=0.13,
        ASD=0.09,
        SPLD=0.10,
        OTH=0.04,
        NSA=0.08,
        PD=0.03,
        HI=0.02,
        VI=0.01,
        SLD=0.02,
        MSI=0.005,
        PMLD=0.005,
    ),
    "k_secondary": dict(
        SEMH=0.26,
        SPLD=0.17,
        MLD=0.15,
        SLCN=0.11,
        ASD=0.09,
        OTH=0.05,
        NSA=0.07,
        PD=0.03,
        HI=0.03,
        VI=0.02,
        SLD=0.01,
        MSI=0.005,
        PMLD=0.005,
    ),
    "e_mainstream": dict(
        ASD=0.34,
        SEMH=0.18,
        SLCN=0.16,
        MLD=0.08,
        SLD=0.06,
        PD=0.06,
        SPLD=0.04,
        HI=0.03,
        VI=0.02,
        OTH=0.02,
        PMLD=0.01,
    ),
    "special": dict(
        ASD=0.34,
        SLD=0.20,
        SEMH=0.13,
        MLD=0.10,
        PMLD=0.06,
        SLCN=0.08,
        PD=0.04,
        HI=0.02,
        VI=0.01,
        OTH=0.02,
    ),
}


@dataclass
class Pupils:
    """Parallel arrays, one entry per pupil (index = the generator's pupil number)."""

    upn: np.ndarray  # str
    dob: np.ndarray  # datetime64[D]
    sex: np.ndarray
    ethnicity: np.ndarray
    first_language: np.ndarray
    idaci: np.ndarray  # int 1-10
    dep: np.ndarray
    adv: np.ndarray
    u: np.ndarray
    mob: np.ndarray
    vul: np.ndarray
    cin_z: (
        np.ndarray
    )  # how strongly social-care involvement changes this pupil's absence
    fsm: np.ndarray  # bool
    special: np.ndarray  # bool: in special schools throughout
    k_onset: np.ndarray  # NC year SEN support starts (99 = never)
    e_onset: np.ndarray  # NC year an EHC plan starts (99 = never)
    need_primary: np.ndarray  # index into NEEDS (-1 none)
    need_secondary: np.ndarray
    cohort: np.ndarray  # the school year the pupil is (or would be) in Reception
    arrival_day: np.ndarray  # school-day index the pupil first goes on roll
    first_nc: np.ndarray  # NC year at arrival
    first_school: np.ndarray  # school at arrival
    joiner: np.ndarray  # bool: moved into the LA during the years
    year_noise: np.ndarray  # (n, n_years) float32: the pupil-year absence shock

    def __len__(self) -> int:
        return len(self.upn)

    def nc_year(self, year_index: int | np.ndarray, school_year0: int) -> np.ndarray:
        """NC year (0 = Reception) in school year ``school_year0 + year_index``."""
        return school_year0 + year_index - self.cohort

    def sen_level(
        self, nc: np.ndarray, idx: np.ndarray | slice = slice(None)
    ) -> np.ndarray:
        """0 none, 1 SEN support, 2 EHC plan, for pupils ``idx`` at NC years ``nc``."""
        return np.where(
            nc >= self.e_onset[idx], 2, np.where(nc >= self.k_onset[idx], 1, 0)
        )


def _categorical(rng: np.random.Generator, p: dict[str, float], n: int) -> np.ndarray:
    keys = np.array(list(p), dtype=object)
    w = np.array(list(p.values()))
    return keys[rng.choice(len(keys), size=n, p=w / w.sum())]


def _needs(
    rng: np.random.Generator, shares: dict[str, float], semh_tilt: np.ndarray
) -> np.ndarray:
    """A primary need per pupil, SEMH weighted by ``exp(semh_tilt)`` (Gumbel-max)."""
    logw = np.log(np.array([shares.get(k, 1e-9) for k in NEEDS]))
    scores = logw[None, :] + rng.gumbel(size=(len(semh_tilt), len(NEEDS)))
    scores[:, NEEDS.index("SEMH")] += semh_tilt
    return scores.argmax(axis=1)


def make_pupils(
    pupils: int,
    *,
    timeline: Timeline,
    schools: Schools,
    params: Params,
    rng: np.random.Generator,
    la_number: int = 330,
) -> Pupils:
    """Draw every pupil of an LA with about ``pupils`` on roll each year."""
    y0, n_years = timeline.years[0], len(timeline.years)
    per_year = pupils / 12
    # Who: the first-day roll, later Reception intakes, and joiners.
    first_counts = rng.poisson(per_year, 12)
    intake_counts = rng.poisson(per_year, n_years - 1)
    n_join = rng.poisson(params.join_rate * pupils * n_years)
    cohort = np.concatenate(
        [
            np.repeat(y0 - np.arange(12), first_counts),
            np.repeat(y0 + 1 + np.arange(n_years - 1), intake_counts),
        ]
    )
    arrival = np.concatenate(
        [
            np.zeros(first_counts.sum(), dtype=np.int64),
            np.repeat(timeline.year_first_day[1:], intake_counts),
        ]
    )
    # Joiners arrive on any school day; their NC year then is uniform R-11.
    join_day = np.sort(rng.integers(1, timeline.n_days, n_join))
    join_nc = rng.integers(0, 12, n_join)
    join_cohort = np.array(timeline.years)[timeline.day_year[join_day]] - join_nc
    cohort = np.concatenate([cohort, join_cohort])
    arrival = np.concatenate([arrival, join_day])
    joiner = np.r_[np.zeros(len(arrival) - n_join, bool), np.ones(n_join, bool)]
    n = len(cohort)
    first_nc = np.array(timeline.years)[timeline.day_year[arrival]] - cohort
    # Date of birth: any day of the cohort's birth year (1 Sep - 31 Aug).
    birth_start = np.array(
        [np.datetime64(f"{c - 5}-09-01") for c in range(cohort.min(), cohort.max() + 1)]
    )
    dob = birth_start[cohort - cohort.min()] + rng.integers(0, 365, n).astype(
        "timedelta64[D]"
    )

    special = rng.random(n) < params.special_share
    # Where they start: special pupils at a special school, else by phase.
    first_school = np.empty(n, dtype=np.int64)
    first_school[special] = choose_school(
        schools.of_phase("special"), int(special.sum()), schools=schools, rng=rng
    )
    for phase, in_phase in (("primary", first_nc <= 6), ("secondary", first_nc >= 7)):
        idx = np.flatnonzero(in_phase & ~special)
        first_school[idx] = choose_school(
            schools.of_phase(phase), len(idx), schools=schools, rng=rng
        )

    # Latent traits. Deprivation clusters by school area.
    area = schools.deprivation[first_school]
    dep = (area + rng.normal(0, 0.6, n)) / 1.0
    adv = 0.35 * dep + 0.94 * rng.normal(size=n)
    u = 0.30 * adv + 0.05 * dep + 0.95 * rng.normal(size=n)
    mob = (
        0.15 * dep
        + 0.25 * adv
        + 0.95 * rng.normal(size=n)
        + params.joiner_mobility * joiner
    )
    vul = 0.35 * u + 0.25 * adv + 0.90 * rng.normal(size=n)
    cin_z = rng.normal(size=n)
    idaci = np.clip(1 + np.floor(10 * norm.sf(dep)).astype(int), 1, 10)

    sex = _categorical(rng, {"M": 0.51, "F": 0.489, "U": 0.001}, n)
    ethnicity = _categorical(rng, ETHNICITY_P, n)
    eal_p = np.vectorize(EAL_P.get)(ethnicity).astype(float)
    draw = rng.random(n)
    first_language = np.where(draw < eal_p, "Other", "English").astype(object)
    first_language[draw > 0.995] = "Unclassified"

    fsm = rng.random(n) < expit(params.fsm_intercept + 1.3 * dep + 0.6 * adv)
    male = sex == "M"
    k_ever = rng.random(n) < expit(
        params.sen_intercept + 0.55 * male + 0.4 * fsm + 0.45 * adv
    )
    onset_p = np.array(
        [0.22, 0.14, 0.13, 0.11, 0.10, 0.08, 0.06, 0.06, 0.04, 0.03, 0.02, 0.01]
    )
    k_onset = np.where(k_ever, rng.choice(12, size=n, p=onset_p / onset_p.sum()), 99)
    e_ever = k_ever & (
        rng.random(n) < expit(params.ehc_intercept + 0.3 * adv + 0.4 * male)
    )
    e_onset = np.where(e_ever, np.minimum(k_onset + 1 + rng.geometric(0.45, n), 11), 99)
    k_onset[special] = 0
    e_onset[special] = 0

    semh_tilt = 0.7 * adv + 0.3 * male
    need_p = _needs(rng, NEED_SHARES["k_primary"], semh_tilt)
    need_s = np.where(
        rng.random(n) < 0.55, need_p, _needs(rng, NEED_SHARES["k_secondary"], semh_tilt)
    )
    need_e = _needs(rng, NEED_SHARES["e_mainstream"], semh_tilt)
    need_sp = _needs(rng, NEED_SHARES["special"], semh_tilt)
    need_p = np.where(e_ever, np.where(rng.random(n) < 0.5, need_e, need_p), need_p)
    need_s = np.where(e_ever, need_e, need_s)
    need_p = np.where(special, need_sp, np.where(k_ever, need_p, -1))
    need_s = np.where(special, need_sp, np.where(k_ever, need_s, -1))

    # UPNs: home-LA numbers for pupils first registered here, others' for joiners.
    from_elsewhere = joiner & (rng.random(n) < 0.7)
    upn = np.empty(n, dtype=object)
    home = np.flatnonzero(~from_elsewhere)
    upn[home] = random_upns(len(home), rng=rng, la_number=la_number)
    other_la = rng.choice(
        np.array([c for c in OTHER_LA_NUMBERS if c != la_number]), size=n
    )
    for code in np.unique(other_la[from_elsewhere]):
        idx = np.flatnonzero(from_elsewhere & (other_la == code))
        upn[idx] = random_upns(len(idx), rng=rng, la_number=int(code))

    year_noise = rng.normal(0, params.absence_year_sd, (n, n_years)).astype(np.float32)
    return Pupils(
        upn=upn,
        dob=dob,
        sex=sex,
        ethnicity=ethnicity,
        first_language=first_language,
        idaci=idaci,
        dep=dep,
        adv=adv,
        u=u,
        mob=mob,
        vul=vul,
        cin_z=cin_z,
        fsm=fsm,
        special=special,
        k_onset=k_onset,
        e_onset=e_onset,
        need_primary=need_p,
        need_secondary=need_s,
        cohort=cohort,
        arrival_day=arrival,
        first_nc=first_nc,
        first_school=first_school,
        joiner=joiner,
        year_noise=year_noise,
    )
