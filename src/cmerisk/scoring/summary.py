"""What a scoring run reports: counts, score distribution, drift, digests, time split.

:class:`ScoreSummary` is returned by :func:`cmerisk.score.score_la` and written
to ``summary.json``. It holds no identifiers: counts, quantiles, PSI values,
digests, timings and warnings only.

Examples
--------
>>> t = StageTimer()
>>> with t("features"):
...     pass
>>> list(t.seconds)
['load_validate', 'features', 'predict', 'reasons', 'write']
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Final, Literal

#: The stages of a run, in the order the time split lists them.
STAGES: Final[tuple[str, ...]] = (
    "load_validate",
    "features",
    "predict",
    "reasons",
    "write",
)

Stage = Literal["load_validate", "features", "predict", "reasons", "write"]


@dataclass
class StageTimer:
    """Wall-clock seconds spent in each stage (stages may be entered many times)."""

    seconds: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(STAGES, 0.0)
    )

    @contextlib.contextmanager
    def __call__(self, stage: Stage) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - start

    def rounded(self) -> dict[str, float]:
        out = {k: round(v, 3) for k, v in self.seconds.items()}
        out["total"] = round(sum(self.seconds.values()), 3)
        return out


@dataclass(frozen=True)
class ScoreSummary:
    """The outcome of one scoring run (also written to ``summary.json``).

    Attributes
    ----------
    out_dir
        Where the outputs are.
    as_of, expires_on
        The date the list describes and the date after which it is stale.
    counts
        ``pupils_in``, ``scored``, ``rejected`` (pupils not scored, each in
        ``rejects.csv``), ``not_on_roll`` (pupils in the data but not on a
        school roll at ``as_of``), ``records_rejected`` and per-band counts.
        ``pupils_in == scored + rejected + not_on_roll`` is checked.
    report
        The full JSON-ready account (score distribution, drift, digests, time
        split, warnings).
    warnings
        Plain sentences a user should read (drift, records after ``as_of`` ...).
    """

    out_dir: Path
    as_of: date
    expires_on: date
    counts: dict[str, Any]
    report: dict[str, Any]
    warnings: tuple[str, ...] = ()

    @property
    def files(self) -> list[Path]:
        return [self.out_dir / name for name in self.report.get("outputs", [])]

    @property
    def timings(self) -> dict[str, float]:
        return dict(self.report.get("timings_seconds", {}))

    def to_dict(self) -> dict[str, Any]:
        return self.report
