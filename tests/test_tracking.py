"""MLflow tracking on a temporary store: what a run logs, no ids anywhere, the alias,
the pyfunc model, and resolving model references.

One SQLite store for the whole module (its first use runs MLflow's migrations).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "model"))
from toy import make_config, make_frame, make_spec

from cmerisk.errors import ModelError
from cmerisk.model.bundle import load_bundle
from cmerisk.pipeline import run_experiment
from cmerisk.tracking import (
    DEFAULT_TRACKING_URI,
    artifact_root,
    resolve_model,
    tracking_uri,
)

pytestmark = [
    pytest.mark.filterwarnings(
        r"ignore::DeprecationWarning:(mlflow|sqlalchemy|alembic)"
    ),
    pytest.mark.filterwarnings(r"ignore::UserWarning:mlflow"),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db")
        mp.chdir(root)
        yield root


@pytest.fixture(scope="module")
def frame():
    return make_frame(600, seed=1)


@pytest.fixture(scope="module")
def runs(store, frame):
    """A run that passes the gates, then one that fails (registered, no alias)."""
    spec = make_spec()
    passing = make_config(
        gates={"must_beat_baselines": False, "max_missed_ratio": None}
    )
    failing = make_config(
        gates={"must_beat_baselines": True, "metric": "average_precision"},
        baselines={"logistic_c": 1.0},
    )
    first = run_experiment(frame, spec=spec, config=passing, tracking=True)
    second = run_experiment(frame, spec=spec, config=failing, tracking=True)
    return first, second


def _client():
    import mlflow

    return mlflow.MlflowClient()


def test_default_store_is_sqlite_in_the_working_folder() -> None:
    assert tracking_uri({}) == DEFAULT_TRACKING_URI == "sqlite:///mlflow.db"
    assert (
        tracking_uri({"MLFLOW_TRACKING_URI": "http://mlflow:5000"})
        == "http://mlflow:5000"
    )
    assert artifact_root("http://mlflow:5000") is None
    assert artifact_root("sqlite:///mlflow.db").endswith("/mlartifacts")


def test_run_logs_config_params_metrics_and_artifacts(runs, store) -> None:
    first, _ = runs
    run = _client().get_run(first.tracked.run_id)
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert params["lightgbm.learning_rate"] == "0.1"
    assert params["chosen.max_depth"] == str(first.trained.chosen.max_depth)
    assert params["split.kind"] == "temporal"
    for model in ("model", "logistic", "points_rule"):
        assert f"test.{model}.precision_at_50" in metrics
        assert f"test.{model}.precision_at_50.ci_low" in metrics
    assert metrics["test.model.roc_auc"] == pytest.approx(
        first.evaluation.estimate("model", "roc_auc")
    )
    for depth in (2, 3):
        assert f"validation.average_precision.max_depth_{depth}" in metrics
        assert f"validation.tree_depth.max_depth_{depth}" in metrics
    assert tags["data_digest"] == first.data_digest and "git_commit" in tags
    assert tags["mlflow.note.content"].startswith("temporal")
    artifacts = {a.path for a in _client().list_artifacts(first.tracked.run_id)}
    assert {
        "config.json",
        "feature_spec.json",
        "data_schema.json",
        "package_versions.json",
        "metrics.csv",
        "comparison.csv",
        "run.json",
        "plots",
        "fairness",
    } <= artifacts
    folder = Path(run.info.artifact_uri.removeprefix("file://"))
    assert folder.is_relative_to(store / "mlartifacts")
    schema = json.loads((folder / "data_schema.json").read_text())
    assert schema["rows"] == 2400 and "pupil_id" in schema["columns"]
    assert (folder / "plots" / "calibration.png").read_bytes()[:4] == b"\x89PNG"


def test_run_logs_the_global_shap_views_under_explain(runs) -> None:
    first, _ = runs
    client = _client()
    logged = {a.path for a in client.list_artifacts(first.tracked.run_id, "explain")}
    expected = {f"explain/{name}" for name in first.explain_plots}
    assert logged == expected
    assert {
        "explain/shap_importance_features.png",
        "explain/shap_importance_groups.png",
        "explain/shap_beeswarm.png",
    } < logged
    assert sum(p.startswith("explain/shap_dependence_") for p in logged) == 3
    folder = Path(
        client.get_run(first.tracked.run_id).info.artifact_uri.removeprefix("file://")
    )
    for name, png in first.explain_plots.items():
        assert (folder / "explain" / name).read_bytes() == png
        assert png[:4] == b"\x89PNG"


def test_the_model_card_is_logged_with_the_run_it_describes(runs) -> None:
    for result in runs:
        run_id = result.tracked.run_id
        client = _client()
        logged = {a.path for a in client.list_artifacts(run_id)}
        assert {"model_card.html", "model_card.md"} <= logged
        folder = Path(client.get_run(run_id).info.artifact_uri.removeprefix("file://"))
        html = (folder / "model_card.html").read_text()
        md = (folder / "model_card.md").read_text()
        for page in (html, md):
            assert run_id in page and result.tracked.version_uri in page
        assert "(SHAP beeswarm)" in html and "data:image/png;base64," in html
        # the Markdown's plot links resolve inside the run's artifacts
        for link in ("plots/calibration.png", "explain/shap_beeswarm.png"):
            assert f"]({link})" in md and (folder / link).is_file()
    first, second = runs
    assert "NOT the" not in _card(first) and "NOT the" in _card(second)


def _card(result) -> str:
    client = _client()
    run = client.get_run(result.tracked.run_id)
    return (
        Path(run.info.artifact_uri.removeprefix("file://")) / "model_card.md"
    ).read_text()


def test_no_pupil_id_reaches_the_store(runs, store, frame) -> None:
    blobs = [p.read_bytes() for p in store.rglob("*") if p.is_file()]
    assert any(p.name == "mlflow.db" for p in store.rglob("*"))
    ids = frame["pupil_id"].astype(str).unique()
    leaked = [i for i in ids if any(i.encode() in blob for blob in blobs)]
    assert leaked == []
    for result in runs:
        run = _client().get_run(result.tracked.run_id)
        values = " ".join([*run.data.params.values(), *run.data.tags.values()])
        assert not any(i in values for i in ids[:200])


def test_alias_only_when_the_gates_pass(runs) -> None:
    first, second = runs
    assert first.gates.passed and first.tracked.champion
    assert not second.gates.passed and not second.tracked.champion
    client = _client()
    champion = client.get_model_version_by_alias("cmerisk", "champion")
    assert str(champion.version) == first.tracked.version
    loser = client.get_model_version("cmerisk", second.tracked.version)
    assert loser.tags["champion_gate"].startswith("failed: beats baselines")
    run = client.get_run(second.tracked.run_id)
    assert run.data.tags["champion"].startswith("no: beats baselines")


def test_resolve_champion_gives_the_same_predictions(runs, store, frame) -> None:
    first, _ = runs
    path = resolve_model("models:/cmerisk@champion", dst=store / "download")
    bundle = load_bundle(path)
    np.testing.assert_array_equal(
        bundle.predict_proba(frame), first.bundle.predict_proba(frame)
    )
    # a local bundle folder and a downloaded MLflow model folder resolve too
    assert resolve_model(path) == path
    assert resolve_model(path.parent.parent) == path


def test_resolve_refuses_what_is_not_a_model(store) -> None:
    with pytest.raises(ModelError, match="no model at"):
        resolve_model(store / "nothing-here")
    with pytest.raises(ModelError, match="cannot fetch model"):
        resolve_model("models:/cmerisk@no_such_alias", dst=store / "d2")


def test_pyfunc_model_from_code_predicts_like_the_bundle(runs, frame) -> None:
    import mlflow

    first, _ = runs
    model = mlflow.pyfunc.load_model(first.tracked.version_uri)
    rows = frame[make_spec().feature_names].head(50)
    predicted = model.predict(rows)
    np.testing.assert_allclose(
        predicted["probability"], first.bundle.predict_proba(rows)
    )
    assert model.metadata.signature.inputs.input_names() == make_spec().feature_names


def test_input_example_is_synthetic(runs, store, frame) -> None:
    first, _ = runs
    example = next(store.rglob("input_example.json"))
    data = json.loads(example.read_text())
    columns, rows = data["columns"], data["data"]
    absence = [row[columns.index("absence")] for row in rows]
    quantiles = first.bundle.reference["features"]["absence"]["quantiles"]
    assert absence == [quantiles[q] for q in ("0.1", "0.25", "0.5", "0.75", "0.9")]
    assert not any(value in set(frame["absence"]) for value in absence[1:4:2])
