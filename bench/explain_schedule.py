"""Attribution-drift checks of 100 models on a schedule, and what they cost the alert cycle.

Issue 15: "attribution drift check for 100 models on a schedule without slowing alert
evaluation (measure)". On one SQLite database: 100 small GradientBoosting models registered
as skops, each with a reference, logged predictions in the last hour, the default rules and
an ``attribution_drift`` rule (window 1h). The alert cycle (``Evaluator.evaluate_once``,
what the server's evaluation loop runs) is timed, wall and its thread's CPU, median of
``--cycles`` cycles:

* idle: no checks running;
* bounded: the server's ``AttributionLoop`` (at most one model per tick; ``--tick``);
* unbounded: every due model checked back to back in one pass (``run_due()`` without a
  limit, as the loop did before), in its own thread.

and the checks' throughput (model checks per second while checking). The host is shared:
compare the three medians of one run.

    .venv/bin/python bench/explain_schedule.py [--models 100] [--cycles 9] [--tick 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._machine import machine_line

FEATURES = ["amount", "age", "noise"]
RULE = {"metric": "attribution_drift", "stat": "ndcg", "window": "1h", "op": "<",
        "warning": 0.95, "critical": 0.9}


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"amount": rng.lognormal(3, 1.2, n), "age": rng.uniform(18, 80, n),
                       "noise": rng.normal(0, 1, n)})
    logit = 2.5 * (np.log(df.amount) - 3) - 0.02 * (df.age - 50)
    df["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return df


def seed_models(mon, reg, n: int, now: float) -> list[str]:
    import skops.io as sio
    from sklearn.ensemble import GradientBoostingClassifier

    from aiwarden.alerting.apply import rule_spec
    from aiwarden.alerting.evaluator import install_defaults
    from aiwarden.alerting.rules import load_rules
    from aiwarden.store import alerts_repo

    names = []
    for i in range(n):
        name = f"m{i:03d}"
        train = frame(600, i)
        model = GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=i).fit(
            train[FEATURES], train.y)
        reg.register(name, sio.dumps(model), format="skops", admin=True, trust=True)
        for part, rows, seed in (("ref", 400, 1000 + i), ("live", 200, 2000 + i)):
            df = frame(rows, seed)
            df["score"] = model.predict_proba(df[FEATURES])[:, 1]
            df["pred"] = (df.score > 0.5).astype(int)
            if part == "ref":
                mon.upload_reference(name, "1", pa.Table.from_pandas(df, preserve_index=False),
                                     {"target": "y", "prediction": "pred", "scores": "score"})
            else:
                df = df.drop(columns=["y"])
                df["prediction_id"] = [f"{name}-{j}" for j in range(rows)]
                df["timestamp"] = now - 3000 + np.arange(rows) * 10.0
                df["version"] = "1"
                mon.log_predictions(name, pa.Table.from_pandas(df, preserve_index=False))
        install_defaults(mon, name, "classification")
        rule = load_rules({"rules": [RULE | {"model": name, "name": "what-drives-it"}]},
                          "rule").rules[0]
        with mon.db.write() as conn:
            alerts_repo.upsert_rule(conn, name, "what-drives-it", rule_spec(rule), "bench")
        names.append(name)
    return names


def cycles(evaluator, k: int, busy: threading.Event | None = None
           ) -> tuple[float, float, list[float]]:
    """Median wall and thread-CPU seconds of ``k`` alert cycles (while ``busy`` is set)."""
    walls, cpus = [], []
    for _ in range(k):
        if busy is not None and not busy.is_set():
            break
        w, c = time.perf_counter(), time.thread_time()
        report = evaluator.evaluate_once()
        assert report.evaluated
        walls.append(time.perf_counter() - w)
        cpus.append(time.thread_time() - c)
    return statistics.median(walls), statistics.median(cpus), walls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=100)
    ap.add_argument("--cycles", type=int, default=9)
    ap.add_argument("--tick", type=float, default=1.0, help="the bounded loop's tick (s)")
    args = ap.parse_args()
    from aiwarden.alerting.evaluator import Evaluator
    from aiwarden.monitoring.attribution_watch import AttributionLoop, AttributionWatch
    from aiwarden.monitoring.explanations import Explanations
    from aiwarden.monitoring.service import Monitor
    from aiwarden.registry.service import Registry
    from aiwarden.store.database import Database

    print("start:", machine_line())
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/bench.db")
        db.migrate()
        mon = Monitor(db)
        reg = Registry(db, f"file://{tmp}/artifacts")
        now = time.time()
        t = time.perf_counter()
        names = seed_models(mon, reg, args.models, now)
        print(f"seeded {len(names)} models in {time.perf_counter() - t:.0f} s")
        evaluator = Evaluator(mon)
        svc = Explanations(mon, lambda: reg)
        evaluator.evaluate_once()  # takes the lease; first-cycle costs
        t = time.perf_counter()
        watch = AttributionWatch(svc, evaluator.holder)
        watch.check_now(names[0])  # shap's first-call costs, outside the measurement
        print(f"first check (imports shap): {time.perf_counter() - t:.1f} s")

        w, c, _ = cycles(evaluator, args.cycles)
        print(f"{'alert cycle, idle':<44} {w:7.3f} s wall {c:7.3f} s CPU")

        # bounded: the server's loop, one model per tick, until every model is checked
        loop = AttributionLoop(AttributionWatch(svc, evaluator.holder), tick=args.tick)
        t = time.perf_counter()
        loop.start()
        busy = threading.Event()
        busy.set()
        w, c, walls = cycles(evaluator, args.cycles, busy)
        loop.stop.set()
        loop.join()
        span = time.perf_counter() - t
        checked = _checked(mon, names, now)
        print(f"{'alert cycle, bounded loop (1 model/tick)':<44} {w:7.3f} s wall {c:7.3f} s "
              f"CPU  ({len(walls)} cycles; {checked} models checked in {span:.0f} s)")

        # unbounded: one pass over every due model, back to back
        later = time.time() + 3600  # every model is due again
        done = threading.Event()
        made: list[int] = []
        t = time.perf_counter()

        def run() -> None:
            made.append(AttributionWatch(svc, evaluator.holder).run_due(later))
            done.set()
        th = threading.Thread(target=run, daemon=True)
        th.start()
        walls_u, cpus_u = [], []
        while not done.is_set():
            w0, c0 = time.perf_counter(), time.thread_time()
            evaluator.evaluate_once()
            walls_u.append(time.perf_counter() - w0)
            cpus_u.append(time.thread_time() - c0)
        th.join()
        span = time.perf_counter() - t
        print(f"{'alert cycle, unbounded pass (all due)':<44} "
              f"{statistics.median(walls_u):7.3f} s wall {statistics.median(cpus_u):7.3f} s "
              f"CPU  ({len(walls_u)} cycles; {made[0]} checks in {span:.0f} s = "
              f"{made[0] / span:.2f} checks/s)")
        w, c, _ = cycles(evaluator, args.cycles)
        print(f"{'alert cycle, idle again':<44} {w:7.3f} s wall {c:7.3f} s CPU")
        db.dispose()
    print("end:  ", machine_line())


def _checked(mon, names: list[str], since: float) -> int:
    from aiwarden.store import kv
    from aiwarden.store import models_repo as repo

    n = 0
    with mon.db.read() as conn:
        for name in names:
            m = repo.get_model(conn, name)
            checks = kv.get(conn, f"attribution:{m.id}:checks", [])
            n += any(c["at"] >= since and "ndcg" in c for c in checks)
    return n


if __name__ == "__main__":
    main()
