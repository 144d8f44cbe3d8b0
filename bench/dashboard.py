"""Dashboard pages over HTTP with 100 models and 90 days of 1-minute buckets.

Every model gets a reference (2,000 rows, ``--features`` features, a score and a
prediction) and 25 hours of 1-minute buckets with their 10-minute, hour and day rollups,
written through the store's own append path (as in bench/alerting.py); the first model
gets 90 days of them (129,600 minute buckets). A real server (uvicorn, SQLite) then
answers the overview and every panel of the big model's page for each range: cold (the
first request after a start, nothing decoded yet) and warm (best of 3, the decoded-partial
cache in use); the overview is timed both before and after the server's first alert
evaluation cycle, which computes the same drift noise floors and so warms the same caches.
The answer's size shows what reaches the browser: aggregates, never events.

    .venv/bin/python bench/dashboard.py [--models 100] [--features 25] [--days 90]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiwarden.alerting.evaluator import Evaluator, install_defaults
from aiwarden.monitoring.bucket import BucketData
from aiwarden.monitoring.profiles import append_partials
from aiwarden.monitoring.service import Monitor
from aiwarden.store import models_repo
from aiwarden.store.database import Database
from bench.alerting import _frame
from tests.server.live import ThreadServer, settings_for

PANELS = ("charts", "drift", "feature", "versions")


def build(url: str, models: int, features: int, days: int) -> float:
    mon = Monitor(Database(url))
    mon.db.migrate()
    rng = np.random.default_rng(0)
    now = time.time() // 60 * 60
    for k in range(models):
        name = f"model-{k:03d}"
        mon.create_model(name, task="binary")
        mon.upload_reference(name, "v1", pa.Table.from_pandas(
            _frame(2000, features, rng), preserve_index=False),
            {"target": "y", "prediction": "pred", "scores": "score"})
        install_defaults(mon, name, "binary")
        with mon.db.read() as conn:
            m = models_repo.get_model(conn, name)
            v = models_repo.get_version(conn, m)
            ref = mon.refs.get(conn, v.id)
        batch = _frame(600, features, rng).drop(columns=["y"])
        lat = np.zeros(BucketData().latency.size, np.int64)
        lat[20:30] = 6
        parts = [BucketData(rows=60, profile=ref.profile(batch.iloc[i * 60:(i + 1) * 60]),
                            latency=lat) for i in range(10)]
        minutes = days * 1440 if k == 0 else 25 * 60
        start = int(now - minutes * 60)
        levels = mon.levels
        for chunk in range(0, minutes, 20_000):  # bounded memory for the 90-day model
            by_bucket = {start + i * 60: parts[i % 10]
                         for i in range(chunk, min(chunk + 20_000, minutes))}
            with mon.db.write(m.id) as conn:
                append_partials(conn, m.id, v.id, by_bucket, levels)
        if k % 20 == 19 or k == 0:
            print(f"  built {k + 1} models", flush=True)
    Evaluator(mon, holder="bench").evaluate_once(now=now)  # alert states for health
    mon.db.dispose()
    return now


def timed(client: httpx.Client, path: str, tries: int = 3) -> tuple[float, float, int]:
    """(cold or first, best warm, bytes) of a GET answered 200."""
    times, size = [], 0
    for _ in range(1 + tries):
        t0 = time.perf_counter()
        r = client.get(path, headers={"HX-Request": "true"})
        times.append(time.perf_counter() - t0)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        size = len(r.content)
    return times[0], min(times[1:]), size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=int, default=100)
    p.add_argument("--features", type=int, default=25)
    p.add_argument("--days", type=int, default=90)
    args = p.parse_args()
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
            t0 = time.perf_counter()
            html = c.get("/").text
            cold = time.perf_counter() - t0
            pending = re.findall(r'hx-get="(/overview/rows/[^"]+)"', html)
            t0 = time.perf_counter()
            for path in pending:  # a browser fetches them six at a time; this is the sum
                c.get(path, headers={"HX-Request": "true"}).raise_for_status()
            print(f"overview right after a start, before any alert evaluation: the page in "
                  f"{cold:.1f} s with {args.models - len(pending)} of {args.models} rows read; "
                  f"the other rows one after another in {time.perf_counter() - t0:.1f} s "
                  f"(drift noise floors simulated for every model and feature)")
        settings = settings_for(url, Path(tmp), evaluate_every=0.0, compact_every=3600.0)
        with ThreadServer(settings) as srv, httpx.Client(base_url=srv.url, timeout=600) as c:
            t0 = time.perf_counter()
            c.post("/api/v1/alerts/evaluate").raise_for_status()
            print(f"a new server's first alert evaluation cycle: "
                  f"{time.perf_counter() - t0:.1f} s; then:")
            print(f"{'page':<46}{'first':>9}{'warm':>9}{'size':>10}")
            rows = [("/", f"overview, {args.models} models")]
            for rng in ("1h", "6h", "24h", "7d", "30d", "90d"):
                rows += [(f"/models/model-000/panels/{panel}?range={rng}", f"{panel} {rng}")
                         for panel in PANELS]
            for path, label in rows:
                first, warm, nbytes = timed(c, path)
                print(f"{label:<46}{first * 1000:7.0f}ms{warm * 1000:7.0f}ms"
                      f"{nbytes / 1024:8.0f}KB", flush=True)


if __name__ == "__main__":
    main()
