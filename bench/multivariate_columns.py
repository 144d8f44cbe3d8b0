"""The multivariate PCA fit at reference upload against the number of columns: linear.

The fit once built a columns x columns scatter matrix per reference chunk (4,900 columns x
1,000 rows: more than 10 minutes at 11 GB). For each width this fits
``PCAReconstructionDrift`` (what ``multivariate_window.fit_state`` runs at upload) on the same
seeded rows of independent standard-normal columns (the worst case: the most components, up
to the 100-component bound) and prints seconds, peak traced memory, and the growth per
doubling of the columns against the previous width of the same run (2 = linear, 4 =
quadratic). Keep every width above 500 and the rows above 500 so every fit takes the same
(randomized SVD) path.

Usage::

    .venv/bin/python bench/multivariate_columns.py
    .venv/bin/python bench/multivariate_columns.py --columns 1000 2000 4000 --rows 1000
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
import pandas as pd


def _fit(columns: int, rows: int) -> tuple[float, int]:
    from aiwarden.engine.multivariate import PCAReconstructionDrift

    rng = np.random.default_rng(columns)
    df = pd.DataFrame(rng.normal(size=(rows, columns)), columns=[f"f{i}" for i in range(columns)])
    tracemalloc.start()
    try:
        start = time.perf_counter()
        PCAReconstructionDrift().fit(df)
        return time.perf_counter() - start, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--columns", type=int, nargs="+", default=[1000, 2000, 4000])
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args()
    print(f"{'columns':>8} {'fit s':>8} {'ratio':>6} {'peak MB':>8} {'ratio':>6}")
    prev: tuple[int, float, int] | None = None
    for n in sorted(args.columns):
        secs, peak = _fit(n, args.rows)
        if prev is None:
            r_t = r_m = "-"
        else:
            per = np.log(2) / np.log(n / prev[0])  # ratios per doubling whatever the step
            r_t, r_m = f"{(secs / prev[1]) ** per:.2f}", f"{(peak / prev[2]) ** per:.2f}"
        print(f"{n:>8} {secs:>8.2f} {r_t:>6} {peak / 2**20:>8.1f} {r_m:>6}", flush=True)
        prev = (n, secs, peak)
    print("ratio: growth per doubling of the columns (2 = linear, 4 = quadratic)")


if __name__ == "__main__":
    main()
