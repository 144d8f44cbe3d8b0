"""One-year, 100-model drift and performance queries on a downsampled store (issue 17.6).

A store as downsampling leaves it after a year of traffic (``build`` says what is written:
day partials for every model, the whole year of hour partials for ``--full`` of them, since
at real sizes 100 full models are ~37 GB). A query reads 10-minute and minute partials only
at its ragged edges, the last minutes before now. Partials are real encoded profiles (10
features, labelled rows, so drift and realised performance both answer), a few distinct
ones per level reused across buckets.

Queries go through the monitoring service (``Monitor.series``, what the metrics route
calls) per model, each first with an empty tile cache (cold: every partial decoded) and
then ``--repeats`` times warm. Kinds:

* ``drift 30d``: one window over the last 30 days (the issue's baseline query),
* ``drift 1y`` / ``performance 1y``: one window over the last 365 days (ending now),
* ``... 1y daily, aligned``: 365 daily points over the year up to the end of today (one day
  partial a point), on ``--series-models`` models,
* ``drift 1y daily, now-365d``: 365 daily points starting a year before now, so every point
  merges 24 hour partials (minute-aligned starts snap to hours there), on the full models.

Medians and 90th percentiles over models (never the best repeat). The machine is shared:
CPU time of this process (``time.process_time``) is the figure to compare on SQLite, where
the database runs in-process; on PostgreSQL the server backend's CPU is not in it, so wall
time is printed beside it with the load average.

    .venv/bin/python bench/retention.py [--models 100] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import machine_line

from aiwarden.engine import Reference
from aiwarden.monitoring.bucket import BucketData
from aiwarden.monitoring.service import Monitor, MonitorSettings
from aiwarden.monitoring.tiles import TileCache
from aiwarden.store import models_repo as repo
from aiwarden.store.database import Database
from aiwarden.store.tables import bucket_profiles

DAY, HOUR = 86400, 3600
HINTS = {"target": "y", "prediction": "pred", "scores": "score"}


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = {f"x{i}": rng.normal(0.05 * (seed % 7), 1.0, n) for i in range(8)}
    cols["c0"] = rng.choice(["a", "b", "c", "d"], n)
    cols["c1"] = rng.choice(["u", "v"], n)
    score = 1 / (1 + np.exp(-2 * cols["x0"]))
    return pd.DataFrame({**cols, "score": score, "pred": (score > 0.5).astype(int),
                         "y": (rng.random(n) < score).astype(int)})


def blobs(ref: Reference) -> dict[int, list[tuple[int, bytes]]]:
    """A few encoded partials per level, sized like a level's share of 1 row/second."""
    out: dict[int, list[tuple[int, bytes]]] = {}
    for level, n in ((60, 60), (600, 600), (3600, 3600), (86400, 20_000)):
        out[level] = []
        for seed in range(4):
            df = frame(n, seed + level)
            d = BucketData(rows=n, profile=ref.profile(df), labels=n)
            out[level].append((n, d.to_bytes()))
    return out


def build(m: Monitor, models: int, full: int, now: int) -> int:
    """The downsampled year of ``models`` models; returns partials written.

    Every model: 365 day partials, and hour, 10-minute and minute partials for the last 2
    days (the ragged edges a query ending now reads). The first ``full`` models also hold
    the whole year of hour partials and 30 days of 10-minute ones, as the job keeps them:
    at ~42 KB an hour partial (10 features, 3,600 rows) a full year is ~370 MB a model, so
    100 full models (37 GB) are not written here. A query aligned to days reads the same
    partials either way (days in the middle, finer levels at its edges only)."""
    ref = Reference.fit(frame(3000, 0), **HINTS)
    parts = blobs(ref)
    assert m.levels == (60, 600, 3600, 86400), m.levels  # the layout, before any partial
    day0 = now // DAY * DAY - 366 * DAY
    written = 0
    for k in range(models):
        spans = {86400: (day0, now), 3600: (now - 2 * DAY, now), 600: (now - 2 * DAY, now),
                 60: (now - 2 * DAY, now)}
        if k < full:
            spans |= {3600: (day0, now), 600: (now - 30 * DAY, now)}
        m.create_model(f"m{k:03d}")
        with m.db.write() as conn:
            mrow = repo.get_model(conn, f"m{k:03d}")
            v = repo.create_version(conn, mrow, "v1", None)
            repo.set_reference(conn, v, ref, 3000, None)
            rows = []
            for level, (lo, hi) in spans.items():
                variants = parts[level]
                for i, s in enumerate(range(lo // level * level, hi, level)):
                    n, blob = variants[i % len(variants)]
                    rows.append({"model_id": mrow.id, "version_id": v.id, "level": level,
                                 "start": s, "n_rows": n, "data": blob})
                    if len(rows) == 2000:
                        conn.execute(bucket_profiles.insert(), rows)
                        written, rows = written + len(rows), []
            if rows:
                conn.execute(bucket_profiles.insert(), rows)
                written += len(rows)
    return written


# kind -> (metric, days, step, day-aligned start, models it runs on: all, series, full)
KINDS = {
    "drift 30d": ("drift", 30, None, False, "all"),
    "drift 1y": ("drift", 365, None, False, "all"),
    "performance 1y": ("performance", 365, None, False, "all"),
    "drift 1y daily, aligned": ("drift", 365, "1d", True, "series"),
    "perf 1y daily, aligned": ("performance", 365, "1d", True, "series"),
    "drift 1y daily, now-365d": ("drift", 365, "1d", False, "full"),
}


def measure(m: Monitor, counts: dict[str, int], repeats: int, now: int
            ) -> dict[str, dict[str, list]]:
    out: dict[str, dict[str, list]] = {k: {"cold_cpu": [], "cold_wall": [], "warm_cpu": [],
                                           "warm_wall": []} for k in KINDS}
    for kind, (metric, days, step, aligned, among) in KINDS.items():
        end = now // DAY * DAY + DAY if aligned else now
        for k in range(counts[among]):
            m.tiles = TileCache(m.settings.tile_cache_bytes)  # cold: nothing decoded yet
            for r in range(1 + repeats):
                c0, w0 = time.process_time(), time.perf_counter()
                got = m.series(f"m{k:03d}", metric, start=end - days * DAY, end=end,
                               step=step)
                cpu, wall = time.process_time() - c0, time.perf_counter() - w0
                pts = got["points"]
                assert sum(p["rows"] for p in pts) > 0 and pts[0]["value"] is not None, got
                side = "cold" if r == 0 else "warm"
                out[kind][f"{side}_cpu"].append(cpu * 1000)
                out[kind][f"{side}_wall"].append(wall * 1000)
    return out


def stored_sizes(db: Database) -> list[tuple[int, float]]:
    """Mean encoded size of a partial at each level (the sizing guide's bytes per bucket)."""
    bp = bucket_profiles
    with db.read() as conn:
        return [(int(lvl), float(size)) for lvl, size in conn.execute(
            select(bp.c.level, func.avg(func.length(bp.c.data))).group_by(bp.c.level)
            .order_by(bp.c.level)).all()]


def q(values: list[float], p: float) -> float:
    return float(np.percentile(values, p)) if values else float("nan")


@contextmanager
def store(kind: str, tmp: Path) -> Iterator[str]:
    from tests.server.live import database_url

    if "://" in kind:  # --reuse: a database built before, kept
        yield kind
        return

    with database_url(kind, tmp) as url:
        yield url


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=int, default=100)
    p.add_argument("--repeats", type=int, default=2, help="warm queries after the cold one")
    p.add_argument("--full", type=int, default=3,
                   help="models holding the whole year of hour partials")
    p.add_argument("--series-models", type=int, default=5,
                   help="models the 365-point series run on (each ~4 CPU-s warm)")
    p.add_argument("--backends", default="sqlite,postgresql")
    p.add_argument("--reuse", default="", help="a database URL this script built before: "
                   "measure only (its 'now' is read back from its newest minute partial)")
    args = p.parse_args()
    print(f"# bench/retention.py: {machine_line()}")
    print(f"# {args.models} models x one year of day partials (+2 days of finer ones; "
          f"{args.full} of them also a year of hours and 30 days of 10 minutes); "
          "per query: median / p90 over models (warm: over models x repeats), ms")
    now = int(time.time()) // 60 * 60
    for backend in [args.reuse] if args.reuse else args.backends.split(","):
        with tempfile.TemporaryDirectory() as tmp, store(backend, Path(tmp)) as url:
            db = Database(url)
            db.migrate()
            m = Monitor(db, MonitorSettings())
            t0 = time.perf_counter()
            if args.reuse:
                with db.read() as conn:
                    now = conn.execute(select(func.max(bucket_profiles.c.start)).where(
                        bucket_profiles.c.level == 60)).scalar_one() + 60
                    written = conn.execute(select(func.count()).select_from(
                        bucket_profiles)).scalar_one()
                backend = url.split(":", 1)[0]
            else:
                written = build(m, args.models, args.full, now)
            print(f"\n## {backend}: {written:,} partials, written in "
                  f"{time.perf_counter() - t0:.0f} s; load average {os.getloadavg()[0]:.2f}")
            print("stored bytes per partial (mean, by level): " + ", ".join(
                f"{level} s {size / 1024:.1f} KiB" for level, size in stored_sizes(db)))
            counts = {"all": args.models, "series": args.series_models, "full": args.full}
            res = measure(m, counts, args.repeats, now)
            print(f"{'query':26} {'cold cpu':>16} {'cold wall':>16} {'warm cpu':>16} "
                  f"{'warm wall':>16}")
            for kind, r in res.items():
                cells = [f"{statistics.median(r[c]):7.1f} / {q(r[c], 90):6.1f}"
                         for c in ("cold_cpu", "cold_wall", "warm_cpu", "warm_wall")]
                print(f"{kind:26} " + " ".join(f"{c:>16}" for c in cells))
            base = statistics.median(res["drift 30d"]["cold_cpu"])
            year = statistics.median(res["drift 1y"]["cold_cpu"])
            print(f"ratio drift 1y / drift 30d (cold CPU medians): {year / base:.2f}; "
                  f"load average {os.getloadavg()[0]:.2f}")
            db.dispose()


if __name__ == "__main__":
    main()
