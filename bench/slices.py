"""Time ``find_failing_slices`` on 1,000,000 rows x 10 features and print the seconds.

Seeded data: 6 numerical features (normal, lognormal, uniform, an hour of day, a Poisson count,
one with 2% missing values) and 4 string features (3 to 200 categories). A model error rate of
5% everywhere, 60% on ``amount < 10`` and 40% on ``channel = c2 and hour < 6``; the run checks
that both planted slices come out on top, so a fast but wrong finder cannot pass.

Usage::

    .venv/bin/python bench/slices.py                 # 1,000,000 rows, best of 3
    .venv/bin/python bench/slices.py --rows 100000 --repeats 1
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from aiwarden.engine.slices import Condition, find_failing_slices


def make_data(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """(features, per-row 0/1 errors) with the two planted failing slices."""
    rng = np.random.default_rng(seed)
    amount = np.round(rng.lognormal(3.3, 1.2, n), 2)
    hour = rng.integers(0, 24, n)
    income = rng.normal(50_000, 15_000, n)
    income[rng.random(n) < 0.02] = np.nan
    frame = pd.DataFrame({
        "amount": amount,
        "hour": hour,
        "age": rng.uniform(18, 90, n),
        "score": rng.normal(0, 1, n),
        "visits": rng.poisson(3, n),
        "income": income,
        "channel": np.array(["c0", "c1", "c2"], dtype=object)[rng.integers(0, 3, n)],
        "region": np.array([f"r{i}" for i in range(10)], dtype=object)[rng.integers(0, 10, n)],
        "device": np.array([f"d{i}" for i in range(50)], dtype=object)[rng.integers(0, 50, n)],
        "merchant": np.array([f"m{i}" for i in range(200)], dtype=object)[
            rng.zipf(1.3, n) % 200],
    })
    rate = np.where(amount < 10, 0.6, 0.05)
    rate = np.where((frame["channel"].to_numpy() == "c2") & (hour < 6), 0.4, rate)
    return frame, rng.random(n) < rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    frame, errors = make_data(args.rows)
    runs, report = [], None
    for _ in range(args.repeats):
        start = time.perf_counter()
        report = find_failing_slices(frame, errors=errors)
        runs.append(time.perf_counter() - start)
    assert report is not None
    top = [set(s.conditions) for s in report.slices[:2]]
    found = top == [{Condition("amount", "<", 10.0)},
                    {Condition("channel", "==", "c2"), Condition("hour", "<", 6.0)}]
    print(f"rows={args.rows:,} features={frame.shape[1]} "
          f"candidates_tested={report.n_candidates_tested} slices={len(report.slices)}")
    for s in report.slices:
        print(f"  {s.description:<40} support={s.support:>8,} rate={s.metric_value:.3f} "
              f"excess={s.excess:,.0f} adj_p={s.adjusted_p_value:.2e}")
    print(f"planted slices on top: {found}")
    print(f"seconds: {min(runs):.2f} (best of {len(runs)}: "
          + ", ".join(f"{t:.2f}" for t in runs) + ")")


if __name__ == "__main__":
    main()
