"""PostgreSQL ingest against SQLite's and against the floor, plain COPY of the same rows.

Issue 17 (item 3) asks PostgreSQL ingest to be at least as fast as SQLite's on the same
machine. Every configuration ingests the same JSON rows (25 features + score + prediction,
1,000-row requests, ``--clients`` keep-alive senders) into a fresh database, in rounds that
interleave the configurations so a change of the machine's load hits them alike; medians
over the rounds are printed, and every ratio is taken inside this one run:

* ``sqlite``: one ``aiwarden server`` process on a SQLite file;
* ``postgresql x1``: one server process on a PostgreSQL database;
* ``postgresql x2``: ``aiwarden server --workers 2`` (two uvicorn worker processes on one
  port and one database; ``--split`` starts two servers on two ports instead, the senders
  split between them);
* ``COPY floor``: the same request bodies, parsed and written by ``COPY`` into a bare
  table (no index, no checks, no profiles), one transaction per request as ingest commits,
  by as many senders straight to PostgreSQL;
* with ``--baseline-rev REV``, ``postgresql x1 @REV``: one server process running
  ``aiwarden/`` as of git revision REV (unpacked by ``git archive``, imported through
  ``PYTHONPATH`` with ``PYTHONSAFEPATH``), so before and after come from one run.

Two speeds per configuration: rows per wall second, and rows per CPU second of the work
that stores them (the server processes plus, on PostgreSQL, the database backends serving
this database, read from ``/proc``; the load generator is not counted, nor PostgreSQL's
WAL writer and checkpointer), also given as CPU milliseconds per 1,000 rows split into
the server's and the database's. The machine is shared, so the CPU figure is the one to
compare; wall speed is printed beside it with the load average.

    .venv/bin/python bench/ingest_postgres.py [--rows 60000] [--rounds 3] [--clients 4]
        [--baseline-rev HEAD~3] [--only "sqlite,postgresql x1"]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import numpy as np
import orjson
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiwarden.sdk._payload import to_parquet
from bench._machine import machine_line
from bench.ingest import _frame, _json_bodies
from tests.server.live import ProcessServer, database_url

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a process has used; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a ``--workers`` server's worker processes)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _backends(pg_url: str | None) -> dict[int, float]:
    """CPU seconds of every PostgreSQL backend connected to this database."""
    if pg_url is None:
        return {}
    dsn = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as c:
        me = c.info.backend_pid
        pids = [r[0] for r in c.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")]
    return {p: _cpu_of(p) for p in pids if p != me}


class _Meter:
    """CPU of the given processes plus this database's backends between start and stop."""

    def __init__(self, pids: list[int], pg_url: str | None) -> None:
        self.pids, self.pg_url = pids, pg_url

    def __enter__(self) -> _Meter:
        self.own = {p: _cpu_of(p) for root in self.pids for p in _tree(root)}
        self.pg = _backends(self.pg_url)
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t0
        self.own_cpu = sum(_cpu_of(p) - self.own.get(p, 0.0)
                           for root in self.pids for p in _tree(root))
        end = _backends(self.pg_url)
        self.db_cpu = sum(c - self.pg.get(p, 0.0) for p, c in end.items())


def _send(urls: list[str], bodies: list[bytes], clients: int) -> int:
    """Posts every body, client ``i`` to ``urls[i % len(urls)]``; returns rows accepted."""
    queue = list(bodies)
    lock = threading.Lock()
    accepted = [0]
    failed: list[BaseException] = []

    def worker(url: str) -> None:
        try:
            with httpx.Client(timeout=600) as c:
                while True:
                    with lock:
                        if not queue:
                            return
                        body = queue.pop()
                    r = c.post(url, content=body, headers={"content-type": "application/json"})
                    if r.status_code == 429:  # admission control: wait it out, as the SDK does
                        time.sleep(float(r.headers.get("retry-after", "1")))
                        with lock:
                            queue.append(body)
                        continue
                    r.raise_for_status()
                    with lock:
                        accepted[0] += r.json()["accepted"]
        except BaseException as e:
            failed.append(e)

    ws = [threading.Thread(target=worker, args=(urls[i % len(urls)],)) for i in range(clients)]
    for w in ws:
        w.start()
    for w in ws:
        w.join()
    if failed:
        raise failed[0]
    return accepted[0]


def _copy_floor(conns: list[psycopg.Connection], bodies: list[bytes]) -> int:
    """The same bodies into a bare table by COPY, one transaction per body (parsing the
    JSON included, as the server must), a sender per connection; returns rows written."""
    queue = list(bodies)
    lock = threading.Lock()
    written = [0]

    def worker(conn: psycopg.Connection) -> None:
        while True:
            with lock:
                if not queue:
                    return
                body = queue.pop()
            rows = orjson.loads(body)
            t = pa.table({
                "prediction_id": [r["prediction_id"] for r in rows],
                "ts": pa.array([r["timestamp"] for r in rows], pa.float64()),
                "prediction": pa.array([r["prediction"] for r in rows], pa.int64()),
                "score": pa.array([r["scores"] for r in rows], pa.float64()),
                "latency_ms": pa.array([r["latency_ms"] for r in rows], pa.float64()),
                "features": [orjson.dumps(r["features"]).decode() for r in rows]})
            sink = io.BytesIO()
            pacsv.write_csv(t, sink, pacsv.WriteOptions(include_header=False))
            with conn.cursor() as cur, cur.copy(
                    "COPY floor_events FROM STDIN (FORMAT csv)") as cp:
                cp.write(sink.getvalue())
            conn.commit()
            with lock:
                written[0] += len(rows)

    ws = [threading.Thread(target=worker, args=(c,)) for c in conns]
    for w in ws:
        w.start()
    for w in ws:
        w.join()
    return written[0]


@contextmanager
def _servers(kind: str, n: int, tmp: Path, split: bool, code: Path | None = None
             ) -> Iterator[tuple[str, list[ProcessServer]]]:
    """``n`` server processes on one fresh database (one ``--workers n`` server, or with
    ``split`` n servers on n ports), a model with a reference on it; ``code``: a
    directory whose ``aiwarden`` package the servers run instead of this tree's."""
    env = None if code is None else {"PYTHONPATH": str(code), "PYTHONSAFEPATH": "1"}
    with database_url(kind, tmp) as url, ExitStack() as stack:
        srvs = []
        for i in range(n if split else 1):
            d = tmp / f"srv{i}"
            d.mkdir()
            args = ["--host", "127.0.0.1"] + ([] if split or n == 1 else ["--workers", str(n)])
            s = ProcessServer(url, d, args=args, extra_env=env).spawn().wait_ready(within=300)
            stack.callback(s.stop)
            srvs.append(s)
        ref = _frame(20_000, 0)
        with httpx.Client(base_url=f"{srvs[0].url}/api/v1", timeout=600) as c:
            c.post("/models", json={"name": "bench"}).raise_for_status()
            c.put("/models/bench/versions/v1/reference", content=to_parquet(
                pa.Table.from_pandas(ref, preserve_index=False)),
                params={"target": "label", "prediction": "prediction", "scores": "score"},
                headers={"content-type": "application/vnd.apache.parquet"}).raise_for_status()
        yield url, srvs


def _phase(name: str, kind: str, n_servers: int, bodies: list[bytes], clients: int,
           tmp: Path, split: bool, code: Path | None = None) -> dict[str, float]:
    rows = sum(len(orjson.loads(b)) for b in bodies)
    if kind == "floor":
        with database_url("postgresql", tmp) as url:
            dsn = url.replace("postgresql+psycopg://", "postgresql://")
            with psycopg.connect(dsn, autocommit=True) as c:
                c.execute("CREATE TABLE floor_events (prediction_id text, ts float8, "
                          "prediction bigint, score float8, latency_ms float8, features text)")
            conns = [psycopg.connect(dsn) for _ in range(clients)]
            try:
                with _Meter([os.getpid()], url) as m:  # before closing: backends' CPU
                    got = _copy_floor(conns, bodies)
            finally:
                for c in conns:
                    c.close()
    else:
        with _servers(kind, n_servers, tmp, split, code) as (url, srvs):
            urls = [f"{s.url}/api/v1/models/bench/predictions" for s in srvs]
            # warm-up requests: imports, the reference cache, the pool of every worker
            for i, u in enumerate(urls * (1 if split else 2 * n_servers)):
                httpx.post(u, content=_json_bodies(_frame(1000, 9), f"w{i}_", time.time())[0],
                           headers={"content-type": "application/json"},
                           timeout=600).raise_for_status()
            pg = url if kind == "postgresql" else None
            with _Meter([s.proc.pid for s in srvs if s.proc is not None], pg) as m:
                got = _send(urls, bodies, clients)
    if got != rows:
        raise RuntimeError(f"{name}: {got} of {rows} rows accepted")
    cpu = m.own_cpu + m.db_cpu
    return {"wall_rows_s": rows / m.wall, "cpu_rows_s": rows / cpu, "own_cpu": m.own_cpu,
            "db_cpu": m.db_cpu, "wall": m.wall, "own_ms_1k": m.own_cpu / rows * 1e6,
            "db_ms_1k": m.db_cpu / rows * 1e6}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=60_000, help="rows per configuration and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--clients", type=int, default=4, help="concurrent senders")
    p.add_argument("--only", default="", help="comma list of configurations to run")
    p.add_argument("--split", action="store_true",
                   help="x2 as two servers on two ports instead of --workers 2")
    p.add_argument("--baseline-rev", default="",
                   help="also run one server process on aiwarden/ as of this git revision")
    args = p.parse_args()
    configs: list[tuple[str, str, int]] = [
        ("sqlite", "sqlite", 1), ("postgresql x1", "postgresql", 1),
        ("postgresql x2", "postgresql", 2), ("COPY floor", "floor", 0)]
    code: dict[str, Path] = {}
    if args.baseline_rev:
        from bench.engine import baseline_tree

        before = f"postgresql x1 @{args.baseline_rev}"
        configs.insert(2, (before, "postgresql", 1))
        code[before] = baseline_tree(args.baseline_rev, Path(tempfile.mkdtemp(
            prefix="aiwarden-base-")))
    if args.only:
        keep = set(args.only.split(","))
        configs = [c for c in configs if c[0] in keep]
    print(machine_line())
    print("x2: " + ("two servers on two ports, senders split" if args.split
                    else "aiwarden server --workers 2"))
    print(f"{args.rows:,} JSON rows per configuration and round (1,000-row requests, 25 "
          f"features), {args.clients} senders, {args.rounds} rounds interleaved")
    results: dict[str, list[dict[str, float]]] = {c[0]: [] for c in configs}
    data = _frame(args.rows, 1)
    for r in range(args.rounds):
        for name, kind, n in configs:
            # fresh ids each round (fresh databases too): nothing is a duplicate
            bodies = _json_bodies(data, f"r{r}_", time.time())
            with tempfile.TemporaryDirectory() as tmp:
                res = _phase(name, kind, n, bodies, args.clients, Path(tmp), args.split,
                             code.get(name))
            results[name].append(res)
            print(f"  round {r + 1} {name:<14} {res['wall_rows_s']:>9,.0f} rows/s wall  "
                  f"{res['cpu_rows_s']:>9,.0f} rows/CPU-s  (process {res['own_cpu']:.2f} s, "
                  f"database {res['db_cpu']:.2f} s, wall {res['wall']:.2f} s, load "
                  f"{os.getloadavg()[0]:.2f})", flush=True)

    def med(n: str, k: str) -> float:
        return float(np.median([x[k] for x in results[n]]))

    base = "sqlite" if "sqlite" in results else configs[0][0]
    print(f"\nmedians over {args.rounds} rounds ({machine_line()})")
    width = max(14, *(len(n) for n in results))
    print(f"  {'':<{width}} {'rows/s wall':>12} {'rows/CPU-s':>11} {'÷ SQLite wall':>14} "
          f"{'÷ SQLite CPU':>13} {'CPU ms per 1k rows: server + database':>38}")
    for name in results:
        w, c = med(name, "wall_rows_s"), med(name, "cpu_rows_s")
        own, db = med(name, "own_ms_1k"), med(name, "db_ms_1k")
        print(f"  {name:<{width}} {w:>12,.0f} {c:>11,.0f} {w / med(base, 'wall_rows_s'):>14.2f} "
              f"{c / med(base, 'cpu_rows_s'):>13.2f} {own:>22.1f} + {db:>5.1f} = {own + db:>5.1f}")


if __name__ == "__main__":
    main()
