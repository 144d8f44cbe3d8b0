"""Reference upload cost against the number of columns: it must grow linearly.

A reference upload once took 19 s for 6,000 columns and minutes for 100,000 (schema and fit
lookups that scanned the column list once per column). For each width this measures, on the
same seeded data (200 rows of numerical features plus a 0/1 prediction):

* ``fit``: ``Reference.fit`` alone (schema inference, bins, profile, fingerprint);
* ``upload``: what ``PUT /models/{name}/versions/{version}/reference`` does after reading the
  body: Parquet decode, ``Monitor.upload_reference`` (fit, sample, store on SQLite) and the
  default alert rules.

It prints seconds per width and the ratio to the previous width: doubling the columns
should about double the time (ratio near 2; quadratic work shows as ratios near 4). The
server refuses references wider than ``AIWARDEN_MAX_COLUMNS`` (default 5,000); the bench
calls the service directly, so wider widths still run.

Usage::

    .venv/bin/python bench/reference_columns.py
    .venv/bin/python bench/reference_columns.py --columns 1000 2000 4000 8000 16000 --rows 500
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def _frame(columns: int, rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(columns)
    df = pd.DataFrame(rng.normal(size=(rows, columns)), columns=[f"f{i}" for i in range(columns)])
    df["prediction"] = rng.integers(0, 2, rows)
    return df


def _time_fit(df: pd.DataFrame) -> float:
    from aiwarden.engine.reference import Reference

    start = time.perf_counter()
    Reference.fit(df, prediction="prediction")
    return time.perf_counter() - start


def _time_upload(df: pd.DataFrame, folder: Path) -> float:
    from aiwarden.alerting.evaluator import install_defaults
    from aiwarden.monitoring.service import Monitor
    from aiwarden.store.database import Database
    from aiwarden.tabular_io import PARQUET, read_table

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), buf)
    body = buf.getvalue()
    monitor = Monitor(Database(f"sqlite:///{folder / 'bench.db'}"))
    monitor.db.migrate()
    try:
        monitor.create_model("wide", None, None)
        start = time.perf_counter()
        table = read_table(body, PARQUET)
        out = monitor.upload_reference("wide", "1", table, {"prediction": "prediction"})
        install_defaults(monitor, "wide", out["schema"].get("task"))
        return time.perf_counter() - start
    finally:
        monitor.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--columns", type=int, nargs="+", default=[1000, 2000, 4000, 8000])
    parser.add_argument("--rows", type=int, default=200)
    args = parser.parse_args()
    print(f"{'columns':>8} {'fit s':>8} {'ratio':>6} {'upload s':>9} {'ratio':>6} "
          f"{'us/column':>10}")
    prev: tuple[int, float, float] | None = None
    for n in sorted(args.columns):
        df = _frame(n, args.rows)
        fit = _time_fit(df)
        with tempfile.TemporaryDirectory() as tmp:
            upload = _time_upload(df, Path(tmp))
        if prev is None:
            r_fit = r_up = "-"
        else:
            scale = n / prev[0]  # ratios are per doubling whatever the step
            r_fit = f"{(fit / prev[1]) ** (np.log(2) / np.log(scale)):.2f}"
            r_up = f"{(upload / prev[2]) ** (np.log(2) / np.log(scale)):.2f}"
        print(f"{n:>8} {fit:>8.2f} {r_fit:>6} {upload:>9.2f} {r_up:>6} "
              f"{upload / n * 1e6:>10.0f}", flush=True)
        prev = (n, fit, upload)
    print("ratio: time growth per doubling of the columns (2 = linear, 4 = quadratic)")


if __name__ == "__main__":
    main()
