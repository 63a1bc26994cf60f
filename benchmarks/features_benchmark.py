"""How fast are the point-in-time attendance features, and how much memory do they take?

(a) One LA-year (default): a synthetic LA of 50,000 pupils with one school year
of session marks (~19 M). The DuckDB aggregation
(:func:`cmerisk.features.attendance.aggregate_marks`, reading the Parquet
files) is timed against the straightforward pandas implementation in
``benchmarks/features_reference.py`` (read the same files into pandas, then
group), in the same process, one after the other; the per-pupil counts must be
identical (asserted). Also timed: the whole ``build_features`` at the same
as-of, and a plain DuckDB scan of the marks (the baseline for throughput).

(b) Scale (``--scale``): 1,000,000 pupil-years - a synthetic LA of 250,000
pupils over 4 school years (~380 M marks) - turned into the modelling dataset
(:func:`cmerisk.dataset.make_dataset`, one as-of per school year: about
1,000,000 (pupil, as-of) rows) in a child process, with its peak memory
sampled; and, as the baseline in the same session, a plain DuckDB scan of the
same marks in another child.

Run::

    python -m benchmarks.features_benchmark           # (a) 50,000 pupils, one year
    python -m benchmarks.features_benchmark --scale   # (b) 250,000 pupils, 4 years
    python -m benchmarks.features_benchmark --pupils 5000   # (a), quick
    python -m benchmarks.features_benchmark --data DIR ...  # reuse an LA folder

Results go to ``benchmarks/results/features.json`` and
``benchmarks/results/features_scale.json``. The machine may be shared (its
load average is recorded): absolute times vary, the ratios less so.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import multiprocessing as mp
import os
import shutil
import tempfile
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import psutil

RESULTS = Path(__file__).parent / "results"
KEY = b"features-benchmark-key-not-secret"


class PeakRSS:
    """Samples the resident memory of this process and its children."""

    def __init__(self, pid: int | None = None, interval: float = 0.05) -> None:
        self.proc = psutil.Process(pid or os.getpid())
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> int:
        total = 0
        try:
            procs = [self.proc, *self.proc.children(recursive=True)]
        except psutil.Error:
            return 0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self.peak = self._rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def mb(self) -> float:
        return round(self.peak / 2**20, 1)


def _synth(
    folder: Path, *, pupils: int, years: int, first_year: int, seed: int
) -> dict:
    from cmerisk.data.synthetic import generate_la

    t0 = time.perf_counter()
    summary = generate_la(
        folder, pupils=pupils, years=years, first_year=first_year, seed=seed, key=KEY
    )
    return {"seconds": round(time.perf_counter() - t0, 1), "rows": summary.rows}


def _duckdb_scan(files: list[str]) -> int:
    """The plain baseline: one DuckDB pass over the marks (count, pupils, dates)."""
    import duckdb

    with duckdb.connect() as con:
        rows = con.sql(
            "SELECT count(*), count(DISTINCT pupil_id), min(date), max(date) "
            "FROM read_parquet($files)",
            params={"files": files},
        ).fetchall()
    return int(rows[0][0])


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float, float, float]:
    """(result, wall seconds, cpu seconds, peak RSS MB above the start)."""
    gc.collect()
    start_rss = psutil.Process().memory_info().rss
    with PeakRSS() as mem:
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn(*args, **kwargs)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return out, wall, cpu, round((mem.peak - start_rss) / 2**20, 1)


def one_la_year(folder: Path, *, as_of: date) -> dict[str, Any]:
    """Benchmark (a) on an LA folder: DuckDB vs pandas on the same marks."""
    import importlib.util

    import pyarrow.parquet as pq

    from cmerisk.data.load import read_tables
    from cmerisk.features import build_features
    from cmerisk.features.attendance import aggregate_marks
    from cmerisk.features.clean import clean_tables
    from cmerisk.features.quality import DataQuality
    from cmerisk.features.window import Windows

    spec = importlib.util.spec_from_file_location(
        "features_reference", Path(__file__).parent / "features_reference.py"
    )
    assert spec is not None and spec.loader is not None
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)

    tables = read_tables(folder)
    files = [str(f) for f in tables.attendance_files]
    roll = clean_tables(tables, quality=DataQuality())["roll_changes"]
    w = Windows.at(as_of)
    result: dict[str, Any] = {"as_of": as_of.isoformat(), "files": len(files)}

    marks, wall, cpu, mem = _timed(_duckdb_scan, files)
    result["baseline_duckdb_scan"] = {
        "marks": marks,
        "seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "peak_rss_mb": mem,
    }
    fast, wall, cpu, mem = _timed(
        aggregate_marks, tables, as_of=as_of, roll_changes=roll
    )
    result["duckdb"] = {
        "seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "peak_rss_mb": mem,
        "pupils": len(fast),
    }

    frame, wall, cpu, mem = _timed(build_features, tables, as_of=as_of)
    result["build_features"] = {
        "seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "peak_rss_mb": mem,
        "rows": len(frame),
        "columns": frame.shape[1],
    }

    def read_marks() -> pd.DataFrame:
        frame = pq.read_table(
            files, filters=[("date", ">=", w.earliest_mark), ("date", "<", as_of)]
        ).to_pandas()
        return frame

    def plain_pandas() -> tuple[pd.DataFrame, float]:
        t0 = time.perf_counter()
        frame = read_marks()
        read = time.perf_counter() - t0
        return reference.pandas_aggregate_marks(
            frame, as_of=as_of, roll_changes=roll
        ), read

    (slow, read_s), wall, cpu, mem = _timed(plain_pandas)
    result["pandas"] = {
        "seconds": round(wall, 2),
        "read_seconds": round(read_s, 2),
        "cpu_seconds": round(cpu, 2),
        "peak_rss_mb": mem,
    }
    cols = reference.COUNT_COLUMNS
    fast, slow = fast[cols].sort_index(), slow[cols].sort_index()
    # Compare without printing pupil ids: counts of differing cells only.
    same_pupils = fast.index.equals(slow.index)
    differing = (
        {c: int((fast[c] != slow[c]).sum()) for c in cols} if same_pupils else {}
    )
    differing = {c: n for c, n in differing.items() if n}
    assert same_pupils and not differing, f"DuckDB and pandas differ: {differing}"
    result["identical"] = True
    result["marks_in_window"] = int(slow["n_marks"].sum())

    d, p = result["duckdb"]["seconds"], result["pandas"]["seconds"]
    result["speedup_vs_pandas"] = round(p / d, 1)
    result["speedup_vs_pandas_compute_only"] = round(
        (p - result["pandas"]["read_seconds"]) / d, 1
    )
    result["cpu_ratio_pandas_over_duckdb"] = round(
        result["pandas"]["cpu_seconds"] / result["duckdb"]["cpu_seconds"], 1
    )
    result["duckdb_marks_per_second"] = round(result["marks_in_window"] / d)
    result["duckdb_time_over_scan"] = round(
        d / result["baseline_duckdb_scan"]["seconds"], 1
    )
    return result


def _child(target: Any, args: tuple, queue: Any) -> None:
    try:
        queue.put(("ok", target(*args)))
    except BaseException as e:  # report, don't hang the parent
        queue.put(("error", f"{type(e).__name__}: {e}"))


def _in_child(target: Any, *args: Any) -> tuple[Any, float, float]:
    """Run ``target(*args)`` in a fresh process: (result, seconds, peak RSS MB)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(target, args, queue))
    t0 = time.perf_counter()
    proc.start()
    with PeakRSS(proc.pid) as mem:
        status, value = queue.get()
        proc.join()
    if status != "ok":
        raise RuntimeError(value)
    return value, time.perf_counter() - t0, mem.mb


def _make_dataset(folder: str, memory_limit: str, temp_dir: str) -> dict[str, Any]:
    from cmerisk.data.load import read_tables
    from cmerisk.dataset import as_of_dates_for, make_dataset

    tables = read_tables(Path(folder))
    dates = as_of_dates_for(
        tables, terms=["summer"], horizon_days=245, labelled_only=False
    )
    t0 = time.perf_counter()
    ds = make_dataset(
        tables,
        as_of_dates=dates,
        horizon_days=245,
        memory_limit=memory_limit,
        temp_directory=Path(temp_dir),
    )
    return {
        "as_of_dates": [d.isoformat() for d in dates],
        "rows": len(ds),
        "columns": ds.shape[1],
        "rows_per_as_of": ds.groupby("as_of").size().astype(int).tolist(),
        "cme_positives": int(ds["cme"].sum()),
        "dataset_seconds": round(time.perf_counter() - t0, 1),
        "cpu_seconds": round(time.process_time(), 1),
    }


def _scan(folder: str) -> int:
    files = sorted(str(p) for p in (Path(folder) / "attendance").glob("*.parquet"))
    return _duckdb_scan(files)


def scale(folder: Path, *, memory_limit: str) -> dict[str, Any]:
    """Benchmark (b): the whole dataset in a child, beside a plain scan."""
    temp = tempfile.mkdtemp(prefix="features-spill-")
    try:
        marks, scan_s, scan_mb = _in_child(_scan, str(folder))
        ds, ds_s, ds_mb = _in_child(_make_dataset, str(folder), memory_limit, temp)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return {
        "marks": marks,
        "memory_limit": memory_limit,
        "baseline_duckdb_scan": {"seconds": round(scan_s, 1), "peak_rss_mb": scan_mb},
        "make_dataset": {**ds, "seconds": round(ds_s, 1), "peak_rss_mb": ds_mb},
        "time_over_scan": round(ds_s / scan_s, 1),
        "peak_rss_over_scan": round(ds_mb / scan_mb, 1),
        "pupil_years_per_second": round(ds["rows"] / ds_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale", action="store_true", help="benchmark (b): 1,000,000 pupil-years"
    )
    parser.add_argument(
        "--pupils",
        type=int,
        default=None,
        help="pupils on roll per year (default 50,000; 250,000 with --scale)",
    )
    parser.add_argument(
        "--data", type=Path, default=None, help="an existing LA folder to use"
    )
    parser.add_argument(
        "--keep", type=Path, default=None, help="write the generated LA here"
    )
    parser.add_argument(
        "--memory-limit", default="1GB", help="DuckDB memory limit (--scale)"
    )
    args = parser.parse_args()

    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "load_average_before": os.getloadavg(),
    }
    work = args.data or args.keep or Path(tempfile.mkdtemp(prefix="features-bench-"))
    try:
        if args.scale:
            pupils = args.pupils or 250_000
            if args.data is None:
                info["synth"] = _synth(
                    work, pupils=pupils, years=4, first_year=2021, seed=11
                )
            result = {
                "benchmark": "scale",
                "pupils_per_year": pupils,
                "years": 4,
                **info,
                **scale(work, memory_limit=args.memory_limit),
            }
            out = RESULTS / "features_scale.json"
        else:
            pupils = args.pupils or 50_000
            if args.data is None:
                info["synth"] = _synth(
                    work, pupils=pupils, years=1, first_year=2023, seed=7
                )
            result = {
                "benchmark": "one_la_year",
                "pupils_per_year": pupils,
                **info,
                **one_la_year(work, as_of=date(2024, 9, 1)),
            }
            out = RESULTS / "features.json"
    finally:
        if args.data is None and args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    result["load_average_after"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, default=str) + "\n")
    os.replace(tmp, out)
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
