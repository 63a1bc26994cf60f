from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cmerisk.cli import app
from cmerisk.data.pseudonymise import (
    DEMO_KEY,
    DEMO_KEY_WARNING,
    KEY_ENV_VAR,
    pseudonymise_upn,
)
from cmerisk.data.upn import make_upn
from cmerisk.errors import EXIT_DATA, EXIT_KEY, EXIT_OK

_spec = importlib.util.spec_from_file_location(
    "_tiny_la_for_cli", Path(__file__).parents[1] / "data" / "tiny_la.py"
)
tiny = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tiny)

runner = CliRunner()
UPN = make_upn(la_number=330, establishment=2001, year=12, serial=1)


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    t = {"ehe": tiny.tiny_tables()["ehe"].assign(pupil_id=[UPN])}
    t["cme_episodes"] = tiny.tiny_tables()["cme_episodes"].assign(
        pupil_id=["Z0000000000000"]
    )
    return tiny.write_folder(t, tmp_path / "raw")


def _run(raw: Path, out: Path, *extra: str, key: str | None = None):
    env = {"COLUMNS": "200", KEY_ENV_VAR: key or ""}
    return runner.invoke(
        app, ["pseudonymise", "--in", str(raw), "--out", str(out), *extra], env=env
    )


def test_refuses_without_a_key(raw: Path, tmp_path: Path) -> None:
    result = _run(raw, tmp_path / "out")
    assert result.exit_code == EXIT_KEY
    assert "No pseudonymisation key" in result.output
    assert not (tmp_path / "out").exists()


def test_demo_key_only_when_asked_and_said_loudly(raw: Path, tmp_path: Path) -> None:
    result = _run(raw, tmp_path / "out", "--demo")
    assert result.exit_code == EXIT_OK, result.output
    assert " ".join(DEMO_KEY_WARNING.split()) in " ".join(result.output.split())
    ehe = pd.read_csv(tmp_path / "out" / "ehe.csv")
    assert ehe["pupil_id"].tolist() == [pseudonymise_upn(UPN, key=DEMO_KEY)]


def test_the_la_key_is_used_and_rejects_reported(raw: Path, tmp_path: Path) -> None:
    key = "an-la-secret-of-some-length"
    result = _run(raw, tmp_path / "out", key=key)
    assert result.exit_code == EXIT_OK, result.output
    assert DEMO_KEY_WARNING.split(":")[0] not in result.output
    assert "1 row(s) with an invalid or empty UPN were not copied" in result.output
    assert "length 14, expected 13" in result.output
    assert UPN not in result.output and "Z0000000000000" not in result.output
    ehe = pd.read_csv(tmp_path / "out" / "ehe.csv")
    assert ehe["pupil_id"].tolist() == [pseudonymise_upn(UPN, key=key.encode())]


def test_a_non_empty_output_folder_is_refused(raw: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.csv").write_text("x\n")
    result = _run(raw, tmp_path / "out", "--demo")
    assert result.exit_code == EXIT_DATA
    assert "not empty" in result.output and "Traceback" not in result.output
