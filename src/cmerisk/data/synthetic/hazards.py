"""Hazards: the pupil-level parts of every weekly event rate.

Each hazard is a daily rate (``rate / 190`` per school day for a yearly rate)
times ``exp`` of the pupil's risk score; :class:`Hazards` holds the static
part of each score, normalised to mean 1 over the pupils, so the base rates
in :class:`~.params.Params` are LA-wide averages. :class:`YearState` holds
what is fixed for a school year (NC year, SEN, SEMH).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cmerisk.data.synthetic.population import NEEDS
from cmerisk.data.synthetic.schools import PHASES
from cmerisk.data.synthetic.world import World

DAYS_PER_YEAR = 190.0
AP, PRIMARY, SECONDARY, SPECIAL = (
    PHASES.index(p) for p in ("ap", "primary", "secondary", "special")
)


def _norm(score: np.ndarray) -> np.ndarray:
    """exp(score) scaled to mean 1."""
    e = np.exp(score)
    return e / e.mean()


@dataclass(frozen=True)
class Hazards:
    """Static parts of each hazard, per pupil, normalised to mean 1."""

    disengage: np.ndarray
    vanish: np.ndarray
    leave: np.ndarray
    move: np.ndarray
    exclusion: np.ndarray
    part_time: np.ndarray
    dual: np.ndarray
    social_care: np.ndarray
    no_offer: np.ndarray
    noshow: np.ndarray

    @classmethod
    def build(cls, world: World) -> Hazards:
        p, q = world.params, world.pupils
        male = (q.sex == "M").astype(float)
        return cls(
            disengage=_norm(
                p.disengage_u * q.u + p.disengage_vul * q.vul + p.disengage_dep * q.dep
            ),
            vanish=_norm(p.vanish_mob * q.mob + p.vanish_dep * q.dep),
            leave=_norm(0.6 * q.mob),
            move=_norm(0.5 * q.mob + 0.3 * q.adv),
            exclusion=_norm(0.7 * q.adv + 0.45 * male + 0.35 * q.u),
            part_time=_norm(0.4 * q.adv + 0.3 * q.u),
            dual=_norm(0.5 * q.adv + 0.4 * q.u),
            social_care=_norm(p.social_care_adv * q.adv + p.social_care_dep * q.dep),
            no_offer=_norm(0.7 * q.vul + 0.3 * q.dep + 0.4 * q.mob),
            noshow=_norm(0.5 * q.vul + 0.35 * q.u + 0.3 * q.mob),
        )


@dataclass(frozen=True)
class YearState:
    """What is fixed for a school year: NC year, SEN level and SEMH, per pupil."""

    index: int
    nc: np.ndarray
    sen: np.ndarray
    semh: np.ndarray

    @classmethod
    def build(cls, world: World, year_index: int) -> YearState:
        q = world.pupils
        nc = world.nc(year_index)
        sen = q.sen_level(nc)
        need = np.where(nc >= 7, q.need_secondary, q.need_primary)
        return cls(year_index, nc, sen, (sen > 0) & (need == NEEDS.index("SEMH")))


def by_phase(rates: dict[str, float], phase: np.ndarray) -> np.ndarray:
    """Each pupil's rate for the phase of their school (``phase`` as phase codes)."""
    return np.array([rates.get(name, 0.0) for name in PHASES])[phase]


def _weekly(rate_per_day: np.ndarray | float, n_days: int) -> np.ndarray | float:
    return 1.0 - np.exp(-np.asarray(rate_per_day) * n_days)


def draw(
    world: World, idx: np.ndarray, rate_per_day: np.ndarray | float, n_days: int
) -> np.ndarray:
    """The pupils among ``idx`` whose event happens this week."""
    prob = np.broadcast_to(_weekly(rate_per_day, n_days), idx.shape)
    return idx[world.rng.random(len(idx)) < prob]
