"""Confidence-based performance estimation (CBPE): classifier performance without labels.

Why it works: when a model's scores are calibrated probabilities, the score of
a row is the chance its prediction is right, so the confusion matrix of an
unlabelled window has a known expectation. Under covariate shift (``P(y | x)``
unchanged) the calibration learned on the labelled reference still holds, and
the estimate follows the real metric as the inputs move, including drops.

Steps: :meth:`CBPE.fit` calibrates the scores on the labelled reference with
isotonic regression (one-vs-rest, renormalised for multiclass), cross-fitted,
and keeps a class's map only where it lowers the out-of-fold Brier score
(``calibration="auto"``); :meth:`CBPE.accumulate` turns a batch of scores into
mergeable :class:`ExpectedClassificationStats`; :meth:`CBPE.estimate` gives a
:class:`CBPEResult` with sampling-error bands (see
:mod:`aiwarden.engine._cbpe_expected` for the variance), and
:meth:`CBPEResult.compare` scores an estimate against the realised
:class:`~aiwarden.engine.performance.ClassificationStats` once labels arrive.

Estimated metrics: binary ``accuracy``, ``precision``, ``recall``, ``f1``,
``roc_auc``; multiclass ``accuracy``, ``macro_f1``, ``weighted_f1``,
``recall_<class>``, ``roc_auc`` (macro one-vs-rest). PR AUC and log loss are
not estimated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from aiwarden.engine._calibration import IsotonicMap, cross_fitted, fit_isotonic
from aiwarden.engine._cbpe_expected import CBPEResult, ExpectedClassificationStats, MetricEstimate
from aiwarden.engine._class_encoding import (
    PROBA_SUM_TOL,
    encode_labels,
    predict_codes,
    valid_score_rows,
    validate_classes,
    validate_scores,
)
from aiwarden.engine._score_histogram import DEFAULT_SCORE_BINS
from aiwarden.engine.performance import ClassificationStats
from aiwarden.errors import DataError, NotFittedError, check_param

__all__ = ["CBPE", "CBPEResult", "ExpectedClassificationStats", "MetricEstimate"]

Calibration = Literal["auto", "isotonic", "none"]


class CBPE:
    """Estimate classification metrics of unlabelled windows from calibrated scores.

    Parameters
    ----------
    calibration
        ``"auto"`` keeps an isotonic map only where it lowers the cross-fitted
        Brier score; ``"isotonic"`` always calibrates; ``"none"`` trusts the scores.
    confidence
        Coverage of the sampling-error band.
    threshold
        Binary scores at or above it are predicted positive when no ``y_pred`` is given.
    n_folds
        Folds of the cross-fitting that judges the calibration.
    min_brier_gain
        How much lower the out-of-fold Brier score must be to calibrate (``"auto"``).
    n_score_bins
        Score grid of the ROC AUC histograms (match the realised stats').
    max_invalid_share
        Largest share of reference rows whose scores are present but not
        probabilities (outside ``[0, 1]``, or multiclass rows not summing to 1)
        that :meth:`fit` skips; above it the scores are taken for something else
        (e.g. ``decision_function`` logits) and :meth:`fit` raises
        :class:`~aiwarden.errors.DataError`. Missing (NaN) scores are skipped
        whatever their share.
    random_state
        Seed of the fold split.

    Attributes
    ----------
    classes_ : tuple
        The classes, positive last for binary.
    calibrators_ : tuple of IsotonicMap or None
        One per calibrated column (binary: the positive class); None keeps the raw score.
    calibration_report_ : dict
        Per class: ``brier_raw`` (in-sample), ``brier_calibrated`` (out-of-fold;
        NaN when not judged: ``"none"`` or fewer than ``2 * n_folds`` rows),
        ``calibrated``.
    reference_stats_ : ClassificationStats
        Realised performance of the reference.
    reference_expected_ : ExpectedClassificationStats
        The reference's own expected counts, the baseline a drop is measured from.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> p = rng.beta(2, 2, size=4000)
    >>> y = (rng.random(4000) < p).astype(int)
    >>> cbpe = CBPE().fit(y[:2000], p[:2000], classes=[0, 1])
    >>> result = cbpe.estimate(cbpe.accumulate(p[2000:]))
    >>> realised = ClassificationStats.from_arrays(y[2000:], None, p[2000:], classes=[0, 1])
    >>> cmp = result.compare(realised)
    >>> abs(cmp["accuracy"]["difference"]) < 0.03
    True
    """

    def __init__(
        self,
        calibration: Calibration = "auto",
        *,
        confidence: float = 0.95,
        threshold: float = 0.5,
        n_folds: int = 5,
        min_brier_gain: float = 0.0,
        n_score_bins: int = DEFAULT_SCORE_BINS,
        max_invalid_share: float = 0.01,
        random_state: int = 0,
    ) -> None:
        check_param(calibration in ("auto", "isotonic", "none"), "calibration", "CBPE",
                    "one of 'auto', 'isotonic', 'none'", calibration)
        check_param(isinstance(confidence, float) and 0.0 < confidence < 1.0, "confidence",
                    "CBPE", "a float in (0, 1)", confidence)
        check_param(isinstance(threshold, int | float) and 0.0 <= threshold <= 1.0, "threshold",
                    "CBPE", "a float in [0, 1]", threshold)
        check_param(isinstance(n_folds, int) and 2 <= n_folds <= 100, "n_folds", "CBPE",
                    "an int in [2, 100]", n_folds)
        check_param(isinstance(min_brier_gain, int | float) and min_brier_gain >= 0,
                    "min_brier_gain", "CBPE", "a float >= 0", min_brier_gain)
        check_param(isinstance(n_score_bins, int) and 4 <= n_score_bins <= 1 << 16,
                    "n_score_bins", "CBPE", "an int in [4, 65536]", n_score_bins)
        check_param(isinstance(max_invalid_share, int | float)
                    and 0.0 <= max_invalid_share <= 1.0, "max_invalid_share", "CBPE",
                    "a float in [0, 1]", max_invalid_share)
        self.calibration = calibration
        self.confidence = confidence
        self.threshold = float(threshold)
        self.n_folds = n_folds
        self.min_brier_gain = float(min_brier_gain)
        self.n_score_bins = n_score_bins
        self.max_invalid_share = float(max_invalid_share)
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting

    def fit(self, y_true: Any, scores: Any, *, classes: Any, y_pred: Any = None) -> CBPE:
        """Calibrate on the labelled reference; rows without a usable label/score are skipped.

        Raises :class:`~aiwarden.errors.DataError` when more than
        ``max_invalid_share`` of the rows with scores hold scores that are not
        probabilities: calibrating logits would give meaningless estimates.
        """
        cl = validate_classes(classes, "CBPE")
        c = len(cl)
        true = encode_labels(y_true, cl, "y_true")
        s = validate_scores(scores, len(true), c, "CBPE")
        score_ok = valid_score_rows(s)
        _check_probabilities(s, score_ok, self.max_invalid_share)
        use = (true >= 0) & score_ok
        if use.sum() < 2 or len(np.unique(true[use])) < 2:
            raise DataError("CBPE.fit needs labelled reference rows of at least two classes "
                            f"with valid scores. Got {int(use.sum())} usable rows.", "y_true")
        t, su = true[use], s[use]
        raw_cols = [su] if c == 2 else [su[:, k] for k in range(c)]
        hits = [t == 1] if c == 2 else [t == k for k in range(c)]
        maps: list[IsotonicMap | None] = []
        report: dict[str, dict[str, Any]] = {}
        oof_cols: list[np.ndarray] = []
        cross_fit = len(t) >= 2 * self.n_folds
        for k, (raw, hit) in enumerate(zip(raw_cols, hits, strict=True)):
            label = cl[1] if c == 2 else cl[k]
            brier_raw = float(np.mean((raw - hit) ** 2))
            judged = cross_fit and self.calibration != "none"
            oof = cross_fitted(raw, hit, self.n_folds, self.random_state) if judged else raw
            brier_cal = float(np.mean((oof - hit) ** 2)) if judged else float("nan")
            keep = self.calibration == "isotonic" or (
                self.calibration == "auto" and cross_fit
                and brier_cal < brier_raw - self.min_brier_gain)
            maps.append(fit_isotonic(raw, hit) if keep else None)
            oof_cols.append(oof if keep else raw)
            report[str(label)] = {"brier_raw": brier_raw, "brier_calibrated": brier_cal,
                                  "calibrated": bool(keep)}
        if c > 2 and self.calibration == "auto" and any(m is not None for m in maps):
            onehot = np.eye(c)[t]
            composed = _normalise(np.column_stack(oof_cols))
            if np.mean((composed - onehot) ** 2) >= np.mean((_normalise(su) - onehot) ** 2):
                maps = [None] * c
                for entry in report.values():
                    entry["calibrated"] = False
        self.classes_ = cl
        self.calibrators_ = tuple(maps)
        self.calibration_report_ = report
        self.reference_stats_ = ClassificationStats.from_arrays(
            y_true, y_pred, scores, classes=cl, n_score_bins=self.n_score_bins,
            threshold=self.threshold)
        self.reference_expected_ = self.accumulate(scores, y_pred)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "calibrators_"):
            raise NotFittedError("This CBPE is not fitted yet; call fit on a labelled "
                                 "reference first.")

    # --------------------------------------------------------------- estimating

    def calibrate(self, scores: Any) -> np.ndarray:
        """Calibrated class probabilities ``(n, C)`` for valid score rows, in ``classes_`` order."""
        self._check_fitted()
        s = validate_scores(scores, len(np.asarray(scores)), len(self.classes_), "CBPE")
        return self._probabilities(s)

    def _probabilities(self, s: np.ndarray) -> np.ndarray:
        if s.ndim == 1:
            m = self.calibrators_[0]
            q = np.clip(m(s) if m is not None else s, 0.0, 1.0)
            return np.column_stack([1.0 - q, q])
        cols = [m(s[:, k]) if m is not None else s[:, k]
                for k, m in enumerate(self.calibrators_)]
        return _normalise(np.column_stack(cols))

    def accumulate(self, scores: Any, y_pred: Any = None) -> ExpectedClassificationStats:
        """Expected confusion counts of a batch (no labels needed); merge batches freely.

        A row whose scores are not probabilities cannot be estimated: it is
        counted in ``n_invalid_score`` of the result, not in ``n``. A row with a
        ``y_pred`` outside the classes is left out of the expected confusion and
        counted in ``n_unknown_pred``; with valid scores it still enters the ROC
        AUC histograms. The counts mirror realised
        :class:`~aiwarden.engine.performance.ClassificationStats`.
        """
        s, ok, pred = self._rows(scores, y_pred)
        sk = s[ok]
        return ExpectedClassificationStats.from_probabilities(
            self._probabilities(sk), sk, pred[ok].astype(np.int64), self.classes_,
            self.n_score_bins, int((pred < 0).sum()), int((~ok).sum()))

    def accumulate_groups(self, scores: Any, y_pred: Any = None) -> GroupedRows:
        """A batch's rows validated, calibrated and encoded once; its
        :meth:`GroupedRows.accumulate` then gives ``accumulate`` of each group of them
        for any grouping, each field summed over all groups at once."""
        s, ok, pred = self._rows(scores, y_pred)
        return GroupedRows(self._probabilities(s[ok]), s[ok], pred[ok].astype(np.int64), ok,
                           pred < 0, self.classes_, self.n_score_bins)

    def _rows(self, scores: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Validated scores, which rows hold probabilities, and each row's predicted code."""
        self._check_fitted()
        arr = np.asarray(scores, dtype=np.float64)
        s = validate_scores(arr, len(arr), len(self.classes_), "CBPE")
        ok = valid_score_rows(s)
        if y_pred is None:
            return s, ok, predict_codes(s, self.threshold)
        pred = encode_labels(y_pred, self.classes_, "y_pred")
        if len(pred) != len(s):
            raise DataError(f"Column 'y_pred' has {len(pred)} rows but 'scores' has "
                            f"{len(s)}.", "y_pred")
        return s, ok, pred

    def estimate(self, expected: ExpectedClassificationStats) -> CBPEResult:
        """Estimated metrics of the window ``expected`` summarises, with bands."""
        self._check_fitted()
        check_param(isinstance(expected, ExpectedClassificationStats)
                    and expected.classes == self.classes_, "expected", "CBPE.estimate",
                    f"ExpectedClassificationStats with classes {list(self.classes_)}",
                    getattr(expected, "classes", expected))
        return expected.estimate(self.confidence)

    # ------------------------------------------------------------ serialising

    def to_dict(self) -> dict[str, Any]:
        """Parameters and fitted state, JSON-safe."""
        self._check_fitted()
        return {
            "params": {"calibration": self.calibration, "confidence": self.confidence,
                       "threshold": self.threshold, "n_folds": self.n_folds,
                       "min_brier_gain": self.min_brier_gain,
                       "n_score_bins": self.n_score_bins,
                       "max_invalid_share": self.max_invalid_share,
                       "random_state": self.random_state},
            "classes": list(self.classes_),
            "calibrators": [None if m is None else m.to_dict() for m in self.calibrators_],
            "calibration_report": self.calibration_report_,
            "reference_stats": self.reference_stats_.to_dict(),
            "reference_expected": self.reference_expected_.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CBPE:
        out = cls(**d["params"])
        out.classes_ = tuple(d["classes"])
        out.calibrators_ = tuple(None if m is None else IsotonicMap.from_dict(m)
                                 for m in d["calibrators"])
        out.calibration_report_ = {k: dict(v) for k, v in d["calibration_report"].items()}
        out.reference_stats_ = ClassificationStats.from_dict(d["reference_stats"])
        out.reference_expected_ = ExpectedClassificationStats.from_dict(d["reference_expected"])
        return out


@dataclass(frozen=True, eq=False)
class GroupedRows:
    """What :meth:`CBPE.accumulate_groups` prepared: the valid rows' calibrated
    probabilities, raw scores and predicted codes, which rows are valid, which predict
    an unknown class."""

    proba: np.ndarray
    raw: np.ndarray
    pred: np.ndarray
    ok: np.ndarray
    unknown: np.ndarray
    classes: tuple[Any, ...]
    n_score_bins: int

    def accumulate(self, group: np.ndarray, n_groups: int
                   ) -> list[ExpectedClassificationStats]:
        """Each group's expected counts (``group``: each row's group in ``[0, n_groups)``)."""
        group = np.asarray(group, np.int64)
        return ExpectedClassificationStats.from_probabilities_grouped(
            self.proba, self.raw, self.pred, group[self.ok], n_groups, self.classes,
            self.n_score_bins, np.bincount(group[self.unknown], minlength=n_groups),
            np.bincount(group[~self.ok], minlength=n_groups))


def _check_probabilities(s: np.ndarray, ok: np.ndarray, max_share: float) -> None:
    """Raise when too many present scores are not probabilities (logits, unnormalised rows)."""
    present = ~np.isnan(s) if s.ndim == 1 else ~np.isnan(s).any(axis=1)
    bad = present & ~ok
    n_bad, n_present = int(bad.sum()), int(present.sum())
    if n_bad == 0 or n_bad <= max_share * n_present:
        return
    values = s[present]
    out_of_range = ~np.isfinite(s) | (s < 0.0) | (s > 1.0)
    outside = present & (out_of_range if s.ndim == 1 else out_of_range.any(axis=1))
    n_outside = int(outside.sum())
    share = f"max_invalid_share={max_share:g} tolerates a few corrupt rows, not this many"
    if n_outside:
        raise DataError(
            f"Scores must be probabilities in [0, 1]; {n_outside:,} of {n_present:,} reference "
            f"rows with scores are outside (min {np.min(values):.4g}, max "
            f"{np.max(values):.4g}). Pass predict_proba output, not decision_function "
            f"({share}).", "scores")
    sums = s[bad].sum(axis=1)
    raise DataError(
        f"Multiclass scores must be probabilities summing to 1 per row (within "
        f"{PROBA_SUM_TOL}); {n_bad:,} of {n_present:,} reference rows with scores do not "
        f"(row sums {np.min(sums):.4g} to {np.max(sums):.4g}). Pass predict_proba output "
        f"with one column per class in classes order ({share}).", "scores")


def _normalise(p: np.ndarray) -> np.ndarray:
    """Rows scaled to sum to one; an all-zero row becomes uniform."""
    p = np.clip(p, 0.0, None)
    total = p.sum(axis=1, keepdims=True)
    uniform = np.full_like(p, 1.0 / p.shape[1])
    return np.divide(p, total, out=uniform, where=total > 0)
