"""Frouros 0.9.0 KS / chi-square per column on the benchmark data; run in bench/.venvs/frouros.

Times, for every column, ``fit`` on reference + ``compare`` on current: ``KSTest`` for
numerical columns, ``ChiSquareTest`` for categorical ones; flagged when p < 0.05.
Prints one JSON line: {peer, version, seconds, cpu_seconds (medians of the runs), runs, flagged,
peak_mb}; peak_mb is the peak RSS during the runs minus the RSS once the data is loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("DO_NOT_TRACK", "1")

import numpy as np
import pandas as pd
from frouros.detectors.data_drift import ChiSquareTest, KSTest

PEER = "frouros"
ALPHA = 0.05


def drift(reference: pd.DataFrame, current: pd.DataFrame, num: list[str], cat: list[str]):
    p_values = {}
    for cols, test in ((num, KSTest), (cat, ChiSquareTest)):
        for col in cols:
            detector = test()
            detector.fit(X=reference[col].to_numpy())
            result, _ = detector.compare(X=current[col].to_numpy())
            p_values[col] = float(result.p_value)
    return p_values


def flagged(result) -> list[str]:
    return [col for col, p in result.items() if p < ALPHA]


# ---- shared runner boilerplate (identical in every run_<peer>.py) ----
def _status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key))


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _tiny() -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
    rng = np.random.default_rng(0)
    frames = [
        pd.DataFrame(
            {
                "x": rng.normal(shift, 1, 2000),
                "k": rng.poisson(3, 2000),
                "c": rng.choice(np.array(["a", "b", "c"], dtype=object), 2000),
            }
        )
        for shift in (0.0, 1.0)
    ]
    return frames[0], frames[1], ["x", "k"], ["c"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--reference")
    p.add_argument("--current")
    p.add_argument("--numerical", default="")
    p.add_argument("--categorical", default="")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--budget", type=float, default=0.0, help="stop repeating once this many seconds are spent"
    )
    p.add_argument("--check", action="store_true", help="smoke test on tiny data")
    a = p.parse_args()
    tiny = _tiny()
    drift(*tiny)  # warm-up: first-call costs (lazy imports, caches) are not drift work
    if a.check:
        reference, current, num, cat = tiny
        a.repeats = 1
    else:
        reference, current = pd.read_parquet(a.reference), pd.read_parquet(a.current)
        num = [c for c in a.numerical.split(",") if c]
        cat = [c for c in a.categorical.split(",") if c]
    baseline_kb = _status_kb("VmRSS:")
    can_peak = _reset_peak()
    runs, cpu, result = [], [], None
    for _ in range(a.repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        result = drift(reference, current, num, cat)
        runs.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        if a.budget and sum(runs) >= a.budget:
            break
    peak_mb = (_status_kb("VmHWM:") - baseline_kb) / 1024 if can_peak else None
    print(
        json.dumps(
            {
                "peer": PEER,
                "version": _version(),
                "seconds": statistics.median(runs),
                "cpu_seconds": statistics.median(cpu),
                "runs": runs,
                "flagged": flagged(result),
                "peak_mb": peak_mb,
            }
        )
    )


def _version() -> str:
    from importlib.metadata import version

    return version(PEER)


if __name__ == "__main__":
    main()
