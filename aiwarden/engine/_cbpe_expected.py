"""Expected confusion counts (CBPE's mergeable accumulator) and the estimate with its band.

Why it works: if the calibrated probability ``p_ik`` is the chance that row
``i`` belongs to class ``k``, the unknown label is a one-draw multinomial, so
the confusion matrix is a sum of independent random one-hot rows placed in the
column of the prediction. Its expectation is ``E[k, j] = sum_{pred_i = j} p_ik``
and its covariance is fully known from three ``C x C`` sums:

* ``Cov(TP_k, TP_l) = delta_kl * sum_{pred=k} p_ik (1 - p_ik)``
* ``Cov(TP_k, T_l)  = delta_kl * E[k, k] - Q[k, l]``, ``Q[k, l] = sum_{pred=k} p_ik p_il``
* ``Cov(T_k, T_l)   = delta_kl * E_true[k] - G[k, l]``, ``G = sum_i p_i p_i^T``

with ``TP_k`` the diagonal and ``T_k`` the true-class totals (the predicted
totals are known). Every confusion metric is a smooth function of
``(TP, T)``; its band is ``estimate +- z * sd`` with the sd from the delta
method (Poisson-binomial variance propagated through the gradient), clipped to
``[0, 1]``.

ROC AUC uses histograms of the *raw* score (the model's ranking) weighted by
``p`` (expected positives) and ``1 - p`` (expected negatives); the expectation
of the within-bin and ``P * N`` products is corrected by the per-bin variance
``sum p (1 - p)``, and the band comes from the delta method over bins, which
are independent. Multiclass ROC AUC is the macro one-vs-rest mean; its sd is
the mean of the per-class sds (an upper bound whatever their correlation).

The band covers the sampling noise of the labels only: it assumes the
calibration is right on the current data (true under covariate shift when the
reference calibration is), so it does not cover calibrator estimation error
or concept drift.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from aiwarden.engine._results import (
    MetricEstimate,
    compare_estimates,
    estimates_frame,
    report_html,
)
from aiwarden.engine._score_histogram import n_bins_of, score_bin_index
from aiwarden.errors import check_param

__all__ = ["CBPEResult", "ExpectedClassificationStats", "MetricEstimate"]

_NAN = float("nan")


@dataclass(frozen=True)
class CBPEResult:
    """Estimated metrics of a window, each with a ``confidence`` sampling-error band.

    NaN marks a metric that is undefined in expectation (e.g. precision when
    nothing is predicted positive). ``n`` counts the rows the confusion metrics
    are estimated from; rows that could not be estimated are counted, not
    hidden: ``n_unknown_pred`` (a ``y_pred`` outside the classes) and
    ``n_invalid_score`` (scores that are not probabilities, e.g. NaN or outside
    ``[0, 1]``).
    """

    classes: tuple[Any, ...]
    n: int
    confidence: float
    metrics: dict[str, MetricEstimate]
    n_unknown_pred: int = 0
    n_invalid_score: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"classes": list(self.classes), "n": self.n, "confidence": self.confidence,
                "n_unknown_pred": self.n_unknown_pred, "n_invalid_score": self.n_invalid_score,
                "metrics": {k: v.to_dict() for k, v in self.metrics.items()}}

    def to_pandas(self) -> pd.DataFrame:
        """One row per metric (index ``metric``): estimate, std, lower, upper."""
        return estimates_frame(self.metrics)

    def _repr_html_(self) -> str:
        return report_html(f"Estimated performance (CBPE, {self.n:,} rows, "
                           f"{self.confidence:.0%} band)", self.to_pandas())

    def compare(self, realised: Any) -> dict[str, dict[str, Any]]:
        """How far each estimate was from the realised value once labels arrived.

        ``realised`` is the :class:`~aiwarden.engine.performance.ClassificationStats`
        of the same window. Per metric: ``estimate``, ``realised``,
        ``difference`` (estimate minus realised), ``lower`` / ``upper`` (the band
        widened to the number of labelled rows), ``severity`` and ``within_band``
        (see :func:`~aiwarden.engine._results.compare_estimates`). When the
        realised value is undefined, ``realised`` and ``difference`` are NaN and
        ``within_band`` is None.
        """
        check_param(getattr(realised, "classes", None) == self.classes, "realised",
                    "CBPEResult.compare", f"ClassificationStats with classes {list(self.classes)}",
                    getattr(realised, "classes", realised))
        return compare_estimates(self.metrics, self.n, self.confidence, realised.metrics(),
                                 realised.n)


@dataclass(frozen=True, eq=False)
class ExpectedClassificationStats:
    """Expected confusion counts and expected score histograms of unlabelled rows.

    ``expected_confusion[k, j]`` is the expected number of rows of true class
    ``k`` predicted ``j``; ``cross_true`` and ``cross_pred`` are ``G`` and ``Q``
    above. ``hist_count[k]`` counts rows by bin of the raw score of class ``k``
    (binary: the positive class only), ``hist_p`` / ``hist_p2`` sum the
    calibrated ``p`` and ``p**2`` of being class ``k`` in each bin. A row with
    invalid scores cannot be estimated and is counted in ``n_invalid_score``;
    a row with an unknown prediction is left out of the expected confusion and
    counted in ``n_unknown_pred`` (a row can be in both), but with valid scores
    still enters the score histograms, as in
    :class:`~aiwarden.engine.performance.ClassificationStats`.

    Examples
    --------
    >>> from aiwarden.engine.cbpe import CBPE
    >>> cbpe = CBPE("none").fit([0, 1, 1, 0], [0.2, 0.8, 0.6, 0.4], classes=[0, 1])
    >>> window = cbpe.accumulate([0.9, 0.1]) + cbpe.accumulate([0.7])
    >>> window.expected_confusion.round(2).tolist()
    [[0.9, 0.4], [0.1, 1.6]]
    >>> round(window.estimate().metrics["accuracy"].estimate, 4)
    0.8333
    """

    classes: tuple[Any, ...]
    n_score_bins: int
    pred_counts: np.ndarray
    expected_confusion: np.ndarray
    cross_true: np.ndarray
    cross_pred: np.ndarray
    hist_count: np.ndarray
    hist_p: np.ndarray
    hist_p2: np.ndarray
    n_unknown_pred: int = 0
    n_invalid_score: int = 0

    @property
    def n(self) -> int:
        return int(self.pred_counts.sum())

    @property
    def is_binary(self) -> bool:
        return len(self.classes) == 2

    @classmethod
    def empty(cls, classes: tuple[Any, ...], n_score_bins: int) -> ExpectedClassificationStats:
        c = len(classes)
        k, b = (1 if c == 2 else c), n_bins_of(n_score_bins)
        zeros = np.zeros((c, c))
        return cls(tuple(classes), int(n_score_bins), np.zeros(c, dtype=np.int64), zeros,
                   zeros.copy(), zeros.copy(), np.zeros((k, b), dtype=np.int64),
                   np.zeros((k, b)), np.zeros((k, b)))

    @classmethod
    def from_probabilities(
        cls, proba: np.ndarray, raw: np.ndarray, pred: np.ndarray, classes: tuple[Any, ...],
        n_score_bins: int, n_unknown_pred: int = 0, n_invalid_score: int = 0,
    ) -> ExpectedClassificationStats:
        """Accumulate rows with valid scores: ``proba`` ``(n, C)`` calibrated, ``raw`` the model's
        scores, ``pred`` the predicted codes (``-1``: unknown, left out of the confusion)."""
        c = len(classes)
        known = pred >= 0
        raw_all, q_all = raw, proba
        proba, pred = proba[known], pred[known]
        rows = np.arange(len(pred))
        pred_counts = np.bincount(pred, minlength=c).astype(np.int64)
        exp_cm = np.stack([np.bincount(pred, weights=proba[:, k], minlength=c)
                           for k in range(c)])
        d = proba[rows, pred]
        cross_pred = np.stack([np.bincount(pred, weights=d * proba[:, k], minlength=c)
                               for k in range(c)], axis=1)
        b = n_bins_of(n_score_bins)
        if c == 2:
            idx, q, k_count = score_bin_index(raw_all, n_score_bins), q_all[:, 1], 1
        else:
            k_count = c
            idx = (np.arange(c)[None, :] * b + score_bin_index(raw_all, n_score_bins)).ravel()
            q = q_all.ravel()
        size = k_count * b
        return cls(
            tuple(classes), int(n_score_bins), pred_counts, exp_cm, proba.T @ proba, cross_pred,
            np.bincount(idx, minlength=size).astype(np.int64).reshape(k_count, b),
            np.bincount(idx, weights=q, minlength=size).reshape(k_count, b),
            np.bincount(idx, weights=q * q, minlength=size).reshape(k_count, b),
            int(n_unknown_pred), int(n_invalid_score),
        )

    @classmethod
    def from_probabilities_grouped(
        cls, proba: np.ndarray, raw: np.ndarray, pred: np.ndarray, group: np.ndarray,
        n_groups: int, classes: tuple[Any, ...], n_score_bins: int,
        n_unknown_pred: np.ndarray, n_invalid_score: np.ndarray,
    ) -> list[ExpectedClassificationStats]:
        """:meth:`from_probabilities` of each group of rows (``group``: each row's group in
        ``[0, n_groups)``), every field one ``bincount`` over all groups; equal to it up
        to the order floats are summed in."""
        c, b = len(classes), n_bins_of(n_score_bins)
        known = pred >= 0
        g, p, q = group[known], pred[known], proba[known]
        cell = g * c + p

        def per_cell(w: np.ndarray | None) -> np.ndarray:
            return np.bincount(cell, weights=w, minlength=n_groups * c).reshape(n_groups, c)

        pred_counts = per_cell(None).astype(np.int64)
        exp_cm = np.stack([per_cell(q[:, k]) for k in range(c)], axis=1)
        d = q[np.arange(len(p)), p]
        cross_pred = np.stack([per_cell(d * q[:, k]) for k in range(c)], axis=2)
        cross_true = np.stack([np.stack([
            np.bincount(g, weights=q[:, i] * q[:, j], minlength=n_groups) for j in range(c)],
            axis=1) for i in range(c)], axis=1)
        if c == 2:
            k_count, idx, hq, hg = 1, score_bin_index(raw, n_score_bins), proba[:, 1], group
        else:
            k_count = c
            idx = (np.arange(c)[None, :] * b + score_bin_index(raw, n_score_bins)).ravel()
            hq, hg = proba.ravel(), np.repeat(group, c)
        size = k_count * b
        at = hg * size + idx
        shape = (n_groups, k_count, b)
        hist_count = np.bincount(at, minlength=n_groups * size).astype(np.int64).reshape(shape)
        hist_p = np.bincount(at, weights=hq, minlength=n_groups * size).reshape(shape)
        hist_p2 = np.bincount(at, weights=hq * hq, minlength=n_groups * size).reshape(shape)
        return [cls(tuple(classes), int(n_score_bins), pred_counts[i], exp_cm[i], cross_true[i],
                    cross_pred[i], hist_count[i], hist_p[i], hist_p2[i],
                    int(n_unknown_pred[i]), int(n_invalid_score[i])) for i in range(n_groups)]

    def merge(self, other: ExpectedClassificationStats) -> ExpectedClassificationStats:
        """Expected counts of the union: every field is a sum."""
        check_param(
            isinstance(other, ExpectedClassificationStats) and other.classes == self.classes
            and other.n_score_bins == self.n_score_bins,
            "other", "ExpectedClassificationStats.merge",
            f"expected stats with classes {list(self.classes)} and "
            f"n_score_bins={self.n_score_bins}", getattr(other, "classes", other),
        )
        return ExpectedClassificationStats(
            self.classes, self.n_score_bins, self.pred_counts + other.pred_counts,
            self.expected_confusion + other.expected_confusion,
            self.cross_true + other.cross_true, self.cross_pred + other.cross_pred,
            self.hist_count + other.hist_count, self.hist_p + other.hist_p,
            self.hist_p2 + other.hist_p2, self.n_unknown_pred + other.n_unknown_pred,
            self.n_invalid_score + other.n_invalid_score,
        )

    __add__ = merge

    @classmethod
    def merge_all(cls, parts: list[ExpectedClassificationStats]
                  ) -> ExpectedClassificationStats:
        """The merge of many (a window of buckets) in one sum per field, not K-1 merges."""
        first = parts[0]
        for other in parts[1:]:
            check_param(other.classes == first.classes
                        and other.n_score_bins == first.n_score_bins,
                        "parts", "ExpectedClassificationStats.merge_all",
                        f"stats with classes {list(first.classes)} and "
                        f"n_score_bins={first.n_score_bins}", other.classes)

        def total(name: str) -> Any:
            return np.sum([getattr(x, name) for x in parts], axis=0)

        return cls(first.classes, first.n_score_bins, total("pred_counts"),
                   total("expected_confusion"), total("cross_true"), total("cross_pred"),
                   total("hist_count"), total("hist_p"), total("hist_p2"),
                   int(sum(x.n_unknown_pred for x in parts)),
                   int(sum(x.n_invalid_score for x in parts)))

    def __radd__(self, other: object) -> ExpectedClassificationStats:
        """``sum(stats)`` starts from 0."""
        if isinstance(other, int) and other == 0:
            return self
        return NotImplemented

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe; histogram bins are stored sparsely (flat index of non-empty bins)."""
        cells = np.flatnonzero(self.hist_count)
        return {
            "kind": "ExpectedClassificationStats", "classes": list(self.classes),
            "n_score_bins": self.n_score_bins, "pred_counts": self.pred_counts.tolist(),
            "expected_confusion": self.expected_confusion.tolist(),
            "cross_true": self.cross_true.tolist(), "cross_pred": self.cross_pred.tolist(),
            "hist_cells": cells.tolist(), "hist_count": self.hist_count.ravel()[cells].tolist(),
            "hist_p": self.hist_p.ravel()[cells].tolist(),
            "hist_p2": self.hist_p2.ravel()[cells].tolist(),
            "n_unknown_pred": self.n_unknown_pred, "n_invalid_score": self.n_invalid_score,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ExpectedClassificationStats:
        classes, n_score_bins = tuple(d["classes"]), int(d["n_score_bins"])
        shape = (1 if len(classes) == 2 else len(classes), n_bins_of(n_score_bins))
        cells = np.asarray(d["hist_cells"], dtype=np.int64)
        hc, hp, hp2 = np.zeros(shape, np.int64), np.zeros(shape), np.zeros(shape)
        hc.ravel()[cells] = d["hist_count"]  # every bucket partial carries one: decode lean
        hp.ravel()[cells] = d["hist_p"]
        hp2.ravel()[cells] = d["hist_p2"]
        return cls(
            classes, n_score_bins, np.asarray(d["pred_counts"], dtype=np.int64),
            np.asarray(d["expected_confusion"], dtype=np.float64),
            np.asarray(d["cross_true"], dtype=np.float64),
            np.asarray(d["cross_pred"], dtype=np.float64), hc, hp, hp2,
            int(d["n_unknown_pred"]), int(d["n_invalid_score"]),
        )

    def estimate(self, confidence: float = 0.95) -> CBPEResult:
        """Estimated metrics with a ``confidence`` band (names match ``ClassificationStats``)."""
        check_param(isinstance(confidence, float) and 0.0 < confidence < 1.0, "confidence",
                    "ExpectedClassificationStats.estimate", "a float in (0, 1)", confidence)
        z = float(norm.ppf(0.5 + confidence / 2.0))
        out: dict[str, MetricEstimate] = {}
        cov = self._covariance()
        for name, (value, grad) in _confusion_metrics(self).items():
            sd = float(np.sqrt(max(grad @ cov @ grad, 0.0))) if np.isfinite(value) else _NAN
            out[name] = _band(value, sd, z)
        aucs = [_expected_auc(self.hist_count[k], self.hist_p[k], self.hist_p2[k])
                for k in range(len(self.hist_count))]
        defined = [a for a in aucs if np.isfinite(a[0])]
        if defined:
            value = float(np.mean([a[0] for a in defined]))
            sd = float(np.mean([a[1] for a in defined]))
        else:
            value, sd = _NAN, _NAN
        out["roc_auc"] = _band(value, sd, z)
        return CBPEResult(self.classes, self.n, confidence, out, self.n_unknown_pred,
                          self.n_invalid_score)

    def _covariance(self) -> np.ndarray:
        """Covariance of ``(TP_1..C, T_1..C)`` under independent multinomial labels."""
        c = len(self.classes)
        diag = np.diag(self.expected_confusion)
        q = self.cross_pred
        cov = np.zeros((2 * c, 2 * c))
        cov[:c, :c] = np.diag(diag - np.diag(q))
        cov[:c, c:] = np.diag(diag) - q
        cov[c:, :c] = cov[:c, c:].T
        cov[c:, c:] = np.diag(self.expected_confusion.sum(axis=1)) - self.cross_true
        return cov


def _band(value: float, sd: float, z: float) -> MetricEstimate:
    if not np.isfinite(value):
        return MetricEstimate(_NAN, _NAN, _NAN, _NAN)
    return MetricEstimate(float(value), sd, float(max(value - z * sd, 0.0)),
                          float(min(value + z * sd, 1.0)))


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else _NAN


def _confusion_metrics(s: ExpectedClassificationStats) -> dict[str, tuple[float, np.ndarray]]:
    """Each confusion metric at the expected counts and its gradient in ``(TP, T)``."""
    c = len(s.classes)
    tp = np.diag(s.expected_confusion).copy()
    t = s.expected_confusion.sum(axis=1)
    m = s.pred_counts.astype(np.float64)
    n = float(m.sum())

    def grad(d_tp: dict[int, float], d_t: dict[int, float]) -> np.ndarray:
        g = np.zeros(2 * c)
        for k, v in d_tp.items():
            g[k] += v
        for k, v in d_t.items():
            g[c + k] += v
        return g

    out: dict[str, tuple[float, np.ndarray]] = {
        "accuracy": (_ratio(tp.sum(), n), np.concatenate([np.full(c, 1.0 / n if n else 0.0),
                                                          np.zeros(c)])),
    }
    den = m + t
    f1 = np.array([_ratio(2 * tp[k], den[k]) for k in range(c)])
    f1_grads = [grad({k: 2 / den[k]}, {k: -2 * tp[k] / den[k] ** 2}) if den[k] > 0
                else np.zeros(2 * c) for k in range(c)]
    if c == 2:
        out["precision"] = (_ratio(tp[1], m[1]), grad({1: 1 / m[1] if m[1] else 0.0}, {}))
        out["recall"] = (_ratio(tp[1], t[1]),
                         grad({1: 1 / t[1]}, {1: -tp[1] / t[1] ** 2}) if t[1] > 0
                         else np.zeros(2 * c))
        out["f1"] = (float(f1[1]), f1_grads[1])
        return out
    ok = den > 0
    out["macro_f1"] = ((float(np.mean(f1[ok])), sum(f1_grads[k] for k in range(c) if ok[k])
                        / ok.sum()) if ok.any() else (_NAN, np.zeros(2 * c)))
    if n > 0:
        w = {k: 2 * t[k] / (n * den[k]) for k in range(c) if ok[k]}
        w_t = {k: 2 * tp[k] * m[k] / (n * den[k] ** 2) for k in range(c) if ok[k]}
        weighted = float(sum(t[k] * f1[k] for k in range(c) if ok[k]) / n)
        out["weighted_f1"] = (weighted, grad(w, w_t))
    else:
        out["weighted_f1"] = (_NAN, np.zeros(2 * c))
    for k, label in enumerate(s.classes):
        out[f"recall_{label}"] = ((_ratio(tp[k], t[k]), grad({k: 1 / t[k]},
                                                            {k: -tp[k] / t[k] ** 2}))
                                  if t[k] > 0 else (_NAN, np.zeros(2 * c)))
    return out


def _expected_auc(count: np.ndarray, p: np.ndarray, p2: np.ndarray) -> tuple[float, float]:
    """Expected ROC AUC (ratio of expectations) and its delta-method sd."""
    c = count.astype(np.float64)
    v = np.maximum(p - p2, 0.0)
    n = c.sum()
    pos = p
    neg = c - p
    p_tot = pos.sum()
    var_p = v.sum()
    pn = p_tot * (n - p_tot) - var_p
    if pn <= 0:
        return _NAN, _NAN
    neg_below = np.cumsum(neg) - neg
    pos_above = p_tot - np.cumsum(pos)
    a = float(np.dot(pos, neg_below + 0.5 * neg) - 0.5 * var_p)
    auc = a / pn
    d_a = neg_below + 0.5 * c - pos - pos_above
    g = (d_a * pn - a * (n - 2 * p_tot)) / pn**2
    return float(auc), float(np.sqrt(np.dot(g * g, v)))
