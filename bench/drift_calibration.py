"""How often the default drift rule flags, per window size: unshifted windows vs shifted ones.

A 100,000-row reference of eleven columns (normal, uniform, gamma, lognormal; heavy-tailed
lognormal(0, 1.5), Lomax(2.5) and Student-t(3); Poisson counts, negative-binomial counts,
a 4-level integer; a 5-level category: ``aiwarden.demo.calibration``). For each window size,
``--windows`` windows drawn from the same distributions (unshifted), with every numerical
mean moved by 0.25 and by 0.5 true standard deviations, and with one category's share moved
30 % -> 40 %. Printed per size:

* false alarms per feature-window (unshifted columns that flagged) and per window (any
  unshifted column flagged: what ``alpha = 0.01``, Bonferroni over the columns, promises),
  with the one-sided 95 % upper bound of the per-window rate;
* the worst column family's per-feature rate;
* power: the share of shifted numerical feature-windows flagged at 0.25 and 0.5 sd, and of
  category windows at 30 % -> 40 %.

    .venv/bin/python bench/drift_calibration.py [--windows 400] [--sizes 100,200,500,1000,10000]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections import defaultdict

import numpy as np
from scipy import stats

from aiwarden.demo.calibration import CALIBRATION_COLUMNS, calibration_frame
from aiwarden.engine import Reference

SCENARIOS = {"unshifted": {}, "0.25 sd": {"mean_shift": 0.25}, "0.5 sd": {"mean_shift": 0.5},
             "share +0.10": {"share_shift": 0.10}}


def run_size(ref: Reference, rows: int, n_windows: int, seed: int) -> dict[str, float]:
    """Rates at one window size (see the module docstring)."""
    out: dict[str, float] = {}
    for name, kw in SCENARIOS.items():
        rng = np.random.default_rng([seed, rows, len(name)])
        fa = fa_n = windows_flagged = hit = hit_n = 0
        by_family: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for _ in range(n_windows):
            report = ref.compare(ref.profile(calibration_frame(rows, rng, **kw)), detail=False)
            any_false = False
            for col in report.features:
                family = CALIBRATION_COLUMNS[col.column][0]
                shifted = (family == "categorical") == ("share_shift" in kw) and bool(kw)
                if shifted:
                    hit, hit_n = hit + col.drifted, hit_n + 1
                else:
                    fa, fa_n = fa + col.drifted, fa_n + 1
                    by_family[family][0] += col.drifted
                    by_family[family][1] += 1
                    any_false |= col.drifted
            windows_flagged += any_false
        if name == "unshifted":
            out["fa_feature"] = fa / fa_n
            out["fa_window"] = windows_flagged / n_windows
            out["fa_window_ub"] = float(stats.beta.ppf(0.95, windows_flagged + 1,
                                                       n_windows - windows_flagged))
            worst = max(by_family.items(), key=lambda kv: kv[1][0] / kv[1][1])
            out["worst_family"] = worst[0]  # type: ignore[assignment]
            out["worst_rate"] = worst[1][0] / worst[1][1]
        else:
            out[name] = hit / hit_n
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=400)
    ap.add_argument("--sizes", default="100,200,500,1000,10000")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f}")
    t0 = time.perf_counter()
    ref = Reference.fit(calibration_frame(100_000, np.random.default_rng(0)))
    print(f"reference: 100,000 rows, {len(CALIBRATION_COLUMNS)} features; "
          f"{args.windows} windows per size and scenario")
    head = (f"{'rows':>7}{'FA/feature':>12}{'FA/window':>11}{'(95% ub)':>10}"
            f"{'worst family':>20}{'0.25 sd':>9}{'0.5 sd':>8}{'share':>8}")
    print(head)
    for rows in sizes:
        r = run_size(ref, rows, args.windows, args.seed)
        worst = f"{r['worst_family']} {r['worst_rate']:.2%}"
        print(f"{rows:>7}{r['fa_feature']:>12.3%}{r['fa_window']:>11.2%}"
              f"{r['fa_window_ub']:>10.2%}{worst:>20}{r['0.25 sd']:>9.1%}{r['0.5 sd']:>8.1%}"
              f"{r['share +0.10']:>8.1%}", flush=True)
    print(f"total {time.perf_counter() - t0:.0f} s, load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
