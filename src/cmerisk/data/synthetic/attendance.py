"""Session marks, painted a chunk of pupils and a school year at a time.

For each chunk the marks are a ``(pupils, 190 days, 2 sessions)`` matrix of
code numbers, built with whole-matrix numpy operations (no loop over marks):
the pupil-day absence rate (a logit of the pupil-year's propensity, the
school, an open social-care episode) drives spells of illness, appointments,
other authorised and unexplained absence; holidays, lateness, trips and
off-site sessions are added; then the events of the life course are painted
over them in order of precedence: disengagement ramps (spells of ``O``/``N``/
``G`` that grow longer and likelier as the ramp rises), part-time timetables
(``C2``, legacy ``C``), suspensions (``E``), the runs of unexplained absence
that end in a deletion, dual registration (``D``) and school closures (``#``).
Days off roll are dropped.

The 2024 codes apply from :data:`cmerisk.data.codes.CODES_2024_FROM`; before
that only the legacy set is used (``C`` for part-time timetables, ``B`` for
off-site provision, ``J`` for interviews, ``H`` for agreed holidays; no ``K``,
``C1``, ``C2``, ``J1``, ``Q`` or ``Y1``-``Y7``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from scipy.special import expit

from cmerisk.data import codes
from cmerisk.data.synthetic.lifecourse import LifeCourse
from cmerisk.data.synthetic.population import NEEDS

VOCAB: tuple[str, ...] = tuple(sorted(codes.ALL_ATTENDANCE_CODES))
C = {code: np.uint8(i) for i, code in enumerate(VOCAB)}
#: Codes never written before 19 August 2024, and legacy codes never written after.
ONLY_2024 = frozenset(
    {"K", "C1", "C2", "J1", "Q", "Y1", "Y2", "Y3", "Y4", "Y5", "Y6", "Y7"}
)
ONLY_LEGACY = frozenset(codes.LEGACY_ATTENDANCE_CODES)

_CAT = np.array(
    [codes.ATTENDANCE_CATEGORY.get(codes.normalise_attendance_code(c)) for c in VOCAB]
)
POSSIBLE = (_CAT != "not_counted").astype(np.int8)
AUTHORISED = (_CAT == "authorised").astype(np.int8)
UNAUTHORISED = (_CAT == "unauthorised").astype(np.int8)
SESSIONS = pa.array(["AM", "PM"])
CODE_DICTIONARY = pa.array(list(VOCAB))


@dataclass(frozen=True)
class ChunkYear:
    """The marks of one chunk of pupils in one school year, ready to write."""

    marks: pa.Table  # contract columns; strings dictionary-encoded
    termly: pa.Table  # attendance_termly rows derived from the marks
    rows: int


def _expand(
    rows: np.ndarray, first: np.ndarray, last: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (row, day, offset-from-first) inside the inclusive intervals ``[first, last]``."""
    lengths = np.maximum(last - first + 1, 0)
    total = int(lengths.sum())
    rep = np.repeat(np.arange(len(rows)), lengths)
    offset = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return rows[rep], first[rep] + offset, rep


def _spells(
    rng: np.random.Generator, start_p: np.ndarray, mean_len: np.ndarray | float
) -> np.ndarray:
    """Boolean (n, D) coverage of spells starting with ``start_p`` a day, geometric lengths."""
    n, d = start_p.shape
    r, s = np.nonzero(rng.random((n, d), dtype=np.float32) < start_p)
    mean = np.broadcast_to(np.asarray(mean_len, dtype=np.float64), (n, d))[r, s]
    length = rng.geometric(1.0 / np.maximum(mean, 1.0), size=len(r))
    end = np.minimum(s + length, d)
    width = d + 1
    diff = np.bincount(r * width + s, minlength=n * width) - np.bincount(
        r * width + end, minlength=n * width
    )
    return (diff.reshape(n, width).cumsum(axis=1)[:, :d]) > 0


def _in_window(table: dict[str, np.ndarray], p0: int, p1: int) -> dict[str, np.ndarray]:
    """Rows of a pupil-sorted table for pupils ``p0 <= pupil < p1``."""
    if not table:
        return {}
    lo, hi = np.searchsorted(table["pupil"], [p0, p1])
    return {k: v[lo:hi] for k, v in table.items()}


class AttendancePainter:
    """Paints the marks of a :class:`LifeCourse`, chunk by chunk."""

    def __init__(self, lc: LifeCourse, ids: np.ndarray, *, seed: int) -> None:
        self.lc, self.ids, self.seed = lc, ids, seed
        tl = lc.timeline
        self.by_pupil = {
            name: _in_window(_pupil_sorted(lc.table(name)), 0, len(lc.pupils))
            for name in (
                "spell",
                "social",
                "disengagement",
                "run",
                "exclusion",
                "part_time",
            )
        }
        s = lc.schools
        self.urns = pa.array(list(s.urn))
        phase_effect = np.array([lc.params.absence_phase[ph] for ph in s.phase])
        # index 0 = not on roll
        self.school_logit = np.r_[0.0, phase_effect + s.absence_effect]
        self.school_phase = np.concatenate([np.array([""], dtype=object), s.phase])
        # School closure days ('#'), one per school in about half the years, never a census day.
        rng = np.random.default_rng(np.random.SeedSequence([seed, 77]))
        self.closure = np.full((len(tl.years), len(s) + 1), -1)
        for yi in range(len(tl.years)):
            n_days = int(tl.year_last_day[yi] - tl.year_first_day[yi] + 1)
            day = rng.integers(5, n_days - 5, len(s))
            ok = ~np.isin(day + tl.year_first_day[yi], tl.census[yi]) & (
                rng.random(len(s)) < 0.5
            )
            self.closure[yi, 1:] = np.where(ok, day, -1)

    def chunk_year(self, p0: int, p1: int, yi: int) -> ChunkYear:
        lc, tl, p = self.lc, self.lc.timeline, self.lc.params
        q = lc.pupils
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 1000 + yi, p0]))
        g0, g1 = int(tl.year_first_day[yi]), int(tl.year_last_day[yi])
        n, D = p1 - p0, g1 - g0 + 1
        dates = tl.days[g0 : g1 + 1]
        era_2024 = dates[0] >= np.datetime64(codes.CODES_2024_FROM)
        weekday = (dates.astype("int64") + 3) % 7  # Monday = 0

        def window(name: str) -> dict[str, np.ndarray]:
            return _in_window(self.by_pupil[name], p0, p1)

        # Where each pupil is on roll (school index + 1; 0 = not on roll).
        s = window("spell")
        main = (
            (s["kind"] == 0) & (s["first"] <= g1) & (s["last"] >= g0)
            if s
            else np.zeros(0, bool)
        )
        urn = np.zeros((n, D), dtype=np.int32)
        if s:
            r, d, k = _expand(
                s["pupil"][main] - p0,
                np.maximum(s["first"][main], g0) - g0,
                np.minimum(s["last"][main], g1) - g0,
            )
            urn[r, d] = s["school"][main][k] + 1
        on = urn > 0
        # Pupil-day absence rate.
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
        cin = np.zeros((n, D), dtype=bool)
        sc = window("social")
        if sc:
            a = np.searchsorted(dates, sc["start"].astype("datetime64[D]"))
            end = np.where(sc["end"] < 0, np.iinfo(np.int64).max // 2, sc["end"])
            b = (
                np.searchsorted(
                    dates,
                    np.minimum(end, dates[-1].astype("int64") + 1).astype(
                        "datetime64[D]"
                    ),
                    side="right",
                )
                - 1
            )
            r, d, _ = _expand(sc["pupil"] - p0, a, b)
            cin[r, d] = True
        cin_effect = p.absence_cin + p.absence_cin_sd * q.cin_z[pup]
        logit = base[:, None] + self.school_logit[urn] + cin_effect[:, None] * cin
        rate = expit(logit).astype(np.float32)
        # Share of absence that is illness falls as absence rises; the rest is mostly unexplained.
        illness_share = 0.62 - 0.32 * np.minimum(rate / 0.3, 1.0)

        am_present, pm_present = C["/"], C["\\"]
        code = np.empty((n, D, 2), dtype=np.uint8)
        code[:, :, 0], code[:, :, 1] = am_present, pm_present

        def put(mask: np.ndarray, value: str, session: int | None = None) -> None:
            if session is None:
                code[mask] = C[value]
            else:
                code[:, :, session][mask] = C[value]

        def sessions_p(prob: np.ndarray | float) -> np.ndarray:
            return rng.random((n, D), dtype=np.float32) < prob

        # Present, but late or away on an approved activity.
        late = 0.015 * np.exp(0.4 * q.u[pup])[:, None]
        put(sessions_p(late), "L", 0)
        put(sessions_p(0.006), "V")
        put(sessions_p(0.001), "P", 1)
        offsite = sessions_p(0.002)
        by_la = sessions_p(0.25) if era_2024 else np.zeros((n, D), dtype=bool)
        put(offsite & by_la, "K", 0)
        put(offsite & ~by_la, "B", 0)
        # Absence: independent spell processes whose union covers ``rate`` of sessions
        # (coverage 1 - exp(-sum of intensities)), each taking a share of the intensity.
        hazard = -np.log1p(-np.minimum(rate, 0.97))
        shares = {"M": 0.05, "C": 0.05, "N": 0.02, "U": 0.03}
        unexplained = 1.0 - illness_share - sum(shares.values())
        put(sessions_p(-np.expm1(-shares["M"] * hazard)), "M", 0)
        put(sessions_p(-np.expm1(-shares["M"] * hazard)), "M", 1)
        put(sessions_p(-np.expm1(-2 * shares["U"] * hazard)), "U", 0)
        put(sessions_p(-np.expm1(-0.4 * unexplained * hazard)), "O", 1)
        put(sessions_p(-np.expm1(-0.4 * unexplained * hazard)), "O", 0)
        put(_spells(rng, illness_share * hazard / 1.8, 1.8), "I")
        put(_spells(rng, shares["C"] * hazard / 1.5, 1.5), "C")
        put(_spells(rng, shares["N"] * hazard, 1.0), "N")
        run_len = 1 + 3 * rate
        put(_spells(rng, 0.6 * unexplained * hazard / run_len, run_len), "O")
        religious = (rng.random(n) < 0.10)[:, None] & sessions_p(0.008)
        put(religious, "R")
        # One family holiday in term time for some pupils (unauthorised; rarely agreed, legacy H).
        first_school = urn[np.arange(n), np.argmax(on, axis=1)]  # 0 when never on roll
        primary = self.school_phase[first_school] == "primary"
        hol_p = np.where(
            primary, p.holiday_rate["primary"], p.holiday_rate["secondary"]
        )
        holiday = rng.random(n) < hol_p * np.exp(0.3 * q.u[pup])
        hs = rng.integers(0, D - 10, n)
        hl = rng.integers(3, 11, n)
        r, d, _ = _expand(
            np.flatnonzero(holiday), hs[holiday], hs[holiday] + hl[holiday] - 1
        )
        hcode = np.where((rng.random(len(r)) < 0.05) & ~era_2024, C["H"], C["G"])
        code[r, d, :] = hcode[:, None]
        # Interviews and work experience in Year 10-11.
        put(sessions_p(0.001) & (nc >= 10)[:, None], "J1" if era_2024 else "J", 0)
        wex = (nc == 10) & (rng.random(n) < 0.4)
        ws = rng.integers(D - 45, D - 10, n)
        r, d, _ = _expand(np.flatnonzero(wex), ws[wex], ws[wex] + 4)
        code[r, d, :] = C["W"]

        # Disengagement ramps: unexplained absence that grows.
        dis = np.zeros((n, D), dtype=np.float32)
        de = window("disengagement")
        if de:
            keep = (de["first"] <= g1) & (de["last"] >= g0)
            first, last = de["first"][keep], de["last"][keep]
            r, d, k = _expand(
                de["pupil"][keep] - p0,
                np.maximum(first, g0) - g0,
                np.minimum(last, g1) - g0,
            )
            frac = (d + g0 - first[k]) / np.maximum(last[k] - first[k], 1)
            dis[r, d] = np.maximum(dis[r, d], de["peak"][keep][k] * (0.3 + 0.7 * frac))
        if dis.any():
            mean = 1 + 5 * dis
            hazard = -np.log1p(-np.minimum(dis, 0.95))
            for value, share in (("O", 0.6), ("N", 0.15), ("G", 0.1), ("I", 0.15)):
                put(_spells(rng, share * hazard / mean, mean) & (dis > 0), value)
            put(sessions_p(0.15 * dis), "U", 0)
        # Part-time timetables: afternoons off.
        pt = window("part_time")
        if pt:
            r, d, _ = _expand(
                pt["pupil"] - p0,
                np.maximum(pt["first"], g0) - g0,
                np.minimum(pt["last"], g1) - g0,
            )
            code[r, d, 1] = C["C2" if era_2024 else "C"]
        # Suspensions and the days before a permanent exclusion takes effect.
        ex = window("exclusion")
        if ex:
            last = ex["day"] + ex["days"] - 1
            keep = (ex["day"] <= g1) & (last >= g0)
            r, d, k = _expand(
                ex["pupil"][keep] - p0,
                np.maximum(ex["day"][keep], g0) - g0,
                np.minimum(last[keep], g1) - g0,
            )
            code[r, d, 1] = C["E"]
            whole = ex["sessions"][keep][k] > 1
            code[r[whole], d[whole], 0] = C["E"]
        # Runs of unexplained absence before a deletion: O, N then O, or G (never came back).
        run = window("run")
        if run:
            keep = (run["first"] <= g1) & (run["last"] >= g0)
            first = run["first"][keep]
            r, d, k = _expand(
                run["pupil"][keep] - p0,
                np.maximum(first, g0) - g0,
                np.minimum(run["last"][keep], g1) - g0,
            )
            style = run["style"][keep][k]
            into = d + g0 - first[k]
            val = np.where(
                style == 2, C["G"], np.where((style == 1) & (into < 5), C["N"], C["O"])
            )
            code[r, d, :] = val[:, None]
        # Dual registration: at the AP unit on two weekdays a week.
        if s:
            sub = (s["kind"] == 1) & (s["first"] <= g1) & (s["last"] >= g0)
            r, d, k = _expand(
                s["pupil"][sub] - p0,
                np.maximum(s["first"][sub], g0) - g0,
                np.minimum(s["last"][sub], g1) - g0,
            )
            there = (s["weekdays"][sub][k] >> weekday[d]) & 1 == 1
            code[r[there], d[there], :] = C["D"]
        # School closure days.
        closed = self.closure[yi][urn]
        put((closed >= 0) & (closed == np.arange(D)[None, :]), "#")
        return self._to_arrow(code, urn, on, p0, g0, yi)

    def _to_arrow(
        self,
        code: np.ndarray,
        urn: np.ndarray,
        on: np.ndarray,
        p0: int,
        g0: int,
        yi: int,
    ) -> ChunkYear:
        tl = self.lc.timeline
        r, d = np.nonzero(on)
        m = len(r)
        flat = code[r, d, :].reshape(-1)
        rows = np.repeat(r, 2).astype(np.int32)
        days = np.repeat(d, 2)
        n = code.shape[0]
        date_values = tl.days[g0 : g0 + code.shape[1]].astype("int64").astype(np.int32)
        marks = pa.table(
            {
                "pupil_id": pa.DictionaryArray.from_arrays(
                    pa.array(rows), pa.array(list(self.ids[p0 : p0 + n]))
                ),
                "school_urn": pa.DictionaryArray.from_arrays(
                    pa.array(np.repeat(urn[r, d] - 1, 2).astype(np.int32)), self.urns
                ),
                "date": pa.array(date_values[days]).view(pa.date32()),
                "session": pa.DictionaryArray.from_arrays(
                    pa.array(np.tile(np.array([0, 1], np.int8), m)), SESSIONS
                ),
                "code": pa.DictionaryArray.from_arrays(
                    pa.array(flat.astype(np.int8)), CODE_DICTIONARY
                ),
            }
        )
        # Termly totals per pupil x school x term, from the marks themselves. Days come
        # ordered by pupil then date, so equal keys mostly sit in runs: sum each run,
        # then merge the rare repeats (a pupil back at a school within a term).
        per_day = code[r, d, :]
        values = np.stack(
            [
                POSSIBLE[per_day].sum(axis=1),
                AUTHORISED[per_day].sum(axis=1),
                UNAUTHORISED[per_day].sum(axis=1),
            ],
            axis=1,
        ).astype(np.int64)
        term = tl.day_term[g0 + d].astype(np.int64)
        n_school = len(self.urns) + 1
        key = (r.astype(np.int64) * 3 + term) * n_school + urn[r, d]
        starts = (
            np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
            if m
            else np.zeros(0, np.int64)
        )
        run_keys = key[starts]
        run_sums = (
            np.add.reduceat(values, starts, axis=0) if m else np.zeros((0, 3), np.int64)
        )
        uniq, inv = np.unique(run_keys, return_inverse=True)
        sums = [
            np.bincount(inv, weights=run_sums[:, j], minlength=len(uniq)).astype(
                np.int32
            )
            for j in range(3)
        ]
        k_school = (uniq % n_school) - 1
        k_term = (uniq // n_school) % 3
        k_row = uniq // n_school // 3
        term_starts = tl.day_term_start[
            g0 + np.searchsorted(tl.day_term[g0 : g0 + code.shape[1]], k_term)
        ]
        termly = pa.table(
            {
                "pupil_id": pa.array(list(self.ids[p0 + k_row])),
                "school_urn": self.urns.take(pa.array(k_school)),
                "term_start": pa.array(
                    term_starts.astype("int64").astype(np.int32)
                ).view(pa.date32()),
                "sessions_possible": pa.array(sums[0]),
                "sessions_authorised": pa.array(sums[1]),
                "sessions_unauthorised": pa.array(sums[2]),
            }
        )
        return ChunkYear(marks, termly, 2 * m)


def _pupil_sorted(table: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if not table:
        return table
    order = np.argsort(table["pupil"], kind="stable")
    return {k: v[order] for k, v in table.items()}
