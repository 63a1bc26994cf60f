"""Batch scoring for an LA: raw tables in, a capacity-sized risk list with reasons out.

:func:`score_la` is the table of contents of a scoring run:

1. load the model bundle (a folder, or a registry reference such as
   ``models:/cmerisk@champion``); everything after reads the bundle's own
   config and feature spec, never today's ``configs/``;
2. check the tables can be used and split them into chunks of pupils
   (:mod:`cmerisk.scoring.chunks`) so memory stays flat however large the LA;
3. per chunk (:mod:`cmerisk.scoring.prepare`): read, validate, set rejected
   records aside, build point-in-time features at ``as_of``, predict
   calibrated probabilities (:func:`score_batch`) and count drift bins;
4. rank everyone and band them by capacity (:mod:`cmerisk.scoring.bands`,
   DuckDB, out of core);
5. explain the flagged and watch pupils, or everyone, or no one
   (:mod:`cmerisk.scoring.reasons`);
6. write the risk list, transition list, rejects and summary
   (:mod:`cmerisk.scoring.outputs`), each atomically.

Every pupil in the data is accounted for: scored, rejected (in ``rejects.csv``
with the reason) or not on a school roll at ``as_of``; the summary checks the
three add up.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from cmerisk.atomic import Staging
from cmerisk.errors import DataError
from cmerisk.scoring import chunks
from cmerisk.scoring.bands import BANDS, rank_and_band
from cmerisk.scoring.drift import DriftCounter
from cmerisk.scoring.model import check_features, model_identity, open_model
from cmerisk.scoring.outputs import scores_table, write_lists
from cmerisk.scoring.summary import ScoreSummary, StageTimer, Tally, build_report

if TYPE_CHECKING:
    from cmerisk.features.window import Coverage
    from cmerisk.model.bundle import ModelBundle

__all__ = ["ScoreSummary", "predict_matrix", "score_batch", "score_la"]

Explain = Literal["listed", "all", "none"]
#: ``progress(stage, done, total)``: called as chunks and stages complete.
Progress = Callable[[str, int, int], None]


def score_batch(bundle: ModelBundle, features: pd.DataFrame) -> pd.DataFrame:
    """Calibrated probabilities and raw margins for one batch of feature rows.

    A pure function of (model, feature batch): no I/O, no clock, no state, so
    it runs unchanged on any chunk of an LA or inside Spark's ``mapInPandas``
    (ship the bundle folder to the executors, load it once per executor, and
    map each pandas batch of the feature table through this function).

    Parameters
    ----------
    bundle
        The model (booster, calibrator, spec).
    features
        Rows holding the spec's id column and every feature the model uses
        (other columns are ignored).

    Returns
    -------
    DataFrame
        ``[<spec.id>, probability, margin]`` on ``features``' index.

    Examples
    --------
    >>> import numpy as np, pandas as pd, lightgbm as lgb
    >>> from cmerisk.config import ExperimentConfig
    >>> from cmerisk.model.bundle import make_bundle
    >>> from cmerisk.model.calibrate import Calibrator
    >>> from cmerisk.spec import DatasetSpec, FeatureSpec
    >>> spec = DatasetSpec(id="pupil_id", target="cme", features=[
    ...     FeatureSpec(name="absence", group="attendance", reason="absence")])
    >>> X = pd.DataFrame({"absence": np.linspace(0, 1, 200)})
    >>> y = (X["absence"] > 0.7).astype(int)
    >>> params = {"objective": "binary", "verbose": -1, "min_data_in_leaf": 5}
    >>> booster = lgb.train(params, lgb.Dataset(X, y), 5)
    >>> cal = Calibrator("sigmoid", {"a": 1.0, "b": 0.0})
    >>> bundle = make_bundle(booster, spec=spec, config=ExperimentConfig(),
    ...                      calibrator=cal, X_train=X, metadata={})
    >>> batch = pd.DataFrame({"pupil_id": ["a", "b"], "absence": [0.1, 0.9]})
    >>> out = score_batch(bundle, batch)
    >>> list(out.columns), bool(out["probability"][1] > out["probability"][0])
    (['pupil_id', 'probability', 'margin'], True)
    """
    return score_matrix(
        bundle, bundle.feature_matrix(features), ids=features[bundle.spec.id]
    )


def predict_matrix(
    bundle: ModelBundle, X: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated probabilities and raw margins for a matrix made by
    ``bundle.feature_matrix``, as arrays (the chunks' path: no frame, no ids)."""
    return bundle.scores_of_matrix(X)


def score_matrix(
    bundle: ModelBundle, X: pd.DataFrame, *, ids: pd.Series
) -> pd.DataFrame:
    """:func:`score_batch` for a matrix already made by ``bundle.feature_matrix``."""
    probability, margin = predict_matrix(bundle, X)
    return pd.DataFrame(
        {
            bundle.spec.id: ids.to_numpy(),
            "probability": probability,
            "margin": margin,
        },
        index=X.index,
    )


def score_la(
    data: Path,
    *,
    model: str | Path,
    as_of: date,
    capacity: int | None = None,
    out_dir: Path,
    explain: Explain | None = None,
    progress: Progress | None = None,
    chunk_size: int | None = None,
) -> ScoreSummary:
    """Score every pupil on roll in an LA's raw tables and write the lists.

    Parameters
    ----------
    data
        Folder of raw tables (``<table>.parquet|.csv`` or ``<table>/`` parts),
        pupil ids already pseudonymised.
    model
        A model bundle folder or a registry reference (``models:/cmerisk@champion``).
    as_of
        The date the list is for: only records dated before it are used.
    capacity
        How many pupils the team can contact (the ``flagged`` band); default
        the model config's ``scoring.capacity``.
    out_dir
        Output folder (created). ``docs/scoring.md`` describes every file.
    explain
        ``listed``: reasons for the flagged and watch pupils (the model
        config's default); ``all``: for everyone (slower); ``none``.
    progress
        Optional ``progress(stage, done, total)`` callback.
    chunk_size
        Pupils per chunk; default the model config's ``scoring.chunk_size``.

    Returns
    -------
    ScoreSummary
        Counts, warnings and the full report also written to ``summary.json``.

    Raises
    ------
    DataError
        The tables cannot be used (missing, unreadable, missing columns, no
        pupil on roll, or they cannot make a feature the model needs).
    ModelError
        The model cannot be found or loaded.
    """
    timer = StageTimer()
    with timer("load_validate"):
        bundle = open_model(model)
    scoring = bundle.config.scoring
    capacity = int(capacity if capacity is not None else scoring.capacity)
    if capacity <= 0:
        raise DataError(f"capacity must be a positive number of pupils, got {capacity}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    Staging.clean_leftovers(out_dir)
    spill = chunks.new_spill_folder(out_dir.resolve().parent)
    try:
        return _Run(
            bundle=bundle,
            model_ref=str(model),
            as_of=as_of,
            capacity=capacity,
            explain=explain or scoring.explain,
            chunk_size=int(chunk_size or scoring.chunk_size),
            out_dir=out_dir,
            spill=spill,
            timer=timer,
            note=progress or (lambda stage, done, total: None),
        ).run(Path(data))
    finally:
        shutil.rmtree(spill, ignore_errors=True)


class _Run:
    """The state of one scoring run (spill folders, DuckDB, running counts)."""

    def __init__(
        self,
        *,
        bundle: ModelBundle,
        model_ref: str,
        as_of: date,
        capacity: int,
        explain: Explain,
        chunk_size: int,
        out_dir: Path,
        spill: Path,
        timer: StageTimer,
        note: Progress,
    ) -> None:
        self.bundle = bundle
        self.model_ref = model_ref
        self.as_of = as_of
        self.expires_on = as_of + timedelta(days=bundle.config.scoring.valid_days)
        self.capacity = capacity
        self.explain = explain
        self.chunk_size = chunk_size
        self.out_dir = out_dir
        self.spill = spill
        self.timer = timer
        self.note = note
        self.tally = Tally()
        self.split_seconds = 0.0
        self.coverage: Coverage | None = None  # the whole LA's, set by run()
        self.drift = DriftCounter(bundle.reference)
        for sub in ("scores", "features", "rejects", "reasons", "marks"):
            (spill / sub).mkdir()
        # in memory: past its memory limit DuckDB moves table pages to the spill
        # folder, so memory stays bounded without writing every table to a file
        self.con = chunks.connect(spill=spill / "duckdb-tmp")

    def run(self, data: Path) -> ScoreSummary:
        with self.timer("load_validate"):
            inputs = chunks.find_inputs(data)
            readable = chunks.check_inputs(
                inputs, con=self.con, spill=self.spill / "utf8"
            )
            digests = {
                n: chunks.digest_files(t.files) for n, t in sorted(inputs.items())
            }
            self.coverage = chunks.la_coverage(readable, as_of=self.as_of, con=self.con)
            rows = chunks.count_rows(readable["pupils"], con=self.con)
            n_chunks = chunks.bucket_count(rows, chunk_size=self.chunk_size)
            self.note("split", 0, 1)
            started = time.perf_counter()
            if n_chunks > 1:
                folders = chunks.split_by_pupil(
                    readable,
                    buckets=n_chunks,
                    spill=self.spill / "chunks",
                    con=self.con,
                )
            else:
                folders = [data]
            self.split_seconds = time.perf_counter() - started
            self.note("split", 1, 1)
        for k, folder in enumerate(folders):
            self.note("score", k, len(folders))
            self._chunk(k, folder, tables=sorted(inputs))
            if folder != data:
                shutil.rmtree(folder, ignore_errors=True)
        self.note("score", len(folders), len(folders))
        if self.tally.scored == 0:
            raise DataError(
                f"no pupil is on a school roll at {self.as_of.isoformat()} in {data}: "
                "check --as-of against the census dates in the data"
            )
        bands = self._rank()
        with self.timer("reasons"):
            from cmerisk.scoring.reasons import explain_listed

            reasons = explain_listed(
                self.con,
                self.bundle,
                features_dir=self.spill / "features",
                reasons_dir=self.spill / "reasons",
                pages_dir=self.spill / "pupils",
                explain=self.explain,
                n_chunks=len(folders),
                note=self.note,
                pages=self._page_info(),
            )
        with Staging() as staged:
            with self.timer("write"):
                self._write_lists(reasons, staged)
                name, version = model_identity(self.bundle, ref=self.model_ref)
                report = build_report(
                    self.con,
                    bundle=self.bundle,
                    model=(self.model_ref, name, version),
                    as_of=self.as_of,
                    expires_on=self.expires_on,
                    capacity=self.capacity,
                    explain=self.explain,
                    tally=self.tally,
                    drift=self.drift,
                    bands=bands,
                    digests=digests,
                    chunking={
                        "count": len(folders),
                        "chunk_size": self.chunk_size,
                        "split_seconds": round(self.split_seconds, 3),
                    },
                    timer=self.timer,
                )
                pages = self.spill / "pupils" if self.explain != "none" else None
                staged.folder(self.out_dir / "pupils", pages)
            report["timings_seconds"] = self.timer.rounded()
            # the first days the records and the attendance cover: features whose
            # window reaches before them are missing (docs/features.md)
            report["coverage"] = self.coverage.as_dict() if self.coverage else None
            text = json.dumps(report, indent=2, allow_nan=False) + "\n"
            staged.path(self.out_dir / "summary.json").write_text(
                text, encoding="utf-8"
            )
            staged.commit()
        self.con.close()
        return ScoreSummary(
            out_dir=self.out_dir,
            as_of=self.as_of,
            expires_on=self.expires_on,
            counts=report["counts"],
            report=report,
            warnings=tuple(report["warnings"]),
        )

    def _page_info(self) -> dict[str, Any]:
        name, version = model_identity(self.bundle, ref=self.model_ref)
        end = self.as_of + timedelta(days=self.bundle.config.dataset.horizon_days)
        return {
            "model": f"{name} version {version}",
            "as_of": self.as_of,
            "valid_until": self.expires_on,
            "horizon": f"by {end.day} {end:%B %Y}",
        }

    def _chunk(self, k: int, folder: Path, *, tables: list[str]) -> None:
        from cmerisk.scoring.prepare import prepare_chunk

        id_col = self.bundle.spec.id
        work_dir = self.spill / "marks" / f"{k:05d}"
        chunk = prepare_chunk(
            folder,
            as_of=self.as_of,
            work_dir=work_dir,
            timer=self.timer,
            coverage=self.coverage,
        )
        shutil.rmtree(work_dir, ignore_errors=True)  # rewritten marks: used up
        features = chunk.features
        if k == 0:
            check_features(features, self.bundle, tables=tables)
        with self.timer("predict"):
            X = self.bundle.feature_matrix(features)
            probability, margin = predict_matrix(self.bundle, X)
            self.drift.add(X, frame=features)
        name = f"chunk-{k:05d}.parquet"
        with self.timer("write"):
            pq.write_table(
                scores_table(
                    features, probability, margin=margin, id_col=id_col, chunk=k
                ),
                self.spill / "scores" / name,
                compression="none",
            )
            if len(chunk.rejects):
                chunk.rejects.to_parquet(self.spill / "rejects" / name)
        if self.explain != "none" and len(features):
            with self.timer("reasons"):  # kept only to explain the listed pupils
                features.to_parquet(self.spill / "features" / name, compression="lz4")
        scored = set(features[id_col].astype(str))
        if len(scored) != len(features):
            raise AssertionError(f"chunk {k}: the feature table repeats a pupil")
        rejects = chunk.rejects
        self.tally.add_chunk(
            ids_in=chunk.ids_in,
            scored=scored,
            rejected=set(rejects["pupil_id"].dropna().astype(str)),
            records_rejected=int(rejects["records"].fillna(1).sum())
            if len(rejects)
            else 0,
        )
        for f in chunk.warnings:
            key = (f.table, f.column, f.rule)
            self.tally.warnings[key] = self.tally.warnings.get(key, 0) + max(f.count, 1)
        self.tally.add_counts(self.tally.quality, chunk.quality)
        self.tally.add_counts(self.tally.left_out, chunk.left_out)

    def _rank(self) -> dict[str, int]:
        scoring = self.bundle.config.scoring
        with self.timer("predict"):
            scores = (self.spill / "scores" / "*.parquet").as_posix()
            rank_and_band(
                self.con.sql(f"SELECT * FROM read_parquet('{scores}')"),
                capacity=self.capacity,
                watch_capacity=scoring.watch_capacity,
                watch_min_probability=scoring.watch_min_probability,
            ).create("ranked")
            found = dict(
                self.con.execute(
                    "SELECT band, count(*) FROM ranked GROUP BY band"
                ).fetchall()
            )
        return {b: int(found.get(b, 0)) for b in BANDS}

    def _write_lists(self, reasons: str | None, staged: Staging) -> None:
        name, version = model_identity(self.bundle, ref=self.model_ref)
        write_lists(
            self.con,
            staged=staged,
            out_dir=self.out_dir,
            reasons=reasons,
            rejects_dir=self.spill / "rejects",
            model_name=name,
            model_version=version,
            as_of=self.as_of,
            expires_on=self.expires_on,
        )
