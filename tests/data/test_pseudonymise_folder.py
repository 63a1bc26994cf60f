from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny_la import P1, P2, P3, tiny_tables, write_folder

from cmerisk.data.load import validate_folder
from cmerisk.data.pseudonymise import pseudonymise_upn
from cmerisk.data.pseudonymise_folder import (
    REJECTS_FILE,
    SUMMARY_FILE,
    pseudonymise_folder,
)
from cmerisk.data.upn import make_upn
from cmerisk.errors import DataError

KEY = b"test-key-for-a-folder-0123456789"
UPN = {
    P1: make_upn(la_number=330, establishment=2001, year=12, serial=1),
    P2: make_upn(la_number=330, establishment=2001, year=12, serial=2),
    P3: make_upn(la_number=330, establishment=4001, year=8, serial=7),
}
UPN_PATTERN = re.compile(rb"[A-HJ-NP-RT-Z][0-9]{11}[0-9A-HJ-NP-RT-Z]", re.IGNORECASE)
WRONG_CHECK = "A" + UPN[P2][1:] if UPN[P2][0] != "A" else "B" + UPN[P2][1:]


def _raw_la() -> dict[str, pd.DataFrame]:
    """The tiny LA with real-looking UPNs, some of them bad, and a column of names."""
    t = tiny_tables()
    for frame in t.values():
        frame["pupil_id"] = frame["pupil_id"].map(UPN)
    t["pupils"]["name"] = ["Ann Smith", "Bob Jones", "Cy Brown"]
    t["census"].loc[1, "pupil_id"] = WRONG_CHECK  # wrong check letter
    t["census"].loc[3, "pupil_id"] = " " + UPN[P1].lower()  # fixable: blanks and case
    t["attendance"].loc[2, "pupil_id"] = "12345"  # bad format
    t["attendance"].loc[3, "pupil_id"] = ""  # empty
    return t


def _all_text(folder: Path) -> bytes:
    """Every byte written, plus every value of every Parquet file as text."""
    chunks = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        chunks.append(path.read_bytes())
        if path.suffix == ".parquet":
            chunks.append(pq.read_table(path).to_pandas().to_csv().encode())
    return b"\n".join(chunks)


@pytest.fixture(params=["csv", "parquet"])
def pseudonymised(request, tmp_path: Path):
    fmt = request.param
    raw = write_folder(_raw_la(), tmp_path / "raw", fmt=fmt, parts=("attendance",))
    out = tmp_path / "out"
    return fmt, raw, out, pseudonymise_folder(raw, out, key=KEY)


def test_no_raw_upn_survives_into_any_output(pseudonymised) -> None:
    _, raw, out, _ = pseudonymised
    text = _all_text(out)
    assert UPN_PATTERN.search(text) is None
    for upn in (*UPN.values(), WRONG_CHECK, "12345"):
        assert upn.encode() not in text and upn.lower().encode() not in text
    assert b"Ann Smith" not in text and KEY not in text
    assert UPN_PATTERN.search(_all_text(raw)) is not None  # the scan can find them


def test_ids_are_keyed_hashes_and_join_across_tables(pseudonymised) -> None:
    fmt, _, out, summary = pseudonymised
    pupils = (
        pd.read_csv(out / "pupils.csv")
        if fmt == "csv"
        else pd.read_parquet(out / "pupils.parquet")
    )
    assert list(pupils["pupil_id"]) == [
        pseudonymise_upn(UPN[p], key=KEY) for p in (P1, P2, P3)
    ]
    assert "name" not in pupils.columns and summary.dropped_columns == {
        "pupils": ("name",)
    }
    report = validate_folder(out)
    assert report.ok, report.to_frame().to_string()  # every id still joins to pupils


def test_invalid_upns_are_rejected_by_row_and_problem(pseudonymised) -> None:
    fmt, _, out, summary = pseudonymised
    rejects = pd.read_csv(out / REJECTS_FILE)
    assert list(rejects.columns) == ["table", "file", "row", "rows", "problem"]
    got = sorted(zip(rejects["file"], rejects["row"], rejects["problem"], strict=True))
    assert got == [
        (f"attendance/part-00000.{fmt}", 3, "length 5, expected 13"),
        (f"attendance/part-00001.{fmt}", 1, "empty"),
        (f"census.{fmt}", 2, "wrong check letter"),
    ]
    assert rejects["rows"].tolist() == [1, 1, 1]
    for table, rows_in in summary.rows_in.items():
        assert rows_in == summary.rows_out[table] + summary.rejected[table]
    assert summary.rejected == {
        **dict.fromkeys(summary.rows_in, 0),
        "census": 1,
        "attendance": 2,
    }
    assert summary.pupils == 3
    saved = json.loads((out / SUMMARY_FILE).read_text())
    assert saved["rejected"]["attendance"] == 2 and saved["problems"]["empty"] == 1


def test_same_input_and_key_give_the_same_bytes(tmp_path: Path) -> None:
    raw = write_folder(_raw_la(), tmp_path / "raw", fmt="csv", parts=("attendance",))
    pseudonymise_folder(raw, tmp_path / "a", key=KEY)
    pseudonymise_folder(raw, tmp_path / "b", key=KEY)
    pseudonymise_folder(raw, tmp_path / "c", key=b"another-key-0123456789abcdef")
    files = sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.csv")
    )
    assert all(
        (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
        for f in files
    )
    assert (tmp_path / "a" / "pupils.csv").read_bytes() != (
        tmp_path / "c" / "pupils.csv"
    ).read_bytes()


def test_refuses_to_overwrite_or_write_inside_the_input(tmp_path: Path) -> None:
    raw = write_folder(_raw_la(), tmp_path / "raw")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("keep me")
    with pytest.raises(DataError, match="not empty"):
        pseudonymise_folder(raw, tmp_path / "full", key=KEY)
    with pytest.raises(DataError, match="inside"):
        pseudonymise_folder(raw, raw / "out", key=KEY)
    assert (tmp_path / "full" / "x.txt").read_text() == "keep me"


def test_a_table_without_pupil_id_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    t = _raw_la()
    t["ehe"] = t["ehe"].rename(columns={"pupil_id": "upn"})
    raw = write_folder(t, tmp_path / "raw")
    with pytest.raises(DataError, match="ehe: no pupil_id column"):
        pseudonymise_folder(raw, tmp_path / "out", key=KEY)
    assert not (tmp_path / "out").exists()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.text(min_size=0, max_size=15), min_size=1, max_size=6))
def test_whatever_the_ids_each_row_is_hashed_or_rejected_never_copied(
    tmp_path_factory: pytest.TempPathFactory, ids: list[str]
) -> None:
    folder = tmp_path_factory.mktemp("prop") / "in"
    folder.mkdir()
    valid = [UPN[P1], UPN[P2]]
    column = [*ids, *valid]
    frame = pd.DataFrame(
        {"pupil_id": column, "start_date": "2023-01-01", "end_date": ""}
    )
    frame.to_csv(
        folder / "ehe.csv", index=False, quoting=csv.QUOTE_ALL
    )  # keeps a lone \r
    summary = pseudonymise_folder(folder, folder.parent / "out", key=KEY)
    out = pd.read_csv(
        folder.parent / "out" / "ehe.csv", dtype=str, keep_default_na=False
    )
    assert len(out) + summary.rejected["ehe"] == len(column) == summary.rows_in["ehe"]
    assert set(out["pupil_id"]) >= {pseudonymise_upn(u, key=KEY) for u in valid}
    assert all(re.fullmatch(r"[0-9a-f]{24}", v) for v in out["pupil_id"])
