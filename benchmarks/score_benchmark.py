"""Does scoring stay within flat memory, and how close is it to LightGBM's own predict?

Scores synthetic LAs of 100,000 and 1,000,000 pupils (one or two school years of
session marks, made with :func:`cmerisk.data.synthetic.generate_la`) with the same
model and chunks of about the same size (``--chunk-pupils``, 50,000), each in a
fresh child process, and reports:

- peak memory (RSS of the child, sampled with psutil, and its ``ru_maxrss``) per
  size, and the ratio 1,000,000 / 100,000 (goal: about 1: memory set by the
  chunk size, not the LA);
- the time split of each run (load and validate, features, predict, reasons,
  write) from its ``summary.json``;
- the ratio of predict-and-write (the ``predict`` and ``write`` stages: input
  matrix, calibrated probabilities, drift bins, spill, ranking, the list files)
  to the time LightGBM's own ``Booster.predict`` spends on the same feature
  matrices in the same run (measured by wrapping it; goal: within 1.5x), with
  the parts that make it up (booster and calibration, drift bins, ranking, the
  list files, the summary report) and the ratio of the per-chunk path alone
  (model matrix, booster, calibration, drift bins, score spill) to the booster;
- a plain floor for the list files, timed in the same process after the run
  (and after its peak memory is taken): the risk list as written, already in
  memory, sorted with ``pyarrow.compute.sort_indices`` and written as Parquet
  (zstd) and CSV with pyarrow's own writers, nothing else (best of 3). Its
  ratio to the booster says how much of the 1.5x goal the outputs alone use up,
  however they are made;
- each run's load average before and after (the machine is shared).

The model is a bundle given with ``--model``, or one trained here with the
project's training pipeline on a five-year synthetic LA of ``--train-pupils``
pupils (default 50,000: the LA ``make demo`` trains on, so the model has the
size of the demo's). The model's size matters for the ratio: LightGBM's
predict costs about the number of trees, the rest of the path does not.

Run::

    python -m benchmarks.score_benchmark                        # 100k and 1M pupils
    python -m benchmarks.score_benchmark --sizes 20000 100000   # quicker
    python -m benchmarks.score_benchmark --workdir /big/disk    # LAs made there
                                                                # (/tmp/scorebench)

With ``--csv`` each LA is first copied with every table as one CSV file (the
way LAs usually export), and that copy is scored; results then go to
``benchmarks/results/score_csv.json``.

Results go to ``benchmarks/results/score.json``. The machine may be shared with
other work: absolute times vary from run to run; the ratios less so.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import platform
import resource
import shutil
import threading
import time
from datetime import date
from pathlib import Path
from queue import Empty
from typing import Any

import psutil

RESULTS = Path(__file__).parent / "results" / "score.json"
RESULTS_CSV = RESULTS.with_name("score_csv.json")


def _as_csv(folder: Path, copy: Path) -> None:
    """A copy of a synthetic LA with every table as one CSV file, as LAs export.

    Made once (kept while its manifest matches the LA's).
    """
    from cmerisk.duck import connect

    manifest = folder / "manifest.json"
    if (copy / "manifest.json").exists() and (
        copy / "manifest.json"
    ).read_bytes() == manifest.read_bytes():
        return
    shutil.rmtree(copy, ignore_errors=True)
    partial = copy.with_name(copy.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    con = connect()
    con.execute("SET preserve_insertion_order = false")
    for table in sorted(
        {p.name.split(".")[0] for p in folder.iterdir()} - {"manifest"}
    ):
        source = folder / table
        files = (
            (source / "*.parquet").as_posix()
            if source.is_dir()
            else source.with_suffix(".parquet").as_posix()
        )
        con.execute(
            f"COPY (SELECT * FROM read_parquet('{files}')) "
            f"TO '{(partial / f'{table}.csv').as_posix()}' (FORMAT csv, HEADER)"
        )
    shutil.copyfile(manifest, partial / "manifest.json")
    partial.rename(copy)


def _generate(
    folder: Path, *, pupils: int, years: int, first_year: int, seed: int
) -> None:
    """Make a synthetic LA once (kept for later runs when its manifest matches)."""
    from cmerisk.data.pseudonymise import DEMO_KEY
    from cmerisk.data.synthetic import generate_la

    manifest = folder / "manifest.json"
    if manifest.exists():
        params = json.loads(manifest.read_text()).get("arguments", {})
        wanted = {
            "pupils": pupils,
            "years": years,
            "first_year": first_year,
            "seed": seed,
        }
        if all(params.get(k) == v for k, v in wanted.items()):
            return
        shutil.rmtree(folder)
    generate_la(
        folder,
        pupils=pupils,
        years=years,
        seed=seed,
        first_year=first_year,
        key=DEMO_KEY,
    )


def _in_child(target: Any, **kwargs: Any) -> Any:
    """``target(**kwargs)`` in a fresh process, so that this one stays small.

    A process started from this one inherits its peak-RSS mark (``ru_maxrss``
    survives fork and exec): had this process made an LA or trained a model
    itself, every scoring child would report that peak as its own.
    """
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(target, kwds=kwargs)


def _train(folder: Path, out: Path) -> Path:
    """Train a model the way ``cmerisk train --data`` does, without tracking."""
    from cmerisk.config import ExperimentConfig
    from cmerisk.pipeline import build_cme_frame, run_experiment

    # the model as trained by default; fewer bootstrap rounds for its evaluation
    config = ExperimentConfig.model_validate(
        {"evaluation": {"n_bootstrap": 50}, "fairness": {"n_bootstrap": 50}}
    )
    frame, spec = build_cme_frame(folder, config=config)
    result = run_experiment(
        frame, spec=spec, config=config, tracking=False, out_dir=out
    )
    return Path(result.bundle_path)


def _clock(owner: Any, name: str, key: str, spent: dict[str, float]) -> None:
    """Replace ``owner.name`` by a wrapper adding its wall time to ``spent[key]``."""
    original = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[key] = spent.get(key, 0.0) + time.perf_counter() - start

    setattr(owner, name, timed)


def _child(
    data: str,
    model: str,
    as_of: str,
    out: str,
    explain: str,
    chunk_size: int,
    queue: Any,
    peak_taken: Any,
) -> None:
    """Score one LA and report the run's numbers (runs in a fresh process).

    Two messages: ``scored``, then (once the parent has set ``peak_taken``,
    having read the run's peak memory) ``floor``.
    """
    import lightgbm as lgb

    import cmerisk.score
    from cmerisk.model.bundle import load_bundle
    from cmerisk.score import score_la

    # imports and model in memory: the floor under every run
    trees = load_bundle(model).booster.num_trees()
    baseline_rss = psutil.Process().memory_info().rss
    spent = {"seconds": 0.0, "rows": 0, "calls": 0}
    original = lgb.Booster.predict
    scoring = {"now": False}
    predict_matrix = cmerisk.score.predict_matrix

    def scoring_predict(*args: Any, **kwargs: Any) -> Any:
        scoring["now"] = True
        try:
            return predict_matrix(*args, **kwargs)
        finally:
            scoring["now"] = False

    def timed_predict(self: lgb.Booster, data: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        result = original(self, data, *args, **kwargs)
        if scoring["now"]:  # the scoring predict, not the explanations' calls
            spent["seconds"] += time.perf_counter() - start
            spent["rows"] += len(data)
            spent["calls"] += 1
        return result

    cmerisk.score.predict_matrix = scoring_predict  # type: ignore[assignment]
    lgb.Booster.predict = timed_predict  # type: ignore[method-assign]
    # where predict-and-write goes beyond the booster (the rest of each stage is
    # the model matrix, and each chunk's score spill)
    parts: dict[str, float] = {}
    _clock(cmerisk.score, "predict_matrix", "booster_and_calibration", parts)
    _clock(cmerisk.score.DriftCounter, "add", "drift_bins", parts)
    _clock(cmerisk.score._Run, "_rank", "rank_and_band", parts)
    _clock(cmerisk.score, "write_lists", "list_files", parts)
    _clock(cmerisk.score, "build_report", "summary_report", parts)
    start = time.perf_counter()
    summary = score_la(
        Path(data),
        model=model,
        as_of=date.fromisoformat(as_of),
        out_dir=Path(out),
        explain=explain,  # type: ignore[arg-type]
        chunk_size=chunk_size,
    )
    wall = time.perf_counter() - start
    queue.put(
        {
            "stage": "scored",
            "wall_seconds": round(wall, 2),
            "model_trees": trees,
            "timings_seconds": summary.timings,
            "counts": summary.counts,
            "chunks": summary.report["chunks"],
            "predict_and_write_parts_seconds": {
                k: round(v, 3) for k, v in parts.items()
            },
            "booster_predict": {
                k: round(v, 3) if isinstance(v, float) else v for k, v in spent.items()
            },
            "baseline_rss_mb": round(baseline_rss / 2**20, 1),
            "ru_maxrss_mb": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
            ),
        }
    )
    # the floor reads and copies the list: only once the parent has the peak
    if not peak_taken.wait(timeout=600):
        raise RuntimeError("the parent never took the scoring run's peak memory")
    queue.put({"stage": "floor", **_plain_list_files(Path(out))})


def _plain_list_files(out: Path, *, repeats: int = 3) -> dict[str, Any]:
    """The list files made the plainest way: sort and write with pyarrow alone.

    The risk list as the run wrote it is read first (not timed); then, best of
    ``repeats``: sort by probability (highest first) and id, and write it as
    Parquet (zstd) and CSV, with no ranking rule, bands, reasons, transition
    list, rejects or validation.
    """
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    table = pq.read_table(out / "risk_list.parquet")
    scratch = out.parent / f"{out.name}-plain"
    scratch.mkdir(exist_ok=True)
    best = {"sort": math.inf, "parquet": math.inf, "csv": math.inf}
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            order = pc.sort_indices(
                table,
                sort_keys=[("probability", "descending"), ("pupil_id", "ascending")],
            )
            ranked = table.take(order)
            sorted_at = time.perf_counter()
            pq.write_table(ranked, scratch / "list.parquet", compression="zstd")
            parquet_at = time.perf_counter()
            pcsv.write_csv(ranked, scratch / "list.csv")
            csv_at = time.perf_counter()
            for key, seconds in (
                ("sort", sorted_at - start),
                ("parquet", parquet_at - sorted_at),
                ("csv", csv_at - parquet_at),
            ):
                best[key] = min(best[key], seconds)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "plain_list_files_seconds": {k: round(v, 3) for k, v in best.items()},
        "plain_list_files_rows": table.num_rows,
    }


def _run_child(**kwargs: Any) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    peak_taken = ctx.Event()
    proc = ctx.Process(
        target=_child, kwargs={**kwargs, "queue": queue, "peak_taken": peak_taken}
    )
    proc.start()
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        try:
            p = psutil.Process(proc.pid)
            while not stop.is_set():
                rss = p.memory_info().rss + sum(
                    c.memory_info().rss for c in p.children(recursive=True)
                )
                peak = max(peak, rss)
                time.sleep(0.05)
        except psutil.NoSuchProcess:
            pass

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    load_before = os.getloadavg()
    messages: dict[str, dict[str, Any]] = {}
    peak_scoring = 0
    while "floor" not in messages:  # a child that dies never reports: do not hang
        try:
            message = queue.get(timeout=5)
        except Empty:
            if not proc.is_alive():
                break
            continue
        messages[message.pop("stage")] = message
        if "scored" in messages and not peak_taken.is_set():
            # the scoring run's peak; the child waits for it before the floor
            time.sleep(0.1)  # a last sample or two of the finished run
            peak_scoring = peak
            load_after = os.getloadavg()
            peak_taken.set()
    proc.join()
    stop.set()
    sampler.join()
    if "floor" not in messages or proc.exitcode != 0:
        raise RuntimeError(f"scoring child failed with exit code {proc.exitcode}")
    result = {**messages["scored"], **messages["floor"]}
    result["load_average_before"] = [round(x, 2) for x in load_before]
    result["load_average_after"] = [round(x, 2) for x in load_after]
    result["peak_rss_mb"] = round(peak_scoring / 2**20, 1)
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--years", type=int, default=1)
    parser.add_argument("--first-year", type=int, default=2024)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/scorebench"))
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument(
        "--train-pupils",
        type=int,
        default=50_000,
        help="pupils in the LA the model is trained on when --model is not given",
    )
    parser.add_argument(
        "--explain", default="listed", choices=["listed", "all", "none"]
    )
    parser.add_argument(
        "--chunk-pupils",
        type=int,
        default=50_000,
        help="about this many pupils per chunk, the same in every run",
    )
    parser.add_argument(
        "--csv",
        action="store_true",
        help="score a copy of each LA with every table as one CSV file (as LAs "
        "export); results to score_csv.json unless --results is given",
    )
    parser.add_argument("--results", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.results is None:
        args.results = RESULTS_CSV if args.csv else RESULTS

    from cmerisk.data.school_calendar import census_date

    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    model = args.model
    if model is None:
        # five school years: three labelled as-of years for the temporal split, and
        # a training slice in which "last school year" features exist
        train_la = work / f"train-{args.train_pupils}x5"
        _in_child(
            _generate,
            folder=train_la,
            pupils=args.train_pupils,
            years=5,
            first_year=args.first_year - 4,
            seed=1,
        )
        model = _in_child(
            _train, folder=train_la, out=work / f"model-{args.train_pupils}"
        )
    as_of = census_date(args.first_year + args.years - 1, "summer")

    runs = []
    for n in args.sizes:
        folder = work / f"la-{n}x{args.years}"
        start = time.perf_counter()
        _in_child(
            _generate,
            folder=folder,
            pupils=n,
            years=args.years,
            first_year=args.first_year,
            seed=2,
        )
        if args.csv:
            _in_child(_as_csv, folder=folder, copy=work / f"{folder.name}-csv")
            folder = work / f"{folder.name}-csv"
        generated = time.perf_counter() - start
        print(f"{n} pupils: data ready ({generated:.0f} s); scoring...", flush=True)
        rows = json.loads((folder / "manifest.json").read_text())["rows"]["pupils"]
        chunks = max(1, round(rows / args.chunk_pupils))
        chunk_size = math.ceil(
            rows / chunks
        )  # chunks of about the same size in every run
        result = _run_child(
            data=str(folder),
            model=str(model),
            as_of=as_of.isoformat(),
            out=str(work / f"out-{n}"),
            explain=args.explain,
            chunk_size=chunk_size,
        )
        result["pupils_per_chunk"] = chunk_size
        t = result["timings_seconds"]
        predict_write = t["predict"] + t["write"]
        booster = result["booster_predict"]["seconds"]
        parts = result["predict_and_write_parts_seconds"]
        rows_scored = max(result["counts"]["scored"], 1)
        # the per-chunk path alone: model matrix, booster, calibration, drift
        # bins and each chunk's score spill (no LA-wide ranking, no list files)
        chunk_path = predict_write - sum(
            parts.get(k, 0.0) for k in ("rank_and_band", "list_files", "summary_report")
        )
        result.update(
            pupils=n,
            data_gb=round(
                sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**30,
                2,
            ),
            predict_and_write_seconds=round(predict_write, 2),
            predict_and_write_over_booster_predict=round(predict_write / booster, 2)
            if booster
            else None,
            plain_list_files_over_booster_predict=round(
                sum(result["plain_list_files_seconds"].values()) / booster, 2
            )
            if booster
            else None,
            chunk_path_seconds=round(chunk_path, 2),
            chunk_path_over_booster_predict=round(chunk_path / booster, 2)
            if booster
            else None,
            microseconds_per_pupil={
                "booster_predict": round(booster / rows_scored * 1e6, 2),
                "predict_and_write": round(predict_write / rows_scored * 1e6, 2),
                "plain_list_files": round(
                    sum(result["plain_list_files_seconds"].values())
                    / rows_scored
                    * 1e6,
                    2,
                ),
                **{
                    k: round(v / rows_scored * 1e6, 2)
                    for k, v in parts.items()
                    if k != "booster_and_calibration"
                },
            },
            pupils_per_second=round(
                result["counts"]["scored"] / result["wall_seconds"], 1
            ),
        )
        runs.append(result)
        print(json.dumps(result, indent=2), flush=True)

    out: dict[str, Any] = {
        "benchmark": "score",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "note": "shared machine: other work ran at the same time",
        },
        "model": str(model),
        "as_of": as_of.isoformat(),
        "years_of_data": args.years,
        "format": "csv" if args.csv else "parquet",
        "explain": args.explain,
        "runs": runs,
    }
    if len(runs) >= 2:
        small, big = runs[0], runs[-1]
        out["peak_rss_ratio_largest_over_smallest"] = round(
            big["peak_rss_mb"] / small["peak_rss_mb"], 2
        )
        out["pupils_ratio_largest_over_smallest"] = round(
            big["pupils"] / small["pupils"], 1
        )
    args.results.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.results.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=2) + "\n")
    os.replace(tmp, args.results)
    print(f"written {args.results}")
    return out


if __name__ == "__main__":
    main()
