"""Sizing numbers for docs/deployment.md, measured on this machine: ingest per core, bytes
stored per event, profile bytes per model-day, memory per server process.

For each database (a fresh SQLite file, a fresh PostgreSQL database at 127.0.0.1:5432) one
``aiwarden server`` process is started (``tests/server/live.py``) and fed by this process over
loopback HTTP; rows are those of bench/ingest.py (25 features, score, prediction), with
30-character prediction ids (UUID-like: the id index grows with the length of the ids):

* **ingest per core**: ``--json-rows`` rows as 1,000-row JSON requests (two clients), then
  ``--bulk-rows`` as 100,000-row Arrow IPC requests, all in the current minute. Printed per
  CPU second of the server process (user + system, all threads: ``psutil``), which is events
  per second per fully busy core and much less sensitive to the other users of a shared
  machine than wall time (printed too). On PostgreSQL the CPU of this database's backends
  (``pg_stat_activity`` pids, read with ``psutil``) is added for a second figure; WAL writer
  and checkpointer CPU is not attributable and is left out.
* **bytes per event**: table sizes after each phase, raw events (``event_batches``: one zstd
  Parquet blob per request, with its index) and the prediction-id index (``predictions`` and
  its primary key). SQLite: the ``dbstat`` table (pages of each b-tree); PostgreSQL:
  ``pg_total_relation_size`` (heap, TOAST and indexes) of every partition.
* **profile bytes per model-day**: a second model gets ``--per-minute`` rows in every minute
  of yesterday (UTC; 1,000-row JSON requests, each spanning 20 minutes at 50 a minute), then
  the server's compaction folds every key's partials into one; bytes per level (minute,
  10-minute, hour, day) are the stored profile blobs; the table's own size per row, after
  ``VACUUM`` (``VACUUM FULL`` on PostgreSQL: compaction leaves free pages or dead rows
  behind, reused later), gives the overhead.
* **memory per server process**: RSS after start, after a reference upload, peak during
  ingest (sampled every 0.1 s), and after reading the day's metrics at every level.

Usage::

    .venv/bin/python bench/sizing.py                       # both databases
    .venv/bin/python bench/sizing.py --db sqlite --json-rows 20000 --bulk-rows 100000
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import pyarrow as pa
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiwarden.sdk._payload import to_ipc, to_parquet
from bench._machine import machine_line
from bench.ingest import _flat, _frame, _json_bodies, _send_all
from tests.server.live import ProcessServer, database_url

MIB = 1 << 20
LEVEL_NAMES = {60: "minute", 600: "10-minute", 3600: "hour", 86400: "day"}
EVENT_TABLES = ("event_batches", "predictions")


def _ids_prefix() -> str:
    """A 24-character random prefix: with the row number, ids of ~30 characters."""
    return uuid.uuid4().hex[:23] + "-"


class Sampler:
    """Peak RSS of one process, sampled every 0.1 s while active."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def rss(self) -> int:
        return int(self.proc.memory_info().rss)

    def __enter__(self) -> Sampler:
        self._stop.clear()

        def run() -> None:
            while not self._stop.is_set():
                with contextlib.suppress(psutil.Error):
                    self.peak = max(self.peak, self.rss())
                time.sleep(0.1)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()


class Cpu:
    """CPU seconds of the server process, and of this database's PostgreSQL backends."""

    def __init__(self, pid: int, url: str) -> None:
        self.server = psutil.Process(pid)
        self.pg = None if url.startswith("sqlite") else create_engine(url)

    def _backends(self) -> dict[int, float]:
        if self.pg is None:
            return {}
        with self.pg.connect() as c:
            pids = [r[0] for r in c.execute(text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"))]
        out = {}
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                t = psutil.Process(pid).cpu_times()
                out[pid] = t.user + t.system
        return out

    def snapshot(self) -> tuple[float, dict[int, float]]:
        t = self.server.cpu_times()
        return t.user + t.system, self._backends()

    @staticmethod
    def delta(a: tuple[float, dict[int, float]], b: tuple[float, dict[int, float]]
              ) -> tuple[float, float]:
        """(server CPU s, backend CPU s) between two snapshots; a backend that appeared in
        between counts whole (it started during the phase)."""
        db = sum(v - a[1].get(pid, 0.0) for pid, v in b[1].items())
        return b[0] - a[0], db

    def close(self) -> None:
        if self.pg is not None:
            self.pg.dispose()


def table_bytes(url: str, tables: tuple[str, ...]) -> dict[str, int]:
    """Bytes on disk of each table with its indexes (and TOAST on PostgreSQL)."""
    if url.startswith("sqlite"):
        con = sqlite3.connect(url.split("///", 1)[1])
        try:
            owner = dict(con.execute("SELECT name, tbl_name FROM sqlite_master "
                                     "WHERE type IN ('table', 'index')"))
            out = dict.fromkeys(tables, 0)
            for name, size in con.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
                if owner.get(name) in out:
                    out[owner[name]] += int(size)
            return out
        finally:
            con.close()
    eng = create_engine(url)
    try:
        with eng.connect() as c:
            # event_batches is partitioned by day (migration 0015): sum its partitions;
            # pg_partition_tree lists nothing for a plain table
            return {t: int(c.execute(text(
                "SELECT CASE WHEN c.relkind = 'p' THEN (SELECT COALESCE(SUM("
                "pg_total_relation_size(relid)), 0) FROM pg_partition_tree(c.oid)) "
                "ELSE pg_total_relation_size(c.oid) END FROM pg_class c "
                "WHERE c.oid = CAST(:t AS regclass)"), {"t": t}).scalar_one())
                for t in tables}
    finally:
        eng.dispose()


def _reference(api: str, model: str, ref: Any) -> None:
    with httpx.Client(base_url=api, timeout=600) as c:
        c.post("/models", json={"name": model}).raise_for_status()
        c.put(f"/models/{model}/versions/v1/reference",
              content=to_parquet(pa.Table.from_pandas(ref, preserve_index=False)),
              params={"target": "label", "prediction": "prediction", "scores": "score"},
              headers={"content-type": "application/vnd.apache.parquet"}).raise_for_status()


def _phase(label: str, cpu: Cpu, mem: Sampler, send: Callable[[], tuple[float, int]],
           kind: str) -> dict[str, float]:
    a = cpu.snapshot()
    with mem:
        wall, n = send()
    srv, db = cpu.delta(a, cpu.snapshot())
    line = (f"  {label:<40}{n:>10,} rows  {n / srv:>10,.0f} rows/server-CPU-s"
            f"  {n / wall:>10,.0f} rows/wall-s")
    if kind == "postgresql":
        line += f"  {n / (srv + db):>10,.0f} rows/CPU-s incl. backends ({db:.1f} s)"
    print(line, flush=True)
    return {"rows": n, "server_cpu": srv, "db_cpu": db, "wall": wall}


def _wait_compacted(url: str, model: str, within: float = 600) -> None:
    """Until every (version, level, start) key of ``model`` holds one partial."""
    eng = create_engine(url)
    q = text("SELECT COUNT(*), COUNT(DISTINCT (CAST(b.level AS TEXT) || ':' || "
             "CAST(b.start AS TEXT))) FROM bucket_profiles b JOIN models m ON m.id = "
             "b.model_id WHERE m.name = :m")
    try:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with eng.connect() as c:
                rows, keys = c.execute(q, {"m": model}).one()
            if rows and rows == keys:
                return
            time.sleep(1)
        raise RuntimeError(f"compaction did not finish: {rows} partials for {keys} keys")
    finally:
        eng.dispose()


def _profile_bytes(url: str, model: str) -> tuple[dict[int, tuple[int, int]], float]:
    """{level: (partials, blob bytes)} of ``model``, and the table's bytes per row."""
    eng = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as c:
            c.execute(text("VACUUM" if url.startswith("sqlite") else
                           "VACUUM FULL bucket_profiles"))
            by_level = {int(lv): (int(n), int(b)) for lv, n, b in c.execute(text(
                "SELECT b.level, COUNT(*), SUM(LENGTH(b.data)) FROM bucket_profiles b "
                "JOIN models m ON m.id = b.model_id WHERE m.name = :m GROUP BY b.level"),
                {"m": model})}
            total_rows = c.execute(text("SELECT COUNT(*) FROM bucket_profiles")).scalar_one()
            total_blob = c.execute(text(
                "SELECT SUM(LENGTH(data)) FROM bucket_profiles")).scalar_one()
    finally:
        eng.dispose()
    size = table_bytes(url, ("bucket_profiles",))["bucket_profiles"]
    return by_level, (size - int(total_blob)) / max(1, int(total_rows))


def _day_bodies(frame: Any, per_minute: int, end: float) -> list[bytes]:
    """Rows evenly over the 24 hours before ``end``, 1,000 per JSON body, in time order."""
    n = len(frame)
    start = end - 86400
    ts = start + (np.arange(n) // per_minute) * 60 + 30.0
    prefix = _ids_prefix()
    bodies = []
    for s in range(0, n, 1000):
        chunk = frame.iloc[s:s + 1000]
        (body,) = _json_bodies_at(chunk, f"{prefix}{s}-", ts[s:s + 1000])
        bodies.append(body)
    return bodies


def _json_bodies_at(df: Any, prefix: str, ts: np.ndarray) -> list[bytes]:
    import orjson

    rows = orjson.loads(_json_bodies(df.reset_index(drop=True), prefix, 0.0)[0])
    for row, t in zip(rows, ts, strict=True):
        row["timestamp"] = float(t)
    return [orjson.dumps(rows)]


@contextlib.contextmanager
def _server(url: str, tmp: Path) -> Iterator[ProcessServer]:
    srv = ProcessServer(url, tmp, extra_env={"AIWARDEN_COMPACT_EVERY": "1",
                                             "AIWARDEN_EVALUATE_EVERY": "0"}).spawn()
    try:
        srv.wait_ready(within=300)
        yield srv
    except Exception:
        print(srv.log()[-3000:], file=sys.stderr)
        raise
    finally:
        srv.stop()


def run(kind: str, args: argparse.Namespace) -> None:
    print(f"\n[{kind}]", flush=True)
    with tempfile.TemporaryDirectory() as tmp, database_url(kind, Path(tmp)) as url:
        with _server(url, Path(tmp)) as srv:
            assert srv.proc is not None
            api = f"{srv.url}/api/v1"
            mem = Sampler(srv.proc.pid)
            cpu = Cpu(srv.proc.pid, url)
            rss = {"started": mem.rss()}
            ref = _frame(50_000, 0)
            _reference(api, "live", ref)
            _reference(api, "day", ref)
            rss["two references"] = mem.rss()
            now = time.time()
            sizes = [table_bytes(url, EVENT_TABLES)]
            bodies = _json_bodies(_frame(args.json_rows, 1), _ids_prefix(), now)
            json_ = _phase("JSON, 1,000-row requests, 2 clients", cpu, mem, lambda: _send_all(
                f"{api}/models/live/predictions", bodies, "application/json", 2), kind)
            sizes.append(table_bytes(url, EVENT_TABLES))
            bulk = _frame(args.bulk_rows, 2)
            prefix = _ids_prefix()
            ipc = [to_ipc(_flat(bulk.iloc[s:s + 100_000], prefix, now, s))
                   for s in range(0, args.bulk_rows, 100_000)]
            arrow = _phase("Arrow IPC, 100,000-row requests, 2 clients", cpu, mem,
                           lambda: _send_all(f"{api}/models/live/predictions", ipc,
                                             "application/vnd.apache.arrow.stream", 2), kind)
            sizes.append(table_bytes(url, EVENT_TABLES))
            end = float(int(now) // 86400 * 86400)  # yesterday, midnight to midnight UTC
            day_bodies = _day_bodies(_frame(args.per_minute * 1440, 3), args.per_minute, end)
            _phase(f"one day, {args.per_minute} rows a minute (1,440 buckets)", cpu, mem,
                   lambda: _send_all(f"{api}/models/day/predictions", day_bodies,
                                     "application/json", 2), kind)
            rss["peak during ingest"] = mem.peak
            rss["after ingest"] = mem.rss()
            _wait_compacted(url, "day")
            with httpx.Client(base_url=api, timeout=600) as c:
                for step in ("1m", "10m", "1h", "1d"):
                    c.get("/models/day/metrics", params={
                        "metric": "drift", "start": end - 86400, "end": end,
                        "step": step}).raise_for_status()
            rss["after reading the day"] = mem.rss()
            cpu.close()
        levels, overhead = _profile_bytes(url, "day")

    print("  bytes per event stored (tables with their indexes):")
    for label, a, b, n in (("1,000-row JSON requests", sizes[0], sizes[1], json_["rows"]),
                           ("100,000-row Arrow requests", sizes[1], sizes[2], arrow["rows"])):
        raw = (b["event_batches"] - a["event_batches"]) / n
        idx = (b["predictions"] - a["predictions"]) / n
        print(f"    {label:<30} raw events {raw:>7.1f}  id index {idx:>6.1f}  "
              f"total {raw + idx:>7.1f}")
    print(f"  profile bytes per model-day ({args.per_minute} rows a minute, 25 features, no "
          f"segments; table and index overhead {overhead:,.0f} B a partial):")
    total = 0.0
    for level in sorted(levels):
        n, blob = levels[level]
        stored = blob + n * overhead
        total += stored
        print(f"    {LEVEL_NAMES.get(level, str(level)):<10}{n:>6} partials  "
              f"{blob / n:>9,.0f} B each  {stored / 1024:>9,.0f} KiB a day")
    print(f"    {'all':<10}{sum(n for n, _ in levels.values()):>6} partials  "
          f"{'':>11}  {total / 1024:>9,.0f} KiB a day")
    print("  server process memory (RSS):")
    for label, v in rss.items():
        print(f"    {label:<30}{v / MIB:>8,.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--json-rows", type=int, default=100_000)
    ap.add_argument("--bulk-rows", type=int, default=500_000)
    ap.add_argument("--per-minute", type=int, default=50)
    args = ap.parse_args()
    print(f"machine: {machine_line()}")
    print(f"pid {os.getpid()}; server CPU = user + system of the server process")
    for kind in (("sqlite", "postgresql") if args.db == "both" else (args.db,)):
        run(kind, args)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
