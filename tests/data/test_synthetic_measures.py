"""How the calibration report measures an LA, on a tiny hand-written folder."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cmerisk.data.contract import TABLES
from cmerisk.data.synthetic import calibration_report
from cmerisk.data.synthetic.contract_tables import arrow_schema
from cmerisk.data.synthetic.measures import _auc, measure
from cmerisk.errors import DataError

AUTUMN = date(2023, 10, 5)
BORN_Y6 = date(2012, 11, 1)  # Year 6 in 2023/24


def _write(folder: Path, name: str, rows: list[dict]) -> None:
    schema = arrow_schema(name)
    table = pa.Table.from_pylist(rows, schema=schema) if rows else schema.empty_table()
    path = (
        folder / "attendance" / "part-00000.parquet"
        if name == "attendance"
        else folder / f"{name}.parquet"
    )
    pq.write_table(table, path)


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    (tmp_path / "attendance").mkdir()
    pupils = ["p1", "p2", "p3", "p4"]
    tables: dict[str, list[dict]] = {name: [] for name in TABLES}
    tables["pupils"] = [
        {
            "pupil_id": p,
            "date_of_birth": BORN_Y6,
            "sex": "F",
            "ethnicity_major": "White",
            "idaci_decile": 1 if p == "p1" else 5,
        }
        for p in pupils
    ]
    tables["census"] = [
        {
            "pupil_id": p,
            "census_date": AUTUMN,
            "school_urn": "100001",
            "school_phase": "primary",
            "nc_year": "6",
            "fsm_eligible": p in ("p1", "p2"),
            "sen_provision": "K" if p == "p3" else "N",
            "sen_primary_need": "SEMH" if p == "p3" else None,
            "enrolment_status": "C",
        }
        for p in pupils
    ]
    # Absent 11%, 1%, 60%, 0% of 100 possible sessions.
    absent = {"p1": (5, 6), "p2": (1, 0), "p3": (30, 30), "p4": (0, 0)}
    tables["attendance_termly"] = [
        {
            "pupil_id": p,
            "school_urn": "100001",
            "term_start": date(2023, 9, 6),
            "sessions_possible": 100,
            "sessions_authorised": a,
            "sessions_unauthorised": u,
        }
        for p, (a, u) in absent.items()
    ]
    tables["social_care"] = [
        {
            "pupil_id": "p3",
            "status": "CIN",
            "start_date": date(2023, 9, 1),
            "end_date": None,
        }
    ]
    tables["cme_episodes"] = [
        {
            "pupil_id": "p1",
            "start_date": date(2023, 11, 1),
            "end_date": date(2024, 3, 1),
            "outcome": "returned_to_school",
        },
        {
            "pupil_id": "p3",
            "start_date": date(2023, 12, 1),
            "end_date": None,
            "outcome": None,
        },
    ]
    tables["attendance"] = [
        {
            "pupil_id": "p1",
            "school_urn": "100001",
            "date": AUTUMN,
            "session": "AM",
            "code": "/",
        }
    ]
    for name, rows in tables.items():
        _write(tmp_path, name, rows)
    manifest = {"date_range": {"last": "2025-08-31"}, "arguments": {"like": None}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


def test_absence_is_measured_per_enrolment(tiny: Path) -> None:
    m = measure(tiny)
    assert m["overall_absence"] == pytest.approx(100 * 72 / 400)
    assert m["persistent_absence"] == pytest.approx(50.0)
    assert m["severe_absence"] == pytest.approx(25.0)
    assert m["persistent_absence_primary"] == pytest.approx(50.0)
    assert m["persistent_absence_secondary"] is None
    assert m["persistent_absence_cin"] == pytest.approx(100.0)  # p3, CIN on 31 March


def test_prevalences_are_shares_of_census_rows(tiny: Path) -> None:
    m = measure(tiny)
    assert m["fsm"] == pytest.approx(50.0)
    assert m["sen_support"] == pytest.approx(25.0)
    assert m["ehc_plan"] == pytest.approx(0.0)
    assert m["cin"] == pytest.approx(25.0)


def test_cme_ratios_durations_and_incidence(tiny: Path) -> None:
    m = measure(tiny)
    assert m["cme_ratio_idaci1"] == pytest.approx(0.5 / 0.25)
    assert m["cme_ratio_cin"] == pytest.approx(0.5 / 0.25)
    assert m["cme_ratio_sen"] == pytest.approx(0.5 / 0.25)
    assert m["cme_incidence"] == pytest.approx(100 * 2 / 4)
    assert m["cme_peak_nc_year"] == 6
    # p1's episode lasted 121 days; p3's is open, 639 days old at the end of the data.
    assert m["cme_open_12_weeks"] == pytest.approx(100.0)
    assert m["cme_open_1_year"] == pytest.approx(50.0)


def test_report_pairs_targets_with_values(tiny: Path) -> None:
    report = calibration_report(tiny)
    assert report.achieved("persistent_absence") == pytest.approx(50.0)
    assert {r.target.name for r in report.failures()} >= {"persistent_absence", "cin"}
    assert not report.passed
    assert len(report.to_frame()) == len(report.rows)


def test_a_folder_without_the_tables_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing pupils\.parquet.*attendance/"):
        measure(tmp_path)


@pytest.mark.parametrize(
    ("score", "auc"), [([1, 2, 3, 4], 1.0), ([4, 3, 2, 1], 0.0), ([1, 1, 1, 1], 0.5)]
)
def test_auc_by_ranks(score: list[int], auc: float) -> None:
    import numpy as np

    assert _auc(np.array(score), np.array([False, False, True, True])) == pytest.approx(
        auc
    )


@pytest.mark.parametrize(
    ("achieved", "interval", "passed", "noise"),
    [
        (2.5, (2.0, 3.1), True, False),  # in the band
        (2.0, (1.6, 2.8), False, True),  # a miss, but the target is inside the interval
        (2.0, (1.6, 2.4), False, False),  # a real miss
        (2.0, None, False, False),  # no interval: no excuse
    ],
)
def test_a_miss_is_called_noise_only_when_the_interval_holds_the_target(
    achieved: float, interval: tuple[float, float] | None, passed: bool, noise: bool
) -> None:
    from cmerisk.data.synthetic.report import CalibrationReport, CalibrationRow
    from cmerisk.data.synthetic.targets import national_targets

    row = CalibrationRow(national_targets()["cme_ratio_cin"], achieved, interval)
    assert row.passed is passed and row.within_noise is noise
    summary = CalibrationReport(Path("."), None, (row,)).summary()
    assert summary.startswith(f"{int(passed)} of 1 targets met")
    assert ("sampling error" in summary) is noise


def test_report_gives_intervals_for_measures_resting_on_few_events(tiny: Path) -> None:
    report = calibration_report(tiny)
    with_interval = {r.target.name for r in report.rows if r.interval is not None}
    assert {"cme_ratio_cin", "cme_open_12_weeks", "cme_incidence"} <= with_interval
    assert "persistent_absence" not in with_interval
    for r in report.rows:
        if r.interval is not None and r.achieved is not None:
            assert r.interval[0] <= r.achieved <= r.interval[1], r.target.name
