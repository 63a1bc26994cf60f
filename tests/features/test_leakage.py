"""No leakage, proven by property: the future never changes a feature; the past
(and the far future) never changes a label.

Hypothesis draws arbitrary records (clean or dirty: unknown codes, bad
sessions, duplicates, deletions, episodes...) dated on or after ``as_of`` for
EVERY event table, moves every episode end date that was not yet known at
``as_of`` to another unknown one, and checks that the feature frame is
unchanged, cell for cell. It runs both with the data's coverage read from the
tables (windows before the first mark are missing) and with an early
``data_start`` (every window computed, so every feature can change). The label
property does the same with records dated on/before ``as_of`` or after the
horizon.
"""

from __future__ import annotations

import functools
from datetime import date, timedelta

import pandas as pd
import pytest
import tiny_la_features as tiny
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cmerisk.data import codes
from cmerisk.data.contract import EVENT_TABLES, TABLES
from cmerisk.data.school_calendar import census_dates
from cmerisk.data.tables import RawTables
from cmerisk.features import FEATURES, build_features
from cmerisk.labels import cme_label

IDS = ["p1", "p2", "p3", "p4", "p5", "p6", "ghost", "fresh1", "fresh2"]
URNS = ["100001", "100002", "200001", "300001"]
AS_OFS = [
    tiny.AS_OF,
    census_dates(2023)["spring"],
    census_dates(2023)["autumn"],
    date(2024, 3, 4),
    date(2024, 7, 30),
]
#: None: coverage read from the tables; a date: every window of AS_OFS covered.
DATA_STARTS = [None, date(2019, 9, 1)]
SETTINGS = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _dates(lo: date, hi: date) -> st.SearchStrategy[date]:
    return st.dates(min_value=lo, max_value=hi)


def _maybe(s: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.none(), s)


def _rows(table: str, when: st.SearchStrategy[date]) -> st.SearchStrategy[list[tuple]]:
    """Arbitrary (often dirty) rows of ``table`` dated by ``when``."""
    pid, urn = st.sampled_from(IDS), st.sampled_from(URNS)
    ends = _maybe(_dates(date(2020, 1, 1), date(2026, 12, 31)))
    row = {
        "census": st.tuples(
            pid,
            when,
            urn,
            st.sampled_from([*codes.SCHOOL_PHASES, "bogus"]),
            st.sampled_from([*codes.NC_YEARS, "13"]),
            st.booleans(),
            st.sampled_from(["N", "K", "E", "Z"]),
            _maybe(st.sampled_from([*codes.SEN_PRIMARY_NEEDS, "??"])),
            st.sampled_from(["C", "M", "S", "Q"]),
        ),
        "attendance": st.tuples(
            pid,
            urn,
            when,
            st.sampled_from(["AM", "PM", "XX"]),
            st.sampled_from([*sorted(codes.ALL_ATTENDANCE_CODES), "ZZ"]),
        ),
        "attendance_termly": st.tuples(
            pid, urn, when, st.integers(0, 140), st.integers(0, 40), st.integers(0, 40)
        ),
        "social_care": st.tuples(
            pid, st.sampled_from(["CIN", "CPP", "CLA", "XX"]), when, ends
        ),
        "exclusions": st.tuples(
            pid,
            urn,
            when,
            st.sampled_from(["suspension", "permanent", "other"]),
            st.integers(0, 20),
        ),
        "roll_changes": st.tuples(
            pid,
            urn,
            when,
            st.sampled_from(["admission", "deletion", "moved"]),
            _maybe(st.sampled_from(sorted(codes.DELETION_GROUNDS))),
            _maybe(st.booleans()),
        ),
        "ehe": st.tuples(pid, when, ends),
        "secondary_offers": st.tuples(pid, urn, when),
        "cme_episodes": st.tuples(
            pid, when, ends, _maybe(st.sampled_from(codes.CME_OUTCOMES))
        ),
    }[table]
    return st.lists(row, max_size=12)


def _append(frame: pd.DataFrame, table: str, rows: list[tuple]) -> pd.DataFrame:
    if not rows:
        return frame
    cols = [c.name for c in TABLES[table].columns if c.name in frame.columns]
    extra = pd.DataFrame(rows, columns=cols)
    for c in TABLES[table].columns:
        if c.kind == "date" and c.name in extra.columns:
            extra[c.name] = pd.to_datetime(extra[c.name])
    return pd.concat([frame, extra], ignore_index=True)


def _fresh_pupils(frame: pd.DataFrame) -> pd.DataFrame:
    """Pupils rows for ids with no record before as_of (adding them is timeless)."""
    extra = pd.DataFrame(
        {
            "pupil_id": ["fresh1", "fresh2"],
            "date_of_birth": pd.to_datetime(["2012-12-01", "2016-03-03"]),
            "sex": ["F", "M"],
            "ethnicity_major": ["Asian", None],
            "idaci_decile": [4, 7],
            "first_language": ["Other", "English"],
        }
    )
    return pd.concat([frame, extra], ignore_index=True)


def _variant(name: str) -> RawTables:
    t = tiny.tiny_tables()
    if name == "termly":
        return t.without("attendance").with_frames(
            attendance_termly=tiny.attendance_termly()
        )
    return t


@st.composite
def _future(draw: st.DrawFn, variant: str) -> tuple[date, RawTables, RawTables]:
    """(as_of, base tables, base + future records and moved end dates)."""
    base = _variant(variant)
    as_of = draw(st.sampled_from(AS_OFS))
    # The as-of day itself is the boundary that matters: draw it often.
    later = st.one_of(st.just(as_of), _dates(as_of, as_of + timedelta(days=500)))
    frames = dict(base.frames)
    frames["pupils"] = _fresh_pupils(frames["pupils"])
    for table in EVENT_TABLES:
        if table not in frames:
            continue
        frames[table] = _append(frames[table], table, draw(_rows(table, later)))
        end = TABLES[table].end_date
        if end is not None:
            f = frames[table].copy()
            unknown = (f[end].isna() | (f[end] >= pd.Timestamp(as_of))).to_numpy()
            moved = draw(
                st.lists(
                    _maybe(later),
                    min_size=int(unknown.sum()),
                    max_size=int(unknown.sum()),
                )
            )
            f.loc[unknown, end] = pd.to_datetime(
                pd.Series(moved, dtype="object")
            ).to_numpy()
            frames[table] = f
    return as_of, base, RawTables(frames)


@functools.cache
def _baseline(variant: str, as_of: date, data_start: date | None) -> pd.DataFrame:
    return build_features(_variant(variant), as_of=as_of, data_start=data_start)


@pytest.mark.parametrize("variant", ["sessions", "termly"])
@given(data=st.data())
@SETTINGS
def test_records_on_or_after_as_of_never_change_a_feature(variant: str, data) -> None:
    as_of, _base, future = data.draw(_future(variant))
    data_start = data.draw(st.sampled_from(DATA_STARTS))
    before = _baseline(variant, as_of, data_start)
    after = build_features(future, as_of=as_of, data_start=data_start)
    pd.testing.assert_frame_equal(before, after)
    assert len(before) > 0
    assert before.attrs["coverage"] == after.attrs["coverage"]


def test_an_early_data_start_leaves_no_feature_empty() -> None:
    """With every window covered, the property above reaches every feature."""
    frame = build_features(
        tiny.tiny_tables(), as_of=tiny.AS_OF, data_start=DATA_STARTS[1]
    )
    assert frame[[f.name for f in FEATURES]].notna().any().all()


def test_the_property_can_fail() -> None:
    """A record dated the day BEFORE as_of does change features (the cut is tight)."""
    base = tiny.tiny_tables()
    marks = base["attendance"]
    day = pd.Timestamp(tiny.AS_OF - timedelta(days=1))
    extra = pd.DataFrame(
        {
            "pupil_id": ["p2"],
            "school_urn": ["200001"],
            "date": [day],
            "session": ["AM"],
            "code": ["N"],
        }
    )
    changed = base.with_frames(attendance=pd.concat([marks, extra], ignore_index=True))
    a = build_features(base, as_of=tiny.AS_OF).set_index("pupil_id")
    b = build_features(changed, as_of=tiny.AS_OF).set_index("pupil_id")
    assert (
        b.loc["p2", "unauthorised_absence_rate_this_term"]
        > a.loc["p2", "unauthorised_absence_rate_this_term"]
    )


HORIZON = 245


@st.composite
def _outside_window(draw: st.DrawFn) -> tuple[date, RawTables, RawTables]:
    """(as_of, base, base + records dated on/before as_of or after the horizon)."""
    base = tiny.tiny_tables()
    as_of = draw(st.sampled_from(AS_OFS))
    end = as_of + timedelta(days=HORIZON)
    outside = st.one_of(
        st.just(as_of),
        st.just(end + timedelta(days=1)),
        _dates(date(2015, 1, 1), as_of),
        _dates(end + timedelta(days=1), date(2030, 1, 1)),
    )
    frames = dict(base.frames)
    for table in EVENT_TABLES:
        if table in frames:
            frames[table] = _append(frames[table], table, draw(_rows(table, outside)))
    return as_of, base, RawTables(frames)


@given(data=st.data())
@SETTINGS
def test_labels_ignore_records_outside_their_window(data) -> None:
    as_of, base, changed = data.draw(_outside_window())
    pd.testing.assert_frame_equal(
        cme_label(base, as_of=as_of, horizon_days=HORIZON),
        cme_label(changed, as_of=as_of, horizon_days=HORIZON),
    )


@pytest.mark.parametrize(
    "offset, expected", [(0, 0), (1, 1), (HORIZON, 1), (HORIZON + 1, 0)]
)
def test_label_window_edges(offset: int, expected: int) -> None:
    """(as_of, as_of + horizon]: the as-of day is out, the last day is in."""
    t = tiny.tiny_tables()
    start = pd.Timestamp(tiny.AS_OF + timedelta(days=offset))
    cme = pd.DataFrame(
        {
            "pupil_id": ["p6"],
            "start_date": [start],
            "end_date": [pd.NaT],
            "outcome": [None],
        }
    )
    lab = cme_label(
        t.with_frames(cme_episodes=cme), as_of=tiny.AS_OF, horizon_days=HORIZON
    )
    assert lab.set_index("pupil_id").loc["p6", "cme"] == expected
