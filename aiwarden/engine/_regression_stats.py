"""Mergeable regression accumulator (re-exported by :mod:`aiwarden.engine.performance`).

Why exact moments: R² needs the spread of ``y`` around the window's own mean,
which is not a sum of per-batch spreads; Chan's parallel update combines
``(n, mean, M2)`` pairs without a second pass, so merged windows equal the
whole up to float rounding.

The error of a row is ``e = y_pred - y_true`` (positive: over-prediction), so
``mean_error`` is the bias of the model. MAPE leaves out rows with ``y == 0``
(counted in ``n_zero_y``) and, like scikit-learn, divides by ``max(|y|, eps)``.

Finite but huge values (a diverging model) can overflow a sum of squares: the
accumulator then holds inf/NaN, stored as null and read back as NaN
(:mod:`aiwarden.engine._finite`); the metrics it feeds are NaN and :meth:`reasons`
says why, while the others (``mae``, ``mean_error``) stay computed when they fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from aiwarden.engine._finite import OVERFLOW, overflowed, stored_float
from aiwarden.errors import DataError, check_param

__all__ = ["RegressionStats"]

_EPS = float(np.finfo(np.float64).eps)


def _chan(n_a: int, mean_a: float, m2_a: float, n_b: int, mean_b: float,
          m2_b: float) -> tuple[float, float]:
    """Mean and M2 of the union of two groups (Chan et al., 1979)."""
    n = n_a + n_b
    if n == 0:
        return 0.0, 0.0
    if n_a == 0:
        return mean_b, m2_b
    if n_b == 0:
        return mean_a, m2_a
    delta = mean_b - mean_a
    return mean_a + delta * n_b / n, m2_a + m2_b + delta * delta * n_a * n_b / n


def _moments(x: np.ndarray) -> tuple[float, float]:
    if len(x) == 0:
        return 0.0, 0.0
    mean = float(np.mean(x))
    return mean, float(np.sum((x - mean) ** 2))


@dataclass(frozen=True, eq=False)
class RegressionStats:
    """Count, moments of ``y`` and of the error, absolute/percentage error sums.

    ``n_invalid`` counts rows dropped because ``y_true`` or ``y_pred`` is not
    finite; ``n_zero_y`` counts rows left out of MAPE because ``y_true == 0``.
    ``residual_counts`` (when ``residual_edges`` is given) is a histogram of the
    error with an underflow cell first and an overflow cell last.

    Examples
    --------
    >>> s = RegressionStats.from_arrays([1.0, 2.0, 4.0], [1.5, 2.0, 3.0])
    >>> {k: round(v, 4) for k, v in s.metrics().items()}
    {'mae': 0.5, 'rmse': 0.6455, 'mape': 0.25, 'r2': 0.7321, 'mean_error': -0.1667}
    """

    n: int = 0
    y_mean: float = 0.0
    y_m2: float = 0.0
    e_mean: float = 0.0
    e_m2: float = 0.0
    sse: float = 0.0
    sae: float = 0.0
    sape: float = 0.0
    n_ape: int = 0
    n_zero_y: int = 0
    n_invalid: int = 0
    residual_edges: tuple[float, ...] | None = None
    residual_counts: np.ndarray | None = None

    @classmethod
    def empty(cls, residual_edges: Any = None) -> RegressionStats:
        """The identity of :meth:`merge` (with or without a residual histogram)."""
        edges = _check_edges(residual_edges)
        counts = None if edges is None else np.zeros(len(edges) + 1, dtype=np.int64)
        return cls(residual_edges=edges, residual_counts=counts)

    @classmethod
    def from_arrays(cls, y_true: Any, y_pred: Any, *,
                    residual_edges: Any = None) -> RegressionStats:
        """Stats of one batch; non-finite rows are counted in ``n_invalid``."""
        edges = _check_edges(residual_edges)
        y = np.asarray(y_true, dtype=np.float64)
        f = np.asarray(y_pred, dtype=np.float64)
        if y.ndim != 1 or f.shape != y.shape:
            raise DataError(f"Columns 'y_true' and 'y_pred' must be 1-D of equal length. Got "
                            f"shapes {y.shape} and {f.shape}.", "y_pred")
        ok = np.isfinite(y) & np.isfinite(f)
        y, f = y[ok], f[ok]
        with np.errstate(over="ignore", invalid="ignore"):  # overflow: NaN, see reasons()
            e = f - y
            nonzero = y != 0
            y_mean, y_m2 = _moments(y)
            e_mean, e_m2 = _moments(e)
            counts = None
            if edges is not None:
                idx = np.searchsorted(np.asarray(edges), e, side="right")
                counts = np.bincount(idx, minlength=len(edges) + 1).astype(np.int64)
            ape = np.abs(e[nonzero]) / np.maximum(np.abs(y[nonzero]), _EPS)
            sse, sae, sape = (float(np.dot(e, e)), float(np.sum(np.abs(e))),
                              float(np.sum(ape)))
        return cls(
            n=len(y), y_mean=y_mean, y_m2=y_m2, e_mean=e_mean, e_m2=e_m2,
            sse=sse, sae=sae, sape=sape, n_ape=int(nonzero.sum()),
            n_zero_y=int((~nonzero).sum()), n_invalid=int((~ok).sum()),
            residual_edges=edges, residual_counts=counts,
        )

    def __radd__(self, other: object) -> RegressionStats:
        """``sum(stats)`` starts from 0."""
        if isinstance(other, int) and other == 0:
            return self
        return NotImplemented

    def merge(self, other: RegressionStats) -> RegressionStats:
        """Stats of the union; histograms must share edges unless one side has none and is empty."""
        check_param(isinstance(other, RegressionStats), "other", "RegressionStats.merge",
                    "a RegressionStats", type(other).__name__)
        edges, counts = _merge_hist(self, other)
        y_mean, y_m2 = _chan(self.n, self.y_mean, self.y_m2, other.n, other.y_mean, other.y_m2)
        e_mean, e_m2 = _chan(self.n, self.e_mean, self.e_m2, other.n, other.e_mean, other.e_m2)
        return RegressionStats(
            n=self.n + other.n, y_mean=y_mean, y_m2=y_m2, e_mean=e_mean, e_m2=e_m2,
            sse=self.sse + other.sse, sae=self.sae + other.sae, sape=self.sape + other.sape,
            n_ape=self.n_ape + other.n_ape, n_zero_y=self.n_zero_y + other.n_zero_y,
            n_invalid=self.n_invalid + other.n_invalid, residual_edges=edges,
            residual_counts=counts,
        )

    __add__ = merge

    def metrics(self) -> dict[str, float]:
        """``mae``, ``rmse``, ``mape`` (rows with ``y != 0``), ``r2``, ``mean_error``;
        NaN where an accumulator overflowed (:meth:`reasons`)."""
        nan = float("nan")
        if self.n == 0:
            return {"mae": nan, "rmse": nan, "mape": nan, "r2": nan, "mean_error": nan}
        lost = self.reasons()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out = {
                "mae": self.sae / self.n,
                "rmse": float(np.sqrt(self.sse / self.n)),
                "mape": self.sape / self.n_ape if self.n_ape else nan,
                "r2": 1.0 - self.sse / self.y_m2 if self.y_m2 > 0 else nan,
                "mean_error": self.e_mean,
            }
        return {k: nan if k in lost else v for k, v in out.items()}

    def reasons(self) -> dict[str, str]:
        """Why a metric is NaN although the window has labelled rows: its accumulator
        overflowed float64 (huge values; :mod:`aiwarden.engine._finite`)."""
        if self.n == 0:
            return {}
        sources = {"mae": ("the sum of absolute errors", self.sae),
                   "rmse": ("the sum of squared errors", self.sse),
                   "mape": ("the sum of percentage errors", self.sape if self.n_ape else 0.0),
                   "r2": ("the squared errors or the labels' spread", self.sse, self.y_m2),
                   "mean_error": ("the mean error", self.e_mean)}
        return {k: OVERFLOW.format(what=what) for k, (what, *vals) in sources.items()
                if overflowed(*vals)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "RegressionStats", "n": self.n, "y_mean": self.y_mean, "y_m2": self.y_m2,
            "e_mean": self.e_mean, "e_m2": self.e_m2, "sse": self.sse, "sae": self.sae,
            "sape": self.sape, "n_ape": self.n_ape, "n_zero_y": self.n_zero_y,
            "n_invalid": self.n_invalid,
            "residual_edges": None if self.residual_edges is None else list(self.residual_edges),
            "residual_counts": (None if self.residual_counts is None
                                else self.residual_counts.tolist()),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RegressionStats:
        edges = d.get("residual_edges")
        counts = d.get("residual_counts")
        return cls(
            n=int(d["n"]), y_mean=stored_float(d["y_mean"]), y_m2=stored_float(d["y_m2"]),
            e_mean=stored_float(d["e_mean"]), e_m2=stored_float(d["e_m2"]),
            sse=stored_float(d["sse"]), sae=stored_float(d["sae"]),
            sape=stored_float(d["sape"]), n_ape=int(d["n_ape"]),
            n_zero_y=int(d["n_zero_y"]), n_invalid=int(d["n_invalid"]),
            residual_edges=None if edges is None else tuple(float(v) for v in edges),
            residual_counts=None if counts is None else np.asarray(counts, dtype=np.int64),
        )


def _check_edges(edges: Any) -> tuple[float, ...] | None:
    if edges is None:
        return None
    arr = np.asarray(edges, dtype=np.float64)
    ok = arr.ndim == 1 and len(arr) >= 1 and bool(np.all(np.isfinite(arr))) and bool(
        np.all(np.diff(arr) > 0))
    check_param(ok, "residual_edges", "RegressionStats",
                "a 1-D strictly increasing sequence of finite floats", edges)
    return tuple(float(v) for v in arr)


def _merge_hist(a: RegressionStats,
                b: RegressionStats) -> tuple[tuple[float, ...] | None, np.ndarray | None]:
    if a.residual_edges == b.residual_edges:
        if a.residual_counts is None or b.residual_counts is None:
            return a.residual_edges, None
        return a.residual_edges, a.residual_counts + b.residual_counts
    if a.residual_edges is None and a.n == 0 and a.n_invalid == 0:
        return b.residual_edges, b.residual_counts
    if b.residual_edges is None and b.n == 0 and b.n_invalid == 0:
        return a.residual_edges, a.residual_counts
    check_param(False, "other", "RegressionStats.merge",
                f"stats with residual_edges {a.residual_edges}", b.residual_edges)
    raise AssertionError  # pragma: no cover  (check_param raised)
