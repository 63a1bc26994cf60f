from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny_la import P1, P2, P3, SCHOOL_A, tiny_tables

from cmerisk.data.contract import TABLES
from cmerisk.data.findings import RULES
from cmerisk.data.tables import RawTables
from cmerisk.data.validate import drop_rejected, validate_tables
from cmerisk.errors import DataError

AS_OF = date(2024, 5, 16)
Tables = dict[str, pd.DataFrame]


def _set(table: str, column: str, row: int, value: object) -> Callable[[Tables], None]:
    def change(t: Tables) -> None:
        t[table][column] = t[table][column].astype(object)
        t[table].loc[row, column] = value

    return change


def _append_copy(table: str, row: int, **changes: object) -> Callable[[Tables], None]:
    def change(t: Tables) -> None:
        extra = t[table].iloc[[row]].assign(**changes)
        t[table] = pd.concat([t[table], extra], ignore_index=True)

    return change


def _whole_column(table: str, column: str, value: object) -> Callable[[Tables], None]:
    def change(t: Tables) -> None:
        t[table][column] = value

    return change


def _drop_column(table: str, column: str) -> Callable[[Tables], None]:
    def change(t: Tables) -> None:
        t[table] = t[table].drop(columns=column)

    return change


def _empty(table: str) -> Callable[[Tables], None]:
    def change(t: Tables) -> None:
        t[table] = t[table].iloc[:0]

    return change


def _remove(table: str) -> Callable[[Tables], None]:
    def change(t: Tables) -> None:
        del t[table]

    return change


def _rows(table: str, *rows: dict) -> Callable[[Tables], None]:
    def change(t: Tables) -> None:
        t[table] = pd.concat([t[table], pd.DataFrame(list(rows))], ignore_index=True)

    return change


def _mark(pupil: str | None, day: str, session: str, code: str) -> dict:
    return {
        "pupil_id": pupil,
        "school_urn": SCHOOL_A,
        "date": day,
        "session": session,
        "code": code,
    }


# Many problems in one LA, each in its own place: all must be reported at once.
MANY = [
    (_set("pupils", "idaci_decile", 2, "11"), "pupils", "idaci_decile", "out_of_range"),
    (
        _whole_column("pupils", "favourite_colour", "blue"),
        "pupils",
        "favourite_colour",
        "unknown_column",
    ),
    (_set("census", "nc_year", 0, "13"), "census", "nc_year", "unknown_code"),
    (_set("census", "school_urn", 1, ""), "census", "school_urn", "missing_value"),
    (
        _set("census", "fsm_eligible", 2, "maybe"),
        "census",
        "fsm_eligible",
        "unreadable_value",
    ),
    (
        _set("census", "census_date", 3, "2024-05-16"),
        "census",
        "census_date",
        "after_as_of",
    ),
    (
        _append_copy("census", 0, nc_year="5"),
        "census",
        "pupil_id, census_date, school_urn",
        "duplicate_key",
    ),
    (_set("social_care", "status", 0, "XYZ"), "social_care", "status", "unknown_code"),
    (_set("exclusions", "sessions", 0, "-1"), "exclusions", "sessions", "out_of_range"),
    (_append_copy("exclusions", 0), "exclusions", None, "duplicate_row"),
    (
        _set("roll_changes", "change", 0, "moved"),
        "roll_changes",
        "change",
        "unknown_code",
    ),
    (_set("ehe", "end_date", 0, "2024-01-01"), "ehe", "end_date", "end_before_start"),
    (
        _set("cme_episodes", "start_date", 0, "2150-01-01"),
        "cme_episodes",
        "start_date",
        "implausible_date",
    ),
    (
        _drop_column("attendance_termly", "sessions_possible"),
        "attendance_termly",
        "sessions_possible",
        "missing_column",
    ),
    (_empty("secondary_offers"), "secondary_offers", None, "no_rows"),
    (_set("attendance", "code", 0, "ZZ"), "attendance", "code", "unknown_code"),
    (_set("attendance", "session", 1, "XX"), "attendance", "session", "unknown_code"),
    (
        _set("attendance", "date", 2, "not a date"),
        "attendance",
        "date",
        "unreadable_value",
    ),
    (
        _rows("attendance", _mark(P1, "2024-09-10", "AM", "H")),
        "attendance",
        "code",
        "legacy_code_after_2024",
    ),
    (
        _rows("attendance", _mark(P1, "2023-09-05", "AM", "C1")),
        "attendance",
        "code",
        "new_code_before_2024",
    ),
    (_append_copy("attendance", 4), "attendance", "session", "duplicate_row"),
    (_append_copy("attendance", 3, code="O"), "attendance", "session", "duplicate_key"),
    (
        _rows("attendance", _mark("nobody", "2023-09-05", "AM", "/")),
        "attendance",
        "pupil_id",
        "unknown_pupil",
    ),
    (
        _rows("attendance", _mark(P1, "1990-01-08", "AM", "C1")),
        "attendance",
        "date",
        "implausible_date",
    ),
    (
        _rows("attendance", _mark(None, "2023-09-05", "PM", "/")),
        "attendance",
        "pupil_id",
        "missing_value",
    ),
    (_whole_column("attendance", "note", "x"), "attendance", "note", "unknown_column"),
]

# Problems that make a table unusable, one at a time, on a small LA.
ERRORS = [
    (_remove("pupils"), "pupils", None, "missing_table"),
    (_empty("census"), "census", None, "empty_table"),
    (
        _drop_column("census", "sen_provision"),
        "census",
        "sen_provision",
        "missing_column",
    ),
    (
        _whole_column("census", "fsm_eligible", "maybe"),
        "census",
        "fsm_eligible",
        "wrong_type",
    ),
    (_whole_column("census", "census_date", 12), "census", "census_date", "wrong_type"),
    (_set("pupils", "pupil_id", 0, "B801200005001"), "pupils", "pupil_id", "raw_upn"),
    (_whole_column("attendance", "date", "soon"), "attendance", "date", "wrong_type"),
    (_drop_column("attendance", "code"), "attendance", "code", "missing_column"),
]


def _ids(case: tuple) -> str:
    return f"{case[1]}.{case[2]}:{case[3]}"


def _broken(changes: list[tuple]) -> Tables:
    t = tiny_tables()
    for change, *_ in changes:
        change(t)
    return t


def _report(
    t: Tables, *, marks_on_disk: Path | None = None, only: tuple[str, ...] = ()
):
    if only:
        t = {k: v for k, v in t.items() if k in {"pupils", "census", *only}}
    if marks_on_disk is not None and "attendance" in t:
        path = marks_on_disk / "attendance.parquet"
        t["attendance"].astype(str).replace("None", None).to_parquet(path, index=False)
        tables = RawTables(
            {k: v for k, v in t.items() if k != "attendance"}, attendance_files=(path,)
        )
    else:
        tables = RawTables(t)
    return tables, validate_tables(tables, as_of=AS_OF)


def test_a_valid_la_passes_with_only_the_expected_warnings() -> None:
    _, report = _report(tiny_tables())
    assert report.ok, report.to_frame()
    assert {(f.table, f.rule) for f in report.findings} == {
        ("attendance", "after_as_of"),
        ("cme_episodes", "after_as_of"),
    }
    assert report.rejects().empty
    assert {s.table: s.rows for s in report.summaries}["census"] == 4
    census = report.summary("census")
    assert (census.first, census.last) == (date(2023, 10, 5), date(2024, 1, 18))


@pytest.mark.parametrize("where", ["memory", "disk"])
def test_every_problem_is_reported_at_once_where_it_is(
    where: str, tmp_path: Path
) -> None:
    _, report = _report(
        _broken(MANY), marks_on_disk=tmp_path if where == "disk" else None
    )
    found = {(f.table, f.column, f.rule) for f in report.findings}
    missing = [_ids(c) for c in MANY if (c[1], c[2], c[3]) not in found]
    assert not missing, report.to_frame().to_string()
    assert report.errors == [
        f for f in report.findings if f.table == "attendance_termly"
    ]
    assert not report.ok


def test_marks_on_disk_and_in_memory_get_the_same_report(tmp_path: Path) -> None:
    _, in_memory = _report(_broken(MANY))
    _, on_disk = _report(_broken(MANY), marks_on_disk=tmp_path)
    pd.testing.assert_frame_equal(in_memory.to_frame(), on_disk.to_frame())
    pd.testing.assert_frame_equal(in_memory.rejects(), on_disk.rejects())


@pytest.mark.parametrize("case", ERRORS, ids=[_ids(c) for c in ERRORS])
def test_unusable_tables_are_errors(case: tuple) -> None:
    change, table, column, rule = case
    t = tiny_tables()
    change(t)
    tables, report = _report(t, only=(table,))
    hits = [
        f for f in report.errors if (f.table, f.column, f.rule) == (table, column, rule)
    ]
    assert hits, report.to_frame().to_string()
    assert table in report.unusable_tables
    assert not drop_rejected(tables, report).has(table)


@pytest.mark.parametrize("where", ["memory", "disk"])
def test_dropping_rejects_leaves_valid_tables_and_loses_nothing_unreported(
    where: str, tmp_path: Path
) -> None:
    tables, report = _report(
        _broken(MANY), marks_on_disk=tmp_path if where == "disk" else None
    )
    clean = drop_rejected(tables, report, work_dir=tmp_path / "work")
    after = validate_tables(clean, as_of=AS_OF)
    assert after.ok, after.to_frame().to_string()
    assert not clean.has(
        "attendance_termly"
    )  # unusable: dropped, and reported as an error
    rejects = report.rejects()
    for name in clean.names:
        before = report.summary(name).rows
        if name == "attendance":
            assert _count_marks(clean) == before - report.dropped_rows["attendance"]
            assert (
                rejects.query("table == 'attendance'")["rows"].sum()
                >= report.dropped_rows[name]
            )
        else:
            listed = set(rejects.query("table == @name")["row"])
            assert (
                len(clean[name])
                == before - len(listed)
                == before - report.dropped_rows[name]
            )
    # P3's pupils row was rejected (IDACI 11), so all P3's records go, each listed.
    assert P3 not in set(clean["census"]["pupil_id"])
    assert P3 in set(
        rejects.query("table == 'census' and rule == 'unknown_pupil'")["pupil_id"]
    )
    # Dropped: ZZ, XX, bad date, 1 exact copy, 2 conflicting, nobody, 1990, no id,
    # and P3's 2 marks.
    assert report.dropped_rows["attendance"] == 11


def _count_marks(tables: RawTables) -> int:
    with duckdb.connect() as con:
        return tables.attendance_relation(con).aggregate("count(*)").fetchall()[0][0]


def test_rejected_pupils_cascade_to_their_records_with_the_reason() -> None:
    t = tiny_tables()
    _append_copy("pupils", 1, sex="F")(t)  # P2 twice, disagreeing: both rows rejected
    _, report = _report(t)
    rejects = report.rejects()
    assert set(rejects.query("table == 'pupils'")["row"]) == {2, 4}
    cascaded = rejects.query("table == 'census' and rule == 'unknown_pupil'")
    assert set(cascaded["pupil_id"]) == {P2}
    assert set(cascaded["detail"]) == {"its pupils row was rejected"}
    marks = rejects.query("table == 'attendance' and rule == 'unknown_pupil'")
    assert marks["rows"].sum() == 2 and set(marks["pupil_id"]) == {P2}


@pytest.mark.parametrize("bitmap", [True, False], ids=["bitmap", "hash"])
def test_conflicting_duplicate_marks_are_all_rejected_exact_copies_keep_one(
    tmp_path: Path, bitmap: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not bitmap:  # a span of dates too long for per-pupil bitmaps
        monkeypatch.setattr("cmerisk.data.marks_sql.MAX_BITMAP_SLOTS", 1)
    t = tiny_tables()
    _append_copy("attendance", 0)(t)  # exact copy: one extra
    _append_copy("attendance", 2, code="O")(
        t
    )  # disagrees: both rows of that session go
    tables, report = _report(t, marks_on_disk=tmp_path)
    assert report.dropped_rows["attendance"] == 3
    clean = drop_rejected(tables, report, work_dir=tmp_path / "w")
    with duckdb.connect() as con:
        marks = clean.attendance_relation(con).df()
    assert len(marks) == 6 - 1
    assert ((marks["pupil_id"] == P2) & (marks["session"] == "AM")).sum() == 0
    assert ((marks["pupil_id"] == P1) & (marks["session"] == "AM")).sum() == 1
    assert str(marks["date"].dtype).startswith("datetime64")


def test_marks_outside_registration_are_warned_not_dropped() -> None:
    t = tiny_tables()
    t["roll_changes"] = pd.concat(
        [
            t["roll_changes"],
            pd.DataFrame(
                {
                    "pupil_id": [P2],
                    "school_urn": [SCHOOL_A],
                    "date": ["2023-07-20"],
                    "change": ["deletion"],
                    "deletion_ground": ["moved_school"],
                    "destination_known": ["yes"],
                }
            ),
        ],
        ignore_index=True,
    )
    _set("attendance", "date", 0, "2023-08-30")(
        t
    )  # P1 before their 2023-09-01 admission
    _, report = _report(t)
    found = [f for f in report.findings if f.rule == "outside_registration"]
    assert (
        len(found) == 1 and found[0].count == 3
    )  # P1 once, P2's two marks after deletion
    assert any("(deleted 2023-07-20)" in e for e in found[0].examples)
    assert report.ok


def test_examples_and_json_never_show_an_identifier() -> None:
    t = tiny_tables()
    for change in (
        _set("pupils", "sex", 0, "X"),
        _set("census", "pupil_id", 1, "nobody-in-particular"),
        _append_copy("pupils", 2, sex="M"),
        _set("attendance", "code", 1, "ZZ"),
        _set("attendance", "pupil_id", 3, "another-unknown"),
    ):
        change(t)
    _, report = _report(t)
    text = json.dumps(report.to_dict()) + report.to_frame().to_string()
    for pid in (P1, P2, P3, "nobody-in-particular", "another-unknown"):
        assert pid not in text
    assert "row 1: 'X'" in text and "'ZZ'" in text


def test_raw_upns_never_reach_the_rejects() -> None:
    t = tiny_tables()
    _set("attendance", "pupil_id", 0, "B801200005001")(t)
    _, report = _report(t)
    assert "B801200005001" not in report.rejects().to_string()
    assert any(f.rule == "raw_upn" and f.table == "attendance" for f in report.findings)


def test_raise_for_errors_lists_every_error() -> None:
    t = tiny_tables()
    _drop_column("census", "nc_year")(t)
    _remove("pupils")(t)
    _, report = _report(t)
    with pytest.raises(DataError) as e:
        report.raise_for_errors()
    assert "pupils: a required table is missing" in str(e.value)
    assert "census.nc_year: a required column is missing" in str(e.value)


def test_unusable_tables_are_dropped_and_named() -> None:
    t = tiny_tables()
    _drop_column("exclusions", "category")(t)
    tables, report = _report(t)
    assert report.unusable_tables == ["exclusions"]
    clean = drop_rejected(tables, report)
    assert not clean.has("exclusions") and clean.has("census")


def test_drop_rejected_refuses_tables_it_was_not_made_from() -> None:
    tables, report = _report(tiny_tables())
    other = tables.with_frames(census=tables["census"].iloc[:2])
    with pytest.raises(ValueError, match="not the one this report was made from"):
        drop_rejected(other, report)


def test_clean_tables_have_contract_types() -> None:
    tables, report = _report(tiny_tables())
    clean = drop_rejected(tables, report)
    for name in clean.names:
        if name == "attendance":
            continue
        for column in TABLES[name].columns:
            if column.name in clean[name]:
                kind = column.kind
                dtype = str(clean[name][column.name].dtype)
                expected = {
                    "id": "str",
                    "string": "str",
                    "date": "datetime64[us]",
                    "int": "Int64",
                    "float": "Float64",
                    "bool": "boolean",
                }[kind]
                assert dtype == expected, (name, column.name, dtype)
    assert clean["census"]["fsm_eligible"].tolist() == [True, False, True, True]


# --- property tests: malformed tables give a clean report, never an exception ------

_CODE_COLUMNS = [
    (t.name, c.name) for t in TABLES.values() for c in t.columns if c.allowed
]
_TYPED_COLUMNS = [
    (t.name, c.name)
    for t in TABLES.values()
    for c in t.columns
    if c.kind in ("date", "int", "bool")
]
_REQUIRED = [(t.name, c) for t in TABLES.values() for c in t.required_columns]


@st.composite
def _breakage(
    draw: st.DrawFn,
) -> tuple[Callable[[Tables], None], str, str | None, set[str]]:
    kind = draw(
        st.sampled_from(["code", "type", "duplicate", "empty", "missing", "late"])
    )
    if kind == "code":
        table, column = draw(st.sampled_from(_CODE_COLUMNS))
        bad = draw(
            st.text(min_size=1, max_size=6).filter(
                lambda s: (
                    s.strip()
                    and s.strip() not in (TABLES[table].column(column).allowed or ())
                    and s.strip().upper() not in {"NA", "N/A", "NULL", "NONE", "NAN"}
                )
            )
        )
        return _set(table, column, 0, bad), table, column, {"unknown_code"}
    if kind == "type":
        table, column = draw(st.sampled_from(_TYPED_COLUMNS))
        bad = draw(st.sampled_from(["banana", "31/02/2023", "1e400x", "??"]))
        every = draw(st.booleans())
        change = (
            _whole_column(table, column, bad) if every else _set(table, column, 0, bad)
        )
        return (
            change,
            table,
            column,
            {"unreadable_value", "wrong_type"},
        )
    if kind == "duplicate":
        table = draw(st.sampled_from([t for t in TABLES if t != "attendance_termly"]))
        return _append_copy(table, 0), table, None, {"duplicate_row", "duplicate_key"}
    if kind == "empty":
        table = draw(st.sampled_from(list(TABLES)))
        return _empty(table), table, None, {"empty_table", "no_rows"}
    if kind == "missing":
        table, column = draw(st.sampled_from(_REQUIRED))
        return _drop_column(table, column), table, column, {"missing_column"}
    table = draw(st.sampled_from([t for t in TABLES.values() if t.event_date]))
    return (
        _set(table.name, table.event_date, 0, "2024-06-01"),
        table.name,
        table.event_date,
        {"after_as_of"},
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_breakage())
def test_malformed_tables_give_a_report_naming_table_column_and_rule(breakage) -> None:
    change, table, column, rules = breakage
    t = tiny_tables()
    change(t)
    _, report = _report(t, only=(table,))
    hits = [f for f in report.findings if f.table == table and f.rule in rules]
    assert hits, report.to_frame().to_string()
    if column is not None:
        assert any(column in (f.column or "") for f in hits)
    json.dumps(report.to_dict())  # always serialisable


def test_row_numbers_in_rejects_point_at_the_bad_rows() -> None:
    t = tiny_tables()
    _set("census", "nc_year", 2, "14")(t)
    _, report = _report(t)
    row = report.rejects().query("rule == 'unknown_code'")["row"].tolist()
    assert row == [3]
    assert np.array_equal(report.to_frame()["count"].to_numpy()[:1], [1])


def test_the_docs_explain_every_rule() -> None:
    text = (Path(__file__).parents[2] / "docs" / "validation.md").read_text()
    assert [r for r in RULES if f"| `{r}` | {RULES[r].severity} |" not in text] == []
