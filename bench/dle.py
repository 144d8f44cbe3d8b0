"""DLE's cost: thread count, folds and rows of the fit, and scoring a window (issue 12, pt 1).

An earlier run on a busy 2-core host fitted 13x slower with the boosting's default thread
pool than with one thread (oversubscription), which is why ``DLE(n_threads=1)`` is the
default. This prints, in one run on this machine: the fit with 1 thread against the
library default (and the ratio), the reference's configuration (3 folds, 20,000 rows)
against DLE's notebook default (5 folds, 50,000 rows) with their estimates next to the
realised MAE, and the cost of scoring a 2,000-row window. Medians of ``--repeats`` runs;
not a test (timings belong here).

    .venv/bin/python bench/dle.py [--rows 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from aiwarden.engine._accumulators import DLE_FOLDS, DLE_MAX_ROWS
from aiwarden.engine.dle import DLE


def _data(n: int, seed: int, widen: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    x[:, 1] *= widen
    y = 2 * x[:, 0] + rng.normal(size=n) * (0.3 + np.abs(x[:, 1]))
    return x, y, 2 * x[:, 0]


def _median_seconds(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    x, y, pred = _data(args.rows, 0)
    xc, yc, pc = _data(20_000, 1, widen=1.5)  # covariate shift: the error grows
    realised = float(np.abs(yc - pc).mean())
    print(f"host: {os.cpu_count()} cores; reference {args.rows:,} rows; "
          f"median of {args.repeats}")

    one, fitted = _median_seconds(
        lambda: DLE(n_folds=DLE_FOLDS, max_rows=DLE_MAX_ROWS, n_threads=1).fit(x, y, pred),
        args.repeats)
    every, _ = _median_seconds(
        lambda: DLE(n_folds=DLE_FOLDS, max_rows=DLE_MAX_ROWS, n_threads=None).fit(x, y, pred),
        args.repeats)
    print(f"fit, reference configuration ({DLE_FOLDS} folds, {DLE_MAX_ROWS:,} rows):")
    print(f"  n_threads=1     {one:7.2f} s")
    print(f"  n_threads=None  {every:7.2f} s   ratio default/one thread {every / one:5.2f}x")

    notebook, big = _median_seconds(lambda: DLE().fit(x, y, pred), 1)
    print(f"fit, DLE() defaults (5 folds, 50,000 rows): {notebook:7.2f} s "
          f"({notebook / one:4.1f}x the reference configuration)")
    for label, d in (("reference configuration", fitted), ("DLE() defaults", big)):
        est = d.estimate(d.accumulate(xc, pc)).metrics["mae"]
        print(f"  {label:<24} estimated MAE {est.estimate:.4f} "
              f"[{est.lower:.4f}, {est.upper:.4f}]  realised {realised:.4f}")

    window, _ = _median_seconds(lambda: fitted.accumulate(xc[:2000], pc[:2000]), args.repeats)
    print(f"score a 2,000-row window (numpy trees, no thread pool): {window * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
