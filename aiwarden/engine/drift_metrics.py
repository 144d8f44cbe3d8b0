"""Distances between two histograms on the same bins, vectorised over leading axes.

Every function takes count (or probability) arrays of shape ``(..., k)`` so the
same code scores one pair of histograms or a thousand simulated ones at once.
Results agree with scipy on raw samples within the binning error documented in
``docs/drift.md`` (tested in ``tests/engine/test_drift_metrics.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import special

from aiwarden.errors import ParameterError

__all__ = [
    "METRICS",
    "chi2_pvalue",
    "hellinger",
    "jensenshannon",
    "ks_pvalue",
    "ks_statistic",
    "psi",
    "total_variation",
    "wasserstein",
]


def _prob(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, dtype=np.float64)
    s = c.sum(axis=-1, keepdims=True)
    return np.divide(c, s, out=np.zeros_like(c), where=s > 0)


def psi(ref: np.ndarray, cur: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    """Population stability index; an empty bin counts as ``eps`` mass so it stays finite."""
    p, q = _prob(ref), _prob(cur)
    p = np.where(p > 0, p, eps)
    q = np.where(q > 0, q, eps)
    return ((q - p) * np.log(q / p)).sum(axis=-1)


def jensenshannon(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Jensen–Shannon distance in base 2 (in [0, 1]), as scipy's with ``base=2``."""
    p, q = _prob(ref), _prob(cur)
    m = 0.5 * (p + q)
    div = 0.5 * (special.rel_entr(p, m).sum(axis=-1) + special.rel_entr(q, m).sum(axis=-1))
    return np.sqrt(np.maximum(div, 0.0) / np.log(2.0))


def hellinger(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Hellinger distance in [0, 1], as ``sqrt(sum((sqrt p - sqrt q)^2) / 2)``.

    The same value as ``sqrt(1 - sum(sqrt(p q)))`` without its cancellation near zero.
    """
    p, q = _prob(ref), _prob(cur)
    return np.sqrt(0.5 * np.square(np.sqrt(p) - np.sqrt(q)).sum(axis=-1))


def total_variation(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Share of probability mass that moved: ``0.5 * sum|p - q|``."""
    return 0.5 * np.abs(_prob(ref) - _prob(cur)).sum(axis=-1)


def ks_statistic(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Largest CDF gap at bin edges; off from the raw-sample statistic by at most one bin's mass."""
    return np.abs(np.cumsum(_prob(ref), axis=-1) - np.cumsum(_prob(cur), axis=-1)).max(axis=-1)


def wasserstein(ref: np.ndarray, cur: np.ndarray, edges: np.ndarray,
                tail_below: float = 0.0, tail_above: float = 0.0,
                discrete: bool = False, span: tuple[int, int] | None = None) -> np.ndarray:
    """Wasserstein-1 between histograms on ``[below, bins of edges..., above]``.

    ``ref``/``cur`` have ``len(edges) + 1`` counts: the mass below ``edges[0]``,
    one count per bin between consecutive edges, and the mass above ``edges[-1]``.
    Inside the edges mass is taken as uniform within a bin, so ``|F - G|`` is
    integrated exactly there; ``tail_below``/``tail_above`` are the integrals of
    ``|F - G|`` beyond the edges, which the caller knows exactly from first moments.
    With ``discrete`` each bin's mass sits on its left edge (one bin per distinct
    value), so both CDFs are steps and the result is exact. ``span = (lo, hi)`` keeps
    only terms ``lo..hi-1`` (bins, or steps after atoms): the distance integrated over
    that part of the range, as the drift rule's trimmed statistic does.
    """
    widths = np.diff(np.asarray(edges, dtype=np.float64))
    p, q = _prob(ref), _prob(cur)
    d = np.cumsum(p - q, axis=-1)
    a = d[..., :-2]
    b = d[..., 1:-1]
    if span is not None:
        lo, hi = span
        a, b, widths = a[..., lo:hi], b[..., lo:hi], widths[lo:hi]
    if discrete:
        return (np.abs(b) * widths).sum(axis=-1) + tail_below + tail_above
    same = a * b >= 0
    abs_sum = np.abs(a) + np.abs(b)
    crossing = np.divide(a * a + b * b, 2.0 * abs_sum, out=np.zeros_like(a), where=abs_sum > 0)
    area = np.where(same, 0.5 * abs_sum, crossing)
    return (area * widths).sum(axis=-1) + tail_below + tail_above


def chi2_pvalue(ref: np.ndarray, cur: np.ndarray) -> float:
    """Chi-square test of homogeneity on the 2 x k table (as scipy's chi2_contingency)."""
    table = np.vstack([np.asarray(ref, float), np.asarray(cur, float)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    stat = float(((table - expected) ** 2 / expected).sum())
    return float(special.chdtrc(table.shape[1] - 1, stat))  # chi2.sf, without the overhead


def ks_pvalue(statistic: float, n_ref: int, n_cur: int) -> float:
    """Asymptotic two-sample KS p-value (Kolmogorov distribution at the effective size)."""
    if n_ref == 0 or n_cur == 0:
        return 1.0
    en = n_ref * n_cur / (n_ref + n_cur)
    return float(special.kolmogorov(np.sqrt(en) * statistic))  # kstwobign.sf


MetricFn = Callable[..., np.ndarray]
METRICS: dict[str, tuple[MetricFn, bool]] = {
    # name: (function, needs ordered numerical bins)
    "wasserstein": (wasserstein, True),
    "ks": (ks_statistic, True),
    "jensenshannon": (jensenshannon, False),
    "hellinger": (hellinger, False),
    "psi": (psi, False),
    "total_variation": (total_variation, False),
}


def get_metric(name: str) -> tuple[MetricFn, bool]:
    try:
        return METRICS[name]
    except KeyError:
        raise ParameterError(
            f"Unknown drift method {name!r}. Valid methods: {', '.join(sorted(METRICS))}."
        ) from None
