"""The summer between two school years: Year 11 leaves, Year 6 moves on, some vanish.

The Year 6 -> Year 7 move is where most children go missing: a pupil is
deleted from the primary roll on the last day of the summer term and admitted
to the offered secondary on the first day of the autumn term. A few never
arrive: with an offer they are admitted and then marked absent (unexplained)
for 20 school days before the secondary deletes them and the LA opens a CME
case; without one they are not admitted anywhere and the LA finds them missing
in September. The chance of not arriving rises with vulnerability, absence
propensity, deprivation, an open social-care episode, a disengagement ramp in
Year 6 and, most of all, having no secondary offer.
"""

from __future__ import annotations

import numpy as np

from cmerisk.data.synthetic.hazards import Hazards, YearState
from cmerisk.data.synthetic.world import (
    IN_CME,
    IN_EHE,
    ON_ROLL,
    OUTCOMES,
    THEN_CME,
    World,
    ground,
)


def summer(world: World, year_index: int, hz: Hazards, before: YearState) -> None:
    """Move the world from the end of year ``year_index - 1`` into ``year_index``."""
    p, rng, tl = world.params, world.rng, world.timeline
    last = int(tl.year_last_day[year_index - 1])
    first = int(tl.year_first_day[year_index])
    aug31 = int(tl.days[first].astype("int64")) - 1
    while np.datetime64(aug31, "D").astype(object).month != 8:
        aug31 -= 1
    nc = before.nc

    # Year 11: off roll at the end of compulsory school age; open episodes close.
    y11 = nc == 11
    leaving = np.flatnonzero(y11 & (world.state == ON_ROLL))
    world.delete(leaving, last, ground_of=ground("end_of_compulsory_age"), known=1)
    world.leave_la(leaving, world.date(np.full(len(leaving), last)))
    cme = np.flatnonzero(y11 & (world.state == IN_CME))
    world.end_cme(cme, end=np.full(len(cme), aug31), outcome=OUTCOMES.index("other"))
    world.leave_la(cme, np.full(len(cme), aug31))
    ehe = np.flatnonzero(y11 & (world.state == IN_EHE))
    world.end_ehe(ehe, end=np.full(len(ehe), aug31))
    world.leave_la(ehe, np.full(len(ehe), aug31))

    # Everyone else on roll and not already leaving: summer moves and vanishing.
    moved_on = _year6(world, year_index, hz, before, last, first)
    on = np.flatnonzero((world.state == ON_ROLL) & (world.exit_day < 0) & (nc <= 10))
    on = on[~np.isin(on, moved_on)]
    s = p.summer_share
    leave = on[rng.random(len(on)) < 1 - np.exp(-p.leave_rate * s * hz.leave[on])]
    world.delete(leave, last, ground_of=ground("moved_away"), known=1)
    world.leave_la(leave, world.date(np.full(len(leave), last)))
    on = on[world.state[on] == ON_ROLL]
    move = on[rng.random(len(on)) < 1 - np.exp(-p.move_rate * s * hz.move[on])]
    move = move[world.schools.phase[world.school[move]] != "ap"]
    old = world.school[move].copy()
    world.delete(move, last, ground_of=ground("moved_school"), known=1)
    world.admit(move, world.pick_schools(move, nc[move] + 1, avoid=old), first)
    world.last_event_day[move] = first
    stay = on[world.school[on] >= 0]
    stay = stay[world.exit_day[stay] < 0]
    cin = world.sc_status[stay] >= 0
    rate = p.summer_vanish_rate * hz.vanish[stay] * np.exp(p.vanish_cin * cin)
    gone = stay[rng.random(len(stay)) < 1 - np.exp(-rate)]
    world.schedule_exit(
        gone,
        np.full(len(gone), first + 19),
        ground_of=ground("unexplained_absence_20_days"),
        known=0,
        then=THEN_CME,
        run_first=np.full(len(gone), first),
    )


def _year6(
    world: World, year_index: int, hz: Hazards, before: YearState, last: int, first: int
) -> np.ndarray:
    """Move Year 6 on to secondary school; return the pupils it moved (or lost)."""
    p, rng = world.params, world.rng
    in_school = world.school >= 0
    primary = np.zeros(len(in_school), bool)
    primary[in_school] = world.schools.phase[world.school[in_school]] == "primary"
    y6 = np.flatnonzero((before.nc == 6) & (world.state == ON_ROLL) & primary)
    if not len(y6):
        return y6
    mid_run = world.exit_day[y6] >= 0  # already in a long unexplained absence
    world.exit_day[y6] = -1
    q = world.pupils
    independent = ~mid_run & (
        rng.random(len(y6)) < p.independent_at_transition * np.exp(-0.5 * q.dep[y6])
    )
    offered = world.offered[y6] >= 0
    dis = world.dis_last[y6] >= last - 60
    cin = world.sc_status[y6] >= 0
    risk = (
        p.transition_noshow
        * hz.noshow[y6]
        * np.exp(
            p.noshow_no_offer * ~offered
            + p.noshow_disengaged * dis
            + p.noshow_cin * cin
        )
    )
    noshow = ~independent & (mid_run | (rng.random(len(y6)) < np.minimum(risk, 0.9)))
    dest = np.where(offered, world.offered[y6], -1)
    allocate = dest < 0
    dest[allocate] = np.where(
        rng.random(int(allocate.sum())) < p.feeder_share,
        world.schools.feeder[world.school[y6[allocate]]],
        world.pick_schools(y6[allocate], np.full(int(allocate.sum()), 7)),
    )
    known = (~noshow | offered).astype(np.int8)
    world.delete(y6, last, ground_of=ground("moved_school"), known=known)
    # Independent schools: off the state-school records.
    ind = y6[independent]
    world.leave_la(ind, world.date(np.full(len(ind), last)))
    # Admitted to the secondary: everyone but the independent and unoffered no-shows.
    admitted = ~independent & ~(noshow & ~offered)
    world.admit(y6[admitted], dest[admitted], first)
    arrive_not = y6[noshow & offered]
    world.schedule_exit(
        arrive_not,
        np.full(len(arrive_not), first + 19),
        ground_of=ground("unexplained_absence_20_days"),
        known=0,
        then=THEN_CME,
        run_first=np.full(len(arrive_not), first),
    )
    # No offer and no arrival: the LA finds the child missing in September.
    lost = y6[noshow & ~offered]
    start = world.date(np.full(len(lost), first)) + rng.integers(5, 26, len(lost))
    world.start_cme(lost, start)
    return y6
