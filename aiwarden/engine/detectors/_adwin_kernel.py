"""ADWIN's batch loop compiled with numba, when numba is installed (`aiwarden[fast]`).

river's ADWIN core is compiled Cython; ours is a Python loop at ~0.5 µs a value. A
``detect`` over a long stream hands the whole stream to this kernel instead: the same
steps in the same order (every add, multiply and ``log`` is the IEEE/libm one, and
numba without ``fastmath`` neither reorders nor fuses them), so the detections and the
window are bit-for-bit those of ``ADWIN._scan`` and of river. The window lives in
fixed arrays here (level x slot, oldest first) and goes back to ``ADWIN``'s lists after
the batch, so checkpoints keep one format. Buffered ``ADWIN.update`` calls run it a clock's
worth of values at a time on a window that stays in these arrays until it is read.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from math import log, sqrt
from typing import Any

import numpy as np

__all__ = ["LEVELS", "kernel"]

#: Histogram levels the arrays hold: level ``i`` summarises ``2**i`` values each.
LEVELS = 64
_SLACK = 1.0 - 1e-12  # see _adwin._SQUARED_SLACK


@cache
def kernel() -> Callable[..., Any] | None:
    """The compiled scan, or None without numba (or with ``AIWARDEN_NO_NUMBA`` set)."""
    if os.environ.get("AIWARDEN_NO_NUMBA"):
        return None
    try:
        import numba
    except ImportError:
        return None
    return numba.njit(cache=True, nogil=True)(_scan)


def _scan(values: np.ndarray, tot: np.ndarray, var: np.ndarray, cnt: np.ndarray,
          state: np.ndarray, ints: np.ndarray, hits: np.ndarray, clock: int, grace: float,
          max_buckets: int, min_len: float, delta: float) -> int:
    """Feed ``values``; ``state`` = [width, total, variance], ``ints`` = [levels, tick,
    drift]; returns how many positions it wrote to ``hits``."""
    full = max_buckets + 1
    width, total, variance = state[0], state[1], state[2]
    nlev, tick, drift = ints[0], ints[1], ints[2]
    offset = min_len - 1.0
    n_hits = 0
    for i in range(values.shape[0]):
        x = values[i]
        if drift:
            for level in range(nlev):
                cnt[level] = 0
            nlev, width, total, variance, tick, drift = 1, 0.0, 0.0, 0.0, 0, 0
        width += 1.0
        if width > 1.0:
            d = x - total / (width - 1.0)
            variance += (width - 1.0) * d * d / width
        total += x
        k = cnt[0]
        tot[0, k] = x
        var[0, k] = 0.0  # a single value has no spread
        cnt[0] = k + 1
        # Merge the two oldest of each full level upwards. At level 0 (size 1, spreads 0)
        # this is ADWIN._merge_level0's 0.5 * (a - b) * (a - b) to the bit: a / 1.0 is a
        # and 0.0 + 0.0 + y is y for y >= 0.
        level = 0
        while cnt[level] == full:
            a, b = tot[level, 0], tot[level, 1]
            size = float(1 << level)
            gap = a / size - b / size
            merged_variance = var[level, 0] + var[level, 1] + size * 0.5 * gap * gap
            for j in range(2, full):
                tot[level, j - 2] = tot[level, j]
                var[level, j - 2] = var[level, j]
            cnt[level] -= 2
            level += 1
            if level == nlev:
                nlev += 1
                cnt[level] = 0
            k = cnt[level]
            tot[level, k] = a + b
            var[level, k] = merged_variance
            cnt[level] = k + 1
        tick += 1
        if tick % clock == 0 and width > grace:
            fired = False
            while width >= 2.0:
                spread = variance / width
                if not spread >= 0.0:
                    break
                delta_prime = log(2.0 * log(width) / delta)
                linear = 2.0 / 3.0 * delta_prime
                n0, n1, u0, u1 = 0.0, width, 0.0, total
                cut = False
                stop = False
                for level in range(nlev - 1, -1, -1):
                    size = float(1 << level)
                    m = cnt[level] if level else cnt[0] - 1
                    for j in range(m):
                        t = tot[level, j]
                        n0 += size
                        n1 -= size
                        u0 += t
                        u1 -= t
                        if n1 < min_len:
                            stop = True
                            break
                        if n0 < min_len:
                            continue
                        mm = 1.0 / (n0 - offset) + 1.0 / (n1 - offset)
                        gap = u0 / n0 - u1 / n1
                        bound = 2.0 * mm * spread * delta_prime
                        if gap * gap > bound * _SLACK and abs(gap) > sqrt(bound) + linear * mm:
                            cut = True
                            stop = True
                            break
                    if stop:
                        break
                if not cut:
                    break
                # Drop the oldest summary and its share of the sums.
                level = nlev - 1
                size = float(1 << level)
                u = tot[level, 0]
                v = var[level, 0] if level else 0.0
                mu = u / size
                width -= size
                total -= u
                mu_window = total / width
                variance -= v + size * width * (mu - mu_window) * (mu - mu_window) / (size + width)
                for j in range(1, cnt[level]):
                    tot[level, j - 1] = tot[level, j]
                    var[level, j - 1] = var[level, j]
                cnt[level] -= 1
                if cnt[level] == 0:
                    nlev -= 1
                fired = True
            if fired:
                drift = 1
                hits[n_hits] = i
                n_hits += 1
    state[0], state[1], state[2] = width, total, variance
    ints[0], ints[1], ints[2] = nlev, tick, drift
    return n_hits
