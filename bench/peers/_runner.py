"""Shared harness of the ``bench/peers/run_<peer>.py`` scripts (and of ``bench/engine.py``).

Each runner executes inside its peer's own venv (``bench/.venvs/<peer>``), so this module
imports only the standard library, numpy and pandas (+ pyarrow for ``read_parquet``). A runner
finds it by path::

    sys.path.insert(0, str(Path(__file__).parent))
    from _runner import run

and calls ``run(PEER, drift, flagged, __doc__)`` with its peer-specific drift call.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import numpy as np
import pandas as pd

# Appended to each runner's docstring in its --help.
OUTPUT = """Prints one JSON line: {peer, version, seconds, cpu_seconds (medians of the runs), runs,
flagged, peak_mb}; peak_mb is the peak RSS during the runs minus the RSS once the data is loaded.
"""

Drift = Callable[[pd.DataFrame, pd.DataFrame, list[str], list[str]], Any]


def status_kb(key: str) -> int:
    """A ``/proc/self/status`` field in kB, e.g. ``VmRSS:`` or ``VmHWM:``."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key))


def reset_peak() -> bool:
    """Reset VmHWM (Linux >= 4.0) so the peak excludes loading the data."""
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


def run(
    peer: str,
    drift: Drift,
    flagged: Callable[[Any], list[str]],
    description: str | None = None,
) -> None:
    """Parse the runner's arguments, time ``drift`` and print one JSON line on stdout."""
    p = argparse.ArgumentParser(description=f"{description or ''}\n{OUTPUT}")
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
    baseline_kb = status_kb("VmRSS:")
    can_peak = reset_peak()
    runs, cpu, result = [], [], None
    for _ in range(a.repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        result = drift(reference, current, num, cat)
        runs.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        if a.budget and sum(runs) >= a.budget:
            break
    peak_mb = (status_kb("VmHWM:") - baseline_kb) / 1024 if can_peak else None
    print(
        json.dumps(
            {
                "peer": peer,
                "version": version(peer),
                "seconds": statistics.median(runs),
                "cpu_seconds": statistics.median(cpu),
                "runs": runs,
                "flagged": flagged(result),
                "peak_mb": peak_mb,
            }
        )
    )
