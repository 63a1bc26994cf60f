"""Records before the first year of marks: ``generate_la(..., history_years=N)``."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
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


def test_no_history_is_the_default_and_starts_with_the_marks(tmp_path: Path) -> None:
    """``history_years=0`` is the generator as it was: records start with the
    first marked school year. (Its files were checked byte for byte against the
    generator from before history existed when it was added; pinned digests
    would tie the suite to one machine's floating point.)"""
    default = generate_la(tmp_path / "a", pupils=600, years=1, seed=3, key=KEY)
    generate_la(tmp_path / "b", pupils=600, years=1, seed=3, key=KEY, history_years=0)
    assert _hashes(tmp_path / "a") == _hashes(tmp_path / "b")
    assert default.first_date == default.marks_first_date == "2021-09-01"
    census = pd.read_parquet(tmp_path / "a" / "census.parquet")
    assert pd.to_datetime(census["census_date"]).min() >= pd.Timestamp("2021-09-01")
