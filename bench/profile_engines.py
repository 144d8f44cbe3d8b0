"""Profiling one Parquet dataset on each engine: local streaming vs Dask vs Spark.

The dataset and reference are those of ``bench/engine_streaming.py`` (written once under
``--dir``, default ``/tmp/aiwarden-stream``: 10,000,000 rows, 11 columns, files of 250,000
rows). Each engine runs in a fresh subprocess, profiling the whole directory on the same
reference:

* ``local``: ``Reference.profile(<directory>)`` (one process, chunk by chunk);
* ``dask``: ``profile_dask`` on a ``LocalCluster`` of ``--workers`` worker processes (one
  thread each), started and stopped inside the measurement;
* ``spark``: ``profile_spark`` on ``local[--workers]`` (skipped without pyspark), the
  session's start and stop included.

CPU time is the whole process tree's (``getrusage(RUSAGE_CHILDREN)`` in this parent after
each child and its own children are reaped; Spark's JVM is shut down and waited for so it
counts): less sensitive to the other users of this shared 2-core machine than wall time,
which is printed too. Peak memory is the tree's summed RSS, sampled every 0.1 s with psutil
(a lower bound of the true peak). Engine start-up (cluster, JVM) is inside both. Every
engine's integer counts are hashed and compared with the local engine's (Spark's
``duplicates`` are per Arrow batch, so they are left out of the hash for all).

Usage::

    .venv/bin/python bench/profile_engines.py                 # 10,000,000 rows, 2 workers
    .venv/bin/python bench/profile_engines.py --rows 2000000 --repeats 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_line
from engine_streaming import _digest, _frame, _write

MIB = 1 << 20


def _child(engine: str, ref_path: str, folder: str, workers: int) -> None:
    from aiwarden.engine import Reference

    ref = Reference.from_dict(json.loads(Path(ref_path).read_text()))
    w0 = time.perf_counter()
    if engine == "local":
        out = ref.profile(folder)
    elif engine == "dask":
        from dask.distributed import Client, LocalCluster

        from aiwarden.distributed import profile_dask

        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=":0") as cluster, Client(cluster) as client:
            out = profile_dask(ref, folder, client)
    else:
        from pyspark import SparkContext
        from pyspark.sql import SparkSession

        from aiwarden.distributed import profile_spark

        spark = (SparkSession.builder.master(f"local[{workers}]").appName("bench")
                 .config("spark.ui.enabled", "false")
                 .config("spark.driver.memory", "1g").getOrCreate())
        out = profile_spark(ref, spark.read.parquet(folder))
        spark.stop()
        gateway = SparkContext._gateway
        proc = getattr(gateway, "proc", None)
        gateway.shutdown()
        if proc is not None:  # the JVM exits when its stdin closes; reap it so its CPU counts
            proc.stdin.close()
            proc.wait(timeout=60)
    wall = time.perf_counter() - w0
    print(json.dumps({"wall": wall, "rows": out.n_rows, "digest": _digest(out)}))


def _run(engine: str, ref_path: Path, folder: Path, workers: int) -> dict[str, Any]:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYSPARK_PYTHON": sys.executable}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen([sys.executable, __file__, "--child", engine, str(ref_path),
                             str(folder), str(workers)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        root = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                rss = 0
                for p in tree:
                    with contextlib.suppress(psutil.Error):
                        rss += p.memory_info().rss
                peak[0] = max(peak[0], rss)
            except psutil.Error:
                return
            time.sleep(0.1)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    out, err = proc.communicate()
    done.set()
    t.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(f"{engine} failed:\n{err[-3000:]}")
    res = json.loads(out.strip().splitlines()[-1])
    res["cpu"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    res["peak"] = peak[0]
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/aiwarden-stream"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1, help="runs per engine (median printed)")
    ap.add_argument("--engines", default="local,dask,spark")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child[0], args.child[1], args.child[2], int(args.child[3]))
        return
    from aiwarden.engine import Reference

    root = args.dir / f"rows-{args.rows}"
    _write(root / "data", args.rows)
    ref_path = root / "reference.json"
    if not ref_path.exists():
        ref_path.write_text(json.dumps(Reference.fit(_frame(200_000, 7)).to_dict()))
    engines = args.engines.split(",")
    try:
        import pyspark  # noqa: F401
    except ImportError:
        engines = [e for e in engines if e != "spark"]
        print("spark: skipped (pyspark is not installed: the 'spark' extra)")
    print(f"machine: {machine_line()}")
    print(f"{args.rows:,} rows from {root / 'data'}, {args.workers} workers, "
          f"median of {args.repeats}")
    print(f"{'engine':<7}{'rows/CPU s':>12}{'rows/wall s':>13}{'CPU s':>8}{'wall s':>8}"
          f"{'peak MiB':>10}{'x local CPU':>13}  same counts")
    base = None
    for engine in engines:
        runs = [_run(engine, ref_path, root / "data", args.workers)
                for _ in range(args.repeats)]
        cpu = statistics.median(r["cpu"] for r in runs)
        wall = statistics.median(r["wall"] for r in runs)
        peak = max(r["peak"] for r in runs)
        rows = runs[0]["rows"]
        if base is None:
            base = (cpu, runs[0]["digest"])
        same = "yes" if runs[0]["digest"] == base[1] and rows == args.rows else "NO"
        print(f"{engine:<7}{rows / cpu:>12,.0f}{rows / wall:>13,.0f}{cpu:>8.1f}{wall:>8.1f}"
              f"{peak / MIB:>10,.0f}{cpu / base[0]:>13.2f}  {same}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
