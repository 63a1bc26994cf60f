"""The state of every pupil as the simulation runs, and the moves that change it.

:class:`World` holds one array per piece of state (where each pupil is, what
episodes are open) and a :class:`Records` book into which every change is
written as it happens (admissions, deletions, episodes...). The weekly and
summer steps (:mod:`.weekly`, :mod:`.summer`) only decide *who* changes; the
methods here make each change consistently (a deletion closes the spell, a
pupil leaving the LA closes an open social-care episode, and so on).

Days are school-day indices of the :class:`~.timeline.Timeline`; dates are
integer days since 1970-01-01; ``OPEN`` (-1) marks a date still open.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from cmerisk.data import codes
from cmerisk.data.synthetic.params import Params
from cmerisk.data.synthetic.population import Pupils
from cmerisk.data.synthetic.schools import Schools, choose_school
from cmerisk.data.synthetic.timeline import Timeline

OPEN = -1
# Pupil states.
NOT_ARRIVED, ON_ROLL, IN_CME, IN_EHE, GONE = 0, 1, 2, 3, 4
# What follows a scheduled deletion.
THEN_CME, THEN_EHE, THEN_GONE, THEN_MOVE, THEN_AP = 0, 1, 2, 3, 4
GROUNDS = tuple(codes.DELETION_GROUNDS)
OUTCOMES = codes.CME_OUTCOMES


def ground(name: str) -> int:
    return GROUNDS.index(name)


#: The columns of each record table (empty tables keep them).
RECORD_COLUMNS: dict[str, tuple[str, ...]] = {
    "spell": ("pupil", "school", "first", "last", "kind", "weekdays"),
    "roll": ("pupil", "school", "date", "change", "ground", "known"),
    "social": ("pupil", "status", "start", "end"),
    "exclusion": ("pupil", "school", "day", "category", "sessions", "days"),
    "ehe": ("pupil", "start", "end"),
    "cme": ("pupil", "start", "end", "outcome"),
    "offer": ("pupil", "school", "date"),
    "run": ("pupil", "first", "last", "style"),
    "disengagement": ("pupil", "first", "last", "peak"),
    "part_time": ("pupil", "first", "last"),
}


class Records:
    """Append-only event tables: ``add("cme", pupil=..., start=...)``; ``table``."""

    def __init__(self) -> None:
        self._parts: dict[str, list[dict[str, np.ndarray]]] = defaultdict(list)

    def add(self, name: str, **columns: np.ndarray | int) -> None:
        n = max(
            (len(v) for v in columns.values() if isinstance(v, np.ndarray)), default=0
        )
        if n == 0:
            return
        self._parts[name].append(
            {
                k: (v if isinstance(v, np.ndarray) else np.full(n, v))
                for k, v in columns.items()
            }
        )

    def table(self, name: str) -> dict[str, np.ndarray]:
        parts = self._parts.get(name, [])
        if not parts:
            return {k: np.zeros(0, dtype=np.int64) for k in RECORD_COLUMNS[name]}
        return {k: np.concatenate([p[k] for p in parts]) for k in RECORD_COLUMNS[name]}


@dataclass
class World:
    pupils: Pupils
    schools: Schools
    timeline: Timeline
    params: Params
    rng: np.random.Generator
    rec: Records = field(default_factory=Records)

    def __post_init__(self) -> None:
        n = len(self.pupils)
        full = lambda v, dt=np.int64: np.full(n, v, dtype=dt)  # noqa: E731
        self.state = full(NOT_ARRIVED, np.int8)
        self.school = full(-1)
        self.spell_first = full(-1)
        self.exit_day = full(-1)  # scheduled deletion (last day on roll)
        self.exit_ground = full(-1)
        self.exit_known = full(1, np.int8)
        self.exit_then = full(-1)
        self.dis_last = full(-1)  # last day of an open disengagement ramp
        self.dis_outcome = full(-1)
        self.last_event_day = full(-10_000)  # last suspension or school move
        self.sc_status = full(-1)  # open social-care status (0 CIN, 1 CPP, 2 CLA)
        self.sc_start = full(OPEN)
        self.cme_start = full(OPEN)
        self.cme_end = full(OPEN)
        self.cme_outcome = full(-1)
        self.ehe_start = full(OPEN)
        self.ehe_end = full(OPEN)
        self.sub_first = full(-1)
        self.sub_last = full(-1)
        self.sub_days = full(0)  # weekday bitmask of sessions at the AP unit
        self.pt_first = full(-1)
        self.pt_last = full(-1)
        self.offered = full(-1)
        self.phase_code = self.schools.phase_code
        self.pupil_ids = np.arange(n)

    # --- helpers ----------------------------------------------------------------------
    def date(self, day: np.ndarray | int) -> np.ndarray:
        return self.timeline.days[day].astype("int64")

    def nc(self, year_index: int) -> np.ndarray:
        return self.pupils.nc_year(year_index, self.timeline.years[0])

    def nc_on_day(self, idx: np.ndarray, day: np.ndarray) -> np.ndarray:
        """NC year of each pupil on school day ``day`` (clipped to the data)."""
        tl = self.timeline
        year = tl.day_year[np.minimum(day, tl.n_days - 1)]
        return tl.first_year + year - self.pupils.cohort[idx]

    def pick_schools(
        self, idx: np.ndarray, nc: np.ndarray, *, avoid: np.ndarray | None = None
    ) -> np.ndarray:
        """A school per pupil: special pupils to special schools, others by phase."""
        out = np.empty(len(idx), dtype=np.int64)
        special = self.pupils.special[idx]
        for mask, phase in (
            (special, "special"),
            (~special & (nc <= 6), "primary"),
            (~special & (nc >= 7), "secondary"),
        ):
            cand = self.schools.of_phase(phase)
            out[mask] = choose_school(
                cand, int(mask.sum()), schools=self.schools, rng=self.rng
            )
            if avoid is not None and len(cand) > 1:
                same = mask & (out == avoid)
                pos = np.searchsorted(cand, out[same])
                out[same] = cand[(pos + 1) % len(cand)]
        return out

    # --- rolls ------------------------------------------------------------------------
    def admit(
        self,
        idx: np.ndarray,
        schools: np.ndarray,
        day: np.ndarray | int,
        *,
        record: bool | np.ndarray = True,
    ) -> None:
        """Put pupils on a roll from ``day`` (past the data end, they leave)."""
        day = np.broadcast_to(day, idx.shape)
        late = day >= self.timeline.n_days
        if late.any():
            self.leave_la(idx[late], self.timeline.end.astype("int64"))
        keep = ~late & (self.nc_on_day(idx, day) <= 11)
        if (~late & ~keep).any():  # aged out of compulsory school age meanwhile
            self.leave_la(idx[~late & ~keep], self.date(day[~late & ~keep]))
        record = np.broadcast_to(record, idx.shape)
        idx, schools, day, record = idx[keep], schools[keep], day[keep], record[keep]
        self.state[idx] = ON_ROLL
        self.school[idx] = schools
        self.spell_first[idx] = day
        self.exit_day[idx] = -1
        self.rec.add(
            "roll",
            pupil=idx[record],
            school=schools[record],
            date=self.date(day[record]),
            change=0,
            ground=-1,
            known=-1,
        )

    def close_spell(self, idx: np.ndarray, last_day: np.ndarray | int) -> None:
        """End each pupil's spell on ``last_day`` (no roll change: :meth:`delete`)."""
        last_day = np.broadcast_to(last_day, idx.shape)
        self.rec.add(
            "spell",
            pupil=idx,
            school=self.school[idx],
            first=self.spell_first[idx],
            last=last_day,
            kind=0,
            weekdays=0,
        )
        dual = self.sub_first[idx] >= 0
        if dual.any():
            self.end_dual(
                idx[dual], np.minimum(self.sub_last[idx[dual]], last_day[dual])
            )
        pt = self.pt_first[idx] >= 0
        if pt.any():
            self.end_part_time(idx[pt], np.minimum(self.pt_last[idx[pt]], last_day[pt]))
        self.school[idx] = -1
        self.spell_first[idx] = -1
        self.exit_day[idx] = -1
        self.exit_then[idx] = -1

    def delete(
        self,
        idx: np.ndarray,
        last_day: np.ndarray | int,
        *,
        ground_of: np.ndarray | int,
        known: np.ndarray | int,
    ) -> None:
        last_day = np.broadcast_to(last_day, idx.shape)
        self.rec.add(
            "roll",
            pupil=idx,
            school=self.school[idx],
            date=self.date(last_day),
            change=1,
            ground=np.broadcast_to(ground_of, idx.shape).copy(),
            known=np.broadcast_to(known, idx.shape).astype(np.int8),
        )
        self.close_spell(idx, last_day)

    def schedule_exit(
        self,
        idx: np.ndarray,
        last_day: np.ndarray,
        *,
        ground_of: int | np.ndarray,
        known: int | np.ndarray,
        then: int | np.ndarray,
        run_first: np.ndarray | None = None,
        run_style: np.ndarray | None = None,
    ) -> None:
        """Delete pupils on ``last_day`` (unexplained absence from ``run_first``)."""
        self.exit_day[idx] = last_day
        self.exit_ground[idx] = ground_of
        self.exit_known[idx] = known
        self.exit_then[idx] = then
        if run_first is not None:
            style = (
                run_style
                if run_style is not None
                else self.rng.choice(3, len(idx), p=[0.55, 0.3, 0.15])
            )
            self.rec.add("run", pupil=idx, first=run_first, last=last_day, style=style)

    # --- episodes ---------------------------------------------------------------------
    def start_cme(self, idx: np.ndarray, start: np.ndarray) -> None:
        p = self.params
        self.state[idx] = IN_CME
        self.cme_start[idx] = start
        days = np.maximum(
            1,
            np.round(
                np.exp(
                    self.rng.normal(
                        np.log(p.cme_duration_median_days),
                        p.cme_duration_sigma,
                        len(idx),
                    )
                )
            ),
        )
        self.cme_end[idx] = start + days.astype(np.int64)
        long = (days >= 84).astype(int) + (days >= 365).astype(int)
        shares = np.array(
            [
                [0.50, 0.30, 0.08, 0.07, 0.05],
                [0.40, 0.25, 0.15, 0.10, 0.10],
                [0.25, 0.20, 0.25, 0.05, 0.25],
            ]
        )
        cum = shares.cumsum(axis=1)[long]
        self.cme_outcome[idx] = (self.rng.random(len(idx))[:, None] > cum).sum(axis=1)

    def end_cme(
        self, idx: np.ndarray, end: np.ndarray | None = None, outcome: int | None = None
    ) -> None:
        end = self.cme_end[idx] if end is None else end
        out = self.cme_outcome[idx] if outcome is None else np.full(len(idx), outcome)
        self.rec.add("cme", pupil=idx, start=self.cme_start[idx], end=end, outcome=out)
        self.cme_start[idx] = OPEN
        self.cme_end[idx] = OPEN

    def start_ehe(self, idx: np.ndarray, start: np.ndarray) -> None:
        self.state[idx] = IN_EHE
        self.ehe_start[idx] = start
        days = (
            self.rng.exponential(self.params.ehe_mean_days, len(idx)).astype(np.int64)
            + 20
        )
        self.ehe_end[idx] = start + days

    def end_ehe(self, idx: np.ndarray, end: np.ndarray | None = None) -> None:
        end = self.ehe_end[idx] if end is None else end
        self.rec.add("ehe", pupil=idx, start=self.ehe_start[idx], end=end)
        self.ehe_start[idx] = OPEN
        self.ehe_end[idx] = OPEN

    def open_social_care(
        self, idx: np.ndarray, status: np.ndarray, start: np.ndarray
    ) -> None:
        self.sc_status[idx] = status
        self.sc_start[idx] = start

    def close_social_care(self, idx: np.ndarray, end: np.ndarray) -> None:
        idx_open = self.sc_status[idx] >= 0
        idx, end = idx[idx_open], np.broadcast_to(end, idx_open.shape)[idx_open]
        self.rec.add(
            "social",
            pupil=idx,
            status=self.sc_status[idx],
            start=self.sc_start[idx],
            end=np.maximum(end, self.sc_start[idx]),
        )
        self.sc_status[idx] = -1
        self.sc_start[idx] = OPEN

    def leave_la(self, idx: np.ndarray, when: np.ndarray) -> None:
        self.state[idx] = GONE
        self.close_social_care(idx, when)

    def end_dual(self, idx: np.ndarray, last: np.ndarray) -> None:
        # A placement due to start after the pupil has left never happened.
        held = self.sub_first[idx] <= last
        self.sub_first[idx[~held]] = -1
        self.sub_last[idx[~held]] = -1
        idx, last = idx[held], last[held]
        self.rec.add(
            "spell",
            pupil=idx,
            school=self.schools.ap,
            first=self.sub_first[idx],
            last=last,
            kind=1,
            weekdays=self.sub_days[idx],
        )
        self.sub_first[idx] = -1
        self.sub_last[idx] = -1

    def end_part_time(self, idx: np.ndarray, last: np.ndarray) -> None:
        held = self.pt_first[idx] <= last
        self.pt_first[idx[~held]] = -1
        self.pt_last[idx[~held]] = -1
        idx, last = idx[held], last[held]
        self.rec.add("part_time", pupil=idx, first=self.pt_first[idx], last=last)
        self.pt_first[idx] = -1
        self.pt_last[idx] = -1

    # --- end of the data --------------------------------------------------------------
    def finish(self) -> None:
        """Close what is open at the end of the data (spells end; episodes stay)."""
        last = self.timeline.n_days - 1
        on = np.flatnonzero(self.state == ON_ROLL)
        self.close_spell(on, np.full(len(on), last))
        cme = np.flatnonzero(self.state == IN_CME)
        self.end_cme(cme, end=np.full(len(cme), OPEN), outcome=-1)
        ehe = np.flatnonzero(self.state == IN_EHE)
        self.end_ehe(ehe, end=np.full(len(ehe), OPEN))
        sc = np.flatnonzero(self.sc_status >= 0)
        self.rec.add(
            "social",
            pupil=sc,
            status=self.sc_status[sc],
            start=self.sc_start[sc],
            end=OPEN,
        )
