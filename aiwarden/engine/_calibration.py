"""Isotonic calibration maps, cross-fitted and kept only where they help (used by CBPE).

Why cross-fitting: isotonic regression fitted and scored on the same rows
always looks better than the raw scores (it can memorise them). Scoring each
fold with a map fitted on the other folds gives an honest Brier score, so a
model whose scores are already calibrated keeps them.

A fitted map is stored as its breakpoints and applied with ``np.interp``
(exactly what ``IsotonicRegression(out_of_bounds="clip").predict`` does), so it
serialises to two lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import KFold

__all__ = ["IsotonicMap", "cross_fitted", "fit_isotonic"]


@dataclass(frozen=True, eq=False)
class IsotonicMap:
    """Non-decreasing piecewise-linear map from a raw score to a probability.

    Examples
    --------
    >>> m = fit_isotonic(np.array([0.1, 0.2, 0.3, 0.4]), np.array([0, 1, 0, 1]))
    >>> m(np.array([0.0, 0.35, 1.0])).round(3).tolist()
    [0.0, 0.75, 1.0]
    """

    x: np.ndarray
    y: np.ndarray

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return np.interp(scores, self.x, self.y)

    def to_dict(self) -> dict[str, Any]:
        return {"x": self.x.tolist(), "y": self.y.tolist()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> IsotonicMap:
        return cls(np.asarray(d["x"], dtype=np.float64), np.asarray(d["y"], dtype=np.float64))


def fit_isotonic(scores: np.ndarray, hit: np.ndarray) -> IsotonicMap:
    """Isotonic fit of ``P(hit | score)`` clipped to ``[0, 1]``."""
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    iso.fit(scores, hit.astype(np.float64))
    return IsotonicMap(np.asarray(iso.X_thresholds_, dtype=np.float64),
                       np.asarray(iso.y_thresholds_, dtype=np.float64))


def cross_fitted(scores: np.ndarray, hit: np.ndarray, n_folds: int,
                 random_state: int) -> np.ndarray:
    """Out-of-fold calibrated probabilities: each fold mapped by a fit on the others."""
    out = np.empty(len(scores), dtype=np.float64)
    folds = KFold(n_splits=n_folds, shuffle=True, random_state=random_state)
    for train, test in folds.split(scores):
        out[test] = fit_isotonic(scores[train], hit[train])(scores[test])
    return out
