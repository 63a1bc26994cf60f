"""Where a model came from: package versions, git commit, data digest and schema.

A run that cannot be reproduced cannot be trusted; these facts travel in the
model bundle's ``metadata.json`` and in the MLflow run. The digest is a hash of
the frame's values; the schema is column names, dtypes and the row count -
never rows or ids.

Examples
--------
>>> import pandas as pd
>>> a = pd.DataFrame({"id": ["p1", "p2"], "x": [1.0, 2.0]})
>>> frame_digest(a) == frame_digest(a.copy())
True
>>> frame_digest(a) == frame_digest(a.iloc[::-1])
False
>>> frame_schema(a)
{'rows': 2, 'columns': {'id': 'str', 'x': 'float64'}}
>>> major_version("2.4.6")
2
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd

#: Packages whose MAJOR version a saved model depends on: a bundle refuses to
#: load when any of them differs from the installed one.
MODEL_PACKAGES: tuple[str, ...] = ("lightgbm", "numpy", "pandas", "scikit-learn")
#: Packages whose versions are recorded with every run.
RECORDED_PACKAGES: tuple[str, ...] = (
    "cmerisk",
    *MODEL_PACKAGES,
    "scipy",
    "pyarrow",
    "duckdb",
    "mlflow",
    "shap",
    "fairlearn",
    "pydantic",
)


def package_versions(names: tuple[str, ...] = RECORDED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (absent packages are left out)."""
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def major_version(version: str) -> int:
    """The leading number of a version string."""
    head = version.split(".", 1)[0]
    digits = "".join(ch for ch in head if ch.isdigit())
    return int(digits) if digits else 0


def git_commit(path: Path | None = None) -> str | None:
    """The commit checked out at ``path`` (default: this package's source), if any.

    A tree with uncommitted changes gets a ``+dirty`` suffix.
    """
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}+dirty" if dirty else commit


def frame_digest(frame: pd.DataFrame) -> str:
    """SHA-256 of a frame's column names, dtypes and values (row order matters)."""
    h = hashlib.sha256()
    for name, dtype in frame.dtypes.items():
        h.update(f"{name}\x1f{dtype}\x1e".encode())
    hashed = pd.util.hash_pandas_object(frame, index=False, categorize=True)
    h.update(hashed.to_numpy().tobytes())
    return h.hexdigest()


def frame_schema(frame: pd.DataFrame) -> dict[str, Any]:
    """Column names and dtypes plus the row count: the shape of the data, no values."""
    return {
        "rows": len(frame),
        "columns": {str(name): str(dtype) for name, dtype in frame.dtypes.items()},
    }
