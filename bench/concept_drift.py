"""What feeding the concept-drift detectors costs the server, next to what the detectors
alone cost on the same outcomes (the floor) and what ingesting them cost.

One binary model on SQLite, ``--rows`` predictions in batches of 10,000 with their labels,
then one catch-up cycle (``ConceptDrift.feed_model``: read the rows past the watermark,
join their labels, score each row, run ADWIN + DDM + Page-Hinkley, swap the state) and a
steady cycle (the next 10,000 rows only). The baseline, in the same run, is the engine's
three detectors on the outcome array already in memory.

``--false-alarms`` instead counts each detector's alarms on seeded stationary 0/1 error
streams (50 x 20,000 outcomes at error rate 0.1): why ADWIN alone is the default.

    .venv/bin/python bench/concept_drift.py [--rows 100000] [--false-alarms]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiwarden.engine.detectors import make_detector
from aiwarden.monitoring.concept_drift import ConceptDrift, FeedReport
from aiwarden.monitoring.service import Monitor
from aiwarden.store.database import Database
from tests.server.conftest import HINTS, scored_frame

DETECTORS = {"adwin": {}, "ddm": {"warm_start": 1000}, "page_hinkley": {}}
BATCH = 10_000


def _log(mon: Monitor, errors: np.ndarray, t0: float, lo: int, hi: int) -> float:
    started = time.perf_counter()
    for k in range(lo, hi, BATCH):
        idx = np.arange(k, min(k + BATCH, hi))
        mon.log_predictions("m", pa.table({
            "prediction_id": [f"p{i}" for i in idx], "timestamp": t0 + idx * 0.5,
            "x": np.full(len(idx), 0.1), "c": ["a"] * len(idx),
            "pred": np.ones(len(idx), np.int64), "score": np.full(len(idx), 0.7)}))
        mon.log_labels("m", pa.table({"prediction_id": [f"p{i}" for i in idx],
                                      "label": (1 - errors[idx]).astype(np.int64)}))
    return time.perf_counter() - started


def false_alarms(streams: int = 50, length: int = 20_000, rate: float = 0.1) -> None:
    setups = {"adwin": {}, "page_hinkley": {}, "ddm": {}, "ddm warm_start=1000":
              {"warm_start": 1000}}
    counts = dict.fromkeys(setups, 0)
    for seed in range(streams):
        stream = (np.random.default_rng(100 + seed).random(length) < rate).astype(float)
        for label, params in setups.items():
            counts[label] += len(make_detector(label.split()[0], **params).detect(stream))
    per = 1_000_000 / (streams * length)
    print(f"false alarms per 1,000,000 stationary outcomes (error rate {rate}, "
          f"{streams} seeded streams of {length:,}):")
    for label, n in counts.items():
        print(f"  {label:22s} {n * per:6.1f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--false-alarms", action="store_true")
    args = ap.parse_args()
    if args.false_alarms:
        false_alarms()
        return
    n = args.rows
    rng = np.random.default_rng(0)
    errors = (rng.random(n + BATCH) < np.where(np.arange(n + BATCH) < n // 2, 0.1, 0.3)
              ).astype(float)
    with tempfile.TemporaryDirectory() as tmp:
        mon = Monitor(Database(f"sqlite:///{tmp}/b.db"))
        mon.db.migrate()
        mon.create_model("m")
        mon.upload_reference("m", "v1", pa.Table.from_pandas(scored_frame(2000),
                                                             preserve_index=False), HINTS)
        concept = ConceptDrift(mon.db, mon.refs)
        concept.put_settings("m", {"label_delay": "0s", "detectors": DETECTORS})
        t0 = time.time() - 2 * (n + BATCH)
        ingest = _log(mon, errors, t0, 0, n)
        m = mon.model("m")
        started = time.perf_counter()
        report = FeedReport()
        concept.feed_model(m, t0 + n * 0.5, report)
        catch_up = time.perf_counter() - started
        _log(mon, errors, t0, n, n + BATCH)
        started = time.perf_counter()
        steady = FeedReport()
        concept.feed_model(m, t0 + (n + BATCH) * 0.5, steady)
        steady_s = time.perf_counter() - started
        started = time.perf_counter()
        alone = {k: make_detector(k, **p).detect(errors[:n]) for k, p in DETECTORS.items()}
        floor = time.perf_counter() - started
        mon.db.dispose()
    assert report.outcomes == n and steady.outcomes == BATCH
    found = sorted((p["detector"], p["position"]) for p in report.change_points)
    assert found == sorted((k, i) for k, v in alone.items() for i in v), "not the engine's"
    print(f"{n:,} outcomes, detectors {sorted(DETECTORS)}, SQLite")
    print("| step | seconds | per 1,000 outcomes (ms) | vs detectors alone |")
    print("|---|---:|---:|---:|")
    for label, s, k in (("ingest predictions + labels", ingest, n),
                        ("catch-up cycle (all rows)", catch_up, n),
                        (f"steady cycle ({BATCH:,} new)", steady_s, BATCH),
                        ("baseline: detectors alone on the array", floor, n)):
        print(f"| {label} | {s:.2f} | {1e6 * s / k:.2f} | "
              f"{s / k / (floor / n):.1f}x |")


if __name__ == "__main__":
    main()
