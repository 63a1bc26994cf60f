"""The model card, generated from a real (tiny, untracked) training run's folder."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "model"))
sys.path.insert(0, str(Path(__file__).parents[1]))
from toy import make_config, make_frame, make_spec

from _pages import self_contained_problems
from cmerisk.errors import DataError
from cmerisk.pipeline import run_experiment
from cmerisk.reports.model_card import (
    RUN_IMAGES,
    interval_text,
    key_numbers,
    model_card,
    render_html,
    render_markdown,
    write_model_card,
)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame(700, seed=4)


@pytest.fixture(scope="module")
def run_dir(frame, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    run_experiment(
        frame, spec=make_spec(), config=make_config(), tracking=False, out_dir=out
    )
    return out


@pytest.fixture(scope="module")
def written(run_dir, tmp_path_factory) -> tuple[str, str]:
    out = tmp_path_factory.mktemp("card")
    html, md = write_model_card(
        run_dir, out_dir=out, synthetic=True, fairness_page="fairness.html"
    )
    return html.read_text(encoding="utf-8"), md.read_text(encoding="utf-8")


def test_both_pages_cover_every_required_section(written) -> None:
    html, md = written
    for text in (html, md):
        for needle in (
            "Intended use",
            "never decides anything by itself",
            "sanctions",
            "automated decision",
            "Data and time window",
            "Performance on the test year",
            "Calibration",
            "Fairness",
            "Missed-children rate first",
            "Limitations",
            "recorded CME episodes only",
            "Elective home education is a competing outcome",
            "Drift",
            "Small groups",
            "Human review and the right to challenge",
            "Article 35",
            "Article 22",
            "Data (Use and Access) Act 2025",
        ):
            assert needle in text, needle


def test_metrics_are_the_runs_own_numbers_beside_the_baselines(
    run_dir, written
) -> None:
    _, md = written
    comparison = pd.read_csv(run_dir / "comparison.csv", index_col=0)
    assert len(comparison.columns) == 3  # the model and two baselines
    for metric in ("ROC-AUC", "precision @ 20", "Brier score"):
        row = comparison.loc[metric]
        line = next(ln for ln in md.splitlines() if f"| {metric} |" in ln)
        assert all(str(cell) in line for cell in row), (metric, line)


def test_the_primary_capacity_rows_are_highlighted(run_dir) -> None:
    card = model_card(run_dir)
    md = render_markdown(card)
    assert card.primary_capacity == 50  # the toy config's primary capacity
    assert "| **precision @ 50** |" in md
    assert "| **precision @ 20** |" not in md


def test_missed_children_rate_comes_before_false_flags(written) -> None:
    html, md = written
    for text in (html, md):
        start = text.index("## Fairness" if text is md else ">Fairness<")
        fairness = text[start:].lower()
        assert fairness.index("missed-children rate") < fairness.index("false-flag")


def test_suppressed_cells_stay_suppressed(run_dir) -> None:
    published = json.loads((run_dir / "fairness.json").read_text())
    cells = [
        v
        for g in published["groupings"]
        for grp in g["groups"]
        for v in grp["metrics"].values()
    ]
    card = model_card(run_dir)
    assert card.fairness is not None
    assert card.fairness.total_cells == len(cells)
    assert card.fairness.suppressed_cells == sum(v == "c" for v in cells)
    shown = {
        (t["title"], r["label"]): r for t in card.fairness.tables for r in t["rows"]
    }
    for g in published["groupings"]:
        if len(g["columns"]) > 1:
            continue
        for grp in g["groups"]:
            m = grp["metrics"]
            row = shown[(g["title"], grp["label"])]
            assert (row["missed_rate"] == "c") == (m["missed_rate"] == "c")
            assert (row["pupils"] == "c") == (m["pupils"] == "c")


def test_the_calibration_plot_is_embedded_and_linked(run_dir, written) -> None:
    html, md = written
    assert 'src="data:image/png;base64,' in html
    assert "plots/calibration.png" in md
    card = model_card(run_dir)
    assert card.calibration_bins and card.images["Calibration"][:4] == b"\x89PNG"


def test_the_runs_shap_views_are_shown_and_given_images_replace_them(
    run_dir, tmp_path
) -> None:
    shap_titles = [t for t, path in RUN_IMAGES if path.startswith("explain/")]
    card = model_card(run_dir)
    for title, path in RUN_IMAGES:
        assert card.images[title] == (run_dir / path).read_bytes()
    replaced = model_card(run_dir, images={shap_titles[0]: b"\x89PNG other"})
    assert replaced.images[shap_titles[0]] == b"\x89PNG other"
    assert list(replaced.images) == list(card.images)  # replaced, not added
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    shutil.rmtree(copy / "explain")
    assert not set(shap_titles) & set(model_card(copy).images)


def test_the_html_page_is_self_contained(written) -> None:
    assert self_contained_problems(written[0]) == []


def test_no_pupil_id_reaches_the_card(frame, written) -> None:
    html, md = written
    ids = set(frame["pupil_id"].astype(str))
    for text in (html, md):
        assert not any(i in text for i in list(ids)[:2000])


@pytest.mark.parametrize("synthetic", [True, False])
def test_synthetic_data_is_the_first_limitation_only_when_it_is(
    run_dir, synthetic
) -> None:
    card = model_card(run_dir, synthetic=synthetic)
    assert card.limitations[0].startswith("Synthetic data") is synthetic
    assert ("Trained on synthetic data" in render_html(card)) is synthetic


def test_a_model_that_failed_its_gates_says_so(run_dir, tmp_path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    summary = json.loads((copy / "run.json").read_text())
    summary["gates"] = {
        "passed": False,
        "failures": ["the model does not beat logistic on precision_at_50"],
    }
    (copy / "run.json").write_text(json.dumps(summary))
    html = render_html(model_card(copy))
    assert "Champion gates: failed" in html
    assert "the model does not beat logistic on precision_at_50" in html


@pytest.mark.parametrize(
    "missing", ["run.json", "model/metadata.json", "model/spec.json"]
)
def test_a_folder_that_is_not_a_run_is_refused_by_name(
    run_dir, tmp_path, missing
) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / missing).unlink()
    with pytest.raises(DataError, match=missing.replace(".", r"\.")):
        model_card(copy)


def test_a_suppressed_overall_count_is_shown_as_c(run_dir, tmp_path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    published = json.loads((copy / "fairness.json").read_text())
    published["overall"]["positives"] = "c"
    (copy / "fairness.json").write_text(json.dumps(published))
    card = model_card(copy)
    assert card.fairness is not None and card.fairness.positives == "c"
    assert "Of the c test-year children who went missing" in render_markdown(card)


def test_small_outcome_counts_of_a_slice_are_suppressed(run_dir, tmp_path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    summary = json.loads((copy / "run.json").read_text())
    summary["split"]["slices"]["test"]["positives"] = 7
    (copy / "run.json").write_text(json.dumps(summary))
    md = render_markdown(model_card(copy))
    test_line = next(ln for ln in md.splitlines() if ln.startswith("- **Test:**"))
    assert test_line.endswith("rows, c went missing.")
    assert "fewer than 10 (shown as c)" in md
    train_line = next(ln for ln in md.splitlines() if ln.startswith("- **Train:**"))
    assert "c went missing" not in train_line


def test_without_a_fairness_audit_the_card_warns(run_dir, tmp_path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "fairness.json").unlink()
    card = model_card(copy)
    assert card.fairness is None
    assert "No fairness audit was recorded" in render_markdown(card)


def test_key_numbers_pick_the_headline_rows(run_dir) -> None:
    rows = key_numbers(model_card(run_dir))
    assert list(rows.index) == [
        "ROC-AUC",
        "average precision",
        "precision @ 50",
        "recall @ 50",
        "lift @ 50",
    ]


@pytest.mark.parametrize(
    ("cell", "percent", "text"),
    [
        ({"value": 0.5, "ci_low": 0.25, "ci_high": 0.75}, True, "50.0% (25.0%-75.0%)"),
        ({"value": 1.5, "ci_low": 1.1, "ci_high": 2.0}, False, "1.50 (1.10-2.00)"),
        ("c", True, "c"),
        (None, True, "–"),
        ({"value": None}, True, "–"),
        (0.1, True, "10.0%"),
    ],
)
def test_interval_text(cell, percent, text) -> None:
    assert interval_text(cell, percent=percent) == text


def test_a_training_run_writes_its_own_model_card(run_dir) -> None:
    html = (run_dir / "model_card.html").read_text(encoding="utf-8")
    md = (run_dir / "model_card.md").read_text(encoding="utf-8")
    assert "Model card" in html and self_contained_problems(html) == []
    assert "![Calibration](plots/calibration.png)" in md
    assert (run_dir / "plots" / "calibration.png").is_file()
