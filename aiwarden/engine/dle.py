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

from aiwarden.engine._regression_stats import RegressionStats
from aiwarden.errors import DataError, NotFittedError, SchemaError, check_param

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
        return cls(int(d["n"]), float(d["sum_abs"]), float(d["sum_sq"]), float(d["var_abs"]),
                   float(d["var_sq"]), int(d["n_invalid"]))


@dataclass(frozen=True)
class DLEResult:
    """Estimated ``mae`` and ``rmse`` with their sampling-error bands (NaN without rows)."""

    n: int
    confidence: float
    metrics: dict[str, dict[str, float]]

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "confidence": self.confidence,
                "metrics": {k: dict(v) for k, v in self.metrics.items()}}

    def to_pandas(self) -> pd.DataFrame:
        return pd.DataFrame.from_dict(self.metrics, orient="index")

    def compare(self, realised: RegressionStats) -> dict[str, dict[str, Any]]:
        """Estimate minus realised and whether the realised value is in the band."""
        check_param(isinstance(realised, RegressionStats), "realised", "DLEResult.compare",
                    "a RegressionStats", type(realised).__name__)
        values = realised.metrics()
        out: dict[str, dict[str, Any]] = {}
        for name, est in self.metrics.items():
            r = float(values[name])
            defined = np.isfinite(r) and np.isfinite(est["estimate"])
            out[name] = {"estimate": est["estimate"], "realised": r,
                         "difference": est["estimate"] - r if defined else _NAN,
                         "within_band": bool(est["lower"] <= r <= est["upper"]) if defined
                         else None}
        return out


def _default_estimator(random_state: int) -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(
        max_iter=60, learning_rate=0.1, max_leaf_nodes=15, min_samples_leaf=40,
        early_stopping=False, categorical_features="from_dtype", random_state=random_state)


class DLE:
    """Estimate a regression model's MAE and RMSE on unlabelled rows from its features.

    Parameters
    ----------
    estimator
        Regressor of the conditional loss (cloned per fit); default: gradient-boosted
        trees that take missing values and pandas categoricals.
    n_folds
        Folds of the cross-fitting on the reference (``2 * n_folds`` model fits).
    confidence
        Coverage of the sampling-error band.
    random_state
        Seed of the folds and of the default estimator.

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
    >>> abs(est.metrics["mae"]["estimate"] - realised) < 0.05
    True
    """

    def __init__(self, estimator: Any = None, *, n_folds: int = 5, confidence: float = 0.95,
                 random_state: int = 0) -> None:
        check_param(isinstance(n_folds, int) and 2 <= n_folds <= 100, "n_folds", "DLE",
                    "an int in [2, 100]", n_folds)
        check_param(isinstance(confidence, float) and 0.0 < confidence < 1.0, "confidence",
                    "DLE", "a float in (0, 1)", confidence)
        self.estimator = estimator
        self.n_folds = n_folds
        self.confidence = confidence
        self.random_state = random_state

    def _new_model(self) -> Any:
        if self.estimator is None:
            return _default_estimator(self.random_state)
        return clone(self.estimator)

    def _design(self, X: Any, y_pred: Any, fitting: bool) -> tuple[pd.DataFrame, np.ndarray]:
        """Features plus the prediction as a frame; numeric or categorical columns only."""
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
        out = {}
        for c in self.features_:
            col = frame[c]
            if c in self.categories_:
                out[c] = pd.Categorical(col.astype(str).where(col.notna()),
                                        categories=list(self.categories_[c]))
            else:
                out[c] = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64,
                                                                      na_value=np.nan)
        out[_PRED] = pred
        return pd.DataFrame(out), np.isfinite(pred)

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
        design = design[ok].reset_index(drop=True)
        err = design[_PRED].to_numpy() - y[ok]
        abs_e, sq_e = np.abs(err), err * err
        oof_abs, oof_sq = np.empty_like(abs_e), np.empty_like(sq_e)
        abs_models, sq_models = [], []
        folds = KFold(self.n_folds, shuffle=True, random_state=self.random_state)
        for train, test in folds.split(design):
            abs_models.append(self._new_model().fit(design.iloc[train], abs_e[train]))
            sq_models.append(self._new_model().fit(design.iloc[train], sq_e[train]))
            oof_abs[test] = abs_models[-1].predict(design.iloc[test])
            oof_sq[test] = sq_models[-1].predict(design.iloc[test])
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

    def accumulate(self, X: Any, y_pred: Any) -> ExpectedRegressionStats:
        """Predicted loss sums of a batch (no labels needed); merge batches freely."""
        if not hasattr(self, "abs_models_"):
            raise NotFittedError("This DLE is not fitted yet; call fit on a labelled reference.")
        design, ok = self._design(X, y_pred, fitting=False)
        design = design[ok]
        if len(design) == 0:
            return ExpectedRegressionStats(n_invalid=int((~ok).sum()))
        m = np.maximum(np.mean([f.predict(design) for f in self.abs_models_], axis=0), 0.0)
        q = np.maximum(np.mean([f.predict(design) for f in self.sq_models_], axis=0), 0.0)
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
            nan = {"estimate": _NAN, "std": _NAN, "lower": _NAN, "upper": _NAN}
            return DLEResult(0, self.confidence, {"mae": dict(nan), "rmse": dict(nan)})
        mae, sd_mae = expected.sum_abs / n, float(np.sqrt(expected.var_abs)) / n
        mse, sd_mse = expected.sum_sq / n, float(np.sqrt(expected.var_sq)) / n
        rmse = float(np.sqrt(mse))
        sd_rmse = sd_mse / (2.0 * rmse) if rmse > 0 else 0.0
        return DLEResult(n, self.confidence, {
            "mae": _band(mae, sd_mae, z), "rmse": _band(rmse, sd_rmse, z)})


def _band(value: float, sd: float, z: float) -> dict[str, float]:
    return {"estimate": float(value), "std": float(sd), "lower": float(max(value - z * sd, 0.0)),
            "upper": float(value + z * sd)}
