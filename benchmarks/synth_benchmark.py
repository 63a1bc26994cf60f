"""How fast does ``cmerisk synth`` write session marks, against plain random rows?

The synthetic LA simulates pupils week by week, paints their session marks a
chunk of pupils at a time and streams each chunk to a Parquet part. Its cost
is reported as ratios against a baseline any writer of the same table pays:
numpy drawing the same number of random mark rows (same columns, same
dictionary encoding, same part size and compression) and pyarrow writing them.
Each run happens in a fresh child process whose peak memory is sampled with
psutil, so the peak belongs to that run alone.

Run::

    python -m benchmarks.synth_benchmark                        # 100,000 pupil-years
    python -m benchmarks.synth_benchmark --pupil-years 1000000  # ~380 M marks

Results go to ``benchmarks/results/synth.json``. The machine may be shared:
absolute times vary with its load (recorded), the ratios less so.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pyarrow as pa

RESULTS = Path(__file__).parent / "results" / "synth.json"
KEY = b"benchmark-key-not-secret-0123456789"


def _synth(out: str, pupils: int, years: int, seed: int) -> dict[str, Any]:
    from cmerisk.data.synthetic import generate_la

    summary = generate_la(Path(out), pupils=pupils, years=years, seed=seed, key=KEY)
    return {
        "marks": summary.rows["attendance"],
        "parts": summary.attendance_parts,
        "pupils_seen": summary.pupils,
        "rows": summary.rows,
    }


def _baseline(out: str, marks: int, parts: int, seed: int) -> dict[str, Any]:
    """Random mark rows of the same shape, written as the same number of parts."""
    from cmerisk.data.synthetic.attendance import CODE_DICTIONARY, SESSIONS
    from cmerisk.data.synthetic.writer import write_table

    rng = np.random.default_rng(seed)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    per_part = -(-marks // parts)
    ids = pa.array([f"{x:024x}" for x in rng.integers(0, 2**62, 10_000)])
    urns = pa.array([str(100_000 + i) for i in range(300)])
    written = 0
    for i in range(parts):
        n = min(per_part, marks - written)
        table = pa.table(
            {
                "pupil_id": pa.DictionaryArray.from_arrays(
                    pa.array(np.sort(rng.integers(0, len(ids), n)).astype(np.int32)),
                    ids,
                ),
                "school_urn": pa.DictionaryArray.from_arrays(
                    pa.array(rng.integers(0, len(urns), n).astype(np.int32)), urns
                ),
                "date": pa.array(
                    (19_000 + np.sort(rng.integers(0, 365, n))).astype(np.int32)
                ).view(pa.date32()),
                "session": pa.DictionaryArray.from_arrays(
                    pa.array((np.arange(n) % 2).astype(np.int8)), SESSIONS
                ),
                "code": pa.DictionaryArray.from_arrays(
                    pa.array(rng.integers(0, len(CODE_DICTIONARY), n).astype(np.int8)),
                    CODE_DICTIONARY,
                ),
            }
        )
        write_table(table, folder / f"part-{i:05d}.parquet", store_schema=False)
        written += n
    return {"marks": written, "parts": parts}


def _child(target: Any, args: tuple, queue: mp.Queue) -> None:
    queue.put(target(*args))


def measure(target: Any, *args: Any) -> dict[str, Any]:
    """Run ``target(*args)`` in a child process; wall time and sampled peak RSS (MB)."""
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    start = time.perf_counter()
    proc = ctx.Process(target=_child, args=(target, args, queue))
    proc.start()
    peak, stop = 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        ps = psutil.Process(proc.pid)
        while not stop.is_set():
            with contextlib.suppress(psutil.Error):
                children = ps.children(recursive=True)
                peak = max(
                    peak,
                    ps.memory_info().rss + sum(c.memory_info().rss for c in children),
                )
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    result = queue.get()
    proc.join()
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    if proc.exitcode != 0:
        raise RuntimeError(f"{target.__name__} failed with exit code {proc.exitcode}")
    return {**result, "seconds": seconds, "peak_rss_mb": peak / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pupil-years", type=int, default=100_000)
    parser.add_argument("--years", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=None, help="where to write (default: a temp folder)"
    )
    args = parser.parse_args()
    pupils = args.pupil_years // args.years
    work = Path(tempfile.mkdtemp(prefix="synth-bench-", dir=args.out))
    load_before = os.getloadavg()
    try:
        synth = measure(_synth, str(work / "la"), pupils, args.years, args.seed)
        base = measure(
            _baseline, str(work / "baseline"), synth["marks"], synth["parts"], args.seed
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "pupils_per_year": pupils,
        "years": args.years,
        "pupil_years": pupils * args.years,
        "cpu_count": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "synth": synth,
        "baseline_random_rows_to_parquet": base,
        "marks_per_second": synth["marks"] / synth["seconds"],
        "baseline_marks_per_second": base["marks"] / base["seconds"],
        "time_ratio_vs_baseline": synth["seconds"] / base["seconds"],
        "peak_memory_ratio_vs_baseline": synth["peak_rss_mb"] / base["peak_rss_mb"],
        "goals": {"peak_rss_mb_below": 4096, "seconds_below": 900},
        "note": "shared 2-core machine: absolute times depend on its load",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps(
            {
                k: v
                for k, v in result.items()
                if k not in ("synth", "baseline_random_rows_to_parquet")
            },
            indent=2,
        )
    )
    print(
        f"synth: {synth['marks']:,} marks in {synth['seconds']:.0f} s, "
        f"peak {synth['peak_rss_mb']:.0f} MB; "
        f"baseline: {base['seconds']:.0f} s, peak {base['peak_rss_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
