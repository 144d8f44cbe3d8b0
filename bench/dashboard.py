"""Dashboard pages over HTTP with 100 models and 90 days of 1-minute buckets.

Every model gets a reference (2,000 rows, ``--features`` features, a score and a
prediction) and 25 hours of 1-minute buckets with their 10-minute, hour and day rollups,
written straight into the store's bucket table (``bench.alerting.add_model``: the rows
ingest and compaction leave, each distinct merge encoded once); the first model gets 90
days of them (129,600 minute buckets). A real server (uvicorn, SQLite) then answers the
overview and every panel of the big model's page for each range: cold (the first request
after a start, nothing decoded yet) and warm (best of 3, the decoded-partial cache in
use). The overview is timed both before and after the server's first alert evaluation
cycle, which loads the same references and decodes most of the same partials. The
answer's size shows what reaches the browser: aggregates, never events.

    .venv/bin/python bench/dashboard.py [--models 100] [--features 25] [--days 90]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiwarden.alerting.evaluator import Evaluator
from aiwarden.monitoring.bucket import BucketData
from aiwarden.monitoring.service import Monitor
from aiwarden.store.database import Database
from bench.alerting import add_model
from tests.server.live import ThreadServer, settings_for

PANELS = ("charts", "drift", "feature", "versions")


def build(url: str, models: int, features: int, days: int) -> float:
    mon = Monitor(Database(url))
    mon.db.migrate()
    rng = np.random.default_rng(0)
    now = time.time() // 60 * 60
    mon.levels  # noqa: B018 - outside the writes: it may write the layout itself
    lat = np.zeros(BucketData().latency.size, np.int64)
    lat[20:30] = 6
    for k in range(models):
        minutes = days * 1440 if k == 0 else 25 * 60
        add_model(mon, f"model-{k:03d}", features, rng, int(now - minutes * 60), minutes, lat)
        if k % 20 == 19 or k == 0:
            print(f"  built {k + 1} models", flush=True)
    Evaluator(mon, holder="bench").evaluate_once(now=now)  # alert states for health
    mon.db.dispose()
    return now


def timed(client: httpx.Client, path: str, tries: int = 3
          ) -> tuple[float, float, float, float, int]:
    """(first wall, best warm wall, first CPU, best warm CPU, bytes) of a GET answered 200.
    CPU seconds are this process's (the server runs in it), steadier on a shared host."""
    times, cpu, size = [], [], 0
    for _ in range(1 + tries):
        t0, c0 = time.perf_counter(), time.process_time()
        r = client.get(path, headers={"HX-Request": "true"})
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        size = len(r.content)
    return times[0], min(times[1:]), cpu[0], min(cpu[1:]), size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=int, default=100)
    p.add_argument("--features", type=int, default=25)
    p.add_argument("--days", type=int, default=90)
    args = p.parse_args()
    print(f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}, "
          f"{time.strftime('%Y-%m-%d %H:%MZ', time.gmtime())}")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        t0 = time.perf_counter()
        build(url, args.models, args.features, args.days)
        size = (Path(tmp) / "bench.db").stat().st_size / 2**20
        print(f"built {args.models} models × {args.features} features (model-000: "
              f"{args.days} days of 1-min buckets) in {time.perf_counter() - t0:.0f} s, "
              f"{size:.0f} MiB")
        settings = settings_for(url, Path(tmp), evaluate_every=0.0, compact_every=3600.0)
        with ThreadServer(settings) as srv, httpx.Client(base_url=srv.url, timeout=600) as c:
            t0, c0 = time.perf_counter(), time.process_time()
            html = c.get("/").text
            cold, cold_cpu = time.perf_counter() - t0, time.process_time() - c0
            pending = re.findall(r'hx-get="(/overview/rows/[^"]+)"', html)
            t0, c0 = time.perf_counter(), time.process_time()
            for path in pending:  # a browser fetches them six at a time; this is the sum
                c.get(path, headers={"HX-Request": "true"}).raise_for_status()
            print(f"overview right after a start, before any alert evaluation: the page in "
                  f"{cold:.1f} s ({cold_cpu:.1f} CPU s) with {args.models - len(pending)} of "
                  f"{args.models} rows read; the other rows one after another in "
                  f"{time.perf_counter() - t0:.1f} s ({time.process_time() - c0:.1f} CPU s; "
                  f"references loaded and partials decoded for the first time)")
        settings = settings_for(url, Path(tmp), evaluate_every=0.0, compact_every=3600.0)
        with ThreadServer(settings) as srv, httpx.Client(base_url=srv.url, timeout=600) as c:
            t0, c0 = time.perf_counter(), time.process_time()
            c.post("/api/v1/alerts/evaluate").raise_for_status()
            print(f"a new server's first alert evaluation cycle: "
                  f"{time.perf_counter() - t0:.1f} s ({time.process_time() - c0:.1f} CPU s); "
                  "then:")
            print(f"{'page':<40}{'first':>9}{'warm':>9}{'CPU first':>11}{'CPU warm':>10}"
                  f"{'size':>8}")
            rows = [("/", f"overview, {args.models} models")]
            for rng in ("1h", "6h", "24h", "7d", "30d", "90d"):
                rows += [(f"/models/model-000/panels/{panel}?range={rng}", f"{panel} {rng}")
                         for panel in PANELS]
            for path, label in rows:
                first, warm, cpu_first, cpu_warm, nbytes = timed(c, path)
                print(f"{label:<40}{first * 1000:7.0f}ms{warm * 1000:7.0f}ms"
                      f"{cpu_first * 1000:9.0f}ms{cpu_warm * 1000:8.0f}ms"
                      f"{nbytes / 1024:6.0f}KB", flush=True)
        print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
