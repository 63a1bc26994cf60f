"""The model a scoring run uses: found, loaded, named, and checked against the data.

A bundle folder loads directly; a registry reference goes through
:func:`cmerisk.tracking.resolve_model` (the only place that imports MLflow).
The run then checks once that the LA's tables make every feature the model
needs, and names the model in every output.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from cmerisk.errors import DataError

if TYPE_CHECKING:
    from cmerisk.model.bundle import ModelBundle


def open_model(model: str | Path) -> ModelBundle:
    """Load a bundle from a folder or a registry reference (``models:/...``).

    A bundle folder loads directly; anything else (``models:/cmerisk@champion``,
    ``models:/cmerisk/3``, ``runs:/...``, a downloaded MLflow model) goes through
    :func:`cmerisk.tracking.resolve_model`, into a temporary folder removed once
    the bundle is in memory.
    """
    from cmerisk.model.bundle import MODEL_FILE, load_bundle

    if (Path(model) / MODEL_FILE).is_file():
        return load_bundle(Path(model))
    from cmerisk.tracking import resolve_model  # mlflow: only when needed

    with tempfile.TemporaryDirectory(prefix="cmerisk-model-") as tmp:
        return load_bundle(resolve_model(str(model), dst=tmp))


def model_identity(bundle: ModelBundle, *, ref: str = "") -> tuple[str, str]:
    """(name, version) of a model, as the outputs show them.

    The version is the bundle's recorded version when it has one; for a
    registry reference, the version number it names (``models:/cmerisk/3`` ->
    ``3``) or its alias with the model file's digest (``champion (1a2b3c4d5e6f)``,
    as an alias moves); otherwise ``unregistered (<digest>)``.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> from cmerisk.config import ExperimentConfig
    >>> meta = {"model_name": "cmerisk", "files": {"model.txt": "1a2b3c4d5e6f7a"}}
    >>> b = NS(metadata=meta, config=ExperimentConfig())
    >>> model_identity(b, ref="models:/cmerisk/3")
    ('cmerisk', '3')
    >>> model_identity(b, ref="models:/cmerisk@champion")
    ('cmerisk', 'champion (1a2b3c4d5e6f)')
    >>> model_identity(b, ref="models/cmerisk")
    ('cmerisk', 'unregistered (1a2b3c4d5e6f)')
    """
    meta = bundle.metadata
    name = str(meta.get("model_name") or bundle.config.tracking.registered_model)
    recorded = meta.get("model_version") or meta.get("registered_version")
    if recorded is not None:
        return name, str(recorded)
    digest = str(meta.get("files", {}).get("model.txt", ""))[:12] or "no digest"
    if ref.startswith("models:/"):
        rest = ref[len("models:/") :]
        if "@" in rest:
            return name, f"{rest.split('@', 1)[1]} ({digest})"
        tail = rest.rsplit("/", 1)[-1]
        if "/" in rest and tail.isdigit():
            return name, tail
    return name, f"unregistered ({digest})"


def check_features(
    frame: pd.DataFrame, bundle: ModelBundle, *, tables: list[str]
) -> None:
    """Refuse data that cannot make every feature the model needs, naming them.

    The message lists the missing features with the raw table(s) each is built
    from (:data:`cmerisk.features.FEATURE_SOURCES`) and which of those tables
    the data lacks.
    """
    from cmerisk.features import FEATURE_SOURCES

    absent = [n for n in bundle.spec.feature_names if n not in frame.columns]
    if not absent:
        return
    by_source: dict[tuple[str, ...], list[str]] = {}
    for name in absent:
        by_source.setdefault(tuple(FEATURE_SOURCES.get(name, ())), []).append(name)
    lines = [
        f"  - from {' or '.join(src) or 'an unknown table'}: {', '.join(names)}"
        for src, names in by_source.items()
    ]
    lacking = sorted({t for src in by_source for t in src if t not in tables})
    hint = f"The data has no {', '.join(lacking)} table. " if lacking else ""
    raise DataError(
        f"the data cannot make {len(absent)} feature(s) the model needs:\n"
        + "\n".join(lines)
        + f"\n{hint}Tables present: {', '.join(tables)}. Add the missing table(s), or "
        "score with a model trained on the tables this LA has."
    )
