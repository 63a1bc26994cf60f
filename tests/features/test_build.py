"""build_features on the tiny LA: rows, values, types, sources and errors."""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd
import pytest
import tiny_la_features as tiny

from cmerisk.data.tables import RawTables
from cmerisk.errors import DataError
from cmerisk.features import FEATURES, build_feature_frame, build_features
from cmerisk.features.attendance_termly import TERMLY_FEATURES
from cmerisk.features.build import STEPS


@functools.cache
def _result():
    return build_feature_frame(tiny.tiny_tables(), as_of=tiny.AS_OF)


def test_one_row_per_pupil_on_roll_with_the_expected_values() -> None:
    r = _result()
    f = r.frame.set_index("pupil_id")
    assert f.index.tolist() == ["p1", "p2", "p5", "p6"]
    assert (f["as_of"] == pd.Timestamp(tiny.AS_OF)).all()
    p1 = f.loc["p1"]
    assert p1["current_unexplained_run"] == 6 and p1["longest_unexplained_run_12m"] == 6
    assert p1["persistent_absence_this_year"] == 1.0
    assert (p1["cin_current"], p1["cin_status"], p1["semh_need"]) == (1.0, "CIN", 1.0)
    assert (p1["in_year_6"], p1["no_secondary_offer"]) == (1.0, 1.0)
    assert f.loc["p6", "secondary_offer_urn"] == "200001"
    assert f.loc["p2", "suspensions_1y"] == 1.0
    assert pd.isna(f.loc["p5", "absence_rate_this_year"])  # no marks: unknown, not zero
    assert r.attendance_source == "sessions"


def test_feature_columns_are_numeric_and_audit_columns_keep_their_types() -> None:
    f = _result().frame
    numeric = [x.name for x in FEATURES if not x.categorical]
    assert all(str(f[c].dtype) == "float64" for c in numeric)
    assert (
        str(f["fsm_eligible"].dtype) == "boolean" and str(f["semh"].dtype) == "boolean"
    )
    assert str(f["as_of"].dtype) == "datetime64[us]"


def test_attrs_carry_quality_and_cohort_counts() -> None:
    f = build_features(tiny.tiny_tables(), as_of=tiny.AS_OF)
    assert f.attrs["quality"].counts == {"census_without_pupil": 1}
    assert f.attrs["cohort_counts"]["on_roll"] == 4
    assert f.attrs["attendance_source"] == "sessions"


def test_termly_fallback_when_there_are_no_session_marks() -> None:
    t = (
        tiny.tiny_tables()
        .without("attendance")
        .with_frames(attendance_termly=tiny.attendance_termly())
    )
    r = build_feature_frame(t, as_of=tiny.AS_OF)
    attendance_cols = [
        x.name for x in FEATURES if x.group == "attendance" and x.name in r.frame
    ]
    assert attendance_cols == list(TERMLY_FEATURES)
    assert r.attendance_source == "termly"
    assert r.frame.set_index("pupil_id").loc[
        "p1", "absence_rate_this_year"
    ] == pytest.approx(14 / 126)


def test_marks_on_disk_build_the_same_frame(tmp_path: Path) -> None:
    t = tiny.tiny_tables()
    path = tmp_path / "part-00000.parquet"
    t["attendance"].to_parquet(path)
    on_disk = RawTables(dict(t.without("attendance").frames), attendance_files=[path])
    pd.testing.assert_frame_equal(
        build_features(on_disk, as_of=tiny.AS_OF), _result().frame
    )


def test_progress_is_reported_step_by_step() -> None:
    seen: list[tuple[int, int]] = []
    build_features(
        tiny.tiny_tables(), as_of=tiny.AS_OF, progress=lambda i, n: seen.append((i, n))
    )
    assert seen == [(i, len(STEPS)) for i in range(1, len(STEPS) + 1)]


@pytest.mark.parametrize(
    "tables, message",
    [
        (lambda t: t.without("census"), "without the census table"),
        (
            lambda t: t.with_frames(
                census=t["census"].drop(columns=["enrolment_status"])
            ),
            "census: required column",
        ),
        (
            lambda t: t.with_frames(
                attendance=t["attendance"].drop(columns=["session"])
            ),
            "attendance: required column",
        ),
    ],
)
def test_unusable_tables_are_refused_with_a_message(tables, message: str) -> None:
    with pytest.raises(DataError, match=message):
        build_features(tables(tiny.tiny_tables()), as_of=tiny.AS_OF)
