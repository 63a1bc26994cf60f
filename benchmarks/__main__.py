"""Run the benchmarks, one after another, each in its own process.

::

    python -m benchmarks                 # all of them, at their default sizes
    python -m benchmarks score fairness  # just these
    python -m benchmarks --list

Each benchmark writes its results to ``benchmarks/results/<name>.json`` (replacing the
committed figures) and reports its time and peak memory as ratios against a plain
baseline run in the same process. At default sizes the whole set takes about an hour
on 2 cores (the 1,000,000-pupil scoring run is most of it); pass the module's own
options by running it directly (``python -m benchmarks.score_benchmark --help``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

#: In the order they run: cheap ones first, so a broken set-up shows early.
BENCHMARKS: dict[str, str] = {
    "omp": "LightGBM fits with sleeping vs spinning OpenMP threads, under load",
    "evaluate": "bootstrap CIs of the test-year metrics vs a resampling loop",
    "fairness": "fairness audit vs a numpy loop and fairlearn's bootstrap",
    "validate": "validating one LA-year vs the textbook key check",
    "features": "attendance features in DuckDB vs plain pandas",
    "explain": "explanations vs shap.TreeExplainer, by tree depth",
    "synth": "synthetic LA vs writing the same number of random rows",
    "score": "scoring 100,000 vs 1,000,000 pupils; predict-and-write vs LightGBM",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(BENCHMARKS))
    parser.add_argument("--list", action="store_true", help="list them and stop")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    if args.list:
        for name, what in BENCHMARKS.items():
            print(f"{name:10} {what}")
        return 0
    failed = []
    for name in args.names or list(BENCHMARKS):
        print(f"\n=== {name}: {BENCHMARKS[name]}", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", f"benchmarks.{name}_benchmark"])
        print(f"=== {name}: exit {code} after {time.perf_counter() - start:.0f} s")
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
