"""Compiled loops for the column passes numpy does in many sweeps (numba, when installed:
``aiwarden[fast]``).

Counting a column on its bins takes numpy half a dozen sweeps (cell, lookup, comparisons,
``bincount``), each streaming the column or a temporary through memory; here each value
is looked up once, branch-free, into four interleaved histograms (so runs of one bin do
not wait on each other). The quantile selection's cell histogram and pick, the distinct
values of a discrete column, the first rows of a kind, the row hash and the duplicate
count are one loop each. Every count is exactly the numpy path's (the bin of a value is
``searchsorted(edges, x, 'right')`` through the same grid as ``NumericalBinning.bin_of``);
the fit's moments stay numpy's own sums, the profile's one pass (:func:`_profile_pass`)
sums them in another order (equal to rounding). The loops release the GIL, so columns
run on every core.
Without numba (or with ``AIWARDEN_NO_NUMBA`` set) :func:`kernels` is None and the
callers keep the numpy path.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np

from aiwarden.engine._once import once

__all__ = ["SUM_BLOCK", "distinct", "kernels"]

#: Cells of :func:`distinct`'s grid: integer columns spanning fewer values get one each.
_GRID_CELLS = 1 << 16


def _cell(x: float, lo: float, scale: float, top: int) -> int:
    t = (x - lo) * scale  # as _binning._cell: (x - lo) * scale, clipped, truncated
    t = max(t, 0.0)
    t = min(t, float(top))
    return int(t)


def _bin_counts(v: np.ndarray, lo: float, scale: float, top: int, first: np.ndarray,
                rounds: int, padded: np.ndarray, out: np.ndarray) -> None:
    """``out += bincount(searchsorted(edges, v, 'right'))`` by ``NumericalBinning``'s grid
    lookup (``padded`` = edges + [inf]): ``first`` bin of the value's cell, then
    ``rounds`` branch-free comparisons with the next edges."""
    nb = out.shape[0]
    sub = np.zeros((4, nb), dtype=np.int64)
    n = v.shape[0]
    n4 = n - n % 4
    for i in range(0, n4, 4):
        for j in range(4):
            x = v[i + j]
            b = first[_cell(x, lo, scale, top)]
            for _ in range(rounds):
                b += x >= padded[b]
            sub[j, b] += 1
    for i in range(n4, n):
        x = v[i]
        b = first[_cell(x, lo, scale, top)]
        for _ in range(rounds):
            b += x >= padded[b]
        sub[0, b] += 1
    for j in range(4):
        for b in range(nb):
            out[b] += sub[j, b]


#: Values per block of :func:`_profile_pass`'s sums: each block is summed on four lanes,
#: then the block sums pairwise by numpy (error ~ (256 + log2 n) ulp, not n ulp).
SUM_BLOCK = 1024


def _lookup(x: float, lo: float, scale: float, top: int, first: np.ndarray, rounds: int,
            padded: np.ndarray) -> int:
    b = first[_cell(x, lo, scale, top)]
    for _ in range(rounds):
        b += x >= padded[b]
    return b


def _profile_pass(v: np.ndarray, lo: float, scale: float, top: int, first: np.ndarray,
                  rounds: int, padded: np.ndarray, clip_lo: float, clip_hi: float,
                  center: float, out: np.ndarray, sums: np.ndarray, squares: np.ndarray
                  ) -> tuple[float, float, int]:
    """:func:`_bin_counts` plus, in the same read of ``v``: min and max, the count of
    negative values, and per block of ``SUM_BLOCK`` values the sums of ``d`` and ``d**2``
    where ``d = clip(v, clip_lo, clip_hi) - center`` (the caller turns them into mean and
    m2). Four lanes in scalars (kept in registers, no chain of dependent adds or
    min/max across values). Returns (min, max, negatives)."""
    nb = out.shape[0]
    sub = np.zeros((4, nb), dtype=np.int64)
    n = v.shape[0]
    mn0 = mn1 = mn2 = mn3 = np.inf
    mx0 = mx1 = mx2 = mx3 = -np.inf
    neg = 0
    for blk in range(sums.shape[0]):
        start = blk * SUM_BLOCK
        stop = min(start + SUM_BLOCK, n)
        s0 = s1 = s2 = s3 = 0.0
        q0 = q1 = q2 = q3 = 0.0
        stop4 = stop - (stop - start) % 4
        for i in range(start, stop4, 4):
            x0, x1, x2, x3 = v[i], v[i + 1], v[i + 2], v[i + 3]
            sub[0, _lookup(x0, lo, scale, top, first, rounds, padded)] += 1
            sub[1, _lookup(x1, lo, scale, top, first, rounds, padded)] += 1
            sub[2, _lookup(x2, lo, scale, top, first, rounds, padded)] += 1
            sub[3, _lookup(x3, lo, scale, top, first, rounds, padded)] += 1
            mn0, mn1, mn2, mn3 = min(mn0, x0), min(mn1, x1), min(mn2, x2), min(mn3, x3)
            mx0, mx1, mx2, mx3 = max(mx0, x0), max(mx1, x1), max(mx2, x2), max(mx3, x3)
            neg += (x0 < 0.0) + (x1 < 0.0) + (x2 < 0.0) + (x3 < 0.0)
            d0 = min(max(x0, clip_lo), clip_hi) - center
            d1 = min(max(x1, clip_lo), clip_hi) - center
            d2 = min(max(x2, clip_lo), clip_hi) - center
            d3 = min(max(x3, clip_lo), clip_hi) - center
            s0, s1, s2, s3 = s0 + d0, s1 + d1, s2 + d2, s3 + d3
            q0, q1, q2, q3 = q0 + d0 * d0, q1 + d1 * d1, q2 + d2 * d2, q3 + d3 * d3
        for i in range(stop4, stop):
            x0 = v[i]
            sub[0, _lookup(x0, lo, scale, top, first, rounds, padded)] += 1
            mn0, mx0 = min(mn0, x0), max(mx0, x0)
            neg += x0 < 0.0
            d0 = min(max(x0, clip_lo), clip_hi) - center
            s0 += d0
            q0 += d0 * d0
        sums[blk] = (s0 + s1) + (s2 + s3)
        squares[blk] = (q0 + q1) + (q2 + q3)
    for j in range(4):
        for b in range(nb):
            out[b] += sub[j, b]
    return min(min(mn0, mn1), min(mn2, mn3)), max(max(mx0, mx1), max(mx2, mx3)), neg


def _squares_about(v: np.ndarray, clip_lo: float, clip_hi: float, mean: float,
                   squares: np.ndarray) -> None:
    """Per block of ``SUM_BLOCK`` values, the sum of ``(clip(v) - mean) ** 2`` (the exact
    second pass, when the one-pass sums lost digits to cancellation)."""
    n = v.shape[0]
    for blk in range(squares.shape[0]):
        start = blk * SUM_BLOCK
        stop = min(start + SUM_BLOCK, n)
        q0 = q1 = q2 = q3 = 0.0
        stop4 = stop - (stop - start) % 4
        for i in range(start, stop4, 4):
            d0 = min(max(v[i], clip_lo), clip_hi) - mean
            d1 = min(max(v[i + 1], clip_lo), clip_hi) - mean
            d2 = min(max(v[i + 2], clip_lo), clip_hi) - mean
            d3 = min(max(v[i + 3], clip_lo), clip_hi) - mean
            q0, q1, q2, q3 = q0 + d0 * d0, q1 + d1 * d1, q2 + d2 * d2, q3 + d3 * d3
        for i in range(stop4, stop):
            d0 = min(max(v[i], clip_lo), clip_hi) - mean
            q0 += d0 * d0
        squares[blk] = (q0 + q1) + (q2 + q3)


def _distinct_hashes(h: np.ndarray, bits: int) -> int:
    """How many distinct values ``h`` holds: the values split into ``2**bits`` buckets by
    their top bits (one counting pass, one scatter), then each bucket put in a small
    open-addressing table that stays in the CPU cache (a stamp per slot says which
    bucket filled it, so no table is cleared)."""
    n = h.shape[0]
    nb = 1 << bits
    shift = np.uint64(64 - bits)
    start = np.zeros(nb + 1, dtype=np.int64)
    for i in range(n):
        start[np.int64(h[i] >> shift) + 1] += 1
    biggest = 0
    for b in range(nb):
        biggest = max(biggest, start[b + 1])
        start[b + 1] += start[b]
    pos = start[:nb].copy()
    part = np.empty(n, dtype=np.uint64)
    for i in range(n):
        b = np.int64(h[i] >> shift)
        part[pos[b]] = h[i]
        pos[b] += 1
    size = 16
    while size < 2 * biggest:
        size *= 2
    mask = size - 1
    table = np.empty(size, dtype=np.uint64)
    stamp = np.zeros(size, dtype=np.int64)
    found = 0
    for b in range(nb):
        for i in range(start[b], start[b + 1]):
            x = part[i]
            slot = np.int64(x & np.uint64(mask))
            while True:
                if stamp[slot] != b + 1:
                    stamp[slot] = b + 1
                    table[slot] = x
                    found += 1
                    break
                if table[slot] == x:
                    break
                slot = (slot + 1) & mask
    return found


def _mix_into(h: np.ndarray, key: np.ndarray, seed: np.uint64) -> None:
    """``h ^= splitmix64(key + seed)`` in one loop (numpy: eight passes and a temporary)."""
    c1, c2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
    s30, s27, s31 = np.uint64(30), np.uint64(27), np.uint64(31)
    for i in range(h.shape[0]):
        z = key[i] + seed
        z = (z ^ (z >> s30)) * c1
        z = (z ^ (z >> s27)) * c2
        h[i] ^= z ^ (z >> s31)


def _first_in(v: np.ndarray, lo: float, hi: float, k: int) -> np.ndarray:
    """Positions of the first ``k`` values in ``[lo, hi)`` (stops there)."""
    out = np.empty(k, dtype=np.int64)
    j = 0
    for i in range(v.shape[0]):
        x = v[i]
        if x >= lo and x < hi:
            out[j] = i
            j += 1
            if j == k:
                break
    return out[:j]


def _cell_counts(v: np.ndarray, lo: float, scale: float, top: int, out: np.ndarray) -> None:
    """``out += bincount(_cell(v))`` (the quantile selection's first pass)."""
    for i in range(v.shape[0]):
        out[_cell(v[i], lo, scale, top)] += 1


def _pick(v: np.ndarray, lo: float, scale: float, top: int, keep: np.ndarray,
          n_out: int) -> np.ndarray:
    """The values whose cell is kept, in order (``n_out`` of them)."""
    out = np.empty(n_out)
    j = 0
    for i in range(v.shape[0]):
        x = v[i]
        if keep[_cell(x, lo, scale, top)]:
            out[j] = x
            j += 1
    return out[:j]


def _distinct_grid(v: np.ndarray, lo: float, scale: float, top: int, limit: int,
                   rep: np.ndarray, counts: np.ndarray) -> int:
    """Distinct values of ``v`` when each has a cell of its own on the grid (integers over
    a range narrower than the grid do): ``rep`` (float bits, NaN's when empty) and
    ``counts`` per cell. Returns how many, -1 past ``limit``, -2 when two different bit
    patterns share a cell (then :func:`_distinct` decides)."""
    bits = v.view(np.uint64)
    empty = rep[0]
    found = 0
    for i in range(v.shape[0]):
        b = bits[i]
        c = _cell(v[i], lo, scale, top)
        r = rep[c]
        if r != b:
            if r != empty:
                return -2
            found += 1
            if found > limit:
                return -1
            rep[c] = b
        counts[c] += 1
    return found


def _distinct(v: np.ndarray, limit: int, keys: np.ndarray, counts: np.ndarray) -> int:
    """Distinct values of ``v`` and their counts in an open-addressing table of float bits
    (``keys`` sized a power of two, at least ``4 * limit``; empty slots hold the bits of
    NaN, which ``v`` never holds). Returns how many, or -1 past ``limit`` or when both
    +0.0 and -0.0 occur (equal values with different bits: the sorted path decides)."""
    mask = keys.shape[0] - 1
    empty = keys[0]
    found = 0
    zeros = 0
    bits = v.view(np.uint64)
    last_b = empty
    last_slot = 0
    for i in range(v.shape[0]):
        b = bits[i]
        if b == last_b:
            counts[last_slot] += 1
            continue
        h = (b * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)
        slot = np.int64(h) & mask
        while True:
            k = keys[slot]
            if k == b:
                break
            if k == empty:
                found += 1
                if found > limit:
                    return -1
                keys[slot] = b
                if v[i] == 0.0:
                    zeros += 1
                    if zeros > 1:
                        return -1
                break
            slot = (slot + 1) & mask
        counts[slot] += 1
        last_b, last_slot = b, slot
    return found


@once
def kernels() -> SimpleNamespace | None:
    """The compiled loops, loaded (from numba's disk cache after the first run) and run
    once on tiny inputs so no later call pays a compilation; None without numba or with
    ``AIWARDEN_NO_NUMBA`` set."""
    if os.environ.get("AIWARDEN_NO_NUMBA"):
        return None
    try:
        import numba
    except ImportError:
        return None
    jit = numba.njit(cache=True, nogil=True)
    inline = numba.njit(cache=True, nogil=True, inline="always")
    globals()["_cell"] = inline(_cell)
    globals()["_lookup"] = inline(_lookup)
    k = SimpleNamespace(bin_counts=jit(_bin_counts), first_in=jit(_first_in),
                        cell_counts=jit(_cell_counts), pick=jit(_pick),
                        distinct=jit(_distinct), distinct_grid=jit(_distinct_grid),
                        profile_pass=jit(_profile_pass), squares_about=jit(_squares_about),
                        distinct_hashes=jit(_distinct_hashes), mix_into=jit(_mix_into))
    for x in (np.zeros(4), _readonly(np.zeros(4))):  # Arrow's zero-copy arrays are read-only
        _warm(k, x)
    return k


def _readonly(x: np.ndarray) -> np.ndarray:
    x.flags.writeable = False
    return x


def _warm(k: SimpleNamespace, x: np.ndarray) -> None:
    """One call of each loop with the argument types of the real calls: numba compiles
    (or loads from its cache) one version per type, read-only arrays being a type."""
    k.bin_counts(x, 0.0, 1.0, 1, np.zeros(2, dtype=np.intp), 1, np.array([0.0, np.inf]),
                 np.zeros(2, dtype=np.int64))
    k.first_in(x, 0.0, 1.0, 1)
    k.cell_counts(x, 0.0, 1.0, 1, np.zeros(2, dtype=np.int64))
    k.pick(x, 0.0, 1.0, 1, np.ones(2, dtype=bool), 4)
    k.distinct(x, 2, np.full(8, np.nan).view(np.uint64), np.zeros(8, dtype=np.int64))
    k.distinct_grid(x, 0.0, 1.0, 1, 2, np.full(2, np.nan).view(np.uint64),
                    np.zeros(2, dtype=np.int64))
    k.profile_pass(x, 0.0, 1.0, 1, np.zeros(2, dtype=np.intp), 1, np.array([0.0, np.inf]),
                   -1.0, 1.0, 0.0, np.zeros(2, dtype=np.int64), np.zeros(1), np.zeros(1))
    k.squares_about(x, -1.0, 1.0, 0.0, np.zeros(1))
    k.distinct_hashes(np.zeros(4, dtype=np.uint64), 1)
    u = np.zeros(4, dtype=np.uint64)
    k.mix_into(u, u, np.uint64(1))
    k.mix_into(u, _readonly(np.zeros(4, dtype=np.uint64)), np.uint64(1))


def distinct(k: SimpleNamespace, v: np.ndarray, limit: int, bounds: tuple[float, float]
             ) -> tuple[np.ndarray, np.ndarray] | None:
    """(sorted distinct values, their counts) of finite ``v`` (min, max = ``bounds``), or
    None when it has more than ``limit`` of them (or both zeros: which one a sort puts
    first is arbitrary). A grid pass first (one lookup a value), a hash table when two
    values share a grid cell."""
    lo, hi = bounds
    top = _GRID_CELLS - 1
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        scale = top / (hi - lo) if hi > lo else 0.0
    if np.isfinite(scale):
        rep = np.full(top + 1, np.nan).view(np.uint64)
        counts = np.zeros(top + 1, dtype=np.int64)
        found = k.distinct_grid(v, lo, float(scale), top, limit, rep, counts)
        if found == -1:
            return None
        if found >= 0:  # cells are monotone: the values come out sorted
            used = counts > 0
            return rep[used].view(np.float64), counts[used]
    size = 1 << max(4, int(4 * limit).bit_length())
    keys = np.full(size, np.nan).view(np.uint64)
    counts = np.zeros(size, dtype=np.int64)
    if k.distinct(v, limit, keys, counts) < 0:
        return None
    used = counts > 0
    values, counts = keys[used].view(np.float64), counts[used]
    order = np.argsort(values)
    return values[order], counts[order]
