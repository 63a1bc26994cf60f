"""Session marks, painted a chunk of pupils and a school year at a time.

For each chunk the marks are a ``(pupils, ~190 days, 2 sessions)`` matrix of
code numbers, built with whole-matrix numpy operations (no loop over marks).
A pupil-day absence rate (a logit of the pupil-year's propensity, the school,
an open social-care episode) drives:

- single-session codes (appointments ``M``, late after registers close ``U``,
  half days of ``O``; lateness ``L``, trips ``V``, sport ``P``, off-site
  ``B``/``K``, interviews), drawn as one category per session;
- spells of whole days (illness ``I``, other authorised ``C``, ``N``, runs of
  ``O``, religious observance ``R``) whose union covers the rest of the rate;
- holidays in term time (``G``, rarely legacy ``H``) and work experience (``W``).

The events of the life course are then painted over them in order of
precedence: disengagement ramps (``O``/``N``/``G``/``I`` spells that grow longer
and likelier as the ramp rises), part-time timetables (``C2``, legacy ``C``),
suspensions (``E``), the runs of unexplained absence that end in a deletion,
dual registration (``D``) and school closures (``#``). Days off roll are
dropped. The 2024 codes apply from :data:`cmerisk.data.codes.CODES_2024_FROM`;
before that only the legacy set is used (no ``K``, ``C1``, ``C2``, ``J1``,
``Q`` or ``Y1``-``Y7``; ``J`` for interviews, ``H`` for agreed holidays).

Examples
--------
>>> rows, days, which = expand(np.array([7, 9]), np.array([0, 5]), np.array([1, 5]))
>>> rows.tolist(), days.tolist(), which.tolist()
([7, 7, 9], [0, 1, 5], [0, 0, 1])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from scipy.special import expit

from cmerisk.data import codes
from cmerisk.data.synthetic.lifecourse import LifeCourse
from cmerisk.data.synthetic.population import NEEDS
from cmerisk.data.synthetic.spells import day_spells, expand, pick
from cmerisk.data.synthetic.termly import termly_totals

VOCAB: tuple[str, ...] = tuple(sorted(codes.ALL_ATTENDANCE_CODES))
C: dict[str, int] = {code: i for i, code in enumerate(VOCAB)}
#: Codes never written before 19 August 2024, and legacy codes never written after.
ONLY_2024 = frozenset(
    {"K", "C1", "C2", "J1", "Q", "Y1", "Y2", "Y3", "Y4", "Y5", "Y6", "Y7"}
)
ONLY_LEGACY = frozenset(codes.LEGACY_ATTENDANCE_CODES)
SESSIONS = pa.array(["AM", "PM"])
CODE_DICTIONARY = pa.array(list(VOCAB))
#: Shares of the absence intensity taken by single sessions and by whole days.
SESSION_SHARES = {"M": 0.05, "U": 0.03}
DAY_SHARES = {"C": 0.05, "N": 0.02}
HALF_DAY_UNEXPLAINED = 0.4


@dataclass(frozen=True)
class ChunkYear:
    """The marks of one chunk of pupils in one school year, ready to write."""

    marks: pa.Table  # contract columns; strings dictionary-encoded
    termly: pa.Table  # attendance_termly rows derived from the marks
    rows: int


def _in_window(table: dict[str, np.ndarray], p0: int, p1: int) -> dict[str, np.ndarray]:
    """Rows of a pupil-sorted table for pupils ``p0 <= pupil < p1``."""
    lo, hi = np.searchsorted(table["pupil"], [p0, p1])
    return {k: v[lo:hi] for k, v in table.items()}


def _pupil_sorted(table: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    order = np.argsort(table["pupil"], kind="stable")
    return {k: v[order] for k, v in table.items()}


class AttendancePainter:
    """Paints the marks of a :class:`LifeCourse`, chunk by chunk."""

    def __init__(self, lc: LifeCourse, ids: np.ndarray, *, seed: int) -> None:
        self.lc, self.ids, self.seed = lc, ids, seed
        tl, s = lc.timeline, lc.schools
        self.by_pupil = {
            name: _pupil_sorted(lc.table(name))
            for name in (
                "spell",
                "social",
                "disengagement",
                "run",
                "exclusion",
                "part_time",
            )
        }
        ex = self.by_pupil["exclusion"]
        ex["last"] = ex["day"] + ex["days"] - 1
        self.urns = pa.array(list(s.urn))
        phase_effect = np.array([lc.params.absence_phase[ph] for ph in s.phase])
        self.school_logit = np.r_[
            0.0, phase_effect + s.absence_effect
        ]  # index 0 = off roll
        self.school_primary = np.r_[False, s.phase == "primary"]
        # School closures ('#'): one day in about half the years, never a census day.
        rng = np.random.default_rng(np.random.SeedSequence([seed, 77]))
        self.closure = np.full((len(tl.years), len(s) + 1), -1)
        for yi in range(len(tl.years)):
            n_days = int(tl.year_last_day[yi] - tl.year_first_day[yi] + 1)
            day = rng.integers(5, n_days - 5, len(s))
            ok = ~np.isin(day + tl.year_first_day[yi], tl.census[yi]) & (
                rng.random(len(s)) < 0.5
            )
            self.closure[yi, 1:] = np.where(ok, day, -1)

    def _intervals(
        self,
        name: str,
        p0: int,
        p1: int,
        g0: int,
        g1: int,
        first: str = "first",
        last: str = "last",
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
        """A table's rows overlapping the year, expanded to ``(row, day)`` cells."""
        t = _in_window(self.by_pupil[name], p0, p1)
        keep = (t[first] <= g1) & (t[last] >= g0)
        t = {k: v[keep] for k, v in t.items()}
        rows, days, k = expand(
            t["pupil"] - p0, np.maximum(t[first], g0) - g0, np.minimum(t[last], g1) - g0
        )
        return t, rows, days, k

    def chunk_year(self, p0: int, p1: int, yi: int) -> ChunkYear:
        """Marks and termly totals of pupils ``p0 <= pupil < p1`` in year ``yi``."""
        tl = self.lc.timeline
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 1000 + yi, p0]))
        g0, g1 = int(tl.year_first_day[yi]), int(tl.year_last_day[yi])
        n, d = p1 - p0, g1 - g0 + 1
        era_2024 = bool(tl.days[g0] >= np.datetime64(codes.CODES_2024_FROM))
        # Where each pupil is on roll (school index + 1; 0 = off roll).
        spells, rows, days, k = self._intervals("spell", p0, p1, g0, g1)
        main = spells["kind"][k] == 0
        urn = np.zeros((n, d), dtype=np.int32)
        urn[rows[main], days[main]] = spells["school"][k[main]] + 1
        code = np.empty((n, d, 2), dtype=np.uint8)
        self._paint_everyday(code, rng, urn, p0, p1, yi, g0, g1, era_2024)
        self._paint_events(code, rng, p0, p1, g0, g1, era_2024)
        weekday = (tl.days[g0 : g1 + 1].astype("int64") + 3) % 7  # Monday = 0
        sub = ~main
        there = (spells["weekdays"][k[sub]] >> weekday[days[sub]]) & 1 == 1
        code[rows[sub][there], days[sub][there], :] = C["D"]  # at the AP unit that day
        closed = self.closure[yi][urn]
        code[(closed >= 0) & (closed == np.arange(d)[None, :])] = C["#"]
        return self._to_arrow(code, urn, p0, g0)

    def _rate(
        self, urn: np.ndarray, p0: int, p1: int, yi: int, g0: int, g1: int
    ) -> np.ndarray:
        """The absence rate of each pupil on each day."""
        lc, p = self.lc, self.lc.params
        q, tl = lc.pupils, lc.timeline
        pup = np.arange(p0, p1)
        nc = tl.first_year + yi - q.cohort[pup]
        sen = q.sen_level(nc, pup)
        need = np.where(nc >= 7, q.need_secondary[pup], q.need_primary[pup])
        semh = (sen > 0) & (need == NEEDS.index("SEMH"))
        base = (
            p.absence_intercept
            + p.absence_u * q.u[pup]
            + q.year_noise[pup, yi]
            + p.absence_fsm * q.fsm[pup]
            + p.absence_sen_k * (sen == 1)
            + p.absence_sen_e * (sen == 2)
            + p.absence_semh * semh
            + p.absence_dep * q.dep[pup]
            + p.absence_nc_slope * np.maximum(nc - 7, 0)
            + p.absence_reception * (nc == 0)
        )
        # While a social-care episode is open, by as much as this pupil's reaction.
        cin = np.zeros(urn.shape, dtype=np.float32)
        sc = _in_window(self.by_pupil["social"], p0, p1)
        dates = tl.days[g0 : g1 + 1]
        first = np.searchsorted(dates, sc["start"].astype("datetime64[D]"))
        end = np.where(sc["end"] < 0, dates[-1].astype("int64"), sc["end"]).astype(
            "datetime64[D]"
        )
        last = np.searchsorted(dates, end, side="right") - 1
        rows, days, _ = expand(sc["pupil"] - p0, first, last)
        cin[rows, days] = 1.0
        effect = (p.absence_cin + p.absence_cin_sd * q.cin_z[pup]).astype(np.float32)
        logit = (
            base.astype(np.float32)[:, None]
            + self.school_logit[urn].astype(np.float32)
            + effect[:, None] * cin
        )
        return expit(logit)

    def _paint_everyday(
        self,
        code: np.ndarray,
        rng: np.random.Generator,
        urn: np.ndarray,
        p0: int,
        p1: int,
        yi: int,
        g0: int,
        g1: int,
        era_2024: bool,
    ) -> None:
        p, q = self.lc.params, self.lc.pupils
        n, d = urn.shape
        pup = np.arange(p0, p1)
        nc = self.lc.timeline.first_year + yi - q.cohort[pup]
        rate = self._rate(urn, p0, p1, yi, g0, g1)
        # Independent processes whose union covers ``rate``: intensity -log(1 - rate),
        # shared out; illness takes less of it as absence rises, unexplained more.
        hazard = -np.log1p(-np.minimum(rate, 0.97))
        illness = 0.62 - 0.32 * np.minimum(rate / 0.3, 1.0)
        unexplained = (
            1.0 - illness - sum(SESSION_SHARES.values()) - sum(DAY_SHARES.values())
        )
        half = -np.expm1(-HALF_DAY_UNEXPLAINED * unexplained * hazard)
        late = (0.015 * np.exp(0.4 * q.u[pup]))[:, None].astype(np.float32)
        off_site = C["K"] if era_2024 else C["B"]
        interview = np.where(nc >= 10, 0.001, 0.0)[:, None]
        am = pick(
            rng.random((n, d), dtype=np.float32),
            [
                (C["M"], -np.expm1(-SESSION_SHARES["M"] * hazard)),
                (C["U"], -np.expm1(-2 * SESSION_SHARES["U"] * hazard)),
                (C["O"], half),
                (C["L"], late),
                (C["V"], 0.006),
                (C["B"], 0.0015),
                (off_site, 0.0005),
                (C["J1"] if era_2024 else C["J"], interview),
            ],
        )
        pm = pick(
            rng.random((n, d), dtype=np.float32),
            [
                (C["M"], -np.expm1(-SESSION_SHARES["M"] * hazard)),
                (C["O"], half),
                (C["P"], 0.001),
            ],
        )
        code[:, :, 0] = np.where(am == 255, C["/"], am)
        code[:, :, 1] = np.where(pm == 255, C["\\"], pm)
        trip = am == C["V"]
        code[:, :, 1][trip] = C["V"]
        religious = np.less(rng.random(n), 0.10)[:, None] * np.float32(0.008)
        run_len = 1 + 3 * rate
        spells = day_spells(
            rng,
            [
                (C["I"], illness * hazard / 1.8, 1.8),
                (C["C"], DAY_SHARES["C"] * hazard / 1.5, 1.5),
                (C["N"], DAY_SHARES["N"] * hazard, 1.0),
                (
                    C["O"],
                    (1 - HALF_DAY_UNEXPLAINED) * unexplained * hazard / run_len,
                    run_len,
                ),
                (C["R"], religious, 1.0),
            ],
            (n, d),
        )
        for value, rows, days in spells:
            code[rows, days, :] = value
        # A family holiday in term time for some (unauthorised; legacy H if agreed).
        first_school = urn[np.arange(n), np.argmax(urn > 0, axis=1)]
        hol_p = np.where(
            self.school_primary[first_school],
            p.holiday_rate["primary"],
            p.holiday_rate["secondary"],
        )
        holiday = np.flatnonzero(rng.random(n) < hol_p * np.exp(0.3 * q.u[pup]))
        start = rng.integers(0, d - 10, len(holiday))
        rows, days, k = expand(
            holiday, start, start + rng.integers(2, 10, len(holiday))
        )
        agreed = (
            (rng.random(len(holiday)) < 0.05)
            if not era_2024
            else np.zeros(len(holiday), bool)
        )
        code[rows, days, :] = np.where(agreed[k], C["H"], C["G"])[:, None]
        # Work experience: a week in the summer term of Year 10, for some.
        wex = np.flatnonzero((nc == 10) & (rng.random(n) < 0.4))
        start = rng.integers(d - 45, d - 10, len(wex))
        rows, days, _ = expand(wex, start, start + 4)
        code[rows, days, :] = C["W"]

    def _paint_events(
        self,
        code: np.ndarray,
        rng: np.random.Generator,
        p0: int,
        p1: int,
        g0: int,
        g1: int,
        era_2024: bool,
    ) -> None:
        n, d = code.shape[:2]
        # Disengagement ramps: unexplained absence that grows likelier and longer.
        ramps, rows, days, k = self._intervals("disengagement", p0, p1, g0, g1)
        if len(rows):
            frac = (days + g0 - ramps["first"][k]) / np.maximum(
                ramps["last"][k] - ramps["first"][k], 1
            )
            dis = np.zeros((n, d), dtype=np.float32)
            np.maximum.at(
                dis,
                (rows, days),
                (ramps["peak"][k] * (0.3 + 0.7 * frac)).astype(np.float32),
            )
            mean = 1 + 5 * dis
            hazard = -np.log1p(-np.minimum(dis, 0.95)) / mean
            spells = day_spells(
                rng,
                [
                    (C[v], share * hazard, mean)
                    for v, share in (("I", 0.15), ("G", 0.1), ("N", 0.15), ("O", 0.6))
                ],
                (n, d),
            )
            for value, r, dd in spells:
                code[r, dd, :] = value
            late = (rng.random((n, d), dtype=np.float32) < 0.15 * dis) & (dis > 0)
            code[:, :, 0][late] = C["U"]
        # Part-time timetables: afternoons off.
        _, rows, days, _ = self._intervals("part_time", p0, p1, g0, g1)
        code[rows, days, 1] = C["C2" if era_2024 else "C"]
        # Suspensions (a one-session suspension is an afternoon), and the days before a
        # permanent exclusion takes effect.
        ex, rows, days, k = self._intervals("exclusion", p0, p1, g0, g1, first="day")
        code[rows, days, 1] = C["E"]
        whole = ex["sessions"][k] > 1
        code[rows[whole], days[whole], 0] = C["E"]
        # Unexplained runs before a deletion: O, N then O, or G (never came back).
        runs, rows, days, k = self._intervals("run", p0, p1, g0, g1)
        into = days + g0 - runs["first"][k]
        style = runs["style"][k]
        run_code = np.where(
            style == 2, C["G"], np.where((style == 1) & (into < 5), C["N"], C["O"])
        )
        code[rows, days, :] = run_code[:, None]

    def _to_arrow(
        self, code: np.ndarray, urn: np.ndarray, p0: int, g0: int
    ) -> ChunkYear:
        tl = self.lc.timeline
        n, d = urn.shape
        r, dd = np.nonzero(urn)
        m = len(r)
        flat = code[r, dd, :].reshape(-1)
        date_values = tl.days[g0 : g0 + d].astype("int64").astype(np.int32)
        marks = pa.table(
            {
                "pupil_id": pa.DictionaryArray.from_arrays(
                    pa.array(np.repeat(r, 2).astype(np.int32)),
                    pa.array(list(self.ids[p0 : p0 + n])),
                ),
                "school_urn": pa.DictionaryArray.from_arrays(
                    pa.array(np.repeat(urn[r, dd] - 1, 2)), self.urns
                ),
                "date": pa.array(date_values[np.repeat(dd, 2)]).view(pa.date32()),
                "session": pa.DictionaryArray.from_arrays(
                    pa.array(np.tile(np.array([0, 1], np.int8), m)), SESSIONS
                ),
                "code": pa.DictionaryArray.from_arrays(
                    pa.array(flat.astype(np.int8)), CODE_DICTIONARY
                ),
            }
        )
        termly = termly_totals(
            flat,
            r,
            urn[r, dd] - 1,
            tl.day_term[g0 + dd],
            tl.day_term_start[g0 + dd],
            ids=self.ids[p0 : p0 + n],
            urns=self.urns,
            vocab=VOCAB,
        )
        return ChunkYear(marks, termly, 2 * m)
