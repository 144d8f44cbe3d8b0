"""What segments cost: ingest with 0, 1 and 2 segment columns, and a segment rule's cycle.

Each model gets the same reference (20 features, a score, a prediction, and two categorical
columns, ``country`` with 40 values and ``channel`` with 4) and the same traffic: requests
of ``--batch`` rows, each spread over ``--spread`` seconds of 1-minute buckets (60: live
traffic; 600: a backfill). The models differ only in how many of the two columns are
declared segments, so the ratios are the segments' cost. Also timed: one alert cycle with a
``segment_by: country`` rule (11 instances at the default top-N of 10) next to the same
rule unsegmented. SQLite in a temporary folder; CPU seconds of this process (the host is
shared: wall clock is not comparable between runs); ratios, not absolutes.

Each segment column's partials come from one grouped pass over the request's rows
(aiwarden/monitoring/grouped.py), not one profile per segment and bucket, and partials are
LZ4-compressed (aiwarden/monitoring/bucket.py). At the defaults, 2026-12-05 ~21:50Z, load
~12 on 2 cores, the three versions run one after another: one / two segment columns cost
3.22x / 4.54x the unsegmented ingest before, 1.80x / 2.00x with the grouped pass, 1.47x /
1.67x with LZ4 too. What remains is mostly writing each segment's partial at every rollup
level (11 segments x 4 levels per request for ``country``) and the grouped pass itself
(about one batch profile for the first segment column, half of one for the next).

    .venv/bin/python bench/segments.py [--batch 2000] [--requests 10] [--spread 60]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiwarden.alerting.apply import rule_spec
from aiwarden.alerting.evaluator import Evaluator
from aiwarden.alerting.rules import Rule
from aiwarden.monitoring.service import Monitor
from aiwarden.store import alerts_repo
from aiwarden.store.database import Database

COUNTRIES = [f"c{i:02d}" for i in range(40)]


def frame(n: int, rng: np.random.Generator) -> pd.DataFrame:
    df = pd.DataFrame({f"f{i}": rng.normal(0, 1, n) for i in range(20)})
    p = np.linspace(2, 1, len(COUNTRIES))
    df["country"] = rng.choice(COUNTRIES, n, p=p / p.sum())
    df["channel"] = rng.choice(["web", "app", "store", "phone"], n)
    df["score"] = 1 / (1 + np.exp(-df.f0))
    df["pred"] = (df.score > 0.5).astype(int)
    df["y"] = (rng.random(n) < df.score).astype(int)
    return df


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--requests", type=int, default=10)
    ap.add_argument("--spread", type=int, default=60,
                    help="seconds each request's rows span (60: live traffic, one bucket)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    ref = pa.Table.from_pandas(frame(5000, rng), preserve_index=False)
    traffic = []
    now = time.time()
    for r in range(args.requests):
        df = frame(args.batch, rng).drop(columns=["y"])
        df.insert(0, "prediction_id", [f"r{r}-{i}" for i in range(len(df))])
        at = now - 600 + 60 * r % 600
        df.insert(1, "timestamp", at + np.linspace(0, args.spread - 1, len(df)))
        traffic.append(pa.Table.from_pandas(df, preserve_index=False))
    with tempfile.TemporaryDirectory() as tmp:
        mon = Monitor(Database(f"sqlite:///{Path(tmp) / 'b.db'}"))
        mon.db.migrate()
        times: dict[str, float] = {}
        for rep in range(3):  # interleaved, best of 3: the host is shared
            for label, segs in (("none", None), ("country", ["country"]),
                                ("country+channel", ["country", "channel"])):
                name = f"m-{label.replace('+', '-')}" + (f"-{rep}" if rep else "")
                mon.create_model(name)
                mon.upload_reference(name, "v1", ref, {"target": "y", "prediction": "pred",
                                                       "scores": ["score"], "segments": segs})
                started = time.process_time()
                for t in traffic:
                    mon.log_predictions(name, t)
                took = time.process_time() - started
                times[label] = min(times.get(label, took), took)
        rows = args.batch * args.requests
        print(f"host load (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
              f"on {os.cpu_count()} cores")
        print(f"ingest of {rows:,} rows in {args.requests} requests, each over "
              f"{args.spread} s of 60 s buckets (best of 3)")
        for label, s in times.items():
            print(f"  segments={label:16s} {s:6.2f} CPU s   {s / times['none']:.2f}x")
        evaluator = Evaluator(mon)
        cycles = {}
        for label, extra in (("unsegmented", {}), ("segment_by country", {
                "segment_by": "country"})):
            with mon.db.write() as conn:
                for r in alerts_repo.list_rules(conn, "m-country"):
                    alerts_repo.delete_rule(conn, r.model, r.name)
                rule = Rule(name="acc", model="m-country", metric="performance",
                            stat="accuracy", op="<", critical=0.5, window="1h", **extra)
                alerts_repo.upsert_rule(conn, "m-country", "acc", rule_spec(rule), "api")
            evaluator.evaluate_once(now)  # cold: decodes partials
            best = []
            for _ in range(3):
                started = time.process_time()
                evaluator.evaluate_once(now)
                best.append(time.process_time() - started)
            cycles[label] = min(best)
        print("alert cycle (all models; the rule on m-country), warm, best of 3")
        for label, s in cycles.items():
            print(f"  {label:20s} {s * 1000:7.1f} CPU ms   {s / cycles['unsegmented']:.2f}x")


if __name__ == "__main__":
    main()
