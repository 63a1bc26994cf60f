"""Disengagement ramps: how they start and how they end.

A ramp starts (see :func:`.weekly.term_week` for its hazard) with a length,
a peak and an outcome drawn up front: recovery, 20 school days of unexplained
absence then deletion and CME, a move away to nobody knows where (CME),
elective home education, a known move away, or a school move. While it runs,
attendance falls (:mod:`.attendance`); when it ends, the outcome is scheduled.
"""

from __future__ import annotations

import numpy as np

from cmerisk.data.synthetic.hazards import YearState
from cmerisk.data.synthetic.world import (
    THEN_CME,
    THEN_EHE,
    THEN_GONE,
    THEN_MOVE,
    World,
    ground,
)


def start_disengagement(
    world: World, idx: np.ndarray, first: np.ndarray, ys: YearState
) -> None:
    p, rng = world.params, world.rng
    if not len(idx):
        return
    length = rng.integers(p.disengage_days[0], p.disengage_days[1] + 1, len(idx))
    peak = rng.uniform(*p.disengage_peak, len(idx))
    logw = np.log(np.asarray(p.disengage_outcomes))[None, :].repeat(len(idx), axis=0)
    q = world.pupils
    cme_tilt = p.disengage_cme_dep * q.dep[idx] + p.disengage_cme_cin * (
        world.sc_status[idx] >= 0
    )
    logw[:, 1] += cme_tilt
    logw[:, 2] += cme_tilt + 0.3 * q.mob[idx]
    logw[:, 3] += 0.4 * (ys.sen[idx] > 0) - 0.2 * q.dep[idx]
    outcome = (logw + rng.gumbel(size=logw.shape)).argmax(axis=1)
    # A family deciding on home education has usually watched a long decline.
    ehe = outcome == 3
    length[ehe] = np.maximum(length[ehe], 40)
    peak[ehe] = np.maximum(peak[ehe], 0.55)
    world.dis_outcome[idx] = outcome
    world.dis_last[idx] = first + length
    world.rec.add(
        "disengagement", pupil=idx, first=first, last=first + length, peak=peak
    )


def resolve_disengagement(world: World, idx: np.ndarray) -> None:
    rng = world.rng
    if not len(idx):
        return
    last, outcome = world.dis_last[idx].copy(), world.dis_outcome[idx].copy()
    world.dis_last[idx] = -1
    world.dis_outcome[idx] = -1
    m = outcome == 1  # 20 school days of unexplained absence, deletion, CME
    world.schedule_exit(
        idx[m],
        last[m] + 20,
        ground_of=ground("unexplained_absence_20_days"),
        known=0,
        then=THEN_CME,
        run_first=last[m] + 1,
    )
    m = outcome == 2  # moved away, nobody knows where: CME
    length = rng.integers(5, 16, int(m.sum()))
    world.schedule_exit(
        idx[m],
        last[m] + length,
        ground_of=ground("moved_away"),
        known=0,
        then=THEN_CME,
        run_first=last[m] + 1,
    )
    m = outcome == 3
    world.schedule_exit(
        idx[m],
        last[m] + rng.integers(1, 6, int(m.sum())),
        ground_of=ground("ehe"),
        known=1,
        then=THEN_EHE,
    )
    m = outcome == 4
    world.schedule_exit(
        idx[m], last[m] + 1, ground_of=ground("moved_away"), known=1, then=THEN_GONE
    )
    m = outcome == 5
    world.schedule_exit(
        idx[m], last[m] + 1, ground_of=ground("moved_school"), known=1, then=THEN_MOVE
    )
