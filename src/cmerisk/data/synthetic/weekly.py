"""One school week of the simulation: who arrives, changes, leaves or goes missing.

Event rates come from :mod:`.hazards`. The causal story lives here. A latent
*disengagement* ramp (:mod:`.disengagement`) starts with a hazard that rises
with absence propensity, vulnerability, deprivation, an open social-care
episode, SEMH needs, a recent suspension or school move, and around the Year 6
-> Year 7 transition. While it runs, attendance falls (see :mod:`.attendance`)
and suspensions, part-time timetables, dual registration and school moves
become likelier. It ends in recovery (most often), in 20 school days of
unexplained absence and a deletion followed by a CME episode, in a move away
with no known destination (CME), in elective home education, or in an
ordinary move. Separately, a few pupils vanish without warning.
"""

from __future__ import annotations

import numpy as np

from cmerisk.data.synthetic.disengagement import (
    resolve_disengagement,
    start_disengagement,
)
from cmerisk.data.synthetic.hazards import (
    AP,
    DAYS_PER_YEAR,
    SECONDARY,
    SPECIAL,
    Hazards,
    YearState,
    by_phase,
    draw,
)
from cmerisk.data.synthetic.world import (
    IN_CME,
    IN_EHE,
    NOT_ARRIVED,
    ON_ROLL,
    THEN_AP,
    THEN_CME,
    THEN_EHE,
    THEN_GONE,
    THEN_MOVE,
    World,
    ground,
)


def draw_social_care_at_arrival(
    world: World, idx: np.ndarray, when: np.ndarray, *, backdate: bool, hz: Hazards
) -> None:
    """Open a social-care episode for arriving pupils, at its equilibrium share."""
    p = world.params
    share, days = np.array(p.social_care_share), np.array(p.social_care_days)
    lam = p.social_care_rate * hz.social_care[idx]
    load = lam * (share * days).sum() / 365
    opened = idx[world.rng.random(len(idx)) < load / (1 + load)]
    if not len(opened):
        return
    w = share * days
    status = world.rng.choice(3, size=len(opened), p=w / w.sum())
    start = when[np.searchsorted(idx, opened)]
    if backdate:  # an episode already open began some time before (never before birth)
        start = start - world.rng.exponential(days[status]).astype(np.int64)
        start = np.maximum(start, world.pupils.dob[opened].astype("int64"))
    world.open_social_care(opened, status, start)


def social_care_week(world: World, span0: int, span: int, hz: Hazards) -> None:
    p, rng = world.params, world.rng
    in_la = np.flatnonzero((world.state >= ON_ROLL) & (world.state <= IN_EHE))
    is_open = world.sc_status[in_la] >= 0
    # Open episodes end or escalate.
    op = in_la[is_open]
    status = world.sc_status[op]
    end_rate = 1 / np.array(p.social_care_days)[status]
    up_cpp = np.where(status == 0, p.cin_to_cpp_rate / 365, 0.0)
    up_cla = np.where(
        status == 0,
        p.cin_to_cla_rate / 365,
        np.where(status == 1, p.cpp_to_cla_rate / 365, 0),
    )
    total = end_rate + up_cpp + up_cla
    happens = rng.random(len(op)) < 1 - np.exp(-total * span)
    which = rng.random(len(op)) * total
    when = span0 + rng.integers(0, span, len(op))
    changed = op[happens]
    new_status = np.where(
        which < end_rate, -1, np.where(which < end_rate + up_cpp, 1, 2)
    )[happens]
    world.close_social_care(changed, when[happens])
    esc = new_status >= 0
    world.open_social_care(changed[esc], new_status[esc], when[happens][esc])
    # New episodes.
    closed = in_la[~is_open]
    lam = p.social_care_rate / 365 * hz.social_care[closed]
    new = closed[rng.random(len(closed)) < 1 - np.exp(-lam * span)]
    status = rng.choice(
        3, size=len(new), p=np.array(p.social_care_share) / sum(p.social_care_share)
    )
    world.open_social_care(new, status, span0 + rng.integers(0, span, len(new)))


def arrivals(world: World, k0: int, k1: int, hz: Hazards) -> None:
    q = world.pupils
    idx = np.flatnonzero(
        (world.state == NOT_ARRIVED) & (q.arrival_day >= k0) & (q.arrival_day <= k1)
    )
    if not len(idx):
        return
    day = q.arrival_day[idx]
    # Pupils on roll before the data start have no admission row; the others do.
    record = (day > 0) | np.isin(q.first_nc[idx], (0, 7))
    world.admit(idx, q.first_school[idx], day, record=record)
    draw_social_care_at_arrival(world, idx, world.date(day), backdate=True, hz=hz)


def _resolve_exits(world: World, k1: int) -> None:
    p, rng = world.params, world.rng
    due = np.flatnonzero(
        (world.state == ON_ROLL) & (world.exit_day >= 0) & (world.exit_day <= k1)
    )
    if not len(due):
        return
    last = world.exit_day[due].copy()
    then = world.exit_then[due].copy()
    old = world.school[due].copy()
    world.delete(
        due, last, ground_of=world.exit_ground[due], known=world.exit_known[due]
    )
    when = world.date(last)
    for kind in (THEN_CME, THEN_EHE, THEN_GONE, THEN_MOVE, THEN_AP):
        m = then == kind
        if not m.any():
            continue
        idx = due[m]
        if kind == THEN_CME:
            lag = rng.integers(p.cme_lag_days[0], p.cme_lag_days[1] + 1, len(idx))
            world.start_cme(idx, when[m] + lag)
        elif kind == THEN_EHE:
            world.start_ehe(idx, when[m] + 1)
        elif kind == THEN_GONE:
            world.leave_la(idx, when[m])
        else:
            nc = world.nc_on_day(idx, last[m] + 1)
            if kind == THEN_MOVE:
                target = world.pick_schools(idx, nc, avoid=old[m])
            else:
                target = np.full(len(idx), world.schools.ap)
            world.admit(idx, target, last[m] + 1)
            world.last_event_day[idx] = last[m] + 1


def _episode_ends(world: World, span1: int) -> None:
    tl = world.timeline
    ending = np.flatnonzero(
        (world.state == IN_CME) & (world.cme_end >= 0) & (world.cme_end < span1)
    )
    if len(ending):
        outcome, end = world.cme_outcome[ending].copy(), world.cme_end[ending].copy()
        world.end_cme(ending)
        back = outcome == 0
        day = tl.next_school_day(end[back].astype("datetime64[D]"))
        idx = ending[back]
        world.admit(idx, world.pick_schools(idx, world.nc_on_day(idx, day)), day)
        world.start_ehe(ending[outcome == 3], end[outcome == 3])
        gone = (outcome != 0) & (outcome != 3)
        world.leave_la(ending[gone], end[gone])
    ending = np.flatnonzero(
        (world.state == IN_EHE) & (world.ehe_end >= 0) & (world.ehe_end < span1)
    )
    if len(ending):
        end = world.ehe_end[ending].copy()
        world.end_ehe(ending)
        day = tl.next_school_day(end.astype("datetime64[D]"))
        world.admit(
            ending, world.pick_schools(ending, world.nc_on_day(ending, day)), day
        )


def term_week(world: World, w: int, hz: Hazards, ys: YearState) -> None:
    """Advance the world through school week ``w``."""
    p, rng, tl = world.params, world.rng, world.timeline
    k0, k1 = int(tl.week_first_day[w]), int(tl.week_last_day[w])
    nd = k1 - k0 + 1
    span0 = int(tl.week_span_start[w].astype("int64"))
    span1 = int(tl.week_span_end[w].astype("int64"))
    arrivals(world, k0, k1, hz)
    social_care_week(world, span0, span1 - span0, hz)
    _episode_ends(world, span1)

    on = np.flatnonzero((world.state == ON_ROLL) & (world.exit_day < 0))

    def some_day(idx: np.ndarray) -> np.ndarray:
        """A school day of this week for each pupil's event, not before they arrived."""
        return np.maximum(k0 + rng.integers(0, nd, len(idx)), world.spell_first[idx])

    term = int(tl.day_term[k0])
    nc, cin = ys.nc[on], world.sc_status[on] >= 0
    phase = world.phase_code[world.school[on]]
    dis_active = world.dis_last[on] >= k0
    recent = (k0 - world.last_event_day[on]) < 90

    # 1. Disengagement ramps that end this week resolve.
    ending = on[dis_active & (world.dis_last[on] <= k1)]
    resolve_disengagement(world, ending)

    # 2. New disengagement ramps.
    season = np.asarray(p.disengage_by_nc)[np.clip(nc, 0, 11)]
    season = season * np.where((nc == 6) & (term == 2), p.disengage_y6_summer, 1.0)
    season = season * np.where((nc == 7) & (term == 0), p.disengage_y7_autumn, 1.0)
    season = season * np.select([phase == SPECIAL, phase == AP], [0.5, 2.0], 1.0)
    score = np.exp(
        p.disengage_cin * cin
        + p.disengage_semh * ys.semh[on]
        + p.disengage_sen * (ys.sen[on] > 0)
        + p.disengage_recent_event * recent
    )
    rate = p.disengage_rate / DAYS_PER_YEAR * hz.disengage[on] * score * season
    start = draw(world, on[~dis_active], rate[~dis_active], nd)
    start_disengagement(world, start, some_day(start), ys)

    # 3. Vanishing without warning (a sudden move: the school hears nothing).
    rate = p.vanish_rate / DAYS_PER_YEAR * hz.vanish[on] * np.exp(p.vanish_cin * cin)
    gone = draw(world, on, rate * (nc <= 10), nd)
    first = some_day(gone)
    twenty = rng.random(len(gone)) < 0.6
    length = np.where(twenty, 20, rng.integers(3, 11, len(gone)))
    world.schedule_exit(
        gone,
        first + length - 1,
        ground_of=np.where(
            twenty, ground("unexplained_absence_20_days"), ground("moved_away")
        ),
        known=0,
        then=THEN_CME,
        run_first=first,
    )

    free = np.flatnonzero((world.state == ON_ROLL) & (world.exit_day < 0))
    idx_free = np.searchsorted(on, free)  # ``free`` is a subset of ``on``
    f_dis, f_phase = dis_active[idx_free], phase[idx_free]
    f_recent = recent[idx_free]
    # 4. Ordinary moves: out of the LA (destination known) and between LA schools.
    leave = draw(world, free, p.leave_rate / DAYS_PER_YEAR * hz.leave[free], nd)
    to_school = rng.random(len(leave)) < 0.3
    world.schedule_exit(
        leave,
        some_day(leave),
        ground_of=np.where(to_school, ground("moved_school"), ground("moved_away")),
        known=1,
        then=THEN_GONE,
    )
    free2 = free[world.exit_day[free] < 0]
    pos = np.searchsorted(free, free2)
    move_rate = (
        np.select(
            [f_phase[pos] == AP, f_phase[pos] == SPECIAL],
            [p.ap_return_rate, 0.3 * p.move_rate],
            p.move_rate * (1 + 1.5 * f_dis[pos]),
        )
        / DAYS_PER_YEAR
        * hz.move[free2]
    )
    move = draw(world, free2, move_rate, nd)
    world.schedule_exit(
        move,
        some_day(move),
        ground_of=ground("moved_school"),
        known=1,
        then=THEN_MOVE,
    )
    # 5. Elective home education without a long decline first.
    ehe = draw(world, free2, p.ehe_rate / DAYS_PER_YEAR * (1 + (ys.sen[free2] > 0)), nd)
    ehe = ehe[world.exit_day[ehe] < 0]
    world.schedule_exit(
        ehe,
        some_day(ehe) + rng.integers(1, 4, len(ehe)),
        ground_of=ground("ehe"),
        known=1,
        then=THEN_EHE,
    )

    # 6. Suspensions and permanent exclusions.
    excl_score = (
        hz.exclusion[free]
        * np.exp(0.6 * ys.semh[free])
        * (1 + p.exclusion_disengaged * f_dis)
        * (1 + 1.0 * f_recent)
    )
    susp_rate = by_phase(p.suspension_rate, f_phase) / DAYS_PER_YEAR * excl_score
    staying = world.exit_day[free] < 0  # not leaving this week
    susp = draw(world, free[staying], susp_rate[staying], nd)
    if len(susp):
        day = some_day(susp)
        days = np.minimum(rng.geometric(0.55, len(susp)), 5)
        sessions = np.where((days == 1) & (rng.random(len(susp)) < 0.15), 1, 2 * days)
        world.rec.add(
            "exclusion",
            pupil=susp,
            school=world.school[susp],
            day=day,
            category=0,
            sessions=sessions,
            days=days,
        )
        world.last_event_day[susp] = day
    perm_rate = by_phase(p.permanent_rate, f_phase) / DAYS_PER_YEAR * excl_score
    perm = draw(world, free[staying], perm_rate[staying], nd)
    if len(perm):
        day = some_day(perm)
        world.rec.add(
            "exclusion",
            pupil=perm,
            school=world.school[perm],
            day=day,
            category=1,
            sessions=10,
            days=5,
        )
        world.schedule_exit(
            perm,
            day + 4,
            ground_of=ground("permanent_exclusion"),
            known=1,
            then=THEN_AP,
        )

    # 7. Part-time timetables and part-time places at the AP unit (dual registration),
    # for pupils not leaving.
    staying = world.exit_day[free] < 0
    no_pt = (world.pt_first[free] < 0) & staying
    pt_rate = (
        p.part_time_rate
        / DAYS_PER_YEAR
        * hz.part_time[free]
        * np.exp(0.8 * ys.semh[free])
        * (1 + 3 * f_dis)
    )
    pt = draw(world, free[no_pt], pt_rate[no_pt], nd)
    world.pt_first[pt] = some_day(pt)
    world.pt_last[pt] = world.pt_first[pt] + rng.integers(15, 61, len(pt))
    can_dual = (world.sub_first[free] < 0) & (f_phase == SECONDARY) & staying
    dual_rate = (
        p.dual_rate
        / DAYS_PER_YEAR
        * hz.dual[free]
        * np.exp(0.6 * ys.semh[free])
        * (1 + 3 * f_dis + 2 * f_recent)
    )
    dual = draw(world, free[can_dual], dual_rate[can_dual], nd)
    if len(dual):
        world.sub_first[dual] = some_day(dual)
        world.sub_last[dual] = world.sub_first[dual] + rng.integers(30, 91, len(dual))
        pair = np.array(
            [0b00101, 0b01010, 0b10100, 0b01001, 0b10010]
        )  # two weekdays (Mon=bit 0)
        world.sub_days[dual] = pair[rng.integers(0, len(pair), len(dual))]

    # 8. Secondary offers (national offer day, then late offers).
    _offers(world, w, span0, span1, ys, hz)

    # 9. Scheduled deletions due this week, and part-time / dual placements that end.
    _resolve_exits(world, k1)
    ending = np.flatnonzero((world.sub_first >= 0) & (world.sub_last <= k1))
    world.end_dual(ending, world.sub_last[ending])
    ending = np.flatnonzero((world.pt_first >= 0) & (world.pt_last <= k1))
    world.end_part_time(ending, world.pt_last[ending])


def _offers(
    world: World, w: int, span0: int, span1: int, ys: YearState, hz: Hazards
) -> None:
    p, rng, tl = world.params, world.rng, world.timeline
    year = tl.years[int(tl.week_year[w])]
    offer_day = int(tl.offer_day(year).astype("int64"))
    if offer_day >= span1:
        return
    in_primary = world.school >= 0
    in_primary[in_primary] = world.schools.phase[world.school[in_primary]] == "primary"
    y6 = np.flatnonzero(
        (world.state == ON_ROLL) & (ys.nc == 6) & in_primary & (world.offered < 0)
    )
    if not len(y6):
        return
    if offer_day >= span0:  # the national offer day is in this week
        dis = world.dis_last[y6] >= tl.week_first_day[w]
        p_no = np.minimum(0.6, p.no_offer_rate * hz.no_offer[y6] * np.exp(1.0 * dis))
        got = y6[rng.random(len(y6)) >= p_no]
        when = np.full(len(got), offer_day)
    else:  # late offers, on a school day of this week
        got = y6[rng.random(len(y6)) < p.late_offer_weekly]
        k0, k1 = int(tl.week_first_day[w]), int(tl.week_last_day[w])
        when = world.date(k0 + rng.integers(0, k1 - k0 + 1, len(got)))
    feeder = world.schools.feeder[world.school[got]]
    other = world.pick_schools(got, np.full(len(got), 7))
    world.offered[got] = np.where(rng.random(len(got)) < p.feeder_share, feeder, other)
    world.rec.add("offer", pupil=got, school=world.offered[got], date=when)
