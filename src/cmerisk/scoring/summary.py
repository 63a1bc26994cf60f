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
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import duckdb

from cmerisk.scoring.drift import (
    LESS_MISSING,
    MORE_MISSING,
    VALUES,
    DriftCounter,
)

if TYPE_CHECKING:
    import pandas as pd

    from cmerisk.model.bundle import ModelBundle

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


QUANTILES: Final[tuple[float, ...]] = (
    0.01,
    0.05,
    0.1,
    0.25,
    0.5,
    0.75,
    0.9,
    0.95,
    0.99,
)


def score_quantiles(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """Quantiles, min, max and mean of the probabilities in the ``ranked`` table."""
    exprs = ", ".join(f"quantile_cont(probability, {q})" for q in QUANTILES)
    row = con.execute(
        f"SELECT {exprs}, min(probability), max(probability), avg(probability) "
        "FROM ranked"
    ).fetchall()[0]
    names = [f"p{round(q * 100):02d}" for q in QUANTILES] + ["min", "max", "mean"]
    return {n: round(float(v), 6) for n, v in zip(names, row, strict=True)}


def _cmerisk_version() -> str:
    try:
        return version("cmerisk")
    except PackageNotFoundError:  # pragma: no cover - a source tree without metadata
        return "unknown"


def _rounded(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 6)


def drift_warnings(psi: pd.DataFrame, *, warning: float) -> list[str]:
    """Sentences for the drifted features of :meth:`DriftCounter.table`, by cause.

    Values that moved, and a feature missing for more pupils than in training,
    each get a warning to check the data; features that were missing more
    often in training (its years' data reached back less far) get one warning
    together, advising a retrain.
    """
    out = []
    for r in psi[psi["cause"] == VALUES].itertuples():
        out.append(
            f"drift: {r.feature} has PSI {r.psi:.2f} against the training data "
            f"(warning above {warning}); check the data before relying on the list"
        )
    for r in psi[psi["cause"] == MORE_MISSING].itertuples():
        out.append(
            f"drift: {r.feature} is missing for {r.missing_now:.0%} of pupils against "
            f"{r.missing_then:.0%} of training rows (PSI {r.psi:.2f}); check that the "
            "extract holds it before relying on the list"
        )
    fewer = psi[psi["cause"] == LESS_MISSING]
    if len(fewer):
        listed = ", ".join(
            f"{r.feature} ({r.missing_then:.0%} then, {r.missing_now:.0%} now)"
            for r in fewer.itertuples()
        )
        out.append(
            f"drift: {len(fewer)} feature(s) were missing far more often in the "
            f"training rows than now (PSI above {warning}; their known values did "
            f"not move): {listed}. Usually the training years' data did not reach "
            "back as far as their windows, so the model learned them from fewer "
            "pupils; retrain when more of the training years are covered"
        )
    return out


def build_report(
    con: duckdb.DuckDBPyConnection,
    *,
    bundle: ModelBundle,
    model: tuple[str, str, str],
    as_of: date,
    expires_on: date,
    capacity: int,
    explain: str,
    tally: Tally,
    drift: DriftCounter,
    bands: dict[str, int],
    digests: dict[str, str],
    chunking: dict[str, Any],
    timer: StageTimer,
) -> dict[str, Any]:
    """The JSON account of a run (``summary.json``); no identifiers in it.

    ``model`` is (reference, name, version); ``con`` holds the ``ranked`` table.
    Raises ``AssertionError`` when the pupils do not add up (a bug, never data).
    """
    from cmerisk.data.findings import RULES
    from cmerisk.scoring.chunks import combine_digests
    from cmerisk.scoring.outputs import output_names

    scoring = bundle.config.scoring
    reference, name, model_version = model
    counts = tally.counts(bands)
    psi = drift.table(warning=scoring.psi_warning)
    warnings = drift_warnings(psi, warning=scoring.psi_warning)
    untrained = psi.loc[~psi["trained"], "feature"].tolist()
    if untrained:
        warnings.append(
            f"{len(untrained)} feature(s) were missing in every training row (the "
            f"training data did not reach back far enough): {', '.join(untrained)}. "
            "The model does not use them, so their values now cannot raise or lower "
            "a score; retrain on years whose data covers them"
        )
    for (table, column, rule), n in tally.warnings.items():
        where = table if column is None else f"{table}.{column}"
        warnings.append(f"{where}: {RULES[rule].words} ({n} record(s))")
    if bands["flagged"] < capacity:
        warnings.append(
            f"only {bands['flagged']} pupils scored, fewer than the capacity {capacity}"
        )
    expected = con.execute(
        "SELECT band, sum(probability) FROM ranked "
        "WHERE band IN ('flagged', 'watch') GROUP BY band"
    ).fetchall()
    return {
        "cmerisk_version": _cmerisk_version(),
        "as_of": as_of.isoformat(),
        "expires_on": expires_on.isoformat(),
        "capacity": capacity,
        "watch_capacity": scoring.watch_capacity,
        "watch_min_probability": scoring.watch_min_probability,
        "explain": explain,
        "counts": counts,
        "cohort": dict(tally.left_out),
        "scores": {
            "quantiles": score_quantiles(con),
            "bands": bands,
            "expected_cme": {b: round(float(v), 2) for b, v in expected},
        },
        "drift": {
            "psi_warning": scoring.psi_warning,
            "features": [
                {
                    "feature": r.feature,
                    "psi": None if math.isnan(r.psi) else round(float(r.psi), 6),
                    "pupils": int(r.pupils),
                    "drifted": bool(r.drifted),
                    "trained": bool(r.trained),
                    "cause": r.cause,
                    "value_psi": _rounded(r.value_psi),
                    "missing_in_training": _rounded(r.missing_then),
                    "missing_now": _rounded(r.missing_now),
                }
                for r in psi.itertuples()
            ],
            "drifted": psi.loc[psi["drifted"], "feature"].tolist(),
            "not_in_training": untrained,
        },
        "model": {
            "reference": reference,
            "name": name,
            "version": model_version,
            "files": bundle.metadata.get("files", {}),
            "trained_on_data": bundle.metadata.get("data_digest"),
        },
        "data": {"tables": digests, "digest": combine_digests(digests)},
        "data_quality": dict(tally.quality),
        "chunks": chunking,
        "timings_seconds": timer.rounded(),
        "warnings": warnings,
        "outputs": [*output_names(), *(["pupils/"] if explain != "none" else [])],
    }
