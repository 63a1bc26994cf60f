"""`cmerisk demo` / run_demo: the front door, end to end, and its index page."""

from __future__ import annotations

import json
import sqlite3
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))

from _pages import local_links, self_contained_problems
from cmerisk.cli import app
from cmerisk.demo import (
    MLFLOW_UI,
    DemoResult,
    outputs_table,
    scoring_date,
    write_index,
)


@pytest.mark.parametrize(
    ("last_day", "expected"),
    [
        (date(2025, 7, 22), date(2025, 5, 15)),  # end of 2024/25: its summer census
        (date(2025, 5, 15), date(2025, 5, 15)),  # the census day itself
        (date(2025, 5, 14), date(2024, 5, 16)),  # data stops before it: a year back
        (date(2025, 9, 30), date(2025, 5, 15)),  # 2025/26 has begun: last summer
    ],
)
def test_scoring_date_is_the_latest_summer_census_in_the_data(
    last_day, expected
) -> None:
    day = scoring_date(last_day)
    assert day == expected
    assert day <= last_day and day.month == 5 and day.weekday() == 3


def _fake_run(tmp: Path, *, champion: bool) -> DemoResult:
    """The files an index page reads, as a scoring run and a training run write them."""
    out = tmp / "demo"
    training, scoring = out / "training", out / "scoring"
    (scoring / "pupils").mkdir(parents=True)
    (training / "model").mkdir(parents=True)
    (out / "data").mkdir()
    pd.DataFrame(
        {"LightGBM (calibrated)": ["0.777 (0.73-0.82)", "0.090 (0.05-0.13)"]},
        index=pd.Index(["ROC-AUC", "precision @ 200"], name="metric"),
    ).to_csv(training / "comparison.csv")
    summary = {"scores": {"expected_cme": {"flagged": 12.5, "watch": 3.1}}}
    (scoring / "summary.json").write_text(json.dumps(summary))
    pd.DataFrame(
        {
            "pupil_id": ["3f9c2e1a"],
            "rank": [1],
            "probability": [0.31],
            "band": ["flagged"],
            "nc_year": ["6"],
            "reason_1": ["missed 34% of sessions this school year (LA median 5%)"],
        }
    ).to_csv(scoring / "risk_list.csv", index=False)
    for name in ("transition_list.csv", "rejects.csv", "pupils/index.html"):
        (scoring / name).write_text("x")
    for name in ("model_card.html", "model_card.md"):
        (out / name).write_text("x")
    (training / "fairness.html").write_text("x")
    return DemoResult(
        out_dir=out,
        data_dir=out / "data",
        training_dir=training,
        scoring_dir=scoring,
        index=out / "index.html",
        model_card_html=out / "model_card.html",
        model_card_md=out / "model_card.md",
        fairness_html=training / "fairness.html",
        pupils_index=scoring / "pupils" / "index.html",
        champion=champion,
        gates="passed" if champion else "FAILED: does not beat logistic",
        model_ref="models:/cmerisk@champion" if champion else str(training / "model"),
        as_of=date(2025, 5, 15),
        tracking_uri="sqlite:///mlflow.db",
        run_id="abc123",
        model_version="1",
        counts={"scored": 1000, "bands": {"flagged": 200, "watch": 40, "low": 760}},
        timings={"generate": 1.0, "total": 2.0},
        notes=["drift: nothing"],
        demo_key=True,
    )


@pytest.mark.parametrize("champion", [True, False])
def test_the_index_says_plainly_whether_the_list_comes_from_the_champion(
    tmp_path, champion
) -> None:
    result = _fake_run(tmp_path, champion=champion)
    html = write_index(result, synth_rows={"pupils": 1234}).read_text()
    assert ("This model is NOT the champion" in html) is not champion
    assert "PUBLIC demo" in html and "protect nothing" in html
    assert "never decides anything by itself" in html
    assert MLFLOW_UI in html
    assert self_contained_problems(html) == []


def test_every_index_link_points_at_a_real_output(tmp_path) -> None:
    result = _fake_run(tmp_path, champion=True)
    index = write_index(result, synth_rows={})
    links = local_links(index)
    assert len(links) == len(result.outputs()) - 1  # every output but the index
    assert all(p.exists() for p in links), [p for p in links if not p.exists()]


def test_the_outputs_table_lists_every_output_and_the_mlflow_run(tmp_path) -> None:
    from rich.console import Console

    result = _fake_run(tmp_path, champion=False)
    console = Console(width=400, record=True)
    console.print(outputs_table(result))
    text = console.export_text()
    for what, path, _ in result.outputs():
        assert what in text and str(path) in text
    assert "abc123" in text


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--years", "3"], 2, "--years"),
        (["--pupils", "100"], 2, "--pupils"),
    ],
)
def test_cli_usage_errors(args, code, message) -> None:
    result = CliRunner().invoke(app, ["demo", *args])
    assert result.exit_code == code
    assert message in result.output


def test_cli_refuses_an_output_folder_that_is_a_file(tmp_path) -> None:
    target = tmp_path / "demo"
    target.write_text("not a folder")
    result = CliRunner().invoke(app, ["demo", "--out", str(target)])
    assert result.exit_code == 1
    assert "not a folder" in result.output


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_cli_demo_end_to_end(tmp_path, monkeypatch) -> None:
    """The whole demo on a small LA: every output written and linked, MLflow in the
    working folder, the champion alias only if the gates passed, pages standalone."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("CMERISK_PSEUDONYM_KEY", raising=False)
    result = CliRunner().invoke(
        app, ["demo", "--out", "demo", "--pupils", "2000", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    out = tmp_path / "demo"
    assert "where everything is" in result.output
    assert MLFLOW_UI in result.output
    for name in (
        "index.html",
        "model_card.html",
        "model_card.md",
        "training/fairness.html",
        "training/model/model.txt",
        "scoring/risk_list.csv",
        "scoring/transition_list.csv",
        "scoring/rejects.csv",
        "scoring/summary.json",
        "scoring/pupils/index.html",
    ):
        assert (out / name).is_file(), name
    assert (tmp_path / "mlflow.db").is_file() and (tmp_path / "mlartifacts").is_dir()
    card = (out / "model_card.html").read_text()
    for title in ("mean |SHAP| by reason group", "(SHAP beeswarm)"):
        assert title in card  # the training run's own SHAP plots, not recomputed
    assert (out / "training/explain/shap_beeswarm.png").is_file()

    summary = json.loads((out / "scoring/summary.json").read_text())
    assert summary["as_of"] == "2025-05-15"  # summer census of 2024/25
    assert summary["capacity"] == 200
    risk = pd.read_csv(out / "scoring/risk_list.csv")
    assert (risk["band"] == "flagged").sum() == min(200, len(risk))

    gates = json.loads((out / "training/run.json").read_text())["gates"]["passed"]
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        aliases = db.execute(
            "SELECT alias FROM registered_model_aliases WHERE name = 'cmerisk'"
        ).fetchall()
    assert (aliases == [("champion",)]) is gates
    index = (out / "index.html").read_text()
    assert ("This model is NOT the champion" in index) is not gates
    assert summary["model"]["reference"].startswith("models:/") is gates

    pages = sorted(out.rglob("*.html"))
    assert len(pages) >= 5
    for page in pages:
        assert self_contained_problems(page.read_text(encoding="utf-8")) == [], page
    broken = [p for p in local_links(out / "index.html") if not p.exists()]
    assert broken == []
    raw_upn = pd.read_parquet(out / "data" / "pupils.parquet")["pupil_id"].str.len()
    assert (raw_upn == 24).all()  # keyed hashes, never 13-character UPNs
