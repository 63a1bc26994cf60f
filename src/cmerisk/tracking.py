"""MLflow tracking and the model registry: the only module that imports mlflow.

Every training run is one MLflow run holding what it takes to trust and
reproduce it: the config, git commit, package versions, the dataset's digest
and schema (column names, dtypes, row counts - never rows or ids), params,
metrics with their CI bounds, plots (model plots under ``plots/``, the global
SHAP views under ``explain/``), the feature spec, the split and, once the run
is registered, its model card (:func:`log_files`). The model
is logged as an MLflow pyfunc built with "models from code": a small Python
file (:data:`PYFUNC_SOURCE`) that loads the model bundle folder logged beside
it - no pickled Python objects. Its signature and input example are made from
the training quantiles (:func:`cmerisk.model.reference.synthetic_rows`), not
real rows. Each run registers a version of ``config.tracking.registered_model``
and moves the ``champion`` alias to it ONLY when the champion gates passed;
otherwise the version is tagged with the reason.

Where runs go: ``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///mlflow.db`` in
the working folder, with artifacts in ``mlartifacts/`` beside the database.
MLflow's telemetry is switched off by default (LA networks; set
``MLFLOW_DISABLE_TELEMETRY=false`` to allow it) and its console chatter is
kept to warnings. mlflow is imported inside functions, so :func:`resolve_model`
on a local folder never loads it.

Examples
--------
>>> tracking_uri({"MLFLOW_TRACKING_URI": "sqlite:////srv/la/mlflow.db"})
'sqlite:////srv/la/mlflow.db'
>>> artifact_root("sqlite:////srv/la/mlflow.db")
'file:///srv/la/mlartifacts'
>>> flatten_params({"lightgbm": {"learning_rate": 0.05, "max_depth_candidates": [3]}})
{'lightgbm.learning_rate': '0.05', 'lightgbm.max_depth_candidates': '[3]'}
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from cmerisk.config import TrackingConfig
from cmerisk.errors import ModelError
from cmerisk.model.provenance import package_versions

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
ARTIFACTS_FOLDER = "mlartifacts"
MODEL_ARTIFACT = "model"
BUNDLE_ARTIFACT = "bundle"

#: Environment defaults applied before mlflow is imported (a user's own values win).
MLFLOW_ENV_DEFAULTS = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_PRINT_MODEL_URLS_ON_CREATION": "false",
}

#: The pyfunc model, logged as code ("models from code"): it loads the bundle.
PYFUNC_SOURCE = '''"""cmerisk pyfunc model: loads the bundle logged beside it.

Needs the cmerisk package installed. Input: a table with the model's feature
columns (extra columns are ignored). Output: the calibrated probability of the
outcome and the raw log-odds margin for each row.
"""

import mlflow
import pandas as pd


class CmeriskModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        from cmerisk.model.bundle import load_bundle

        self.bundle = load_bundle(context.artifacts["bundle"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        frame = pd.DataFrame(model_input)
        probability, margin = self.bundle.predict_scores(frame)
        return pd.DataFrame({"probability": probability, "margin": margin})


mlflow.models.set_model(CmeriskModel())
'''


def tracking_uri(environ: Mapping[str, str] | None = None) -> str:
    """``MLFLOW_TRACKING_URI`` when set, else the SQLite store in the working folder."""
    env = os.environ if environ is None else environ
    return env.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///"))


def artifact_root(uri: str) -> str | None:
    """Artifacts folder for new experiments: ``mlartifacts/`` beside a SQLite store.

    For other stores (a tracking server) the server decides (None).
    """
    db = _sqlite_path(uri)
    if db is None:
        return None
    return (db.resolve().parent / ARTIFACTS_FOLDER).as_uri()


def flatten_params(obj: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> ``{"section.key": "value"}`` (lists, small dicts as JSON)."""
    out: dict[str, str] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if (
            isinstance(value, Mapping)
            and value
            and all(not isinstance(v, Mapping) for v in value.values())
            and prefix
        ):
            out[name] = json.dumps(value, sort_keys=True)
        elif isinstance(value, Mapping):
            out.update(flatten_params(value, f"{name}."))
        elif isinstance(value, list | tuple):
            out[name] = json.dumps(list(value))
        else:
            out[name] = str(value)
    return out


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep mlflow's (and its database layer's) chatter and warnings off the console."""
    levels = {}
    for name in ("mlflow", "alembic", "sqlalchemy"):
        logger = logging.getLogger(name)
        levels[name] = logger.level
        logger.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        for module in (r"mlflow(\.|$)", r"sqlalchemy(\.|$)", r"alembic(\.|$)"):
            warnings.filterwarnings("ignore", module=module)
        try:
            yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)


def _mlflow() -> ModuleType:
    for key, value in MLFLOW_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    with _quiet():
        import mlflow
        import mlflow.pyfunc
    return mlflow


@contextlib.contextmanager
def _no_eprint(mlflow: ModuleType) -> Iterator[None]:
    """Silence mlflow's direct prints (e.g. "Successfully registered model")."""
    from mlflow.utils import logging_utils

    logging_utils.disable_logging()
    try:
        yield
    finally:
        logging_utils.enable_logging()


@dataclass(frozen=True)
class RunRecord:
    """Everything one training run logs (built by ``run_experiment``).

    Nothing here may hold pupil rows or ids: params and metrics are summaries,
    JSON/text artifacts are tables of aggregates, images are plots (logged
    under ``plots/``); ``files`` are other binary artifacts by their path in
    the run (e.g. ``explain/shap_beeswarm.png``).
    """

    run_name: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    json_artifacts: dict[str, Any]
    text_artifacts: dict[str, str]
    images: dict[str, bytes]
    bundle_path: Path
    gates_passed: bool
    gates_reason: str
    description: str = ""
    files: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class TrackedRun:
    """Where a run and its registered model version are."""

    tracking_uri: str
    experiment_id: str
    run_id: str
    artifact_uri: str
    model_uri: str
    registered_model: str
    version: str
    champion: bool
    champion_alias: str
    notes: list[str] = field(default_factory=list)

    @property
    def version_uri(self) -> str:
        return f"models:/{self.registered_model}/{self.version}"


def _experiment_id(mlflow: ModuleType, name: str, uri: str) -> str:
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    return str(client.create_experiment(name, artifact_location=artifact_root(uri)))


def _signature_and_example(mlflow: ModuleType, bundle_path: Path) -> tuple[Any, Any]:
    import pandas as pd

    from cmerisk.model.bundle import load_bundle
    from cmerisk.model.reference import synthetic_rows

    bundle = load_bundle(bundle_path)
    example = synthetic_rows(bundle.reference, spec=bundle.spec)
    probability, margin = bundle.predict_scores(example)
    output = pd.DataFrame({"probability": probability, "margin": margin})
    from mlflow.models import infer_signature

    return infer_signature(example, output), example


def _pip_requirements() -> list[str]:
    versions = package_versions()
    wanted = (
        "cmerisk",
        "lightgbm",
        "numpy",
        "pandas",
        "scikit-learn",
        "scipy",
        "pydantic",
        "mlflow",
    )
    return [f"{name}=={versions[name]}" for name in wanted if name in versions]


def _write_json(folder: Path, name: str, obj: Any) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    return path


def log_run(record: RunRecord, *, config: TrackingConfig) -> TrackedRun:
    """Log one training run, its pyfunc model, and register a model version.

    The ``config.champion_alias`` alias moves to the new version only when
    ``record.gates_passed``; otherwise the version is tagged ``champion_gate``
    with ``record.gates_reason``.
    """
    mlflow = _mlflow()
    uri = tracking_uri()
    notes: list[str] = []
    with _quiet():
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        experiment_id = _experiment_id(mlflow, config.experiment, uri)
        client = mlflow.MlflowClient()
        with (
            tempfile.TemporaryDirectory(prefix="cmerisk-run-") as tmp,
            mlflow.start_run(
                experiment_id=experiment_id,
                run_name=record.run_name,
                description=record.description or None,
            ) as run,
        ):
            folder = Path(tmp)
            mlflow.log_params(record.params)
            mlflow.log_metrics(record.metrics)
            mlflow.set_tags(record.tags)
            staged = folder / "artifacts"
            for name, obj in record.json_artifacts.items():
                _write_json(staged, name, obj)
            for name, text in record.text_artifacts.items():
                target = staged / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
            for name, data in record.images.items():
                target = staged / "plots" / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            for name, data in record.files.items():
                target = staged / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            if staged.exists():
                mlflow.log_artifacts(str(staged))

            code = folder / "cmerisk_pyfunc.py"
            code.write_text(PYFUNC_SOURCE, encoding="utf-8")
            bundle_copy = folder / BUNDLE_ARTIFACT
            shutil.copytree(record.bundle_path, bundle_copy)
            signature, example = _signature_and_example(mlflow, bundle_copy)
            info = mlflow.pyfunc.log_model(
                name=MODEL_ARTIFACT,
                python_model=str(code),
                artifacts={BUNDLE_ARTIFACT: str(bundle_copy)},
                signature=signature,
                input_example=example,
                pip_requirements=_pip_requirements(),
            )
            version = _register(
                mlflow, client, config.registered_model, info, run.info.run_id
            )
            champion = False
            if record.gates_passed:
                client.set_registered_model_alias(
                    config.registered_model, config.champion_alias, version
                )
                champion = True
                mlflow.set_tag(
                    "champion", f"yes: {config.champion_alias} -> v{version}"
                )
            else:
                reason = record.gates_reason[:4000]
                client.set_model_version_tag(
                    config.registered_model,
                    version,
                    "champion_gate",
                    f"failed: {reason}",
                )
                mlflow.set_tag("champion", f"no: {reason}")
                notes.append(
                    f"version {version} NOT made {config.champion_alias}: {reason}"
                )
            artifact_uri = run.info.artifact_uri
            run_id = run.info.run_id
    return TrackedRun(
        tracking_uri=uri,
        experiment_id=experiment_id,
        run_id=run_id,
        artifact_uri=str(artifact_uri),
        model_uri=str(info.model_uri),
        registered_model=config.registered_model,
        version=str(version),
        champion=champion,
        champion_alias=config.champion_alias,
        notes=notes,
    )


def log_files(run: TrackedRun, files: Mapping[str, str | Path]) -> None:
    """Add files to a logged run's artifacts: ``{path in the run: local file}``.

    For what can only be made once the run is registered, such as the model
    card, which names the run and the registered version.
    """
    mlflow = _mlflow()
    with _quiet(), tempfile.TemporaryDirectory(prefix="cmerisk-files-") as tmp:
        staged = Path(tmp)
        for name, source in files.items():
            target = staged / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        client = mlflow.MlflowClient(tracking_uri=run.tracking_uri)
        client.log_artifacts(run.run_id, str(staged))


def _register(
    mlflow: ModuleType, client: Any, name: str, info: Any, run_id: str
) -> str:
    from mlflow.exceptions import MlflowException

    with _no_eprint(mlflow):
        try:
            client.create_registered_model(name)
        except MlflowException as e:
            if "RESOURCE_ALREADY_EXISTS" not in str(
                e.error_code
            ) and "ALREADY_EXISTS" not in str(e.error_code):
                raise
        version = client.create_model_version(
            name=name, source=info.model_uri, run_id=run_id, model_id=info.model_id
        )
    return str(version.version)


def _bundle_in_mlflow_model(folder: Path) -> Path:
    """The bundle folder inside a downloaded MLflow pyfunc model folder."""
    import yaml

    mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    try:
        rel = mlmodel["flavors"]["python_function"]["artifacts"][BUNDLE_ARTIFACT][
            "path"
        ]
    except (KeyError, TypeError):
        raise ModelError(
            f"{folder} is an MLflow model but not a cmerisk one "
            f"(no '{BUNDLE_ARTIFACT}' "
            "artifact)"
        ) from None
    return folder / rel


def resolve_model(ref: str | Path, *, dst: str | Path | None = None) -> Path:
    """A local bundle folder for a model reference.

    Parameters
    ----------
    ref
        A bundle folder; a downloaded MLflow model folder; or an MLflow URI such
        as ``models:/cmerisk@champion``, ``models:/cmerisk/3`` or
        ``runs:/<run id>/model`` (downloaded from the tracking store).
    dst
        Where to download MLflow models (default: a new temporary folder).

    Raises
    ------
    ModelError
        Nothing usable at ``ref``.
    """
    text = str(ref)
    if "://" not in text and not text.startswith(("models:/", "runs:/")):
        folder = Path(text)
        if (folder / "model.txt").is_file():
            return folder
        if (folder / "MLmodel").is_file():
            return _bundle_in_mlflow_model(folder)
        raise ModelError(
            f"no model at {folder}: expected a cmerisk bundle folder (with model.txt), "
            "an "
            "MLflow model folder, or a URI such as models:/cmerisk@champion"
        )
    mlflow = _mlflow()
    from mlflow.exceptions import MlflowException

    target = (
        Path(dst)
        if dst is not None
        else Path(tempfile.mkdtemp(prefix="cmerisk-model-"))
    )
    target.mkdir(parents=True, exist_ok=True)
    with _quiet():
        uri = tracking_uri()
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=text, dst_path=str(target)
            )
        except MlflowException as e:
            raise ModelError(
                f"cannot fetch model {text!r} from {uri}: {e.message}"
            ) from None
    return _bundle_in_mlflow_model(Path(local))
