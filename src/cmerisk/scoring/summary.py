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


@dataclass
class Tally:
    """Running account of pupils and records over the chunks of a run.

    Every pupil id in the data (in ``pupils`` or ``census``, or only in a
    rejected record) is counted once, in exactly one of: ``scored``,
    ``rejected`` (listed in ``rejects.csv``, not scored) or ``not_on_roll``
    (not on a school roll at ``as_of`` under the cohort rules: left, deleted,
    not of compulsory school age...).
    """

    pupils_in: int = 0
    scored: int = 0
    rejected: int = 0
    not_on_roll: int = 0
    records_rejected: int = 0
    warnings: dict[tuple[str, str | None, str], int] = field(default_factory=dict)
    quality: dict[str, int] = field(default_factory=dict)
    left_out: dict[str, int] = field(default_factory=dict)

    def add_chunk(
        self,
        *,
        ids_in: set[str],
        scored: set[str],
        rejected: set[str],
        records_rejected: int,
    ) -> None:
        """Account for one chunk; raises if a pupil would be lost or counted twice."""
        if not scored <= ids_in:
            raise AssertionError("a scored pupil is not among the pupils read")
        rejected = rejected - scored
        everyone = ids_in | rejected
        self.pupils_in += len(everyone)
        self.scored += len(scored)
        self.rejected += len(rejected)
        self.not_on_roll += len(everyone - scored - rejected)
        self.records_rejected += records_rejected

    @staticmethod
    def add_counts(target: dict[str, int], counts: dict[str, int]) -> None:
        """Add ``counts`` into ``target`` key by key."""
        for key, n in counts.items():
            target[key] = target.get(key, 0) + int(n)

    def counts(self, bands: dict[str, int]) -> dict[str, Any]:
        out = {
            "pupils_in": self.pupils_in,
            "scored": self.scored,
            "rejected": self.rejected,
            "not_on_roll": self.not_on_roll,
            "records_rejected": self.records_rejected,
            "bands": bands,
        }
        if self.pupils_in != self.scored + self.rejected + self.not_on_roll:
            raise AssertionError(f"pupils unaccounted for: {out}")
        if sum(bands.values()) != self.scored:
            raise AssertionError(f"bands do not add up to the pupils scored: {out}")
        return out
