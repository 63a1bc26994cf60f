"""LightGBM fits with OpenMP threads that spin (the default) or sleep while waiting.

cmerisk sets ``OMP_WAIT_POLICY=PASSIVE`` on import (see ``cmerisk/__init__.py``).
This times the same fits (100,000 rows, 45 features, depths 3/4/6, 100 rounds each)
in fresh processes with each policy, on an idle machine and with 1 and 2 busy
processes competing for the cores, and reports passive / active time ratios::

    python -m benchmarks.omp_benchmark

Results go to ``benchmarks/results/omp.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "omp.json"

FIT = """
import time, numpy as np, lightgbm as lgb
rng = np.random.default_rng(0)
X = rng.normal(size=(100_000, 45)); y = (X[:, 0] + rng.normal(size=100_000) > 2.5)
t = time.perf_counter()
for depth in (3, 4, 6):
    lgb.train({"objective": "binary", "max_depth": depth, "num_leaves": 15,
               "verbose": -1}, lgb.Dataset(X, y.astype(int)), num_boost_round=100)
print(time.perf_counter() - t)
"""
HOG = "import time\nend = time.time() + 600\nwhile time.time() < end: pass\n"


def _fit(policy: str) -> float:
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    out = subprocess.run(
        [sys.executable, "-c", FIT], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip())


def main() -> None:
    results: dict[str, object] = {"cpu_count": os.cpu_count(), "runs": []}
    results["load_average_before"] = list(os.getloadavg())
    for hogs in (0, 1, 2):
        procs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(hogs)]
        try:
            time.sleep(1 if hogs else 0)
            active = min(_fit("ACTIVE") for _ in range(2 if hogs == 0 else 1))
            passive = min(_fit("PASSIVE") for _ in range(2 if hogs == 0 else 1))
        finally:
            for p in procs:
                p.kill()
        row = {
            "busy_processes": hogs,
            "active_seconds": round(active, 2),
            "passive_seconds": round(passive, 2),
            "passive_over_active": round(passive / active, 2),
        }
        print(row, flush=True)
        results["runs"].append(row)  # type: ignore[union-attr]
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
