"""Run the pupils' school lives week by week and collect what happened.

:func:`simulate` walks the :class:`~.timeline.Timeline` one school week at a
time (:func:`.weekly.term_week`), with a summer step between school years
(:func:`.summer.summer`), all pupils at once (numpy over pupils, a Python loop
over the ~39 weeks of a year). The result, :class:`LifeCourse`, is the set of
event tables the writer turns into the raw-table contract, plus what the
attendance generator needs to paint session marks (spells on roll, runs of
unexplained absence, disengagement ramps, suspensions, part-time timetables).

Examples
--------
>>> from cmerisk.data.synthetic.params import Params
>>> lc = simulate(2_400, first_year=2022, years=2, params=Params(), seed=1)
>>> sorted(lc.tables)[:4]
['cme', 'disengagement', 'ehe', 'exclusion']
>>> bool((lc.tables["spell"]["first"] <= lc.tables["spell"]["last"]).all())
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cmerisk.data.synthetic.hazards import Hazards, YearState
from cmerisk.data.synthetic.params import Params
from cmerisk.data.synthetic.population import Pupils, make_pupils
from cmerisk.data.synthetic.schools import Schools, make_schools
from cmerisk.data.synthetic.summer import summer
from cmerisk.data.synthetic.timeline import Timeline
from cmerisk.data.synthetic.weekly import term_week
from cmerisk.data.synthetic.world import World

TABLE_NAMES = (
    "spell",
    "roll",
    "social",
    "exclusion",
    "ehe",
    "cme",
    "offer",
    "run",
    "disengagement",
    "part_time",
)


@dataclass(frozen=True)
class LifeCourse:
    """Everything the simulation decided, before any marks are painted."""

    timeline: Timeline
    schools: Schools
    pupils: Pupils
    params: Params
    tables: dict[str, dict[str, np.ndarray]]
    seed: int

    def table(self, name: str) -> dict[str, np.ndarray]:
        return self.tables[name]


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream]))


def simulate(
    pupils: int,
    *,
    first_year: int,
    years: int,
    params: Params,
    seed: int,
    la_number: int = 330,
    progress: Callable[[int, int], None] | None = None,
) -> LifeCourse:
    """Simulate an LA of about ``pupils`` pupils a year for ``years`` school years."""
    timeline = Timeline.build(first_year, years)
    schools = make_schools(
        pupils=pupils, rng=_rng(seed, 1), deprivation_shift=params.deprivation_shift
    )
    people = make_pupils(
        pupils,
        timeline=timeline,
        schools=schools,
        params=params,
        rng=_rng(seed, 2),
        la_number=la_number,
    )
    world = World(
        pupils=people,
        schools=schools,
        timeline=timeline,
        params=params,
        rng=_rng(seed, 3),
    )
    hz = Hazards.build(world)
    ys = YearState.build(world, 0)
    for w in range(timeline.n_weeks):
        yi = int(timeline.week_year[w])
        if yi != ys.index:
            summer(world, yi, hz, ys)
            ys = YearState.build(world, yi)
        term_week(world, w, hz, ys)
        if progress is not None:
            progress(w + 1, timeline.n_weeks)
    world.finish()
    tables = {name: _sorted(world.rec.table(name)) for name in TABLE_NAMES}
    return LifeCourse(timeline, schools, people, params, tables, seed)


def _sorted(table: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Order a table by pupil, then by its first time column (stable)."""
    if not table:
        return table
    time_col = next((c for c in ("first", "date", "start", "day") if c in table), None)
    keys = [table["pupil"]] if time_col is None else [table[time_col], table["pupil"]]
    order = np.lexsort(keys)
    return {k: v[order] for k, v in table.items()}
