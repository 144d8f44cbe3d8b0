"""Fixed score grid and the ranking metrics computed from per-class score histograms.

Why a fixed grid: two batches profiled months apart must add bin by bin, so the
edges depend only on ``n_score_bins``, never on the data. The grid is the union
of a grid uniform in logit space on ``[-18, 18]`` (three quarters of the bins,
resolving very confident scores such as 1e-6) and a grid uniform in probability
(the rest, resolving the middle). Bin ``j`` is ``[edges[j-1], edges[j])`` with
the outer bins closed at 0 and 1.

Why the bounds: a histogram forgets the order of scores that share a bin. Pairs
in different bins are ranked exactly; a positive/negative pair inside one bin
is counted as half a concordant pair (the trapezoid rule, which is also what
scikit-learn does for exact ties). Its true contribution is in ``[0, 1]``, so

    |AUC_hist - AUC_exact| <= 1/2 * sum_b pos_b * neg_b / (P * N),

a bound computed from the histogram itself (:func:`roc_auc_error_bound`). The
average precision is bounded the same way (:func:`average_precision_error_bound`).
When the per-class minimum and maximum score of each bin are known, bins whose
positive and negative ranges do not overlap, or whose scores are all one value,
are counted exactly and drop out of the bound; discrete scores (a small tree,
rounded probabilities) are then exact.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.special import expit

__all__ = [
    "DEFAULT_SCORE_BINS",
    "Spans",
    "average_precision_error_bound",
    "average_precision_from_hist",
    "roc_auc_error_bound",
    "roc_auc_from_hist",
    "score_bin_index",
    "score_edges",
]

DEFAULT_SCORE_BINS = 1024
_LOGIT_SPAN = 18.0
_LOGIT_SHARE = 0.75

Spans = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""Per-bin (min, max) score of the positives, then (min, max) of the negatives."""


@lru_cache(maxsize=16)
def _edges_cached(n_score_bins: int) -> np.ndarray:
    n_logit = max(round(n_score_bins * _LOGIT_SHARE), 1)
    n_uniform = max(n_score_bins - n_logit, 1)
    logit_edges = expit(np.linspace(-_LOGIT_SPAN, _LOGIT_SPAN, n_logit + 1))
    uniform_edges = np.linspace(0.0, 1.0, n_uniform + 1)
    edges = np.unique(np.concatenate([logit_edges, uniform_edges]))
    inner = edges[(edges > 0.0) & (edges < 1.0)]
    out = np.concatenate([[0.0], inner, [1.0]])
    out.setflags(write=False)
    return out


def score_edges(n_score_bins: int) -> np.ndarray:
    """Edges of the score grid (about ``n_score_bins`` bins; ``len(edges) - 1`` exactly).

    Examples
    --------
    >>> e = score_edges(8)
    >>> float(e[0]), float(e[-1]), bool(np.all(np.diff(e) > 0))
    (0.0, 1.0, True)
    """
    return _edges_cached(int(n_score_bins))


def score_bin_index(scores: np.ndarray, n_score_bins: int) -> np.ndarray:
    """Bin of each score in ``[0, 1]`` (callers drop invalid scores first)."""
    inner = score_edges(n_score_bins)[1:-1]
    return np.searchsorted(inner, scores, side="right")


def n_bins_of(n_score_bins: int) -> int:
    """Number of histogram cells the grid for ``n_score_bins`` really has."""
    return len(score_edges(n_score_bins)) - 1


def _within_bin_order(
    pos: np.ndarray, neg: np.ndarray, spans: Spans | None
) -> tuple[np.ndarray, np.ndarray]:
    """Share of concordant pairs inside each bin, and which bins leave it uncertain.

    Without spans every bin is uncertain and credited one half. With the
    per-class score range of each bin the order is known when the ranges do
    not overlap (1 or 0) or when every score in the bin is the same value (an
    exact tie, one half as in scikit-learn).
    """
    both = (pos > 0) & (neg > 0)
    if spans is None:
        return np.full(pos.shape, 0.5), both
    pos_min, pos_max, neg_min, neg_max = spans
    above = pos_min > neg_max
    below = pos_max < neg_min
    tied = (pos_min == pos_max) & (neg_min == neg_max) & (pos_min == neg_min)
    share = np.where(above, 1.0, np.where(below, 0.0, 0.5))
    return share, both & ~(above | below | tied)


def _histograms(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Both histograms as float arrays with their totals (counts may be expected counts)."""
    pos = np.asarray(pos, dtype=np.float64)
    neg = np.asarray(neg, dtype=np.float64)
    return pos, neg, float(pos.sum()), float(neg.sum())


def roc_auc_from_hist(pos: np.ndarray, neg: np.ndarray, spans: Spans | None = None) -> float:
    """ROC AUC of two histograms on the same ascending grid.

    Counts may be fractional (expected counts). ``spans`` (per-bin min and max
    score of positives, then of negatives) lets bins whose ranges do not
    overlap count exactly. NaN when either class is empty.

    Examples
    --------
    >>> roc_auc_from_hist(np.array([0, 1, 3]), np.array([3, 1, 0]))
    0.96875
    """
    pos, neg, p_total, n_total = _histograms(pos, neg)
    if p_total <= 0 or n_total <= 0:
        return float("nan")
    share, _ = _within_bin_order(pos, neg, spans)
    neg_below = np.cumsum(neg) - neg
    concordant = float(np.dot(pos, neg_below + share * neg))
    return float(concordant / (p_total * n_total))


def roc_auc_error_bound(pos: np.ndarray, neg: np.ndarray, spans: Spans | None = None) -> float:
    """Largest possible gap between the histogram AUC and the AUC of the raw scores."""
    pos, neg, p_total, n_total = _histograms(pos, neg)
    if p_total <= 0 or n_total <= 0:
        return float("nan")
    _, uncertain = _within_bin_order(pos, neg, spans)
    return 0.5 * float(np.dot(pos[uncertain], neg[uncertain])) / (p_total * n_total)


def _cumulative_from_top(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positives and negatives scoring at or above each bin, highest bin first."""
    tp = np.cumsum(pos[::-1])
    fp = np.cumsum(neg[::-1])
    return tp, fp


def average_precision_from_hist(pos: np.ndarray, neg: np.ndarray) -> float:
    """Average precision treating each bin as one threshold (one group of tied scores).

    This is exactly scikit-learn's ``average_precision_score`` of the scores
    rounded to the grid. NaN without positives.

    Examples
    --------
    >>> average_precision_from_hist(np.array([0, 1, 3]), np.array([3, 1, 0]))
    0.95
    """
    pos, neg, p_total, _ = _histograms(pos, neg)
    if p_total <= 0:
        return float("nan")
    tp, fp = _cumulative_from_top(pos, neg)
    pos_desc = pos[::-1]
    keep = pos_desc > 0
    precision = tp[keep] / (tp[keep] + fp[keep])
    return float(np.dot(pos_desc[keep], precision) / p_total)


def average_precision_error_bound(pos: np.ndarray, neg: np.ndarray,
                                  spans: Spans | None = None) -> float:
    """Largest possible gap between the histogram and the raw-score average precision.

    A positive in bin ``b`` is credited the precision at the bottom of its bin;
    its exact precision lies between "it is the first positive of the bin, after
    all the bin's negatives" and "all the bin's positives and none of its
    negatives are above it". A bin whose scores are all one value is an exact
    tie group and adds nothing (known from ``spans``).
    """
    pos, neg, p_total, _ = _histograms(pos, neg)
    if p_total <= 0:
        return float("nan")
    tp, fp = _cumulative_from_top(pos, neg)
    pos_desc, neg_desc = pos[::-1], neg[::-1]
    keep = pos_desc > 0
    tp_b, fp_b = tp[keep], fp[keep]
    pb, nb = pos_desc[keep], neg_desc[keep]
    tp_above, fp_above = tp_b - pb, fp_b - nb
    credited = tp_b / (tp_b + fp_b)
    low = (tp_above + 1.0) / (tp_above + 1.0 + fp_b)
    high = tp_b / (tp_b + fp_above)
    gap = np.maximum(high - credited, credited - low)
    if spans is not None:
        pos_min, pos_max, neg_min, neg_max = (a[::-1][keep] for a in spans)
        lo = np.where(nb > 0, np.minimum(pos_min, neg_min), pos_min)
        hi = np.where(nb > 0, np.maximum(pos_max, neg_max), pos_max)
        gap = np.where(lo == hi, 0.0, gap)
    return float(np.dot(pb, gap) / p_total)
