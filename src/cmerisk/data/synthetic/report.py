"""Target vs achieved: the calibration report of an LA folder.

:func:`calibration_report` pairs every :class:`~.targets.Target` with the
value :func:`~.measures.measure` finds in the folder (see that module for how
each is measured) and says whether it lies in the target's band.

Examples
--------
>>> from cmerisk.data.synthetic.targets import national_targets
>>> row = CalibrationRow(national_targets()["cme_ratio_cin"], 2.5)
>>> row.passed, CalibrationRow(row.target, None).passed
(True, False)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cmerisk.data.synthetic.measures import measure
from cmerisk.data.synthetic.targets import Target, targets_for


@dataclass(frozen=True)
class CalibrationRow:
    target: Target
    achieved: float | None

    @property
    def passed(self) -> bool | None:
        """Whether the achieved value is in the band (``None``: information only)."""
        return self.target.passes(self.achieved) if self.target.check else None


@dataclass(frozen=True)
class CalibrationReport:
    """Target vs achieved, one row per target."""

    data_dir: Path
    like: str | None
    rows: tuple[CalibrationRow, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed is not False for r in self.rows)

    def failures(self) -> list[CalibrationRow]:
        return [r for r in self.rows if r.passed is False]

    def achieved(self, name: str) -> float | None:
        return next(r.achieved for r in self.rows if r.target.name == name)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "name": r.target.name,
                    "label": r.target.label,
                    "target": r.target.value,
                    "low": r.target.low,
                    "high": r.target.high,
                    "achieved": r.achieved,
                    "passed": r.passed,
                    "unit": r.target.unit,
                    "source": r.target.source,
                }
                for r in self.rows
            ]
        )


def calibration_report(data_dir: Path, *, like: str | None = None) -> CalibrationReport:
    """Target vs achieved for the LA in ``data_dir`` (national targets, or ``like``'s).

    Without ``like``, a folder written with ``--like`` is compared with that
    LA's targets (read from its ``manifest.json``).

    Raises
    ------
    DataError
        When a table the measures need is missing.
    ConfigError
        When ``like`` is not an LA in the reference data.
    """
    data_dir = Path(data_dir)
    manifest = data_dir / "manifest.json"
    if like is None and manifest.is_file():
        like = json.loads(manifest.read_text("utf-8")).get("arguments", {}).get("like")
    targets = targets_for(like=like)
    achieved = measure(data_dir)
    rows = tuple(CalibrationRow(t, achieved.get(name)) for name, t in targets.items())
    return CalibrationReport(data_dir, like, rows)
