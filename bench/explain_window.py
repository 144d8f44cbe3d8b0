"""What a window's feature importance costs on the server, by window size (issue 15: a
1M-event window, sampled, in under 5 s).

A registered skops gradient-boosting model (5 features) gets ``--sizes`` events logged
through the server's ingest path (SQLite in a temporary folder). For each window size:

- server: ``Explanations.importance`` (the REST answer: the seeded sample read from the
  batches that hold it, typed, Tree SHAP, bootstrap intervals, the reference's importance
  from the cache, attribution drift), median of 3 with a new seed each (no cached answer);
- baseline, same run: ``aiwarden.explain.global_importance`` on an in-memory sample of the
  same size (no store), and the ratio.

The figure should stay flat as the window grows: only the sample is read.

    .venv/bin/python bench/explain_window.py [--sizes 10000,100000,1000000] [--sample 500]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._machine import machine_line

FEATURES = ["amount", "age", "hour", "tenure", "noise"]


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"amount": rng.lognormal(3, 1.2, n), "age": rng.uniform(18, 80, n),
                       "hour": rng.integers(0, 24, n).astype(float),
                       "tenure": rng.exponential(400, n), "noise": rng.normal(0, 1, n)})
    logit = 2 * (np.log(df.amount) - 3) - 0.02 * (df.age - 50) + 0.5 * (df.hour < 6)
    df["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return df


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--sample", type=int, default=500)
    args = p.parse_args()
    import skops.io as sio
    from sklearn.ensemble import GradientBoostingClassifier

    from aiwarden.explain import global_importance
    from aiwarden.monitoring.explanations import Explanations
    from aiwarden.monitoring.service import Monitor
    from aiwarden.registry.service import Registry
    from aiwarden.store.database import Database

    print(f"# bench/explain_window.py  {machine_line()}")
    train = frame(5000, 0)
    model = GradientBoostingClassifier(n_estimators=60, max_depth=3, random_state=0).fit(
        train[FEATURES], train.y)
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/bench.db")
        db.migrate()
        mon = Monitor(db)
        reg = Registry(db, f"file://{tmp}/artifacts")
        reg.register("m", sio.dumps(model), format="skops", admin=True, trust=True)
        ref = frame(5000, 1)
        ref["score"] = model.predict_proba(ref[FEATURES])[:, 1]
        ref["pred"] = (ref.score > 0.5).astype(int)
        mon.upload_reference("m", "1", pa.Table.from_pandas(ref, preserve_index=False),
                             {"target": "y", "prediction": "pred", "scores": "score"})
        svc = Explanations(mon, lambda: reg)
        logged, now = 0, time.time()
        print(f"{'window rows':>12} {'server s':>9} {'in-memory s':>12} {'ratio':>6}")
        for size in sorted(int(s) for s in args.sizes.split(",")):
            while logged < size:  # grow the window: events in the last 2 hours
                n = min(50_000, size - logged)
                df = frame(n, 10 + logged)
                df["score"] = model.predict_proba(df[FEATURES])[:, 1]
                df["pred"] = (df.score > 0.5).astype(int)
                df["prediction_id"] = [f"e{logged + i}" for i in range(n)]
                df["timestamp"] = now - 7000 + np.arange(logged, logged + n) * (6000 / 1e6)
                df["version"] = "1"
                mon.log_predictions("m", pa.Table.from_pandas(df.drop(columns=["y"]),
                                                              preserve_index=False))
                logged += n
            server, memory = [], []
            window = frame(args.sample, 99)[FEATURES]
            for seed in (1, 2, 3):
                t0 = time.perf_counter()
                ans = svc.importance("m", version="1", start=now - 7200, end=now,
                                     sample_size=args.sample, options={"seed": seed})
                server.append(time.perf_counter() - t0)
                assert ans["rows"] == size, ans["rows"]
                t0 = time.perf_counter()
                global_importance(model, window, ref[FEATURES], sample_size=args.sample,
                                  seed=seed)
                memory.append(time.perf_counter() - t0)
            a, b = statistics.median(server), statistics.median(memory)
            print(f"{size:>12,} {a:>9.2f} {b:>12.2f} {a / b:>6.2f}x", flush=True)
    print(f"# done  {machine_line()}")


if __name__ == "__main__":
    main()
