"""Latency as a fixed log-spaced histogram: mergeable by addition, percentiles within ~6 %."""

from __future__ import annotations

import numpy as np

__all__ = ["EDGES", "N_BINS", "histogram", "percentiles"]

_PER_DECADE = 40
# 1 µs to ~11.6 days in milliseconds; below/above land in the first/last bin.
EDGES = np.logspace(-3, 9, 12 * _PER_DECADE + 1)
N_BINS = EDGES.size + 1


def histogram(latency_ms: np.ndarray) -> np.ndarray:
    """Counts per bin of the finite, non-negative latencies (others are not latencies)."""
    v = np.asarray(latency_ms, dtype=np.float64)
    v = v[np.isfinite(v) & (v >= 0)]
    return np.bincount(np.searchsorted(EDGES, v, side="right"), minlength=N_BINS).astype(np.int64)


def histograms(latency_ms: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """``histogram`` of each group's rows, ``(n_groups, N_BINS)``, in one pass."""
    v = np.asarray(latency_ms, dtype=np.float64)
    ok = np.isfinite(v) & (v >= 0)
    at = np.asarray(group, np.int64)[ok] * N_BINS + np.searchsorted(EDGES, v[ok], side="right")
    return np.bincount(at, minlength=n_groups * N_BINS).astype(np.int64).reshape(n_groups,
                                                                               N_BINS)


def percentiles(counts: np.ndarray, qs: tuple[float, ...] = (50, 90, 95, 99)) -> dict[str, float]:
    """Percentiles by log-linear interpolation inside the bin that holds them."""
    total = int(counts.sum())
    if total == 0:
        return {}
    cum = np.cumsum(counts)
    lo_edges = np.concatenate([[0.0], EDGES])
    hi_edges = np.concatenate([EDGES, [EDGES[-1]]])
    out = {}
    for q in qs:
        rank = q / 100 * total
        b = int(np.searchsorted(cum, rank, side="left"))
        before = cum[b - 1] if b else 0
        frac = (rank - before) / counts[b] if counts[b] else 0.0
        lo, hi = lo_edges[b], hi_edges[b]
        val = lo + frac * (hi - lo) if lo == 0 else lo * (hi / lo) ** frac
        out[f"p{q:g}"] = float(val)
    return out
