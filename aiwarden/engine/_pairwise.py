"""Column moments in cache-sized leaves, bit-identical to numpy's whole-array sums.

``np.square(v - mean).sum()`` on a million values makes two 8 MB temporaries; on a
loaded machine their first touch (page faults, huge-page compaction) costs three times
the arithmetic. numpy sums a contiguous float64 array by pairwise summation over the
whole array (halves rounded down to a multiple of 8, down to blocks of 128), so summing
the same tree's leaves one at a time into a small scratch buffer, then adding the leaf
sums back up the tree, gives the very same float.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["LEAF", "moments", "pairwise"]

#: Largest leaf: 512 KB of float64, so a leaf and its temporaries stay in the L2/L3 cache.
LEAF = 1 << 16


def pairwise(n: int, leaf_sum: Callable[[int, int], float], leaf: int = LEAF) -> float:
    """numpy's pairwise-summation tree over ``n`` values, each leaf (at most ``leaf``
    values, ``[start, stop)``) summed by ``leaf_sum``: ``np.add.reduce`` of the whole."""

    def node(start: int, size: int) -> float:
        if size <= leaf:
            return leaf_sum(start, start + size)
        half = size // 2
        half -= half % 8
        return node(start, half) + node(start + half, size - half)

    return node(0, n)


def moments(v: np.ndarray) -> tuple[float, float, int]:
    """``(v.mean(), np.square(v - mean).sum(), count of v < 0)``, exactly, one leaf at a time.

    Overflow to inf (a column of 1e308s) is the caller's to silence, as with numpy.
    """
    n = len(v)
    if n == 0:
        return 0.0, 0.0, 0
    mean = float(v.mean())
    buf = np.empty(min(n, LEAF))
    below = np.empty(min(n, LEAF), dtype=bool)
    negative = 0

    def leaf_sum(start: int, stop: int) -> float:
        nonlocal negative
        part, t, neg = v[start:stop], buf[: stop - start], below[: stop - start]
        np.less(part, 0.0, out=neg)
        negative += int(np.count_nonzero(neg))
        np.subtract(part, mean, out=t)
        np.square(t, out=t)
        return float(np.add.reduce(t))

    m2 = pairwise(n, leaf_sum)
    return mean, m2, negative
