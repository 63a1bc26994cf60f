"""cmerisk: find children at risk of going missing from education before it happens.

Importing cmerisk asks OpenMP (LightGBM's threads) to sleep rather than spin while
waiting for work, unless ``OMP_WAIT_POLICY`` is already set. LA servers, CI runners
and ``pytest -n 2`` share their cores. On the 2-core development machine
(``python -m benchmarks.omp_benchmark``), the same LightGBM fits took 0.59-0.73x the
time with sleeping threads when one or two other busy processes competed (spinning
ones once took 94 s against 6 s), and 1.08-1.16x on an idle machine.
It takes effect when cmerisk is imported before LightGBM.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
