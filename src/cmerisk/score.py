"""Batch scoring for an LA: raw tables in, a capacity-sized risk list with reasons out.

:func:`score_la` is the table of contents of a scoring run:

1. load the model bundle (a folder, or a registry reference such as
   ``models:/cmerisk@champion``); everything after reads the bundle's own config
   and feature spec, never today's ``configs/``;
2. split the raw tables into chunks of pupils (:mod:`cmerisk.scoring.chunks`)
   so memory stays flat however large the LA;
3. per chunk: read, validate, set aside rejected records, build point-in-time
   features at ``as_of``, predict calibrated probabilities
   (:func:`score_batch`), count drift bins;
4. rank everyone (DuckDB, out of core) and band them by capacity;
5. explain the flagged and watch pupils (or everyone, or no one);
6. write the risk list, transition list, rejects, summary and reviewer pages,
   each atomically.

Every pupil in the data is accounted for: scored, rejected (and listed in
``rejects.csv`` with the reason), or not on a school roll at ``as_of``.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import tempfile
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cmerisk.errors import DataError
from cmerisk.scoring import chunks
from cmerisk.scoring.atomic import replace_folder, write_json
from cmerisk.scoring.bands import rank_and_band
from cmerisk.scoring.drift import DriftCounter
from cmerisk.scoring.outputs import (
    RISK_LIST_COLUMNS,
    copy_atomic,
    rejects_query,
    risk_list_query,
    transition_query,
)
from cmerisk.scoring.summary import ScoreSummary, StageTimer

if TYPE_CHECKING:
    from cmerisk.model.bundle import ModelBundle

Explain = Literal["listed", "all", "none"]
#: ``progress(stage, done, total)``: called as chunks and stages complete.
Progress = Callable[[str, int, int], None]

#: Columns carried from the feature frame into the outputs.
CARRIED = ("school_urn", "school_phase", "nc_year", "secondary_offer_urn")

_SCORE_SCHEMA = pa.schema(
    [
        ("pupil_id", pa.string()),
        ("school_urn", pa.string()),
        ("school_phase", pa.string()),
        ("nc_year", pa.string()),
        ("secondary_offer_urn", pa.string()),
        ("probability", pa.float64()),
        ("margin", pa.float64()),
        ("chunk", pa.int32()),
    ]
)


def score_batch(bundle: ModelBundle, features: pd.DataFrame) -> pd.DataFrame:
    """Calibrated probabilities and raw margins for one batch of feature rows.

    A pure function of (model, feature batch): no I/O, no clock, no state, so
    it runs unchanged inside Spark's ``mapInPandas`` (broadcast the bundle
    folder, load it once per executor, and map each pandas batch of the
    feature table through this function) or on any chunk of an LA.

    Parameters
    ----------
    bundle
        The model (booster, calibrator, spec).
    features
        Rows holding at least the id column and every feature the model uses
        (extra columns are ignored).

    Returns
    -------
    DataFrame
        ``[<spec.id>, probability, margin]`` with ``features``' index.

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
    >>> booster = lgb.train({"objective": "binary", "verbose": -1, "min_data_in_leaf": 5},
    ...                     lgb.Dataset(X, (X["absence"] > 0.7).astype(int)), 5)
    >>> bundle = make_bundle(booster, spec=spec, config=ExperimentConfig(),
    ...     calibrator=Calibrator("sigmoid", {"a": 1.0, "b": 0.0}), X_train=X, metadata={})
    >>> out = score_batch(bundle, pd.DataFrame({"pupil_id": ["a", "b"], "absence": [0.1, 0.9]}))
    >>> list(out.columns), bool(out["probability"].iloc[1] > out["probability"].iloc[0])
    (['pupil_id', 'probability', 'margin'], True)
    """
    margin = bundle.predict_margin(features)
    probability = bundle.calibrator.transform(margin)
    id_col = bundle.spec.id
    return pd.DataFrame(
        {
            id_col: features[id_col].to_numpy(),
            "probability": probability,
            "margin": margin,
        },
        index=features.index,
    )


# --- helpers -----------------------------------------------------------------


def open_model(model: str | Path) -> tuple[ModelBundle, str]:
    """Load a bundle from a folder or a registry reference; return it and where from."""
    from cmerisk.model.bundle import load_bundle

    ref = str(model)
    if ref.startswith("models:/") or ref.startswith("runs:/"):
        from cmerisk.tracking import resolve_model

        path = resolve_model(ref)
    else:
        path = Path(model)
    return load_bundle(path), ref


def model_identity(bundle: ModelBundle) -> tuple[str, str]:
    """(name, version) of a bundle for the outputs."""
    meta = bundle.metadata
    name = str(meta.get("model_name") or bundle.config.tracking.registered_model)
    version = meta.get("model_version") or meta.get("version")
    if version is None:
        digest = str(
            meta.get("data_digest") or meta.get("files", {}).get("model.txt", "")
        )
        version = f"unregistered-{digest[:12]}" if digest else "unregistered"
    return name, str(version)


def _feature_sources(spec_names: list[str]) -> dict[str, list[str]]:
    """Which raw tables each feature is built from (empty when unknown)."""
    try:
        from cmerisk.features import FEATURE_SOURCES  # type: ignore[attr-defined]
    except ImportError:
        return {}
    return {n: list(FEATURE_SOURCES.get(n, ())) for n in spec_names}


def check_features(
    frame: pd.DataFrame, bundle: ModelBundle, *, tables: list[str]
) -> None:
    """Refuse data that cannot make every feature the model needs, naming them."""
    needed = bundle.spec.feature_names
    absent = [n for n in needed if n not in frame.columns]
    if not absent:
        return
    sources = _feature_sources(absent)
    lines = []
    for name in absent:
        src = sources.get(name)
        lines.append(f"  - {name} (from {', '.join(src)})" if src else f"  - {name}")
    missing_tables = sorted(
        {t for n in absent for t in sources.get(n, []) if t not in tables}
    )
    hint = (
        f"The data has no {', '.join(missing_tables)} table(s). "
        if missing_tables
        else ""
    )
    raise DataError(
        f"the data cannot make {len(absent)} feature(s) the model needs:\n"
        + "\n".join(lines)
        + f"\n{hint}Tables present: {', '.join(tables)}. Score with a model trained "
        "on the tables this LA has, or add the missing tables."
    )


def _text(values: pd.Series) -> pa.Array:
    s = values.astype("string")
    return pa.array(s.to_numpy(dtype=object, na_value=None), type=pa.string())


def _scores_table(
    frame: pd.DataFrame, scores: pd.DataFrame, *, id_col: str, chunk: int
) -> pa.Table:
    cols: dict[str, Any] = {"pupil_id": _text(frame[id_col])}
    for c in CARRIED:
        cols[c] = (
            _text(frame[c]) if c in frame.columns else pa.nulls(len(frame), pa.string())
        )
    cols["probability"] = pa.array(scores["probability"].to_numpy(dtype="float64"))
    cols["margin"] = pa.array(scores["margin"].to_numpy(dtype="float64"))
    cols["chunk"] = pa.array(np.full(len(frame), chunk, dtype=np.int32))
    return pa.table(cols, schema=_SCORE_SCHEMA)


def _rejects_frame(report: Any, *, chunk: int) -> pd.DataFrame:
    """Validation rejects in the rejects file's columns."""
    r = report.rejects()
    out = pd.DataFrame(
        {
            "pupil_id": r["pupil_id"].astype("string"),
            "table": r["table"].astype("string"),
            "row": pd.array(r["row"], dtype="Int64"),
            "column": r["column"].astype("string"),
            "rule": r["rule"].astype("string"),
            "detail": r["detail"].astype("string"),
            "records": pd.array(
                r["rows"] if "rows" in r else np.ones(len(r)), dtype="Int64"
            ),
        }
    )
    out["chunk"] = np.int32(chunk)
    return out


def _pupil_ids(tables: Any) -> set[str]:
    """Distinct pupil ids in a chunk's ``pupils`` and ``census`` tables (as read)."""
    ids: set[str] = set()
    for name in ("pupils", "census"):
        frame = tables.get_frame(name)
        if frame is not None and "pupil_id" in frame.columns:
            ids.update(frame["pupil_id"].dropna().astype(str).unique().tolist())
    return ids


# --- the run -------------------------------------------------------------------


@dataclasses.dataclass
class _Tally:
    """Running account of pupils and records over the chunks."""

    pupils_in: int = 0
    scored: int = 0
    rejected: int = 0
    not_on_roll: int = 0
    records_rejected: int = 0
    warnings: dict[str, int] = dataclasses.field(default_factory=dict)
    quality: dict[str, int] = dataclasses.field(default_factory=dict)


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
        Output folder (created); see ``docs/scoring.md`` for every file.
    explain
        ``listed`` (flagged and watch pupils; the default from the model's
        config), ``all`` (everyone: slower) or ``none``.
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
    note = progress or (lambda stage, done, total: None)
    with timer("load_validate"):
        bundle, model_ref = open_model(model)
    scoring = bundle.config.scoring
    capacity = int(capacity if capacity is not None else scoring.capacity)
    if capacity <= 0:
        raise DataError(f"capacity must be a positive number of pupils, got {capacity}")
    explain = explain or scoring.explain
    chunk_size = int(chunk_size or scoring.chunk_size)
    expires_on = as_of + timedelta(days=scoring.valid_days)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spill = Path(
        tempfile.mkdtemp(prefix=".cmerisk-score-", dir=out_dir.resolve().parent)
    )
    try:
        return _run(
            Path(data),
            bundle=bundle,
            model_ref=model_ref,
            as_of=as_of,
            expires_on=expires_on,
            capacity=capacity,
            explain=explain,
            out_dir=out_dir,
            spill=spill,
            chunk_size=chunk_size,
            timer=timer,
            note=note,
        )
    finally:
        shutil.rmtree(spill, ignore_errors=True)


def _run(
    data: Path,
    *,
    bundle: ModelBundle,
    model_ref: str,
    as_of: date,
    expires_on: date,
    capacity: int,
    explain: Explain,
    out_dir: Path,
    spill: Path,
    chunk_size: int,
    timer: StageTimer,
    note: Progress,
) -> ScoreSummary:
    from cmerisk.data.load import read_tables
    from cmerisk.data.validate import drop_rejected, validate_tables
    from cmerisk.features import build_features

    scoring = bundle.config.scoring
    id_col = bundle.spec.id
    con = chunks.connect(spill=spill / "duckdb-tmp", database=spill / "score.duckdb")

    # 1. find, fingerprint and split the tables --------------------------------
    with timer("load_validate"):
        inputs = chunks.find_inputs(data)
        chunks.check_inputs(inputs, con=con)
        digests = {
            name: chunks.digest_files(t.files) for name, t in sorted(inputs.items())
        }
        n_pupil_rows = chunks.count_rows(inputs["pupils"], con=con)
        n_chunks = chunks.bucket_count(n_pupil_rows, chunk_size=chunk_size)
        note("split", 0, 1)
        if n_chunks > 1:
            folders = chunks.split_by_pupil(
                inputs, buckets=n_chunks, spill=spill / "chunks", con=con
            )
        else:
            folders = [data]
        note("split", 1, 1)

    for sub in ("scores", "features", "rejects", "reasons"):
        (spill / sub).mkdir()
    drift = DriftCounter(bundle.reference)
    tally = _Tally()
    table_names: list[str] = sorted(inputs)

    # 2. per chunk: validate, features, predict ---------------------------------
    for k, folder in enumerate(folders):
        note("score", k, len(folders))
        with timer("load_validate"):
            tables = read_tables(folder)
            report = validate_tables(tables, as_of=as_of)
            report.raise_for_errors()
            ids_in = _pupil_ids(tables)
            rejects = _rejects_frame(report, chunk=k)
            for f in report.warnings:
                tally.warnings[f.message.split(" (")[0]] = (
                    tally.warnings.get(f.message.split(" (")[0], 0) + f.count
                )
            usable = drop_rejected(tables, report)
        with timer("features"):
            features = build_features(usable, as_of=as_of)
            quality = features.attrs.get("quality")
            if quality is not None:
                for cat, n in quality.counts.items():
                    tally.quality[cat] = tally.quality.get(cat, 0) + n
        if k == 0:
            check_features(features, bundle, tables=table_names)
        with timer("predict"):
            matrix = bundle.feature_matrix(features)
            drift.add(matrix)
            scores = score_batch(bundle, features)
        with timer("write"):
            pq.write_table(
                _scores_table(features, scores, id_col=id_col, chunk=k),
                spill / "scores" / f"chunk-{k:05d}.parquet",
            )
            if explain != "none" and len(features):
                features.to_parquet(spill / "features" / f"chunk-{k:05d}.parquet")
            if len(rejects):
                rejects.to_parquet(spill / "rejects" / f"chunk-{k:05d}.parquet")
        scored_ids = set(features[id_col].astype(str))
        rejected_ids = set(rejects["pupil_id"].dropna().astype(str)) - scored_ids
        if len(scored_ids) != len(features):
            raise AssertionError(f"chunk {k}: the feature table repeats pupils")
        tally.scored += len(scored_ids)
        tally.rejected += len(rejected_ids & ids_in) + len(rejected_ids - ids_in)
        tally.pupils_in += len(ids_in | rejected_ids)
        tally.not_on_roll += len(ids_in - scored_ids - rejected_ids)
        tally.records_rejected += (
            int(rejects["records"].fillna(1).sum()) if len(rejects) else 0
        )
        if folders[0] is not data:
            shutil.rmtree(folder, ignore_errors=True)
    note("score", len(folders), len(folders))

    if tally.pupils_in != tally.scored + tally.rejected + tally.not_on_roll:
        raise AssertionError(
            f"pupils lost: {tally.pupils_in} in != {tally.scored} scored + "
            f"{tally.rejected} rejected + {tally.not_on_roll} not on roll"
        )
    if tally.scored == 0:
        raise DataError(
            f"no pupil is on a school roll at {as_of.isoformat()} in {data}: check --as-of "
            "against the census dates in the data"
        )

    # 3. rank and band ------------------------------------------------------------
    with timer("predict"):
        scores_glob = (spill / "scores" / "*.parquet").as_posix()
        ranked = rank_and_band(
            con.sql(f"SELECT * FROM read_parquet('{scores_glob}')"),
            capacity=capacity,
            watch_capacity=scoring.watch_capacity,
            watch_min_probability=scoring.watch_min_probability,
        )
        ranked.create("ranked")
        band_counts = dict(
            con.execute("SELECT band, count(*) FROM ranked GROUP BY band").fetchall()
        )

    # 4. reasons ---------------------------------------------------------------------
    with timer("reasons"):
        reasons_view = _explain(
            con,
            bundle,
            spill=spill,
            explain=explain,
            n_chunks=len(folders),
            note=note,
            out_dir=out_dir,
        )

    # 5. outputs -----------------------------------------------------------------------
    with timer("write"):
        name, version = model_identity(bundle)
        con.execute(
            "CREATE TABLE final AS "
            + risk_list_query(
                ranked="ranked",
                reasons=reasons_view,
                model_name=name,
                model_version=version,
                as_of=as_of,
                expires_on=expires_on,
            )
        )
        cols = ", ".join(RISK_LIST_COLUMNS)
        copy_atomic(
            con,
            f"SELECT {cols} FROM final ORDER BY rank",
            out_dir / "risk_list.parquet",
            fmt="parquet",
        )
        copy_atomic(
            con,
            f"SELECT {cols} FROM final ORDER BY rank",
            out_dir / "risk_list.csv",
            fmt="csv",
        )
        copy_atomic(
            con,
            transition_query(risk_list="final"),
            out_dir / "transition_list.csv",
            fmt="csv",
        )
        has_rejects = any((spill / "rejects").iterdir())
        rejects_view = None
        if has_rejects:
            con.execute(
                "CREATE VIEW rejects AS SELECT * FROM read_parquet("
                f"'{(spill / 'rejects' / '*.parquet').as_posix()}', union_by_name=true)"
            )
            rejects_view = "rejects"
        copy_atomic(
            con,
            rejects_query(rejects=rejects_view, scored="ranked"),
            out_dir / "rejects.csv",
            fmt="csv",
        )
        report_dict = _report(
            con,
            bundle=bundle,
            model_ref=model_ref,
            model_name=name,
            model_version=version,
            as_of=as_of,
            expires_on=expires_on,
            capacity=capacity,
            explain=explain,
            tally=tally,
            band_counts=band_counts,
            drift=drift,
            digests=digests,
            n_chunks=len(folders),
            chunk_size=chunk_size,
            timer=timer,
        )
        write_json(out_dir / "summary.json", report_dict)
    report_dict["timings_seconds"] = timer.rounded()
    write_json(out_dir / "summary.json", report_dict)
    con.close()
    return ScoreSummary(
        out_dir=out_dir,
        as_of=as_of,
        expires_on=expires_on,
        counts=report_dict["counts"],
        report=report_dict,
        warnings=tuple(report_dict["warnings"]),
    )


def _reason_columns(ex: Any) -> pd.DataFrame:
    """An explanation's top reasons in the risk list's columns."""
    frame = ex.summary_frame()
    out = pd.DataFrame({"pupil_id": frame["id"].astype("string")})
    for r in range(1, 4):
        for src, dst, dtype in (
            ("text", f"reason_{r}", "string"),
            ("group", f"reason_{r}_group", "string"),
            ("actionable", f"reason_{r}_actionable", "boolean"),
        ):
            col = f"reason_{r}_{src}"
            values = (
                frame[col]
                if col in frame.columns
                else pd.Series(pd.NA, index=frame.index)
            )
            out[dst] = values.astype("object").where(values.notna(), None).astype(dtype)
    return out


def _explain(
    con: Any,
    bundle: ModelBundle,
    *,
    spill: Path,
    explain: Explain,
    n_chunks: int,
    note: Progress,
    out_dir: Path,
) -> str | None:
    """Explain the pupils asked for and write reviewer pages for the flagged.

    Returns the name of a DuckDB view of the reasons (``None`` when there are none).
    """
    if explain == "none":
        if (out_dir / "pupils").exists():  # pages of an earlier run would mislead
            shutil.rmtree(out_dir / "pupils")
        return None
    from cmerisk.explain import explain_bundle
    from cmerisk.reports.pupil_cards import write_pupil_pages

    id_col = bundle.spec.id
    bands = (
        "('flagged', 'watch')" if explain == "listed" else "('flagged', 'watch', 'low')"
    )
    wanted = con.execute(
        f"SELECT pupil_id, rank, band, chunk FROM ranked WHERE band IN {bands}"
    ).df()
    by_chunk = {int(k): g for k, g in wanted.groupby("chunk")} if len(wanted) else {}
    flagged_rows = []
    for k in range(n_chunks):
        note("explain", k, n_chunks)
        part = by_chunk.get(k)
        path = spill / "features" / f"chunk-{k:05d}.parquet"
        if part is None or not path.exists():
            continue
        features = pd.read_parquet(path)
        if explain == "listed":
            features = features[
                features[id_col].astype(str).isin(set(part["pupil_id"]))
            ]
        features = features.reset_index(drop=True)
        info = part.set_index("pupil_id").loc[features[id_col].astype(str)]
        band = info["band"].to_numpy(dtype=object)
        ex = explain_bundle(features, bundle, top=3, band=band)
        _reason_columns(ex).to_parquet(spill / "reasons" / f"chunk-{k:05d}.parquet")
        is_flagged = band == "flagged"
        if is_flagged.any():
            rows = features[is_flagged].copy()
            rows["__rank"] = info["rank"].to_numpy()[is_flagged]
            flagged_rows.append(rows)
    note("explain", n_chunks, n_chunks)

    pages = spill / "pupils"
    pages.mkdir()
    if flagged_rows:
        flagged = pd.concat(flagged_rows, ignore_index=True).sort_values("__rank")
        flagged = flagged.drop(columns="__rank").reset_index(drop=True)
        ex = explain_bundle(
            flagged, bundle, top=3, band=np.full(len(flagged), "flagged", dtype=object)
        )
        write_pupil_pages(ex, out_dir=pages)
    replace_folder(pages, out_dir / "pupils")
    if not any((spill / "reasons").iterdir()):
        return None
    con.execute(
        "CREATE VIEW reasons AS SELECT * FROM read_parquet("
        f"'{(spill / 'reasons' / '*.parquet').as_posix()}')"
    )
    return "reasons"


def _quantiles(con: Any) -> dict[str, float]:
    qs = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
    exprs = ", ".join(f"quantile_cont(probability, {q})" for q in qs)
    row = con.execute(
        f"SELECT {exprs}, min(probability), max(probability), avg(probability) FROM ranked"
    ).fetchall()[0]
    out = {
        f"p{round(q * 100):02d}": round(float(v), 6)
        for q, v in zip(qs, row[: len(qs)], strict=True)
    }
    out.update(
        min=round(float(row[-3]), 6),
        max=round(float(row[-2]), 6),
        mean=round(float(row[-1]), 6),
    )
    return out


def _report(
    con: Any,
    *,
    bundle: ModelBundle,
    model_ref: str,
    model_name: str,
    model_version: str,
    as_of: date,
    expires_on: date,
    capacity: int,
    explain: Explain,
    tally: _Tally,
    band_counts: dict[str, int],
    drift: DriftCounter,
    digests: dict[str, str],
    n_chunks: int,
    chunk_size: int,
    timer: StageTimer,
) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        cmerisk_version = version("cmerisk")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        cmerisk_version = "unknown"
    scoring = bundle.config.scoring
    bands = {b: int(band_counts.get(b, 0)) for b in ("flagged", "watch", "low")}
    expected = con.execute(
        "SELECT band, sum(probability) FROM ranked WHERE band IN ('flagged', 'watch') GROUP BY band"
    ).fetchall()
    psi = drift.table(warning=scoring.psi_warning)
    warnings: list[str] = []
    for _, row in psi[psi["drifted"]].iterrows():
        warnings.append(
            f"drift: feature {row['feature']} has PSI {row['psi']:.2f} against the training "
            f"data (above {scoring.psi_warning}); check the data before relying on the list"
        )
    for what, n in tally.warnings.items():
        warnings.append(f"{what}: {n} record(s)")
    if bands["flagged"] < capacity:
        warnings.append(
            f"only {bands['flagged']} pupils were scored, fewer than the capacity {capacity}"
        )
    counts = {
        "pupils_in": tally.pupils_in,
        "scored": tally.scored,
        "rejected": tally.rejected,
        "not_on_roll": tally.not_on_roll,
        "records_rejected": tally.records_rejected,
        "bands": bands,
    }
    assert (
        counts["pupils_in"]
        == counts["scored"] + counts["rejected"] + counts["not_on_roll"]
    )
    meta = bundle.metadata
    return {
        "cmerisk_version": cmerisk_version,
        "as_of": as_of.isoformat(),
        "expires_on": expires_on.isoformat(),
        "capacity": capacity,
        "watch_capacity": scoring.watch_capacity,
        "watch_min_probability": scoring.watch_min_probability,
        "explain": explain,
        "counts": counts,
        "scores": {
            "quantiles": _quantiles(con),
            "bands": bands,
            "expected_cme": {b: round(float(v), 2) for b, v in expected},
        },
        "drift": {
            "psi_warning": scoring.psi_warning,
            "features": [
                {
                    k: (None if isinstance(v, float) and math.isnan(v) else v)
                    for k, v in r.items()
                }
                for r in psi.to_dict("records")
            ],
            "drifted": psi.loc[psi["drifted"], "feature"].tolist(),
        },
        "model": {
            "reference": model_ref,
            "name": model_name,
            "version": model_version,
            "files": meta.get("files", {}),
            "trained_on": meta.get("data_digest"),
        },
        "data": {"tables": digests, "digest": chunks.combine_digests(digests)},
        "data_quality": tally.quality,
        "chunks": {"count": n_chunks, "chunk_size": chunk_size},
        "timings_seconds": timer.rounded(),
        "warnings": warnings,
        "outputs": [
            "risk_list.csv",
            "risk_list.parquet",
            "transition_list.csv",
            "rejects.csv",
            "summary.json",
            *(["pupils/"] if explain != "none" else []),
        ],
    }


__all__ = ["ScoreSummary", "score_batch", "score_la"]
