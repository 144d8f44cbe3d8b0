"""Direct loss estimation (DLE): regression MAE and RMSE without labels.

Why it is sound, and when: the expected absolute error of a row,
``m(x) = E[|y - f(x)| | x]``, depends only on ``x`` (and the model's output
``f(x)``) as long as ``P(y | x)`` does not change. Under covariate shift the
MAE of a window is therefore the average of ``m`` over the window's rows, and
``m`` can be learned on the labelled reference by regressing ``|error|`` on the
features; the same holds for ``q(x) = E[error**2 | x]`` and the MSE. It fails
under concept drift (``P(y | x)`` moves), when the error depends on something
not among the features, and outside the reference's support (the default
gradient-boosted trees extrapolate flat).

The band covers the label noise of the window, not the error of the fitted
``m`` and ``q``: ``Var(|e| | x) = q(x) - m(x)**2`` from the two models, and
``Var(e**2 | x) = kappa * q(x)**2`` with ``kappa`` the ratio measured on
out-of-fold reference predictions (the error's shape is assumed to stay the
same while its scale moves). The cross-fitted reference predictions also give
``reference_check_``: estimated vs realised MAE/RMSE on held-out reference
rows, the honest measure of the models' own error.

Cross-fitting: the reference is split in ``n_folds``; each fold's models are
fitted on the other folds, score the held-out fold (for ``kappa`` and the
check) and, averaged, score new data, so no row's loss is predicted by a model
that saw it and no extra full fit is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import KFold
from threadpoolctl import threadpool_limits

from aiwarden.engine._finite import stored_float
from aiwarden.engine._regression_stats import RegressionStats
from aiwarden.engine._results import (
    MetricEstimate,
    compare_estimates,
    estimates_frame,
    report_html,
)
from aiwarden.engine._tree_ensemble import TreeEnsemble
from aiwarden.errors import DataError, NotFittedError, ParameterError, SchemaError, check_param

__all__ = ["DLE", "DLEResult", "ExpectedRegressionStats"]

_PRED = "__y_pred__"
_MAX_CATEGORIES = 250
_NAN = float("nan")


@dataclass(frozen=True)
class ExpectedRegressionStats:
    """Mergeable sums of the predicted ``|error|``, ``error**2`` and their variances."""

    n: int = 0
    sum_abs: float = 0.0
    sum_sq: float = 0.0
    var_abs: float = 0.0
    var_sq: float = 0.0
    n_invalid: int = 0

    def merge(self, other: ExpectedRegressionStats) -> ExpectedRegressionStats:
        check_param(isinstance(other, ExpectedRegressionStats), "other",
                    "ExpectedRegressionStats.merge", "an ExpectedRegressionStats",
                    type(other).__name__)
        return ExpectedRegressionStats(
            self.n + other.n, self.sum_abs + other.sum_abs, self.sum_sq + other.sum_sq,
            self.var_abs + other.var_abs, self.var_sq + other.var_sq,
            self.n_invalid + other.n_invalid)

    __add__ = merge

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "ExpectedRegressionStats", "n": self.n, "sum_abs": self.sum_abs,
                "sum_sq": self.sum_sq, "var_abs": self.var_abs, "var_sq": self.var_sq,
                "n_invalid": self.n_invalid}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ExpectedRegressionStats:
        f = stored_float  # null: lost to overflow, read as NaN (aiwarden.engine._finite)
        return cls(int(d["n"]), f(d["sum_abs"]), f(d["sum_sq"]), f(d["var_abs"]),
                   f(d["var_sq"]), int(d["n_invalid"]))


@dataclass(frozen=True)
class DLEResult:
    """Estimated ``mae`` and ``rmse`` with their sampling-error bands (NaN without rows).

    Same shape as :class:`~aiwarden.engine.cbpe.CBPEResult`: ``metrics`` maps a
    name to a :class:`~aiwarden.engine._results.MetricEstimate`; ``n`` counts the
    rows estimated, ``n_invalid`` the rows left out (prediction not finite).
    """

    n: int
    confidence: float
    metrics: dict[str, MetricEstimate]
    n_invalid: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "confidence": self.confidence, "n_invalid": self.n_invalid,
                "metrics": {k: v.to_dict() for k, v in self.metrics.items()}}

    def to_pandas(self) -> pd.DataFrame:
        """One row per metric (index ``metric``): estimate, std, lower, upper."""
        return estimates_frame(self.metrics)

    def _repr_html_(self) -> str:
        return report_html(f"Estimated performance (DLE, {self.n:,} rows, "
                           f"{self.confidence:.0%} band)", self.to_pandas())

    def compare(self, realised: RegressionStats) -> dict[str, dict[str, Any]]:
        """Estimate against the realised value of the labelled rows, per metric.

        Same keys as :meth:`CBPEResult.compare
        <aiwarden.engine.cbpe.CBPEResult.compare>` (band widened to the labelled rows).
        """
        check_param(isinstance(realised, RegressionStats), "realised", "DLEResult.compare",
                    "a RegressionStats", type(realised).__name__)
        return compare_estimates(self.metrics, self.n, self.confidence, realised.metrics(),
                                 realised.n)


def _default_estimator(random_state: int) -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(
        max_iter=60, learning_rate=0.1, max_leaf_nodes=15, min_samples_leaf=40,
        early_stopping=False, random_state=random_state)


class DLE:
    """Estimate a regression model's MAE and RMSE on unlabelled rows from its features.

    Parameters
    ----------
    estimator
        Regressor of the conditional loss (cloned per fit); default: gradient-boosted
        trees that take missing values and categories. Only the default (or any
        squared-error ``HistGradientBoostingRegressor``) can be stored with
        :meth:`to_dict`; it is then scored by :class:`_tree_ensemble.TreeEnsemble`,
        which gives the same predictions without a thread pool.
    n_folds
        Folds of the cross-fitting on the reference (``2 * n_folds`` model fits).
    confidence
        Coverage of the sampling-error band.
    random_state
        Seed of the folds, of the row subsample and of the default estimator.
    n_threads
        OpenMP threads per model fit (None: the library's default, every core).
        Default 1: on a busy 2-core host the boosting's thread pool made a fit 13x
        slower than one thread (oversubscription), and one thread costs little at
        reference sizes. The result does not depend on it (tested).
    max_rows
        Reference rows used to fit (a seeded random subsample above it; None: all):
        the loss models need thousands of rows, not millions.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(3000, 1))
    >>> y = x[:, 0] + rng.normal(size=3000) * (0.2 + np.abs(x[:, 0]))
    >>> from sklearn.tree import DecisionTreeRegressor
    >>> dle = DLE(DecisionTreeRegressor(min_samples_leaf=100), n_folds=3)
    >>> dle = dle.fit(x[:2000], y[:2000], x[:2000, 0])
    >>> est = dle.estimate(dle.accumulate(x[2000:], x[2000:, 0]))
    >>> realised = RegressionStats.from_arrays(y[2000:], x[2000:, 0]).metrics()["mae"]
    >>> abs(est.metrics["mae"].estimate - realised) < 0.05
    True
    """

    def __init__(self, estimator: Any = None, *, n_folds: int = 5, confidence: float = 0.95,
                 random_state: int = 0, n_threads: int | None = 1,
                 max_rows: int | None = 50_000) -> None:
        check_param(isinstance(n_folds, int) and 2 <= n_folds <= 100, "n_folds", "DLE",
                    "an int in [2, 100]", n_folds)
        check_param(isinstance(confidence, float) and 0.0 < confidence < 1.0, "confidence",
                    "DLE", "a float in (0, 1)", confidence)
        check_param(n_threads is None or (isinstance(n_threads, int) and 1 <= n_threads <= 1024),
                    "n_threads", "DLE", "None or an int in [1, 1024]", n_threads)
        check_param(max_rows is None or (isinstance(max_rows, int) and max_rows >= 100),
                    "max_rows", "DLE", "None or an int >= 100", max_rows)
        self.estimator = estimator
        self.n_folds = n_folds
        self.confidence = confidence
        self.random_state = random_state
        self.n_threads = n_threads
        self.max_rows = max_rows

    def _new_model(self, categorical: np.ndarray) -> Any:
        if self.estimator is None:
            model = _default_estimator(self.random_state)
        else:
            model = clone(self.estimator)
        if isinstance(model, HistGradientBoostingRegressor):
            model.set_params(categorical_features=categorical if categorical.any() else None)
        return model

    def _design(self, X: Any, y_pred: Any, fitting: bool) -> tuple[np.ndarray, np.ndarray]:
        """Features plus the prediction as floats; a category becomes its position.

        Categories are the ``_MAX_CATEGORIES`` most frequent of the reference; others
        and missing values are NaN, which the trees send the way missing values go.
        """
        if isinstance(X, pd.DataFrame):
            frame = X.reset_index(drop=True)
        else:
            arr = np.asarray(X)
            if arr.ndim != 2:
                raise DataError(f"DLE needs a 2-D feature table. Got shape {arr.shape}.", None)
            frame = pd.DataFrame(arr)
        frame = frame.rename(columns=str)
        pred = np.asarray(y_pred, dtype=np.float64)
        if pred.shape != (len(frame),):
            raise DataError(f"Column 'y_pred' has shape {pred.shape}; the features have "
                            f"{len(frame)} rows.", "y_pred")
        if fitting:
            self.features_ = tuple(frame.columns)
            self.categories_ = {
                c: tuple(frame[c].astype(str)[frame[c].notna()].value_counts()
                         .index[:_MAX_CATEGORIES])
                for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])
                or pd.api.types.is_bool_dtype(frame[c])}
        missing = [c for c in self.features_ if c not in frame.columns]
        if missing:
            raise SchemaError(f"Column {missing[0]!r} was a DLE feature at fit time but is "
                              "absent.", missing[0])
        out = np.empty((len(frame), len(self.features_) + 1), dtype=np.float64)
        for j, c in enumerate(self.features_):
            col = frame[c]
            if c in self.categories_:
                codes = pd.Index(self.categories_[c]).get_indexer(col.astype(str))
                out[:, j] = np.where((codes >= 0) & col.notna().to_numpy(), codes, np.nan)
            else:
                out[:, j] = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64,
                                                                         na_value=np.nan)
        out[:, -1] = pred
        return out, np.isfinite(pred)

    @property
    def _categorical(self) -> np.ndarray:
        return np.array([c in self.categories_ for c in self.features_] + [False])

    def fit(self, X: Any, y_true: Any, y_pred: Any) -> DLE:
        """Learn ``E[|error| | x]`` and ``E[error**2 | x]`` on the labelled reference."""
        design, ok = self._design(X, y_pred, fitting=True)
        y = np.asarray(y_true, dtype=np.float64)
        if y.shape != ok.shape:
            raise DataError(f"Column 'y_true' has shape {y.shape}; expected {ok.shape}.",
                            "y_true")
        ok &= np.isfinite(y)
        if ok.sum() < 2 * self.n_folds:
            raise DataError(f"DLE.fit needs at least {2 * self.n_folds} rows with finite "
                            f"y_true and y_pred. Got {int(ok.sum())}.", "y_true")
        rows = np.flatnonzero(ok)
        if self.max_rows is not None and len(rows) > self.max_rows:
            rng = np.random.default_rng([self.random_state, 1])
            rows = np.sort(rng.choice(rows, size=self.max_rows, replace=False))
        design = design[rows]
        err = design[:, -1] - y[rows]
        abs_e, sq_e = np.abs(err), err * err
        oof_abs, oof_sq = np.empty_like(abs_e), np.empty_like(sq_e)
        abs_models, sq_models = [], []
        cat = self._categorical
        folds = KFold(self.n_folds, shuffle=True, random_state=self.random_state)
        with threadpool_limits(limits=self.n_threads, user_api="openmp"):
            for train, test in folds.split(design):
                for models, target, oof in ((abs_models, abs_e, oof_abs),
                                            (sq_models, sq_e, oof_sq)):
                    model = self._stored(self._new_model(cat).fit(design[train], target[train]))
                    models.append(model)
                    oof[test] = model.predict(design[test])
        oof_abs, oof_sq = np.maximum(oof_abs, 0.0), np.maximum(oof_sq, 0.0)
        self.kappa_ = float(np.sum((sq_e - oof_sq) ** 2) / max(np.sum(oof_sq**2), 1e-300))
        self.reference_check_ = {
            "mae_estimated": float(oof_abs.mean()), "mae_realised": float(abs_e.mean()),
            "rmse_estimated": float(np.sqrt(oof_sq.mean())),
            "rmse_realised": float(np.sqrt(sq_e.mean())),
        }
        self.abs_models_ = tuple(abs_models)
        self.sq_models_ = tuple(sq_models)
        return self

    def _stored(self, model: Any) -> Any:
        """Boosted trees become a :class:`TreeEnsemble`; other regressors stay as they are."""
        if isinstance(model, HistGradientBoostingRegressor) and model.loss == "squared_error":
            return TreeEnsemble.from_hgb(model, len(self.features_) + 1)
        return model

    def _predict(self, models: tuple[Any, ...], design: np.ndarray) -> np.ndarray:
        with threadpool_limits(limits=self.n_threads, user_api="openmp"):
            return np.maximum(np.mean([m.predict(design) for m in models], axis=0), 0.0)

    def accumulate(self, X: Any, y_pred: Any) -> ExpectedRegressionStats:
        """Predicted loss sums of a batch (no labels needed); merge batches freely."""
        if not hasattr(self, "abs_models_"):
            raise NotFittedError("This DLE is not fitted yet; call fit on a labelled reference.")
        design, ok = self._design(X, y_pred, fitting=False)
        design = design[ok]
        if len(design) == 0:
            return ExpectedRegressionStats(n_invalid=int((~ok).sum()))
        m = self._predict(self.abs_models_, design)
        q = self._predict(self.sq_models_, design)
        return ExpectedRegressionStats(
            n=len(design), sum_abs=float(m.sum()), sum_sq=float(q.sum()),
            var_abs=float(np.maximum(q - m * m, 0.0).sum()),
            var_sq=float(self.kappa_ * np.sum(q * q)), n_invalid=int((~ok).sum()))

    def estimate(self, expected: ExpectedRegressionStats) -> DLEResult:
        """Estimated MAE and RMSE of the window with ``confidence`` bands."""
        check_param(isinstance(expected, ExpectedRegressionStats), "expected", "DLE.estimate",
                    "an ExpectedRegressionStats", type(expected).__name__)
        z = float(norm.ppf(0.5 + self.confidence / 2.0))
        n = expected.n
        if n == 0:
            nan = MetricEstimate(_NAN, _NAN, _NAN, _NAN)
            return DLEResult(0, self.confidence, {"mae": nan, "rmse": nan},
                             expected.n_invalid)
        mae, sd_mae = expected.sum_abs / n, float(np.sqrt(expected.var_abs)) / n
        mse, sd_mse = expected.sum_sq / n, float(np.sqrt(expected.var_sq)) / n
        rmse = float(np.sqrt(mse))
        sd_rmse = sd_mse / (2.0 * rmse) if rmse > 0 else 0.0
        return DLEResult(n, self.confidence, {
            "mae": _band(mae, sd_mae, z), "rmse": _band(rmse, sd_rmse, z)}, expected.n_invalid)

    # ------------------------------------------------------------ serialising

    def to_dict(self) -> dict[str, Any]:
        """Parameters and fitted state, JSON-safe (trees as :class:`TreeEnsemble` dicts)."""
        if not hasattr(self, "abs_models_"):
            raise NotFittedError("This DLE is not fitted yet; call fit on a labelled reference.")
        models = (*self.abs_models_, *self.sq_models_)
        if not all(isinstance(m, TreeEnsemble) for m in models):
            raise ParameterError("A DLE with a custom estimator cannot be stored; only the "
                                 "default gradient-boosted trees can (estimator=None).",
                                 "estimator")
        return {
            "kind": "DLE",
            "params": {"n_folds": self.n_folds, "confidence": self.confidence,
                       "random_state": self.random_state, "n_threads": self.n_threads,
                       "max_rows": self.max_rows},
            "features": list(self.features_),
            "categories": {k: list(v) for k, v in self.categories_.items()},
            "kappa": self.kappa_, "reference_check": dict(self.reference_check_),
            "abs_models": [m.to_dict() for m in self.abs_models_],
            "sq_models": [m.to_dict() for m in self.sq_models_],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DLE:
        out = cls(**d["params"])
        out.features_ = tuple(d["features"])
        out.categories_ = {k: tuple(v) for k, v in d["categories"].items()}
        out.kappa_ = float(d["kappa"])
        out.reference_check_ = {k: float(v) for k, v in d["reference_check"].items()}
        out.abs_models_ = tuple(TreeEnsemble.from_dict(m) for m in d["abs_models"])
        out.sq_models_ = tuple(TreeEnsemble.from_dict(m) for m in d["sq_models"])
        return out


def _band(value: float, sd: float, z: float) -> MetricEstimate:
    return MetricEstimate(float(value), float(sd), float(max(value - z * sd, 0.0)),
                          float(value + z * sd))
