"""One alert evaluation cycle over many models with the default rules.

Issue 4's target: 100 models × 50 features, default rules, under 2 s per cycle. Each model
gets a reference (2,000 rows, 50 features, a score and a prediction) and 25 hours of
compacted 1-minute buckets plus their 10-minute, hour and day rollups, written through the
store's own append path (as ingest and compaction leave them). Figures:

- cold: the first cycle in the process that built the data (every partial decoded);
- cold after a restart: a new process state (new ``Monitor``) on the same database, so every
  reference is read from the store too: what the first cycle after a server restart costs.
  The drift noise floors are stored with each reference, so it should cost what steady does;
- warm: the same windows again (best of 3);
- steady: the production case: a new minute of data for every model, then the cycle a
  minute later (only the new partials are decoded);
- baseline, in the same run: the same rule windows computed by one ``Monitor.series``
  call per rule on a monitor without the decoded-partial cache (no reuse at all).

What a restart still costs (profiled 2026-12-05 at 20 models): decoding every partial the
windows read (56-71 per model; zlib was half of it) and loading each reference, of which
re-hashing schema and bins for the fingerprint was ~60 %. Partials are now LZ4 and a loaded
reference keeps its fingerprint; at 10 models x 50 features (load ~12 on 2 cores, CPU
seconds, the old and new code side by side) the restart cycle went from 2.08x to 1.65x the
steady one (0.49 -> 0.39 s; steady 0.24 s both). The rest: the partials decoded per model
(header JSON, CBPE accumulator, cache bookkeeping) and the reference's JSON.

    .venv/bin/python bench/alerting.py [--models 100] [--features 50]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiwarden.alerting.evaluator import Evaluator, install_defaults
from aiwarden.monitoring.bucket import BucketData
from aiwarden.monitoring.profiles import append_partials
from aiwarden.monitoring.service import Monitor, MonitorSettings
from aiwarden.store import alerts_repo, models_repo
from aiwarden.store.database import Database


def _frame(n: int, features: int, rng: np.random.Generator) -> pd.DataFrame:
    df = pd.DataFrame({f"f{i:02d}": rng.normal(0, 1, n) for i in range(features)})
    df["score"] = 1 / (1 + np.exp(-df["f00"]))
    df["pred"] = (df["score"] > 0.5).astype(int)
    df["y"] = (rng.random(n) < df["score"]).astype(int)
    return df


def build(db_url: str, models: int, features: int, hours: int = 25) -> tuple[Monitor, float]:
    mon = Monitor(Database(db_url))
    mon.db.migrate()
    rng = np.random.default_rng(0)
    now = time.time() // 60 * 60
    start = int(now - hours * 3600)
    for k in range(models):
        name = f"model-{k:03d}"
        mon.create_model(name, task="binary")
        ref_df = _frame(2000, features, rng)
        mon.upload_reference(name, "v1", pa.Table.from_pandas(ref_df, preserve_index=False),
                             {"target": "y", "prediction": "pred", "scores": "score"})
        install_defaults(mon, name, "binary")
        with mon.db.read() as conn:
            m = models_repo.get_model(conn, name)
            v = models_repo.get_version(conn, m)
            ref = mon.refs.get(conn, v.id)
        batch = _frame(600, features, rng).drop(columns=["y"])
        parts = [BucketData(rows=60, profile=ref.profile(batch.iloc[i * 60:(i + 1) * 60]),
                            latency=np.zeros(BucketData().latency.size, np.int64))
                 for i in range(10)]
        by_bucket = {start + i * 60: parts[i % 10] for i in range(hours * 60)}
        levels = mon.levels  # outside the write: it may write the layout itself
        with mon.db.write(m.id) as conn:
            append_partials(conn, m.id, v.id, by_bucket, levels)
        _minutes[name] = parts[0]
        if k % 20 == 19:
            print(f"  built {k + 1} models", flush=True)
    return mon, now


_minutes: dict[str, BucketData] = {}


def new_minute(mon: Monitor, at: float) -> None:
    """One more minute of data for every model, then compaction, as the server does."""
    for name, part in _minutes.items():
        with mon.db.read() as conn:
            m = models_repo.get_model(conn, name)
            v = models_repo.get_version(conn, m)
        with mon.db.write(m.id) as conn:
            append_partials(conn, m.id, v.id, {int(at): part}, mon.levels)
    mon.compact()


def baseline(url: str, now: float) -> float:
    """Every rule window read and computed on its own, nothing reused between reads."""
    mon = Monitor(Database(url), MonitorSettings(tile_cache_bytes=0))
    t0 = time.perf_counter()
    for model in mon.list_models():
        with mon.db.read() as conn:
            rules = alerts_repo.list_rules(conn, model["name"])
        for r in rules:
            w = {"drift": 3600, "performance": 86400, "estimated_performance": 86400}.get(
                r.spec["metric"], 900)
            metric = "volume" if r.spec["metric"] == "quarantined" else r.spec["metric"]
            mon.series(model["name"], metric, start=now - w, end=now)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=int, default=100)
    p.add_argument("--features", type=int, default=50)
    args = p.parse_args()
    print(f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        t0 = time.perf_counter()
        mon, now = build(url, args.models, args.features)
        print(f"built {args.models} models × {args.features} features, 25 h of 1-min buckets "
              f"in {time.perf_counter() - t0:.0f} s")
        ev = Evaluator(mon, holder="bench")
        cpu: dict[str, list[float]] = {"steady": []}

        def timed(label: str, cycle):  # CPU seconds of this process: the host is shared
            started = time.process_time()
            out = cycle()
            cpu.setdefault(label, []).append(time.process_time() - started)
            return out

        cold = timed("cold", lambda: ev.evaluate_once(now=now))
        warm = [timed("warm", lambda: ev.evaluate_once(now=now)).seconds for _ in range(3)]
        steady = []
        for i in range(1, 4):
            new_minute(mon, now + 60 * (i - 1))
            steady.append(timed("steady", lambda i=i: ev.evaluate_once(now=now + 60 * i)).seconds)
        # A restart: nothing cached in memory, references read and decoded from the store.
        mon2 = Monitor(Database(url))
        restart = timed("restart", lambda: Evaluator(mon2, holder="bench").evaluate_once(
            now=now + 240)).seconds
        new_minute(mon2, now + 240)
        after = Evaluator(mon2, holder="bench").evaluate_once(now=now + 300).seconds
        base = baseline(url, now + 300)
        with mon.db.read() as conn:
            rules = sum(len(alerts_repo.list_rules(conn, m["name"]))
                        for m in mon.list_models())
        print(f"cycle: {cold.instances} alert instances from {rules} rules; decoded-partial "
              f"cache {len(mon.tiles)} partials, {mon.tiles.nbytes / 2**20:.0f} MiB")
        print(f"  cold (first cycle after a start)      {cold.seconds:8.2f} s")
        print(f"  warm, best of 3                       {min(warm):8.2f} s")
        print(f"  steady (a new minute per model), max  {max(steady):8.2f} s   target < 2 s")
        print(f"  cold after a restart                  {restart:8.2f} s   "
              f"{restart / statistics.median(steady):.1f}x the steady median "
              f"({statistics.median(steady):.2f} s)")
        print(f"  steady, next minute after the restart {after:8.2f} s")
        print(f"  baseline: one series call per rule    {base:8.2f} s   "
              f"ratio {base / max(steady):.1f}x")
        mid = statistics.median(cpu["steady"])
        print(f"CPU seconds: cold {cpu['cold'][0]:.2f}, warm {min(cpu['warm']):.2f}, steady "
              f"median {mid:.2f}, cold after a restart {cpu['restart'][0]:.2f} "
              f"({cpu['restart'][0] / mid:.2f}x steady)")
        print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
