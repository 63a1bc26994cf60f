"""`cmerisk score`: end to end once, exit codes, and malformed tables (hypothesis).

Bad input never gives a traceback: either a clear message naming the table (and
column) with a non-zero exit code, or a finished run whose rejects list the bad
records.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scoring_la import AS_OF, make_tables, write_tables
from typer.testing import CliRunner

from cmerisk.cli import app
from cmerisk.data.contract import TABLES
from cmerisk.errors import EXIT_CONFIG, EXIT_DATA, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE

runner = CliRunner()


def _score(data: Path, model: Path, out: Path, *extra: str):
    result = runner.invoke(
        app,
        [
            "score",
            "--data",
            str(data),
            "--model",
            str(model),
            "--as-of",
            AS_OF.isoformat(),
            "--out",
            str(out),
            *extra,
        ],
        env={"COLUMNS": "200"},
    )
    assert "Traceback" not in result.output
    assert result.exit_code != EXIT_INTERNAL, result.output
    return result


@pytest.fixture(scope="module")
def small_csv_la(tmp_path_factory) -> Path:
    """60 pupils as CSV files (easy to corrupt)."""
    return write_tables(
        make_tables(60, seed=3),
        tmp_path_factory.mktemp("csv") / "la",
        fmt="csv",
    )


def test_score_command_writes_the_lists(dirty_la, tiny_model, tmp_path):
    result = _score(dirty_la[0], tiny_model, tmp_path / "out", "--capacity", "15")
    assert result.exit_code == EXIT_OK, result.output
    for name in (
        "risk_list.csv",
        "risk_list.parquet",
        "transition_list.csv",
        "rejects.csv",
        "summary.json",
        "pupils/index.html",
    ):
        assert (tmp_path / "out" / name).exists(), name
    risk = pd.read_csv(tmp_path / "out" / "risk_list.csv")
    assert (risk["band"] == "flagged").sum() == 15
    assert (
        "flagged 15" in result.output.lower() and "outputs in" in result.output.lower()
    )


def test_quiet_prints_nothing_on_success(small_csv_la, tiny_model, tmp_path):
    result = _score(
        small_csv_la, tiny_model, tmp_path / "out", "--quiet", "--explain", "none"
    )
    assert result.exit_code == EXIT_OK, result.output
    assert result.output.strip() == ""


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--as-of", "2025-13-01"], EXIT_USAGE, "--as-of"),
        (["--explain", "maybe"], EXIT_USAGE, "--explain"),
        (["--capacity", "0"], EXIT_USAGE, "--capacity"),
        (["--model", "no/such/model"], EXIT_CONFIG, "no model at"),
        (["--data", "no/such/folder"], EXIT_DATA, "not a folder"),
    ],
)
def test_exit_codes(small_csv_la, tiny_model, tmp_path, args, code, words):
    result = _score(small_csv_la, tiny_model, tmp_path / "out", *args)
    assert result.exit_code == code, result.output
    assert words in result.output


def test_help_documents_exit_codes():
    result = runner.invoke(app, ["score", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for code in (
        "0 ok",
        "1 bad data",
        "2 bad command-line",
        "3 model",
        "4 pseudonymisation",
        "70 a bug",
    ):
        assert code in text


# --- malformed tables -----------------------------------------------------------

SMALL_TABLES = [
    n
    for n in (
        "pupils",
        "census",
        "exclusions",
        "social_care",
        "secondary_offers",
        "ehe",
        "cme_episodes",
    )
]


def _read(folder: Path, table: str) -> pd.DataFrame:
    return pd.read_csv(folder / f"{table}.csv", dtype=str, keep_default_na=False)


def _write(frame: pd.DataFrame, folder: Path, table: str) -> None:
    frame.to_csv(folder / f"{table}.csv", index=False)


@st.composite
def corruption(draw):
    """One way an LA extract goes wrong: (kind, table, column, parameter)."""
    kind = draw(
        st.sampled_from(
            [
                "drop_table",
                "drop_column",
                "wrong_type",
                "unknown_code",
                "duplicate_ids",
                "empty_file",
                "header_only",
                "after_as_of",
                "no_attendance",
                "raw_upns",
            ]
        )
    )
    table = draw(st.sampled_from(SMALL_TABLES))
    columns = TABLES[table].columns
    if kind == "drop_column":
        column = draw(st.sampled_from([c.name for c in columns if c.required]))
    elif kind == "wrong_type":
        column = draw(
            st.sampled_from(
                [c.name for c in columns if c.kind in ("date", "int", "bool")]
                or ["pupil_id"]
            )
        )
    elif kind == "unknown_code":
        coded = [c.name for c in TABLES["census"].columns if c.allowed]
        table, column = "census", draw(st.sampled_from(coded))
    elif kind == "after_as_of":
        table = draw(st.sampled_from(["exclusions", "social_care", "ehe", "census"]))
        column = TABLES[table].event_date
    else:
        column = None
    text = draw(st.text(alphabet="abcXYZ!?#é 0123", min_size=1, max_size=6))
    share = draw(st.sampled_from([0.1, 0.5, 1.0]))
    return kind, table, column, text, share


def _corrupt(folder: Path, kind, table, column, text, share) -> None:
    if kind == "drop_table":
        (folder / f"{table}.csv").unlink()
    elif kind == "drop_column":
        _write(_read(folder, table).drop(columns=column), folder, table)
    elif kind in ("wrong_type", "unknown_code"):
        frame = _read(folder, table)
        n = max(1, int(len(frame) * share))
        frame.loc[frame.index[:n], column] = f"?{text}?"
        _write(frame, folder, table)
    elif kind == "duplicate_ids":
        frame = _read(folder, "pupils")
        extra = frame.iloc[: max(1, int(len(frame) * share) // 2)].assign(sex="U")
        _write(pd.concat([frame, extra]), folder, "pupils")
    elif kind == "empty_file":
        (folder / f"{table}.csv").write_bytes(b"")
    elif kind == "header_only":
        _write(_read(folder, table).iloc[:0], folder, table)
    elif kind == "after_as_of":
        frame = _read(folder, table)
        n = max(1, int(len(frame) * share))
        frame.loc[frame.index[:n], column] = "2025-06-20"
        end = TABLES[table].end_date
        if end is not None:  # an episode starting later cannot have ended before
            frame.loc[frame.index[:n], end] = ""
        _write(frame, folder, table)
    elif kind == "no_attendance":
        (folder / "attendance.csv").unlink()
    elif kind == "raw_upns":
        from cmerisk.data.upn import make_upn

        frame = _read(folder, "pupils")
        frame["pupil_id"] = [
            make_upn(la_number=330, establishment=2000, year=5, serial=i)
            for i in range(len(frame))
        ]
        _write(frame, folder, "pupils")


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(bad=corruption())
def test_malformed_tables_give_a_message_or_rejects_never_a_traceback(
    small_csv_la, tiny_model, bad
):
    _check_malformed(small_csv_la, tiny_model, bad)


@pytest.mark.slow
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(bad=corruption())
def test_many_malformed_tables(small_csv_la, tiny_model, bad):
    _check_malformed(small_csv_la, tiny_model, bad)


def _check_malformed(small_csv_la, tiny_model, bad):
    kind, table, column, _, _ = bad
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "la"
        shutil.copytree(small_csv_la, folder)
        _corrupt(folder, *bad)
        result = _score(folder, tiny_model, Path(tmp) / "out", "--explain", "none")
        out = Path(tmp) / "out"
        required = table in ("pupils", "census")
        if kind == "no_attendance":
            assert result.exit_code == EXIT_DATA
            assert (
                "absence_rate_this_term" in result.output
                and "attendance" in result.output
            )
        elif kind == "raw_upns":
            assert result.exit_code == EXIT_DATA and "pseudonymise" in result.output
            assert "B330" not in result.output  # no raw UPN echoed
        elif kind in ("drop_table", "empty_file") or (
            kind == "header_only" and required
        ):
            if required or kind == "empty_file":
                assert result.exit_code == EXIT_DATA, result.output
                assert table in result.output
            else:  # an optional table the model needs features from
                assert result.exit_code in (EXIT_OK, EXIT_DATA), result.output
        elif kind == "drop_column":
            assert result.exit_code == EXIT_DATA, result.output
            assert table in result.output and column in result.output
        elif kind == "wrong_type":
            if result.exit_code == EXIT_DATA:
                assert table in result.output and column in result.output
            else:
                assert result.exit_code == EXIT_OK, result.output
                rejects = pd.read_csv(out / "rejects.csv")
                assert (
                    (rejects["table"] == table) & (rejects["column"] == column)
                ).any()
        elif kind == "unknown_code":
            assert result.exit_code in (EXIT_OK, EXIT_DATA), result.output
            if result.exit_code == EXIT_OK:
                rejects = pd.read_csv(out / "rejects.csv")
                hit = rejects[
                    (rejects["table"] == "census") & (rejects["column"] == column)
                ]
                assert len(hit) and set(hit["rule"]) <= {
                    "unknown_code",
                    "missing_value",
                }
            else:  # every census row rejected: nobody on roll
                assert "no pupil" in result.output or "census" in result.output
        elif kind == "duplicate_ids":
            assert result.exit_code == EXIT_OK, result.output
            rejects = pd.read_csv(out / "rejects.csv")
            assert (rejects["table"] == "pupils").any()
        elif kind == "after_as_of":
            assert result.exit_code in (EXIT_OK, EXIT_DATA), result.output
            if result.exit_code == EXIT_OK:
                import json

                warnings = json.loads((out / "summary.json").read_text())["warnings"]
                assert any(table in w and "as_of" in w for w in warnings)
        else:  # header-only optional table
            assert result.exit_code in (EXIT_OK, EXIT_DATA), result.output
        if result.exit_code != EXIT_OK:
            assert not (out / "risk_list.csv").exists()
