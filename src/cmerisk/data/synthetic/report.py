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
    """A target, the value achieved, and (for measures resting on few events)
    the 95% sampling interval of that value."""

    target: Target
    achieved: float | None
    interval: tuple[float, float] | None = None

    @property
    def passed(self) -> bool | None:
        """Whether the achieved value is in the band (``None``: information only)."""
        return self.target.passes(self.achieved) if self.target.check else None

    @property
    def within_noise(self) -> bool:
        """A miss whose 95% interval still holds the target: chance, not bias."""
        if self.passed is not False or self.interval is None:
            return False
        return self.interval[0] <= self.target.value <= self.interval[1]


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

    def summary(self) -> str:
        """One line: how many targets were met, and whether the misses are noise."""
        checked = [r for r in self.rows if r.passed is not None]
        met = sum(bool(r.passed) for r in checked)
        text = f"{met} of {len(checked)} targets met"
        noise = [r for r in self.failures() if r.within_noise]
        if noise:
            text += (
                f"; {len(noise)} miss{'es' if len(noise) > 1 else ''} within sampling "
                "error (the target lies inside the 95% interval of few events)"
            )
        return text

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
                    "interval": r.interval,
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
    intervals: dict[str, tuple[float, float]] = {}
    achieved = measure(data_dir, intervals=intervals)
    rows = tuple(
        CalibrationRow(t, achieved.get(name), intervals.get(name))
        for name, t in targets.items()
    )
    return CalibrationReport(data_dir, like, rows)
