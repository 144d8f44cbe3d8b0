"""What the failing slices' example ids cost: the RCA's slice finder
(``aiwarden.rca.analysis.failing_slices``) on a 20,000-row labelled window (the most the
dashboard's panel and the RCA read) with 5 example ids per slice against none, in this
process's CPU seconds (the host is shared), the median of ``--repeats`` alternating pairs.

    .venv/bin/python bench/slice_examples.py [--rows 20000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_line

from aiwarden.engine.schema import infer_schema
from aiwarden.rca.analysis import failing_slices


def window(n: int) -> pa.Table:
    """Fraud-like rows: wrong mostly under $10, then on BR app orders and at night."""
    rng = np.random.default_rng(0)
    amount = rng.lognormal(3.3, 1.2, n)
    y = rng.integers(0, 2, n)
    hour, country = rng.integers(0, 24, n), rng.choice(["US", "DE", "BR"], n)
    channel = rng.choice(["web", "app", "pos"], n)
    p = np.where(amount < 10, 0.7, np.where((country == "BR") & (channel == "app"), 0.3,
                                            np.where(hour < 4, 0.2, 0.05)))
    wrong = rng.random(n) < p
    return pa.table({"prediction_id": [f"p{i}" for i in range(n)], "amount": amount,
                     "hour": hour, "country": country, "channel": channel,
                     "prediction": np.where(wrong, 1 - y, y), "label": y})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args()
    rows = window(a.rows)
    schema = infer_schema(rows.drop(["prediction_id"]).to_pandas(), target="label",
                          prediction="prediction", task="binary")
    times: dict[int, list[float]] = {0: [], 5: []}
    failing_slices(schema, rows)  # warm-up
    for i in range(a.repeats):
        for k in ((0, 5) if i % 2 else (5, 0)):
            t = time.process_time()
            _, slices = failing_slices(schema, rows, examples=k)
            times[k].append(time.process_time() - t)
    print(machine_line())
    print(f"{a.rows:,} labelled rows, {len(slices)} slices, median CPU s of {a.repeats}:")
    none, five = statistics.median(times[0]), statistics.median(times[5])
    print(f"  without examples {none:.4f} s, with 5 per slice {five:.4f} s "
          f"(+{(five - none) * 1000:.1f} ms, ratio {five / none:.3f})")


if __name__ == "__main__":
    main()
