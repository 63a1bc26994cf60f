"""How fast does ``validate_folder`` check an LA, against a plain DuckDB scan?

Validation of session marks is SQL over their Parquet files. Its cost is
reported as ratios against two baselines in fresh processes: one plain DuckDB
pass over the same files (row count, distinct pupils, date range), and the
textbook check of one key, grouping every mark by (pupil, date, session).
Each run happens in a fresh child process so that peak memory (sampled with
psutil) belongs to that run alone.

Run::

    python -m benchmarks.validate_benchmark                  # 50,000 pupils, 1 year
    python -m benchmarks.validate_benchmark --data DIR       # an existing LA folder
    python -m benchmarks.validate_benchmark --pupils 5000    # quick

Results go to ``benchmarks/results/validate.json``. The machine may be shared:
absolute times vary, the ratios less so.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

RESULTS = Path(__file__).parent / "results" / "validate.json"

CODES = np.array(["/", "\\", "L", "I", "M", "N", "O", "G", "U", "C", "B", "E", "#"])
WEIGHTS = np.array(
    [0.44, 0.44, 0.02, 0.04, 0.005, 0.01, 0.01, 0.01, 0.003, 0.01, 0.005, 0.001, 0.006]
)


def school_days(start: date, n: int) -> list[date]:
    days, d = [], start
    while len(days) < n:
        if d.weekday() < 5:
            days.append(d)
        d += timedelta(days=1)
    return days


def make_la(folder: Path, *, pupils: int, seed: int = 0, chunk: int = 5_000) -> int:
    """Write a plain random LA: pupils, census, roll changes, one year of marks."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"{x:024x}" for x in rng.integers(0, 2**62, size=pupils)])
    urns = np.array([f"{100000 + i}" for i in range(max(1, pupils // 250))])
    school = urns[rng.integers(0, len(urns), size=pupils)]
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "pupil_id": ids,
            "date_of_birth": pd.to_datetime("2008-09-01")
            + pd.to_timedelta(rng.integers(0, 12 * 365, size=pupils), unit="D"),
            "sex": rng.choice(["F", "M"], size=pupils),
            "ethnicity_major": rng.choice(
                ["White", "Asian", "Black", "Mixed"], size=pupils
            ),
            "idaci_decile": rng.integers(1, 11, size=pupils),
        }
    ).to_parquet(folder / "pupils.parquet", index=False)
    census_dates = pd.to_datetime(["2023-10-05", "2024-01-18", "2024-05-16"])
    pd.DataFrame(
        {
            "pupil_id": np.tile(ids, 3),
            "census_date": np.repeat(census_dates, pupils),
            "school_urn": np.tile(school, 3),
            "school_phase": "primary",
            "nc_year": np.tile(
                rng.choice(["R", *map(str, range(1, 12))], size=pupils), 3
            ),
            "fsm_eligible": np.tile(rng.random(pupils) < 0.25, 3),
            "sen_provision": "N",
            "sen_primary_need": None,
            "enrolment_status": "C",
        }
    ).to_parquet(folder / "census.parquet", index=False)
    pd.DataFrame(
        {
            "pupil_id": ids,
            "school_urn": school,
            "date": pd.Timestamp("2023-09-01"),
            "change": "admission",
            "deletion_ground": None,
            "destination_known": None,
        }
    ).to_parquet(folder / "roll_changes.parquet", index=False)
    days = np.array(school_days(date(2023, 9, 4), 190), dtype="datetime64[D]")
    (folder / "attendance").mkdir(exist_ok=True)
    rows = 0
    for part, lo in enumerate(range(0, pupils, chunk)):
        n = min(chunk, pupils - lo)
        per = len(days) * 2
        idx = np.repeat(np.arange(lo, lo + n), per)
        table = pa.table(
            {
                "pupil_id": pa.DictionaryArray.from_arrays(
                    pa.array(idx - lo, pa.int32()), pa.array(ids[lo : lo + n])
                ),
                "school_urn": pa.array(school[idx]).dictionary_encode(),
                "date": pa.array(np.tile(np.repeat(days, 2), n)),
                "session": pa.array(
                    np.tile(np.array(["AM", "PM"]), n * len(days))
                ).dictionary_encode(),
                "code": pa.array(
                    rng.choice(CODES, size=n * per, p=WEIGHTS / WEIGHTS.sum())
                ).dictionary_encode(),
            }
        )
        pq.write_table(table, folder / "attendance" / f"part-{part:05d}.parquet")
        rows += table.num_rows
    return rows


def _peak_rss(fn, queue) -> None:
    proc, peak, done = psutil.Process(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.02)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    start = time.perf_counter()
    extra = fn()
    seconds = time.perf_counter() - start
    done.set()
    t.join()
    peak[0] = max(peak[0], proc.memory_info().rss)
    queue.put({"seconds": seconds, "peak_rss_mb": peak[0] / 2**20, **(extra or {})})


def _baseline(folder: str) -> dict:
    """One plain DuckDB scan of the marks: rows, distinct pupils, date range."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    files = sorted(str(p) for p in Path(folder, "attendance").rglob("*.parquet"))
    n, pupils, first, last = con.execute(
        "SELECT count(*), count(DISTINCT pupil_id), min(date), max(date) "
        "FROM read_parquet(?)",
        [files],
    ).fetchall()[0]
    return {"rows": n, "pupils": pupils, "first": str(first), "last": str(last)}


def _key_check(folder: str) -> dict:
    """The textbook key check: group every mark by (pupil, date, session)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    files = sorted(str(p) for p in Path(folder, "attendance").rglob("*.parquet"))
    (dups,) = con.execute(
        "SELECT count(*) FROM (SELECT pupil_id, date, session FROM read_parquet(?) "
        "GROUP BY ALL HAVING count(*) > 1)",
        [files],
    ).fetchall()[0]
    return {"duplicate_keys": dups}


def _validate(folder: str) -> dict:
    from cmerisk.data.load import validate_folder

    report = validate_folder(Path(folder), as_of=date(2024, 5, 16))
    return {"ok": report.ok, "findings": [f.message for f in report.findings][:10]}


def _target_baseline(queue, folder):  # pragma: no cover - runs in a child
    _peak_rss(lambda: _baseline(folder), queue)


def _target_validate(queue, folder):  # pragma: no cover - runs in a child
    _peak_rss(lambda: _validate(folder), queue)


def _target_key_check(queue, folder):  # pragma: no cover - runs in a child
    _peak_rss(lambda: _key_check(folder), queue)


def _spawn(target, folder: Path) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(queue, str(folder)))
    proc.start()
    out = queue.get()
    proc.join()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pupils", type=int, default=50_000)
    parser.add_argument("--data", type=Path, default=None, help="an existing LA folder")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cmerisk-bench-") as tmp:
        folder = args.data or Path(tmp) / "la"
        made = None
        if args.data is None:
            t0 = time.perf_counter()
            rows = make_la(folder, pupils=args.pupils)
            made = {
                "pupils": args.pupils,
                "marks": rows,
                "seconds": time.perf_counter() - t0,
            }
        baseline = _spawn(_target_baseline, folder)
        key_check = _spawn(_target_key_check, folder)
        validate = _spawn(_target_validate, folder)
    marks = baseline["rows"]
    result = {
        "data": str(args.data)
        if args.data
        else "random LA (benchmarks.validate_benchmark.make_la)",
        "generated": made,
        "marks": marks,
        "pupils": baseline["pupils"],
        "cpu_count": psutil.cpu_count(),
        "load_average_1min_at_end": psutil.getloadavg()[0],
        "baseline_duckdb_scan": baseline,
        "baseline_group_by_key": key_check,
        "validate_folder": validate,
        "marks_per_second": marks / validate["seconds"],
        "time_ratio_vs_scan": validate["seconds"] / baseline["seconds"],
        "time_ratio_vs_group_by_key": validate["seconds"] / key_check["seconds"],
        "peak_memory_ratio_vs_scan": validate["peak_rss_mb"] / baseline["peak_rss_mb"],
        "peak_memory_ratio_vs_group_by_key": (
            validate["peak_rss_mb"] / key_check["peak_rss_mb"]
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
