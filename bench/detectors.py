"""Stream drift detectors: per-event cost of aiwarden's ADWIN / Page–Hinkley / DDM vs river's.

On one seeded stream of 1,000,000 events (a Gaussian metric with four mean shifts for ADWIN and
Page–Hinkley; a 0/1 error stream with four rate changes for DDM) it times, in the same run:

* river: ``update(x)`` then reading ``drift_detected``, once per event (river has no batch API);
* aiwarden ``update``: the same loop over our detector;
* aiwarden ``detect``: the whole stream in one call (validation vectorised, tight loop; for
  ADWIN the numba-compiled loop when numba is installed);
* for ADWIN, a second row with both of ours on the Python path, as without numba;

and prints microseconds of CPU time per event, wall time on the line below each
(``time.process_time``: steadier than wall time
on a shared machine), the ratio river / ours (> 1 means we are faster) and whether the
detection indices are identical. Timings are medians of ``--repeats`` runs, interleaved; the
compiled loop is warmed up first and its one-off cost (numba import, compile or cache load)
printed apart.

Usage::

    .venv/bin/python bench/detectors.py
    .venv/bin/python bench/detectors.py --events 200000 --repeats 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from river import drift

import aiwarden.engine.detectors._adwin as adwin_module
from aiwarden.engine.detectors import ADWIN, DDM, DriftDetector, PageHinkley
from aiwarden.engine.detectors._adwin_kernel import kernel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_line

SEED = 20240611


def metric_stream(n: int) -> np.ndarray:
    rng = np.random.default_rng(SEED)
    means = np.repeat([0.0, 0.4, -0.2, 0.3, 0.0], -(-n // 5))[:n]
    return means + rng.normal(0.0, 0.1, n)


def error_stream(n: int) -> np.ndarray:
    rng = np.random.default_rng(SEED + 1)
    rates = np.repeat([0.05, 0.15, 0.05, 0.3, 0.1], -(-n // 5))[:n]
    return (rng.random(n) < rates).astype(np.float64)


def loop(detector: object, values: list[float]) -> tuple[float, float, list[int]]:
    """CPU and wall seconds for one update + flag read per event, and the indices fired."""
    update = detector.update  # type: ignore[attr-defined]
    fired = []
    start, wall = time.process_time(), time.perf_counter()
    for i, x in enumerate(values):
        update(x)
        if detector.drift_detected:  # type: ignore[attr-defined]
            fired.append(i)
    return time.process_time() - start, time.perf_counter() - wall, fired


def batch(detector: DriftDetector, stream: np.ndarray) -> tuple[float, float, list[int]]:
    start, wall = time.process_time(), time.perf_counter()
    fired = detector.detect(stream)
    return time.process_time() - start, time.perf_counter() - wall, fired


def python_adwin() -> ADWIN:
    """ADWIN on its Python loop, as without numba (``update`` and ``detect``)."""
    detector = ADWIN()
    detector._run = None
    return detector


CASES: list[tuple[str, Callable[[], object], Callable[[], DriftDetector], str]] = [
    ("ADWIN", drift.ADWIN, ADWIN, "metric"),
    (
        "PageHinkley",
        lambda: drift.PageHinkley(threshold=20.0),
        lambda: PageHinkley(threshold=20.0),
        "metric",
    ),
    ("DDM", drift.binary.DDM, DDM, "errors"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    streams = {"metric": metric_stream(args.events), "errors": error_stream(args.events)}
    lists = {key: value.tolist() for key, value in streams.items()}
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(f"detector benchmark, {when} — {machine_line()}")
    start = time.perf_counter()
    compiled = kernel() is not None
    if compiled:
        ADWIN().detect(np.zeros(adwin_module._KERNEL_MIN))  # the first use pays the set-up
        print(f"ADWIN's compiled loop: numba; first use {time.perf_counter() - start:.2f} s "
              "wall (import, then compile or cache load: once per process)")
    else:
        print("ADWIN's compiled loop: not available (numba is not installed)")
    print(f"{args.events:,} events per stream, median of {args.repeats} "
          "(microseconds of CPU time per event)\n")
    header = (
        f"{'detector':<18} {'river':>8} {'ours upd':>9} {'ours det':>9} "
        f"{'river/upd':>10} {'river/det':>10} {'detections':>11} {'same':>5}"
    )
    print(header)
    print("-" * len(header))
    cases = list(CASES)
    if compiled:
        cases.insert(1, ("ADWIN (no numba)", drift.ADWIN, python_adwin, "metric"))
    for label, make_river, make_ours, kind in cases:
        times: dict[str, list[float]] = {"river": [], "update": [], "detect": []}
        walls: dict[str, list[float]] = {"river": [], "update": [], "detect": []}
        found: dict[str, list[int]] = {}
        for _ in range(args.repeats):
            runs = (
                ("river", loop, make_river, lists[kind]),
                ("update", loop, make_ours, lists[kind]),
                ("detect", batch, make_ours, streams[kind]),
            )
            for key, timer, make, data in runs:
                seconds, wall, found[key] = timer(make(), data)  # type: ignore[operator]
                times[key].append(seconds)
                walls[key].append(wall)
        per_event = {key: 1e6 * statistics.median(ts) / args.events for key, ts in times.items()}
        wall = {key: 1e6 * statistics.median(ts) / args.events for key, ts in walls.items()}
        same = found["river"] == found["update"] == found["detect"]
        print(
            f"{label:<18} {per_event['river']:8.3f} {per_event['update']:9.3f} "
            f"{per_event['detect']:9.3f} {per_event['river'] / per_event['update']:10.2f} "
            f"{per_event['river'] / per_event['detect']:10.2f} {len(found['river']):11d} "
            f"{'yes' if same else 'NO':>5}"
        )
        print(
            f"{'  (wall)':<18} {wall['river']:8.3f} {wall['update']:9.3f} "
            f"{wall['detect']:9.3f} {wall['river'] / wall['update']:10.2f} "
            f"{wall['river'] / wall['detect']:10.2f}"
        )
    print(f"\nload average after the run: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
