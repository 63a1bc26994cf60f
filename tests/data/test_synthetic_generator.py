"""The generator's parts: timeline, schools, pupils, spells, determinism."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from cmerisk.data import school_calendar
from cmerisk.data.synthetic import generate_la
from cmerisk.data.synthetic.lifecourse import LifeCourse, simulate
from cmerisk.data.synthetic.params import Params
from cmerisk.data.synthetic.population import make_pupils
from cmerisk.data.synthetic.schools import make_schools
from cmerisk.data.synthetic.spells import day_spells, expand, pick
from cmerisk.data.synthetic.timeline import Timeline
from cmerisk.data.synthetic.world import GROUNDS
from cmerisk.data.upn import is_valid_upn
from cmerisk.errors import ConfigError, DataError

KEY = b"test-key-generator-0123456789"


@pytest.mark.parametrize("first_year", [2019, 2023, 2024])
def test_timeline_covers_every_school_day_once(first_year: int) -> None:
    tl = Timeline.build(first_year, 2)
    expected = [
        d for y in (first_year, first_year + 1) for d in school_calendar.school_days(y)
    ]
    assert [d.item() for d in tl.days] == expected
    # Weeks partition the school days, and their calendar spans tile the years.
    covered = np.concatenate(
        [
            np.arange(a, b + 1)
            for a, b in zip(tl.week_first_day, tl.week_last_day, strict=True)
        ]
    )
    assert (covered == np.arange(tl.n_days)).all()
    assert (tl.week_span_start[1:] == tl.week_span_end[:-1]).all()
    assert tl.start == np.datetime64(date(first_year, 9, 1))
    offer = tl.offer_day(first_year).item()
    assert offer.weekday() < 5 and date(first_year + 1, 3, 1) <= offer <= date(
        first_year + 1, 3, 3
    )


@pytest.mark.parametrize("pupils", [3_000, 30_000])
def test_schools_scale_with_the_la(pupils: int) -> None:
    s = make_schools(pupils=pupils, rng=np.random.default_rng(0))
    per_primary = pupils * 7 / 12 / len(s.of_phase("primary"))
    per_secondary = pupils * 5 / 12 / len(s.of_phase("secondary"))
    assert 200 < per_primary < 400
    assert 600 < per_secondary < 1_400 or len(s.of_phase("secondary")) == 1
    assert set(s.phase[s.feeder[s.of_phase("primary")]]) == {"secondary"}
    assert len(s.of_phase("ap")) == 1


@pytest.fixture(scope="module")
def small() -> LifeCourse:
    return simulate(6_000, first_year=2021, years=3, params=Params(), seed=11)


def test_pupils_have_valid_distinct_upns_and_plausible_traits(
    small: LifeCourse,
) -> None:
    q = small.pupils
    assert len(set(q.upn)) == len(q.upn)
    assert all(is_valid_upn(u) for u in q.upn[:2_000])
    shares = np.bincount(q.idaci, minlength=11)[1:] / len(q.idaci)
    assert (
        shares.min() > 0.05 and shares.max() < 0.16
    )  # deciles of England, roughly even
    assert (q.k_onset[q.special] == 0).all() and (q.e_onset[q.special] == 0).all()
    assert set(q.first_nc[q.arrival_day == 0]) == set(range(12))
    assert 0.2 < q.fsm.mean() < 0.32


def test_spells_on_roll_never_overlap_and_have_positive_length(
    small: LifeCourse,
) -> None:
    s = small.table("spell")
    assert (s["first"] <= s["last"]).all()
    main = s["kind"] == 0
    order = np.lexsort((s["first"][main], s["pupil"][main]))
    pupil, first, last = (
        s["pupil"][main][order],
        s["first"][main][order],
        s["last"][main][order],
    )
    same = pupil[1:] == pupil[:-1]
    assert (first[1:][same] > last[:-1][same]).all()


def test_every_cme_episode_follows_a_deletion_or_a_missed_transition(
    small: LifeCourse,
) -> None:
    cme, roll = small.table("cme"), small.table("roll")
    deletions = roll["change"] == 1
    for pupil, start in zip(cme["pupil"], cme["start"], strict=True):
        mine = deletions & (roll["pupil"] == pupil) & (roll["date"] < start)
        assert mine.any()
        assert (
            start - roll["date"][mine].max() <= 70
        )  # July deletion, September CME at most
    grounds = {GROUNDS[g] for g in roll["ground"][deletions]}
    assert {
        "unexplained_absence_20_days",
        "moved_away",
        "ehe",
        "moved_school",
        "end_of_compulsory_age",
        "permanent_exclusion",
    } <= grounds


@pytest.mark.parametrize(("rate", "mean"), [(0.01, 1.0), (0.02, 3.0), (0.2, 2.0)])
def test_spells_cover_the_expected_share_of_days(rate: float, mean: float) -> None:
    shape = (400, 190)
    spells = day_spells(np.random.default_rng(0), [(1, np.float32(rate), mean)], shape)
    cover = np.zeros(shape, bool)
    for _, rows, days in spells:
        cover[rows, days] = True
    assert cover.mean() == pytest.approx(1 - np.exp(-rate * mean), rel=0.1)


def test_competing_spells_split_the_starts_by_rate() -> None:
    spells = day_spells(
        np.random.default_rng(1), [(1, 0.01, 1.0), (2, 0.03, 1.0)], (500, 190)
    )
    counts = {code: len(rows) for code, rows, _ in spells}
    assert counts[2] / counts[1] == pytest.approx(3, rel=0.15)


def test_session_categories_are_exclusive_and_in_proportion() -> None:
    u = np.random.default_rng(2).random((300, 190), dtype=np.float32)
    picked = pick(u, [(7, 0.1), (8, np.full((300, 190), 0.3, dtype=np.float32))])
    assert set(np.unique(picked)) == {7, 8, 255}
    assert (picked == 8).mean() == pytest.approx(0.3, abs=0.01)


def test_intervals_expand_to_their_days() -> None:
    rows, days, k = expand(np.array([5, 9]), np.array([2, 0]), np.array([4, -1]))
    assert (
        rows.tolist() == [5, 5, 5]
        and days.tolist() == [2, 3, 4]
        and k.tolist() == [0, 0, 0]
    )


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes_and_other_seeds_differ(tmp_path: Path) -> None:
    args = {"pupils": 800, "years": 1, "key": KEY}
    a = generate_la(tmp_path / "a", seed=5, **args)
    generate_la(tmp_path / "b", seed=5, **args)
    generate_la(tmp_path / "c", seed=6, **args)
    ha, hb, hc = (_hashes(tmp_path / x) for x in "abc")
    assert ha == hb
    assert len(ha) == 10 + a.attendance_parts
    assert all(
        ha[f] != hc.get(f)
        for f in ("pupils.parquet", "census.parquet", "attendance/part-00000.parquet")
    )


def test_rerun_replaces_an_earlier_la_and_refuses_other_folders(tmp_path: Path) -> None:
    out = tmp_path / "la"
    generate_la(out, pupils=2_500, years=1, seed=1, key=KEY, chunk_pupils=500)
    parts = len(list((out / "attendance").iterdir()))
    assert parts > 1
    generate_la(out, pupils=600, years=1, seed=1, key=KEY)
    assert len(list((out / "attendance").iterdir())) < parts  # no stale parts left
    assert not [
        p for p in tmp_path.iterdir() if p.name.startswith(".")
    ]  # no staging left
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="refusing to overwrite"):
        generate_la(other, pupils=600, years=1, key=KEY)
    assert (other / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pupils": 10}, "at least 500"),
        ({"years": 0}, "1 to 12"),
        ({"la_code": "33"}, "3 digits"),
        ({"key": None}, "key"),
        ({"history_years": -1}, "0 to 8"),
        ({"history_years": 9}, "0 to 8"),
        ({"first_year": 2001, "history_years": 2}, "before 2000"),
    ],
)
def test_bad_arguments_are_refused(tmp_path: Path, kwargs: dict, message: str) -> None:
    args = {"pupils": 600, "years": 1, "key": KEY, **kwargs}
    with pytest.raises(ConfigError, match=message):
        generate_la(tmp_path / "x", **args)
    assert not (tmp_path / "x").exists()


def test_population_draws_joiners_through_the_years() -> None:
    tl = Timeline.build(2022, 3)
    rng = np.random.default_rng(2)
    s = make_schools(pupils=5_000, rng=rng)
    q = make_pupils(5_000, timeline=tl, schools=s, params=Params(), rng=rng)
    joined = q.arrival_day[q.joiner]
    assert (joined > 0).all() and len(np.unique(tl.day_year[joined])) == 3
    foreign = [u for u in q.upn[q.joiner] if u[1:4] != "330"]
    assert 0.5 < len(foreign) / q.joiner.sum() < 0.9


@pytest.mark.parametrize("history_years", [0, 2])
def test_chunks_skip_only_pupils_off_roll_throughout_the_marked_years(
    history_years: int,
) -> None:
    from cmerisk.data.synthetic.generate import _chunks

    lc = simulate(
        3_000, first_year=2020, years=1 + history_years, params=Params(), seed=2
    )
    first_day = int(lc.timeline.year_first_day[history_years])
    chunks = _chunks(lc, first_day=first_day, size=700)
    spells = lc.table("spell")
    active = np.unique(spells["pupil"][spells["last"] >= first_day])
    covered = np.concatenate([np.arange(p0, p1) for p0, p1 in chunks])
    assert np.isin(active, covered).all()  # every pupil with marks is painted
    assert all(0 < p1 - p0 <= 700 for p0, p1 in chunks)
    if history_years == 0:  # everyone is on a roll: the plain ranges
        n = len(lc.pupils)
        assert chunks == [(p0, min(p0 + 700, n)) for p0 in range(0, n, 700)]
    else:  # the pupils who left during the history years are skipped
        assert len(covered) < len(lc.pupils) - 100
