"""The model bundle: round trip, and refusal of anything inconsistent."""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from cmerisk.errors import DataError, ModelError
from cmerisk.model import bundle as bundle_module
from cmerisk.model.bundle import (
    BUNDLE_FILES,
    METADATA_FILE,
    SPEC_FILE,
    ModelBundle,
    load_bundle,
    make_bundle,
    save_bundle,
)
from cmerisk.model.calibrate import fit_calibrator
from cmerisk.model.matrix import category_levels, feature_matrix


@pytest.fixture(scope="module")
def bundle(toy_frame: pd.DataFrame, toy_spec, toy_config) -> ModelBundle:
    levels = category_levels(toy_frame, spec=toy_spec)
    X = feature_matrix(toy_frame, spec=toy_spec, categories=levels)
    y = toy_frame["y"].to_numpy()
    params = {
        "objective": "binary",
        "verbose": -1,
        "num_threads": 1,
        "seed": 1,
        "deterministic": True,
        "min_data_in_leaf": 20,
    }
    booster = lgb.train(params, lgb.Dataset(X, y, categorical_feature=["phase"]), 20)
    margin = booster.predict(X, raw_score=True)
    cal = fit_calibrator(margin, y, method="isotonic")
    return make_bundle(
        booster,
        spec=toy_spec,
        config=toy_config,
        calibrator=cal,
        X_train=X,
        metadata={"data_digest": "abc"},
    )


@pytest.fixture
def saved(bundle: ModelBundle, tmp_path: Path) -> Path:
    return save_bundle(bundle, tmp_path / "model")


def test_round_trip_gives_identical_predictions(bundle, saved, toy_frame) -> None:
    again = load_bundle(saved)
    assert sorted(p.name for p in saved.iterdir()) == sorted(BUNDLE_FILES)
    np.testing.assert_array_equal(
        again.predict_margin(toy_frame), bundle.predict_margin(toy_frame)
    )
    np.testing.assert_array_equal(
        again.predict_proba(toy_frame), bundle.predict_proba(toy_frame)
    )
    assert again.spec == bundle.spec and again.config == bundle.config
    assert again.metadata["data_digest"] == "abc"
    assert len(again.metadata["model_version"]) == 12
    assert again.metadata["package_versions"]["lightgbm"] == lgb.__version__
    assert again.categories == {"phase": ["primary", "secondary", "special"]}


def test_predictions_ignore_column_order_and_extra_columns(bundle, toy_frame) -> None:
    shuffled = toy_frame[list(reversed(toy_frame.columns))].assign(extra=1)
    np.testing.assert_array_equal(
        bundle.predict_margin(shuffled), bundle.predict_margin(toy_frame)
    )


def test_unseen_category_scores_as_missing(bundle, toy_frame) -> None:
    rows = toy_frame.head(5)
    unseen = rows.assign(phase="hospital school")
    missing = rows.assign(phase=None)
    np.testing.assert_array_equal(
        bundle.predict_margin(unseen), bundle.predict_margin(missing)
    )


def test_feature_matrix_names_missing_column(bundle, toy_frame) -> None:
    with pytest.raises(ModelError, match="unexplained_run"):
        bundle.feature_matrix(toy_frame.drop(columns=["unexplained_run"]))


def test_feature_matrix_names_non_numeric_value(bundle, toy_frame) -> None:
    bad = toy_frame.head(3).astype({"absence": object})
    bad.loc[bad.index[1], "absence"] = "n/a"
    with pytest.raises(DataError, match=r"'absence'.*'n/a'"):
        bundle.feature_matrix(bad)


def test_save_replaces_an_existing_bundle_atomically(bundle, saved) -> None:
    save_bundle(bundle, saved)
    assert load_bundle(saved).spec == bundle.spec
    leftovers = [p.name for p in saved.parent.iterdir() if p.name != saved.name]
    assert leftovers == []


@pytest.mark.parametrize("name", BUNDLE_FILES)
def test_load_refuses_a_missing_file(saved, name) -> None:
    (saved / name).unlink()
    with pytest.raises(ModelError, match=f"missing {name}"):
        load_bundle(saved)


def test_load_refuses_a_tampered_spec(saved) -> None:
    spec = json.loads((saved / SPEC_FILE).read_text())
    spec["features"][0]["reason"] = "something else"
    (saved / SPEC_FILE).write_text(json.dumps(spec))
    with pytest.raises(ModelError, match=r"spec\.json was changed"):
        load_bundle(saved)


def _rewrite_with_checksum(folder: Path, name: str, text: str) -> None:
    """Tamper AND fix the checksum, so the deeper checks are reached."""
    (folder / name).write_text(text)
    meta = json.loads((folder / METADATA_FILE).read_text())
    meta["files"][name] = bundle_module._sha256(text.encode())
    (folder / METADATA_FILE).write_text(json.dumps(meta))


def test_load_refuses_a_spec_that_does_not_validate(saved) -> None:
    spec = json.loads((saved / SPEC_FILE).read_text())
    spec["features"].append({"name": "sex", "group": "context", "reason": "sex"})
    _rewrite_with_checksum(saved, SPEC_FILE, json.dumps(spec))
    with pytest.raises(ModelError, match=r"(?s)not a valid spec.*protected"):
        load_bundle(saved)


def test_load_refuses_a_spec_whose_features_differ_from_the_model(saved) -> None:
    spec = json.loads((saved / SPEC_FILE).read_text())
    spec["features"] = list(reversed(spec["features"]))
    _rewrite_with_checksum(saved, SPEC_FILE, json.dumps(spec))
    with pytest.raises(ModelError, match="do not match the model"):
        load_bundle(saved)


@pytest.mark.parametrize("package", ["lightgbm", "numpy", "pandas", "scikit-learn"])
def test_load_refuses_a_different_major_version(saved, monkeypatch, package) -> None:
    real = bundle_module.package_versions

    def bumped(names=()):
        versions = real(names)
        major, rest = versions[package].split(".", 1)
        versions[package] = f"{int(major) + 1}.{rest}"
        return versions

    monkeypatch.setattr(bundle_module, "package_versions", bumped)
    with pytest.raises(ModelError, match=f"{package} saved with"):
        load_bundle(saved)


def test_load_accepts_a_different_minor_version(saved, monkeypatch) -> None:
    real = bundle_module.package_versions

    def minor(names=()):
        versions = real(names)
        major, _ = versions["numpy"].split(".", 1)
        versions["numpy"] = f"{major}.999.0"
        return versions

    monkeypatch.setattr(bundle_module, "package_versions", minor)
    assert isinstance(load_bundle(saved), ModelBundle)


def test_load_refuses_a_folder_that_is_not_there(tmp_path) -> None:
    with pytest.raises(ModelError, match="no model bundle"):
        load_bundle(tmp_path / "nothing")


def test_reference_holds_medians_and_psi_bins(bundle, toy_frame) -> None:
    absence = bundle.reference["features"]["absence"]
    assert absence["median"] == pytest.approx(float(toy_frame["absence"].median()))
    assert sum(absence["psi"]["proportions"]) + absence["psi"][
        "missing"
    ] == pytest.approx(1)
    assert bundle.reference["features"]["phase"]["reference"] == "primary"
