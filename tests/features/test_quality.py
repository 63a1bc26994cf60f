"""Dirty records: each rule on a tiny table, counted once or refused with a message."""

from __future__ import annotations

import pandas as pd
import pytest
import tiny_la_features as tiny

from cmerisk.errors import DataError
from cmerisk.features import RULES, build_feature_frame
from cmerisk.features.quality import DataQuality


def _marks_plus(rows: list[tuple]) -> pd.DataFrame:
    extra = pd.DataFrame(
        rows, columns=["pupil_id", "school_urn", "date", "session", "code"]
    )
    extra["date"] = pd.to_datetime(extra["date"])
    return pd.concat([tiny.attendance(), extra], ignore_index=True)


DIRTY = {
    "attendance_unknown_code": (
        "attendance",
        [("p2", "200001", "2024-05-15", "AM", "ZZ")],
        1,
    ),
    "attendance_unknown_session": (
        "attendance",
        [("p2", "200001", "2024-05-15", "EV", "/")],
        1,
    ),
    "attendance_duplicate_identical": (
        "attendance",
        [("p2", "200001", "2024-05-15", "AM", "/")] * 2,
        2,
    ),
    "attendance_duplicate_conflicting": (
        "attendance",
        [("p2", "200001", "2024-05-15", "AM", "N")],
        1,
    ),
    "attendance_dual_registration": (
        "attendance",
        [("p2", "300001", "2024-05-15", "AM", "D")],
        1,
    ),
    "attendance_outside_registration": (
        "attendance",
        [("p5", "100002", "2024-01-10", "AM", "/")],
        1,
    ),
    "attendance_without_pupil": (
        "attendance",
        [("nobody", "1", "2024-05-15", "AM", "/")],
        1,
    ),
}


@pytest.mark.parametrize("category", sorted(DIRTY))
def test_each_dirty_mark_is_counted_in_its_category(category: str) -> None:
    _table, rows, count = DIRTY[category]
    tables = tiny.tiny_tables().with_frames(attendance=_marks_plus(rows))
    result = build_feature_frame(tables, as_of=tiny.AS_OF)
    assert result.quality.counts.get(category) == count
    others = {
        k: v
        for k, v in result.quality.counts.items()
        if k not in (category, "census_without_pupil")
    }
    assert others == {}  # and in no other category


def test_a_duplicate_never_double_counts_a_session() -> None:
    clean = build_feature_frame(tiny.tiny_tables(), as_of=tiny.AS_OF).frame
    rows = [
        tuple(r)
        for r in tiny.attendance().query("pupil_id == 'p2'").itertuples(index=False)
    ]
    tables = tiny.tiny_tables().with_frames(attendance=_marks_plus(rows))
    doubled = build_feature_frame(tables, as_of=tiny.AS_OF)
    pd.testing.assert_frame_equal(clean, doubled.frame)
    assert doubled.quality.counts["attendance_duplicate_identical"] == len(rows) - sum(
        1 for r in rows if pd.Timestamp(r[2]) < pd.Timestamp("2022-09-01")
    )


def test_census_rows_without_a_pupil_are_counted_and_left_out() -> None:
    result = build_feature_frame(tiny.tiny_tables(), as_of=tiny.AS_OF)
    assert result.quality.counts["census_without_pupil"] == 1
    assert "ghost" not in set(result.frame["pupil_id"])
    assert "census_date 2024-01-18" in result.quality.describe()[0]


@pytest.mark.parametrize(
    "table, mutate, category",
    [
        (
            "social_care",
            lambda f: f.assign(status=["CIN", "XXX"]),
            "social_care_unknown_value",
        ),
        (
            "social_care",
            lambda f: f.assign(end_date=pd.to_datetime(["2021-01-01", None])),
            "social_care_end_before_start",
        ),
        (
            "exclusions",
            lambda f: f.assign(pupil_id=["nobody"]),
            "exclusions_without_pupil",
        ),
        ("ehe", lambda f: f.assign(start_date=pd.NaT), "ehe_undated"),
        (
            "pupils",
            lambda f: f.assign(idaci_decile=[1, 6, 3, 10, 2, 11]),
            "pupils_unknown_value",
        ),
        ("pupils", lambda f: pd.concat([f, f.iloc[:1]]), "pupils_duplicate"),
        (
            "census",
            lambda f: pd.concat([f, f.iloc[:1].assign(school_urn="999999")]),
            "census_conflicting_main",
        ),
    ],
)
def test_small_table_rules(table: str, mutate, category: str) -> None:
    t = tiny.tiny_tables()
    result = build_feature_frame(
        t.with_frames(**{table: mutate(t[table])}), as_of=tiny.AS_OF
    )
    assert result.quality.counts[category] == 1


def test_an_unknown_essential_code_drops_the_row_and_others_become_missing() -> None:
    t = tiny.tiny_tables()
    census = t["census"].copy()
    census.loc[census["pupil_id"] == "p1", "sen_primary_need"] = "WHAT"
    frame = build_feature_frame(t.with_frames(census=census), as_of=tiny.AS_OF).frame
    p1 = frame.set_index("pupil_id").loc["p1"]
    assert (
        p1["semh_need"] == 0.0 and p1["sen_any"] == 1.0
    )  # need unknown, provision kept


def test_raise_mode_names_table_column_and_value_but_no_pupil() -> None:
    tables = tiny.tiny_tables().with_frames(
        attendance=_marks_plus([("p2", "200001", "2024-05-15", "AM", "ZZ")])
    )
    with pytest.raises(DataError, match=r"census\.pupil_id: 1 census rows") as info:
        build_feature_frame(tables, as_of=tiny.AS_OF, on_dirty="raise")
    assert "ghost" not in str(info.value)
    clean = tables.with_frames(census=tiny.census().query("pupil_id != 'ghost'"))
    with pytest.raises(
        DataError, match=r"attendance\.code: 1 marks .* \(e\.g\. 'ZZ'\)"
    ):
        build_feature_frame(clean, as_of=tiny.AS_OF, on_dirty="raise")


def test_every_rule_reads_as_a_sentence() -> None:
    for category, rule in RULES.items():
        q = DataQuality()
        q.add(category, 2, example="x")
        (sentence,) = q.describe()
        assert sentence.startswith(f"{rule.table}.{rule.column}: 2 ")
        assert rule.outcome in sentence


def test_counts_travel_as_plain_json() -> None:
    import json

    q = DataQuality()
    q.add("attendance_unknown_code", 3, example="ZZ")
    assert json.loads(json.dumps(q)) == {"attendance_unknown_code": 3}
    with pytest.raises(KeyError):
        q.add("not_a_rule", 1)
