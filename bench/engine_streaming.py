"""Out-of-core profiling: a Parquet directory of millions of rows, peak memory bounded.

It writes (seeded, once, under ``--dir``, default ``/tmp/aiwarden-stream``; never committed)
a Parquet directory of ``--rows`` rows in files of 250,000 rows: 6 float columns (NaN and
nulls planted), 2 integer, 2 string categorical columns and a boolean. A reference is fitted
in memory on 200,000 rows of the same distribution. Then each measurement runs in a fresh
subprocess (so one's peak cannot hide in another's) and reports its CPU time
(``time.process_time``: all threads, less sensitive to other users of the machine than wall
time), wall time and peak RSS (``getrusage`` ``ru_maxrss``; the RSS after imports is printed
apart):

* ``stream``: ``Reference.profile(<directory>)`` on a quarter and on all of the files, to
  show the peak does not grow with the input;
* ``repeatN``: the directory read ``--repeat`` times over (a union dataset), an input N
  times larger on the same disk;
* ``lazy``: ``Reference.profile(pl.scan_parquet(...))``, streamed by polars;
* ``fit``: ``Reference.fit(<directory>)``: bins from a 1,000,000-row sample, then every row
  counted in a second pass;
* ``memory`` (baseline, same run): ``pq.read_table`` then ``Reference.profile(table)``.

It prints rows per CPU second and per wall second, each peak against the 1 GiB budget, the
ratio to the in-memory baseline, whether every count equals the baseline's, and what one
billion rows a day would cost at the measured rate.

Usage::

    .venv/bin/python bench/engine_streaming.py                  # 10,000,000 rows
    .venv/bin/python bench/engine_streaming.py --rows 2000000 --skip-memory
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_line

FILE_ROWS = 250_000
GIB = 1 << 30
CATS = np.array([f"cat_{i:02d}" for i in range(40)])


def _frame(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {}
    for i in range(6):
        x = rng.lognormal(i * 0.1, 1.0, n) if i % 2 else rng.normal(i, 1.0 + i, n)
        x[rng.random(n) < 0.01] = np.nan
        cols[f"f{i}"] = pa.array(x, mask=rng.random(n) < 0.005)
    cols["i0"] = rng.poisson(3, n)
    cols["i1"] = rng.integers(0, 1000, n)
    cols["c0"] = pa.array(CATS[rng.zipf(1.5, n) % 40])
    cols["c1"] = pa.array(CATS[:8][rng.integers(0, 8, n)])
    cols["b"] = rng.random(n) < 0.2
    return pa.table(cols)


def _write(root: Path, rows: int) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    files = []
    for k in range((rows + FILE_ROWS - 1) // FILE_ROWS):
        path = root / f"part-{k:05d}.parquet"
        if not path.exists():
            pq.write_table(_frame(min(FILE_ROWS, rows - k * FILE_ROWS), 1000 + k),
                           path.with_suffix(".tmp"), row_group_size=FILE_ROWS)
            path.with_suffix(".tmp").rename(path)
        files.append(path)
    return files


def _digest(profile: Any) -> str:
    """Hash of every integer count of the profile (bins, missing, NaN ...): equal or not."""
    h = hashlib.sha256(str(profile.n_rows).encode())
    for name in sorted(profile.columns):
        d = profile.columns[name].to_dict()
        h.update(json.dumps({k: v for k, v in d.items()
                             if isinstance(v, int) or k == "counts"}, sort_keys=True).encode())
    return h.hexdigest()[:16]


def _child(mode: str, ref_path: str, files: list[str]) -> None:
    import polars as pl
    import pyarrow.dataset as ds

    from aiwarden.engine import Reference

    ref = Reference.from_dict(json.loads(Path(ref_path).read_text()))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    c0, w0 = time.process_time(), time.perf_counter()
    folder = str(Path(files[0]).parent)
    whole = len(files) == len(list(Path(folder).glob("*.parquet")))
    if mode == "stream":  # the directory's path when it is all of it, else a dataset
        out = ref.profile(folder if whole else ds.dataset(files))
    elif mode.startswith("repeat"):  # the directory read N times: an input N times larger
        out = ref.profile(ds.dataset([ds.dataset(folder)] * int(mode[6:])))
    elif mode == "lazy":
        out = ref.profile(pl.scan_parquet(files))
    elif mode == "fit":
        out = Reference.fit(folder).profile_
    else:
        out = ref.profile(pq.ParquetDataset(files).read())
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"cpu": cpu, "wall": wall, "peak": peak, "base": base,
                      "rows": out.n_rows, "digest": _digest(out)}))


def _run(mode: str, ref_path: Path, files: list[Path]) -> dict[str, Any]:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, __file__, "--child", mode, str(ref_path),
                          *map(str, files)], capture_output=True, text=True, env=env, check=False)
    if res.returncode:
        raise SystemExit(f"{mode} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/aiwarden-stream"))
    ap.add_argument("--skip-memory", action="store_true", help="no in-memory baseline")
    ap.add_argument("--skip-fit", action="store_true")
    ap.add_argument("--repeat", type=int, default=4,
                    help="also profile the directory read this many times over (0: no)")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child[0], args.child[1], args.child[2:])
        return
    from aiwarden.engine import Reference

    print(f"machine: {machine_line()}")
    root = args.dir / f"rows-{args.rows}"
    t0 = time.perf_counter()
    files = _write(root / "data", args.rows)
    size = sum(f.stat().st_size for f in files)
    print(f"data: {args.rows:,} rows x 11 columns in {len(files)} Parquet files, "
          f"{size / 1e6:.0f} MB on disk, under {root} ({time.perf_counter() - t0:.1f} s)")
    ref_path = root / "reference.json"
    if not ref_path.exists():
        ref_path.write_text(json.dumps(Reference.fit(_frame(200_000, 7)).to_dict()))
    quarter = files[: max(1, len(files) // 4)]
    runs = [("stream", quarter), ("stream", files)]
    if args.repeat > 1:
        runs.append((f"repeat{args.repeat}", files))
    runs.append(("lazy", files))
    if not args.skip_fit:
        runs.append(("fit", files))
    if not args.skip_memory:
        runs.append(("memory", files))
    results = []
    for mode, fs in runs:
        r = _run(mode, ref_path, fs)
        results.append((mode, r))
        print(f"  ran {mode:<6} {r['rows']:>11,} rows  load {os.getloadavg()[0]:.2f}", flush=True)
    mem = next((r for m, r in results if m == "memory"), None)
    print(f"\nafter the runs: load average {os.getloadavg()[0]:.2f}")
    print(f"{'mode':<9}{'rows':>12}{'rows/CPU s':>13}{'rows/wall s':>13}{'CPU s':>8}"
          f"{'peak RSS':>10}{'after imports':>15}{'< 1 GiB':>9}{'counts = memory':>17}")
    for mode, r in results:
        same = "-" if mem is None or mode == "fit" or r["rows"] != mem["rows"] else (
            "yes" if r["digest"] == mem["digest"] else "NO")
        print(f"{mode:<9}{r['rows']:>12,}{r['rows'] / r['cpu']:>13,.0f}"
              f"{r['rows'] / r['wall']:>13,.0f}{r['cpu']:>8.1f}{r['peak'] / 2**20:>8.0f}MB"
              f"{r['base'] / 2**20:>13.0f}MB{'yes' if r['peak'] < GIB else 'NO':>9}{same:>17}")
    full = next(r for m, r in results if m == "stream" and r["rows"] == args.rows)
    if mem is not None:
        print(f"\nstreamed / in-memory: CPU {full['cpu'] / mem['cpu']:.2f}x, "
              f"peak RSS {full['peak'] / mem['peak']:.2f}x")
    rep = next((r for m, r in results if m.startswith("repeat")), None)
    if rep is not None:
        print(f"peak RSS at {rep['rows']:,} rows / at {full['rows']:,}: "
              f"{rep['peak'] / full['peak']:.2f}x")
    per_day = 1e9 / (full["rows"] / full["cpu"])
    print(f"1B rows/day at the streamed rate: {per_day / 3600:.2f} CPU hours "
          f"({per_day / 86400 * 100:.1f} % of one core), peak RSS unchanged (one chunk at a time)")


if __name__ == "__main__":
    main()
