"""What one window's multivariate drift costs on the server, by window size.

A model with a 10-feature reference takes ``--rows`` events per window size in requests of
``--batch`` rows (SQLite in a temporary folder, the server's own ingest path). For each
window the figures are:

- multivariate: ``Monitor.series(metric="multivariate_drift")`` on a fresh process state
  (nothing cached: the stored PCA is loaded, the classifier's reference side encoded, the
  window sampled, read and cross-validated), then the same call again (the result cache);
- baseline, in the same run: ``Monitor.series(metric="drift")`` for the same window (a merge
  of bucket profiles), and the ratio.

The sample is bounded (``AIWARDEN_MULTIVARIATE_ROWS``, default 1,000 rows a side), so the
multivariate figure should stay flat as the window grows; the event batches read grow only
with the sample, not with the window.

    .venv/bin/python bench/multivariate_window.py [--sizes 2000,20000,100000] [--rows 1000]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiwarden.monitoring.service import Monitor, MonitorSettings
from aiwarden.store.database import Database, default_url


def frame(n: int, seed: int, rho: float = 0.8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 10))
    z[:, 1] = rho * z[:, 0] + np.sqrt(1 - rho**2) * z[:, 1]
    return {f"x{i}": z[:, i] for i in range(10)}


def timed(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="2000,20000,100000")
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--rows", type=int, default=1000, help="AIWARDEN_MULTIVARIATE_ROWS")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, SQLite, {args.rows} rows a side")
    with tempfile.TemporaryDirectory() as tmp:
        url = default_url(Path(tmp))
        db = Database(url)
        db.migrate()
        mon = Monitor(db)
        mon.create_model("m")
        mon.upload_reference("m", "v1", pa.table(frame(5000, 0)))
        now = time.time()
        spans = []
        offset = 0.0
        for k, n in enumerate(sizes):
            data = frame(n, k + 1, rho=-0.8)  # a flipped correlation: drift in every window
            span = n / 100  # 100 events a second
            start = now - 7 * 86400 + offset
            offset += span + 3600
            for i in range(0, n, args.batch):
                j = min(n, i + args.batch)
                rows = [{"prediction_id": f"w{k}-{r}", "timestamp": start + r / 100,
                         "features": {c: float(v[r]) for c, v in data.items()}}
                        for r in range(i, j)]
                mon.log_predictions("m", rows)
            spans.append((start, start + span + 60))
        print(f"{'window rows':>12} {'cold s':>8} {'cached s':>9} {'drift s':>8} "
              f"{'cold/drift':>10} {'AUC':>6} {'sampled':>8}")
        for n, (s, e) in zip(sizes, spans, strict=True):
            # a new process state: nothing decoded, nothing cached
            fresh = Monitor(db, MonitorSettings(multivariate_rows=args.rows))
            out: dict = {}
            cold = timed(lambda f=fresh, s=s, e=e, out=out: out.update(f.series(
                "m", "multivariate_drift", start=s, end=e)))
            cached = timed(lambda f=fresh, s=s, e=e: f.series(
                "m", "multivariate_drift", start=s, end=e), 3)
            base = timed(lambda f=fresh, s=s, e=e: f.series("m", "drift", start=s, end=e), 3)
            v = out["points"][0]["value"]
            print(f"{n:>12,} {cold:>8.3f} {cached:>9.4f} {base:>8.3f} {cold / base:>10.1f} "
                  f"{v['auc']:>6.3f} {v['n_current']:>8}")
        db.dispose()


if __name__ == "__main__":
    main()
