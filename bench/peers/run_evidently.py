"""Evidently 0.7.23 DataDriftPreset on the benchmark data; run inside bench/.venvs/evidently.

Times ``Dataset.from_pandas`` (column types given, not inferred) + ``Report.run`` with the
preset's own method choice and thresholds; a column is flagged when its drift test fails.
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
os.environ.setdefault("EVIDENTLY_DISABLE_TELEMETRY", "1")

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

PEER = "evidently"


def drift(reference: pd.DataFrame, current: pd.DataFrame, num: list[str], cat: list[str]):
    definition = DataDefinition(numerical_columns=num, categorical_columns=cat)
    ref = Dataset.from_pandas(reference, data_definition=definition)
    cur = Dataset.from_pandas(current, data_definition=definition)
    return Report([DataDriftPreset()], include_tests=True).run(current_data=cur, reference_data=ref)


def flagged(snapshot) -> list[str]:
    out = []
    for test in snapshot.dict()["tests"]:
        column = test["metric_config"]["params"].get("column")
        if column is not None and str(getattr(test["status"], "value", test["status"])) == "FAIL":
            out.append(column)
    return out


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
