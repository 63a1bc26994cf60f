"""The model bundle: the one saved form of a trained model that everything else loads.

A bundle is a folder of plain files, no pickle:

=====================  ==========================================================
``model.txt``          LightGBM's text model (trees trimmed to the best iteration)
``calibrator.json``    raw margin -> probability map (:mod:`cmerisk.model.calibrate`)
``spec.json``          the :class:`~cmerisk.spec.DatasetSpec` (features, reasons, ...)
``config.json``        the :class:`~cmerisk.config.ExperimentConfig` it was trained with
``reference.json``     training medians, quantiles and PSI bins per feature
``metadata.json``      name, versions, data digest, git commit, metrics, file checksums
=====================  ==========================================================

:func:`load_bundle` refuses, with a :class:`~cmerisk.errors.ModelError` naming
the problem, a folder with missing files, files changed after saving, a spec
that does not validate or does not match the model, or one saved with a
different major version of lightgbm, numpy, pandas or scikit-learn.

Examples
--------
>>> import numpy as np, pandas as pd, lightgbm as lgb, tempfile
>>> from cmerisk.spec import DatasetSpec, FeatureSpec
>>> from cmerisk.config import ExperimentConfig
>>> from cmerisk.model.calibrate import Calibrator
>>> spec = DatasetSpec(id="id", target="y", features=[
...     FeatureSpec(name="absence", group="attendance", reason="absence")])
>>> rng = np.random.default_rng(0)
>>> X = pd.DataFrame({"absence": rng.random(200)})
>>> booster = lgb.train({"objective": "binary", "verbose": -1, "min_data_in_leaf": 5},
...                     lgb.Dataset(X, (X["absence"] > 0.7).astype(int)), 5)
>>> bundle = make_bundle(booster, spec=spec, config=ExperimentConfig(),
...     calibrator=Calibrator("sigmoid", {"a": 1.0, "b": 0.0}), X_train=X, metadata={})
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = save_bundle(bundle, f"{tmp}/model")
...     again = load_bundle(path)
>>> bool(np.array_equal(again.predict_proba(X), bundle.predict_proba(X)))
True
>>> absence = again.reference["features"]["absence"]
>>> absence["reference"] == float(np.median(X["absence"]))
True
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from pydantic import ValidationError

from cmerisk.config import ExperimentConfig
from cmerisk.errors import ModelError
from cmerisk.model.calibrate import Calibrator
from cmerisk.model.matrix import category_levels, feature_matrix
from cmerisk.model.provenance import MODEL_PACKAGES, major_version, package_versions
from cmerisk.model.reference import build_reference
from cmerisk.spec import DatasetSpec

BUNDLE_VERSION = 1
MODEL_FILE = "model.txt"
CALIBRATOR_FILE = "calibrator.json"
SPEC_FILE = "spec.json"
CONFIG_FILE = "config.json"
REFERENCE_FILE = "reference.json"
METADATA_FILE = "metadata.json"
#: Every file of a bundle; ``metadata.json`` (written last) has the others' checksums.
BUNDLE_FILES: tuple[str, ...] = (
    MODEL_FILE,
    CALIBRATOR_FILE,
    SPEC_FILE,
    CONFIG_FILE,
    REFERENCE_FILE,
    METADATA_FILE,
)


@dataclass(frozen=True)
class ModelBundle:
    """A trained model with everything needed to score and explain it.

    Attributes
    ----------
    booster
        The LightGBM model (log-odds margins; trees up to the best iteration).
    calibrator
        Maps margins to calibrated probabilities.
    spec
        Column roles; ``spec.feature_names`` is the model's input order.
    config
        The experiment config the model was trained with (scoring reads this copy).
    reference
        ``{"features": {name: {"reference", "median", "quantiles", "categories",
        "psi", ...}}}`` from the training rows (:mod:`cmerisk.model.reference`).
    metadata
        Provenance and a metrics summary (free-form JSON).
    """

    booster: lgb.Booster
    calibrator: Calibrator
    spec: DatasetSpec
    config: ExperimentConfig
    reference: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def categories(self) -> dict[str, list[str]]:
        """Training levels of each categorical feature."""
        feats = self.reference["features"]
        return {
            name: list(feats[name]["categories"])
            for name in self.spec.categorical_features
        }

    def feature_matrix(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model's input: spec features in order, categories as in training."""
        return feature_matrix(frame, spec=self.spec, categories=self.categories)

    def predict_margin(self, frame: pd.DataFrame) -> np.ndarray:
        """Raw log-odds scores (before calibration) for each row of ``frame``."""
        return self._margin(self.feature_matrix(frame))

    def _margin(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.booster.predict(X, raw_score=True), dtype="float64")

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of the positive outcome for each row of ``frame``."""
        return self.predict_scores(frame)[0]

    def predict_scores(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated probabilities and raw margins for each row of ``frame``.

        Everything that ranks pupils needs both: the probability, then the
        margin to break the ties calibration makes
        (:func:`cmerisk.model.metrics.rank_order`).
        """
        return self.scores_of_matrix(self.feature_matrix(frame))

    def scores_of_matrix(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`predict_scores` for a matrix already made by :meth:`feature_matrix`."""
        margin = self._margin(X)
        return self.calibrator.transform(margin), margin


def make_bundle(
    booster: lgb.Booster,
    *,
    spec: DatasetSpec,
    config: ExperimentConfig,
    calibrator: Calibrator,
    X_train: pd.DataFrame,
    metadata: Mapping[str, Any],
    input_dtypes: Mapping[str, str] | None = None,
) -> ModelBundle:
    """Assemble a bundle; the reference is computed from the training matrix.

    ``input_dtypes`` (feature -> dtype name as supplied, before the matrix made
    it float) lets synthetic examples keep integer and boolean types.
    """
    reference = build_reference(X_train, spec=spec)
    for name, levels in category_levels(X_train, spec=spec).items():
        reference["features"][name]["categories"] = levels
    for name, dtype in (input_dtypes or {}).items():
        if name in reference["features"]:
            reference["features"][name]["input_dtype"] = str(dtype)
    versions = package_versions()
    meta = {
        "bundle_version": BUNDLE_VERSION,
        "model_name": config.tracking.registered_model,
        # content identity of the trees + calibrator (the registry version is in MLflow)
        "model_version": _sha256(
            booster.model_to_string().encode() + calibrator.to_json().encode()
        )[:12],
        "cmerisk_version": versions.get("cmerisk", "unknown"),
        "package_versions": versions,
        "feature_names": spec.feature_names,
        **dict(metadata),
    }
    return ModelBundle(booster, calibrator, spec, config, reference, meta)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def _jsonable(obj: Any) -> Any:
    """Replace NaN/inf with None so metadata stays strict JSON."""
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    return obj


def save_bundle(bundle: ModelBundle, path: str | Path) -> Path:
    """Write ``bundle`` to the folder ``path`` atomically and return the path.

    Files are written to a temporary folder beside ``path`` which then replaces
    it in one rename, so a reader never sees half a bundle; an existing bundle
    at ``path`` is replaced.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    contents = {
        MODEL_FILE: bundle.booster.model_to_string().encode(),
        CALIBRATOR_FILE: _json_bytes(bundle.calibrator.to_dict()),
        SPEC_FILE: (bundle.spec.to_json() + "\n").encode(),
        CONFIG_FILE: (bundle.config.to_json() + "\n").encode(),
        REFERENCE_FILE: _json_bytes(_jsonable(bundle.reference)),
    }
    metadata = dict(_jsonable(bundle.metadata))
    metadata["bundle_version"] = BUNDLE_VERSION
    metadata["files"] = {name: _sha256(data) for name, data in contents.items()}
    contents[METADATA_FILE] = _json_bytes(metadata)

    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for name, data in contents.items():
            (staging / name).write_bytes(data)
        old = None
        if target.exists():
            old = target.parent / f".{target.name}.old-{os.getpid()}"
            os.replace(target, old)
        os.replace(staging, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _read(folder: Path, name: str) -> bytes:
    return (folder / name).read_bytes()


def _parse_json(folder: Path, name: str) -> Any:
    try:
        return json.loads(_read(folder, name))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelError(
            f"model bundle {folder}: {name} is not valid JSON ({e})"
        ) from None


def check_versions(saved: Mapping[str, str], *, where: str = "model bundle") -> None:
    """Refuse a model saved under different MAJOR versions of the model packages."""
    installed = package_versions(MODEL_PACKAGES)
    problems = []
    for name in MODEL_PACKAGES:
        if name not in saved:
            problems.append(f"{name} (not recorded)")
        elif name in installed and major_version(saved[name]) != major_version(
            installed[name]
        ):
            problems.append(
                f"{name} saved with {saved[name]}, installed {installed[name]}"
            )
    if problems:
        raise ModelError(
            f"{where} was built with other major versions of packages it depends on: "
            f"{'; '.join(problems)}. Retrain the model with the installed versions or "
            "install the recorded ones."
        )


def load_bundle(path: str | Path) -> ModelBundle:
    """Read a bundle saved by :func:`save_bundle`, refusing anything inconsistent.

    Raises
    ------
    ModelError
        Missing folder or files, a file changed since saving, invalid spec,
        config or calibrator, features that differ from the model's, or a
        different major version of lightgbm / numpy / pandas / scikit-learn.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ModelError(
            f"no model bundle at {folder} (expected a folder holding {MODEL_FILE} ...)"
        )
    absent = [name for name in BUNDLE_FILES if not (folder / name).is_file()]
    if absent:
        raise ModelError(
            f"model bundle {folder} is incomplete: missing {', '.join(absent)}"
        )

    metadata = _parse_json(folder, METADATA_FILE)
    if metadata.get("bundle_version") != BUNDLE_VERSION:
        raise ModelError(
            f"model bundle {folder} has bundle_version "
            f"{metadata.get('bundle_version')!r}; "
            f"this cmerisk reads version {BUNDLE_VERSION}"
        )
    check_versions(metadata.get("package_versions", {}), where=f"model bundle {folder}")
    checksums = metadata.get("files", {})
    for name in BUNDLE_FILES[:-1]:
        if checksums.get(name) != _sha256(_read(folder, name)):
            raise ModelError(
                f"model bundle {folder}: {name} was changed after the bundle was saved "
                "(checksum differs from metadata.json); refusing to use it"
            )

    try:
        spec = DatasetSpec.from_json(_read(folder, SPEC_FILE).decode())
    except ValidationError as e:
        raise ModelError(
            f"model bundle {folder}: {SPEC_FILE} is not a valid spec: {e}"
        ) from None
    try:
        config = ExperimentConfig.from_json(_read(folder, CONFIG_FILE).decode())
    except ValidationError as e:
        raise ModelError(
            f"model bundle {folder}: {CONFIG_FILE} is not a valid config: {e}"
        ) from None
    try:
        calibrator = Calibrator.from_dict(_parse_json(folder, CALIBRATOR_FILE))
    except (KeyError, TypeError, ValueError) as e:
        raise ModelError(
            f"model bundle {folder}: {CALIBRATOR_FILE} is not a calibrator: {e}"
        ) from None
    reference = _parse_json(folder, REFERENCE_FILE)
    try:
        booster = lgb.Booster(model_str=_read(folder, MODEL_FILE).decode())
    except lgb.basic.LightGBMError as e:
        raise ModelError(
            f"model bundle {folder}: {MODEL_FILE} is not a LightGBM model: {e}"
        ) from None

    model_features = booster.feature_name()
    if model_features != spec.feature_names:
        raise ModelError(
            f"model bundle {folder}: the spec's features {spec.feature_names[:5]}... "
            "do not "
            f"match the model's {model_features[:5]}... (order matters)"
        )
    ref_features = set(reference.get("features", {}))
    if ref_features != set(spec.feature_names):
        raise ModelError(
            f"model bundle {folder}: {REFERENCE_FILE} describes different features "
            "from the spec"
        )
    return ModelBundle(booster, calibrator, spec, config, reference, metadata)
