"""Records before the first year of marks: ``generate_la(..., history_years=N)``."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import duckdb
import pytest

from cmerisk.data.synthetic import generate_la

KEY = b"test-key-history-0123456789"
#: (table, its event-date column) for every table but the marks.
DATED = [
    ("census", "census_date"),
    ("roll_changes", "date"),
    ("social_care", "start_date"),
    ("exclusions", "start_date"),
    ("ehe", "start_date"),
    ("cme_episodes", "start_date"),
    ("secondary_offers", "offer_date"),
]
#: Marks start in 2022/23; the records two school years before, in 2020/21.
FIRST_YEAR, HISTORY = 2022, 2


def _by_year(folder: Path, table: str, column: str) -> dict[int, int]:
    """Rows per school year (2022 = 2022/23) of one table of an LA folder."""
    path = folder / "attendance" / "*.parquet" if table == "attendance" else None
    source = f"'{path}'" if path else f"'{folder / table}.parquet'"
    rows = duckdb.sql(
        f"SELECT year({column}) - (month({column}) < 9)::INT, count(*) "
        f"FROM {source} GROUP BY 1"
    ).fetchall()
    return dict(rows)


@pytest.fixture(scope="module")
def la(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("history") / "la"
    generate_la(
        folder,
        pupils=2_000,
        years=1,
        first_year=FIRST_YEAR,
        history_years=HISTORY,
        seed=4,
        key=KEY,
    )
    return folder


def test_marks_and_termly_totals_only_in_the_marked_years(la: Path) -> None:
    assert set(_by_year(la, "attendance", "date")) == {FIRST_YEAR}
    assert set(_by_year(la, "attendance_termly", "term_start")) == {FIRST_YEAR}


@pytest.mark.parametrize(("table", "column"), DATED)
def test_records_reach_back_over_the_history_years(
    la: Path, table: str, column: str
) -> None:
    years = _by_year(la, table, column)
    # social care episodes open at the start may have begun years before it
    assert min(years) <= FIRST_YEAR - HISTORY
    assert set(range(FIRST_YEAR - HISTORY, FIRST_YEAR + 1)) <= set(years)
    assert max(years) == FIRST_YEAR


def test_the_census_holds_all_three_days_of_every_year_alike(la: Path) -> None:
    days = duckdb.sql(
        f"SELECT census_date, count(*) FROM '{la}/census.parquet' GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert len(days) == 3 * (HISTORY + 1)
    assert days[0][0] == date(FIRST_YEAR - HISTORY, 10, 1)  # autumn census 2020
    counts = [n for _, n in days]
    # the same simulated LA throughout: no year much smaller or larger
    assert max(counts) / min(counts) < 1.15


def test_pupils_in_the_first_marked_year_carry_their_history(la: Path) -> None:
    """Most pupils with marks in the first year were on the census before it."""
    share = duckdb.sql(f"""
        WITH marked AS (SELECT DISTINCT pupil_id FROM '{la}/attendance/*.parquet')
        SELECT avg((EXISTS (FROM '{la}/census.parquet' c
                            WHERE c.pupil_id = m.pupil_id
                              AND c.census_date < DATE '{FIRST_YEAR}-09-01'))::INT)
        FROM marked m""").fetchall()[0][0]
    assert 0.7 < share < 1.0


def test_the_manifest_records_the_history(la: Path) -> None:
    manifest = json.loads((la / "manifest.json").read_text())
    assert manifest["arguments"]["history_years"] == HISTORY
    assert manifest["arguments"]["first_year"] == FIRST_YEAR
    assert manifest["school_years"] == [2020, 2021, 2022]
    assert manifest["marks_school_years"] == [2022]
    assert manifest["date_range"]["first"] == "2020-09-01"
    assert manifest["date_range"]["first_marks"] == "2022-09-01"


def _hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every data file (the manifest names the package version)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.parquet"))
    }


def test_same_seed_same_bytes_with_history(tmp_path: Path) -> None:
    args = {"pupils": 600, "years": 1, "history_years": 1, "key": KEY}
    a = generate_la(tmp_path / "a", seed=7, **args)
    generate_la(tmp_path / "b", seed=7, **args)
    assert _hashes(tmp_path / "a") == _hashes(tmp_path / "b")
    assert a.history_years == 1 and a.first_date == "2020-09-01"
    assert a.marks_first_date == "2021-09-01"


#: The data files of ``generate_la(pupils=600, years=1, seed=3)`` as written before
#: ``history_years`` existed. If you change the generator's output on purpose,
#: bump ``GENERATOR_VERSION`` and replace these.
NO_HISTORY = {
    "attendance/part-00000.parquet": "37dec28cf8e3919f9917bb452ba5e07739f102ab9c36137e55d256d85c03b316",
    "attendance_termly.parquet": "7531685dba40722d8ba46280a2acb2e35a7f2ce4b82564854122eb7c8c20bf43",
    "census.parquet": "e660c6b837f8db02b84bc407ae281552c3c0ba67802068ea40ef1e6d6c10b271",
    "cme_episodes.parquet": "e83c170c21575613e6501c152e7bdef50016fc40c0cf5fe57d3497ae5586f54d",
    "ehe.parquet": "559b95c1a822947de1426b83d9fddc8906a3ec25d4aa044b701d79d9fdd90ac1",
    "exclusions.parquet": "caca502911b83c3916be60f2a8dda7a9ac55adde8e9c47713c518c1d8b32548b",
    "pupils.parquet": "b9cc59f407918b3acad022ad2459a30949fd2cbb34e3784e225497bcb346d379",
    "roll_changes.parquet": "642a63c9facded7b970452afc7fa2cc20171943925c41e70c2143fba7e2e7b03",
    "secondary_offers.parquet": "ceb492be57a5ac784d155a0b58b6495105b7e1928ab528f3c297854151ac62a0",
    "social_care.parquet": "51de5a52f14bf56501a1d0192add0a244fe8c93e0644259278bf75d362eb5bfd",
}


def test_no_history_is_the_output_from_before_history_existed(tmp_path: Path) -> None:
    generate_la(tmp_path / "la", pupils=600, years=1, seed=3, key=KEY)
    assert _hashes(tmp_path / "la") == NO_HISTORY
