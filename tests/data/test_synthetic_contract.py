"""The synthetic LA keeps the raw-table contract: tables, columns, codes, keys."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cmerisk.data import codes, school_calendar
from cmerisk.data.contract import TABLES
from cmerisk.data.pseudonymise import looks_pseudonymised, pseudonymise_upn
from cmerisk.data.synthetic import generate_la
from cmerisk.data.synthetic.attendance import ONLY_2024, ONLY_LEGACY
from cmerisk.data.upn import is_valid_upn

KEY = b"test-key-synthetic-0123456789"
UPN_PATTERN = re.compile(r"[A-HJ-NP-RT-Z][0-9]{11}[0-9A-HJ-NP-RT-Z]")
ARROW_KIND = {
    "id": pa.string(),
    "string": pa.string(),
    "date": pa.date32(),
    "int": pa.int32(),
    "bool": pa.bool_(),
}
SMALL = {"pupils": 1_500, "years": 2, "first_year": 2023, "seed": 7}


@pytest.fixture(scope="module")
def raw_la(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Spans 2023/24 (legacy codes) and 2024/25 (2024 codes); raw UPNs as ids."""
    out = tmp_path_factory.mktemp("synth") / "raw"
    generate_la(out, raw_upn=True, **SMALL)
    return out


@pytest.fixture(scope="module")
def hashed_la(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "hashed"
    generate_la(out, key=KEY, **SMALL)
    return out


@pytest.fixture(scope="module")
def con(raw_la: Path) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    for name in TABLES:
        source = (
            f"{raw_la}/attendance/*.parquet"
            if name == "attendance"
            else f"{raw_la}/{name}.parquet"
        )
        c.sql(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{source}')")
    return c


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    return int(con.sql(sql).fetchall()[0][0])


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_table_has_exactly_the_contract_columns_and_types(
    raw_la: Path, name: str
) -> None:
    path = (
        raw_la / "attendance" / "part-00000.parquet"
        if name == "attendance"
        else raw_la / f"{name}.parquet"
    )
    schema = pq.read_schema(path)
    declared = TABLES[name].columns
    assert schema.names == [c.name for c in declared]
    for column in declared:
        assert schema.field(column.name).type == ARROW_KIND[column.kind], column.name
    assert pq.read_metadata(path).num_rows > 0


@pytest.mark.parametrize("name", sorted(TABLES))
def test_required_columns_are_never_empty_and_codes_are_allowed(
    con: duckdb.DuckDBPyConnection, name: str
) -> None:
    for column in TABLES[name].columns:
        if not column.nullable:
            assert (
                _count(con, f"SELECT count(*) FROM {name} WHERE {column.name} IS NULL")
                == 0
            ), column.name
        if column.allowed is not None:
            values = {
                v
                for (v,) in con.sql(
                    f"SELECT DISTINCT {column.name} FROM {name}"
                ).fetchall()
            }
            assert values - {None} <= set(column.allowed), column.name
        if column.low is not None:
            assert (
                _count(
                    con,
                    f"SELECT count(*) FROM {name} WHERE {column.name} < {column.low}",
                )
                == 0
            )


@pytest.mark.parametrize("name", [n for n, t in TABLES.items() if t.key])
def test_keys_are_unique(con: duckdb.DuckDBPyConnection, name: str) -> None:
    key = ", ".join(TABLES[name].key or ())
    assert (
        _count(
            con,
            f"SELECT count(*) FROM (SELECT {key} FROM {name} GROUP BY ALL "
            "HAVING count(*) > 1)",
        )
        == 0
    )


def test_codes_follow_their_era(con: duckdb.DuckDBPyConnection) -> None:
    cut = codes.CODES_2024_FROM
    before = {
        c
        for (c,) in con.sql(
            f"SELECT DISTINCT code FROM attendance WHERE date < DATE '{cut}'"
        ).fetchall()
    }
    after = {
        c
        for (c,) in con.sql(
            f"SELECT DISTINCT code FROM attendance WHERE date >= DATE '{cut}'"
        ).fetchall()
    }
    assert before and after
    assert not before & ONLY_2024
    assert not after & ONLY_LEGACY
    assert "C2" in after and "C" in before  # part-time timetables in each era


def test_marks_fall_on_school_days_only(con: duckdb.DuckDBPyConnection) -> None:
    days = {d for y in (2023, 2024) for d in school_calendar.school_days(y)}
    seen = {d for (d,) in con.sql("SELECT DISTINCT date FROM attendance").fetchall()}
    assert seen <= days
    assert len(seen) == len(days)


def test_marks_stay_inside_a_spell_on_roll(con: duckdb.DuckDBPyConnection) -> None:
    # The last roll change at the same school on or before each mark is an admission,
    # or a deletion dated that very day (the last day on roll), or none (on roll from
    # the start).
    bad = _count(
        con,
        """
        SELECT count(*) FROM attendance a
        ASOF LEFT JOIN roll_changes r
          ON a.pupil_id = r.pupil_id AND a.school_urn = r.school_urn
            AND a.date >= r.date
        WHERE r.change = 'deletion' AND r.date < a.date""",
    )
    assert bad == 0
    # ...and a deletion is followed by no mark at that school until a new admission.
    after = _count(
        con,
        """
        SELECT count(*) FROM roll_changes d JOIN attendance a
          ON a.pupil_id = d.pupil_id AND a.school_urn = d.school_urn AND a.date > d.date
        WHERE d.change = 'deletion' AND NOT EXISTS (
            SELECT 1 FROM roll_changes r WHERE r.pupil_id = d.pupil_id
              AND r.school_urn = d.school_urn
              AND r.change = 'admission' AND r.date > d.date AND r.date <= a.date)""",
    )
    assert after == 0
    # ...and no mark comes before a pupil's first admission to a school.
    early = _count(
        con,
        """
        WITH first AS (SELECT pupil_id, school_urn, arg_min(change, date) AS change,
          min(date) AS date
                       FROM roll_changes GROUP BY ALL)
        SELECT count(*) FROM first f JOIN attendance a USING (pupil_id, school_urn)
        WHERE f.change = 'admission' AND a.date < f.date""",
    )
    assert early == 0


def test_no_marks_while_missing_or_home_educated(
    con: duckdb.DuckDBPyConnection,
) -> None:
    for table in ("cme_episodes", "ehe"):
        n = _count(
            con,
            f"""
            SELECT count(*) FROM {table} e JOIN attendance a ON a.pupil_id = e.pupil_id
            WHERE a.date > e.start_date
              AND (e.end_date IS NULL OR a.date < e.end_date)""",
        )
        assert n == 0, table


def test_census_rows_are_on_census_days_for_pupils_on_roll(
    con: duckdb.DuckDBPyConnection,
) -> None:
    census_days = {
        d for y in (2023, 2024) for d in school_calendar.census_dates(y).values()
    }
    assert {
        d for (d,) in con.sql("SELECT DISTINCT census_date FROM census").fetchall()
    } == census_days
    # A main or single registration has that day's marks at that school.
    missing = _count(
        con,
        """
        SELECT count(*) FROM census c WHERE enrolment_status <> 'S' AND NOT EXISTS (
            SELECT 1 FROM attendance a WHERE a.pupil_id = c.pupil_id
              AND a.school_urn = c.school_urn
              AND a.date = c.census_date)""",
    )
    assert missing == 0
    # Subsidiary (dual) registrations come with a main one on the same day.
    lonely = _count(
        con,
        """
        SELECT count(*) FROM census s WHERE enrolment_status = 'S' AND NOT EXISTS (
            SELECT 1 FROM census m WHERE m.pupil_id = s.pupil_id
              AND m.census_date = s.census_date
              AND m.enrolment_status = 'M')""",
    )
    assert lonely == 0


def test_every_pupil_reference_resolves(con: duckdb.DuckDBPyConnection) -> None:
    for name, table in TABLES.items():
        if table.references_pupils:
            n = _count(
                con,
                f"SELECT count(*) FROM {name} t ANTI JOIN pupils p USING (pupil_id)",
            )
            assert n == 0, name


def test_termly_totals_are_the_marks_summed(con: duckdb.DuckDBPyConnection) -> None:
    possible = (
        "('"
        + "','".join(sorted(codes.ALL_ATTENDANCE_CODES - codes.NOT_COUNTED_CODES))
        + "')"
    )
    authorised = "('" + "','".join(sorted(codes.AUTHORISED_CODES)) + "')"
    unauthorised = "('" + "','".join(sorted(codes.UNAUTHORISED_CODES)) + "')"
    marks = con.sql(f"""
        SELECT pupil_id, school_urn, date, sum((code IN {possible})::INT) AS p,
               sum((code IN {authorised})::INT) AS a,
                 sum((code IN {unauthorised})::INT) AS u
        FROM attendance GROUP BY ALL""").df()
    marks["term_start"] = [school_calendar.term_start(d) for d in marks["date"].dt.date]
    expected = marks.groupby(["pupil_id", "school_urn", "term_start"])[
        ["p", "a", "u"]
    ].sum()
    termly = con.sql("SELECT * FROM attendance_termly").df()
    termly["term_start"] = termly["term_start"].dt.date
    got = termly.set_index(["pupil_id", "school_urn", "term_start"]).sort_index()
    expected = expected.sort_index()
    assert list(got.index) == list(expected.index)
    assert (got["sessions_possible"].to_numpy() == expected["p"].to_numpy()).all()
    assert (got["sessions_authorised"].to_numpy() == expected["a"].to_numpy()).all()
    assert (got["sessions_unauthorised"].to_numpy() == expected["u"].to_numpy()).all()


def test_deletions_after_twenty_days_follow_twenty_days_of_unexplained_absence(
    con: duckdb.DuckDBPyConnection,
) -> None:
    # The last 20 school days marked at that school (holidays are not school days,
    # so a run may span one) are all unexplained absence, both sessions.
    runs = con.sql("""
        WITH days AS (
            SELECT d.pupil_id, d.date AS deleted, a.date,
                   bool_and(a.code IN ('G', 'N', 'O')) AS unexplained,
                   row_number() OVER (PARTITION BY d.pupil_id, d.date
                                      ORDER BY a.date DESC) AS k
            FROM roll_changes d JOIN attendance a
              ON a.pupil_id = d.pupil_id AND a.school_urn = d.school_urn
             AND a.date <= d.date
            WHERE d.deletion_ground = 'unexplained_absence_20_days'
            GROUP BY d.pupil_id, d.date, a.date)
        SELECT pupil_id, deleted, count(*) AS days,
               bool_and(unexplained) AS all_unexplained
        FROM days WHERE k <= 20 GROUP BY ALL""").df()
    assert len(runs) > 0
    assert (runs["days"] == 20).all()
    assert runs["all_unexplained"].all()


def test_offers_are_for_year_6_on_or_after_offer_day(
    con: duckdb.DuckDBPyConnection,
) -> None:
    rows = con.sql("""
        SELECT o.offer_date, p.date_of_birth
          FROM secondary_offers o JOIN pupils p USING (pupil_id)""").df()
    for offer, born in zip(
        rows["offer_date"].dt.date, rows["date_of_birth"].dt.date, strict=True
    ):
        year = school_calendar.school_year_of(offer)
        assert school_calendar.nc_year_for(born, year) == 6
        assert date(year + 1, 3, 1) <= offer <= date(year + 1, 8, 31)


def test_raw_upns_are_valid_and_distinct(con: duckdb.DuckDBPyConnection) -> None:
    upns = [u for (u,) in con.sql("SELECT pupil_id FROM pupils").fetchall()]
    assert len(set(upns)) == len(upns)
    assert all(is_valid_upn(u) for u in upns)


def _string_values(folder: Path) -> list[str]:
    values: list[str] = []
    for path in sorted(folder.rglob("*.parquet")):
        table = pq.read_table(path)
        for column in table.columns:
            if pa.types.is_string(column.type) or pa.types.is_dictionary(column.type):
                values.extend(
                    str(v) for v in column.unique().to_pylist() if v is not None
                )
    return values


def test_pseudonymised_output_holds_no_upn_and_keyed_ids(
    raw_la: Path, hashed_la: Path
) -> None:
    raw = pq.read_table(raw_la / "pupils.parquet")["pupil_id"].to_pylist()
    hashed = pq.read_table(hashed_la / "pupils.parquet")["pupil_id"].to_pylist()
    # Same seed, same pupils: each id is the keyed hash of the raw UPN.
    assert hashed == [pseudonymise_upn(u, key=KEY) for u in raw]
    manifest = (hashed_la / "manifest.json").read_text("utf-8")
    values = [*_string_values(hashed_la), manifest]
    assert not any(UPN_PATTERN.search(v) for v in values)
    assert all(
        looks_pseudonymised(v)
        for v in pq.read_table(hashed_la / "census.parquet")["pupil_id"].to_pylist()
    )
    raw_set = set(raw)
    assert not raw_set & set(values)


def test_manifest_names_no_pupil(raw_la: Path) -> None:
    text = (raw_la / "manifest.json").read_text("utf-8")
    assert not UPN_PATTERN.search(text)
    assert '"generator": "cmerisk.data.synthetic"' in text


def test_spells_on_roll_never_overlap(raw_la: Path) -> None:
    c = duckdb.connect()
    marks = c.sql(f"""
        SELECT pupil_id, date, session, count(*) AS n
          FROM read_parquet('{raw_la}/attendance/*.parquet')
        GROUP BY ALL HAVING count(*) > 1""").fetchall()
    assert marks == []
    ages = np.array(
        c.sql(
            f"SELECT DISTINCT nc_year FROM read_parquet('{raw_la}/census.parquet')"
        ).fetchall()
    )
    assert set(ages.ravel()) == set(codes.NC_YEARS)
