"""Domain-classifier drift: can a classifier tell current rows from reference rows?

A gradient-boosting classifier is cross-validated on reference vs current rows encoded by
:class:`~aiwarden.engine._multivariate_encoding.Encoder`. Its ROC AUC is 0.5 when the samples
are exchangeable and grows with any learnable difference; permutation importance names the
columns behind it. Public through :mod:`aiwarden.engine.multivariate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm, rankdata
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from aiwarden.engine._multivariate_encoding import (
    Encoder,
    check_features,
    check_range,
    choose_features,
    is_int,
    plain,
    to_frame,
)
from aiwarden.engine.schema import Schema
from aiwarden.errors import DataError, NotFittedError, check_param

__all__ = ["DomainClassifierDrift", "DomainClassifierResult"]

_CV_INFLATION = float(np.sqrt(2.0))  # see DomainClassifierDrift: CV fold AUCs are correlated


def _take(frame: pd.DataFrame, max_rows: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= max_rows:
        return frame
    return frame.iloc[np.sort(rng.choice(len(frame), size=max_rows, replace=False))]


def _rng(random_state: int | None, stream: int) -> np.random.Generator:
    """Separate seeded streams for fit and compare, so their subsamples are not aligned."""
    return np.random.default_rng(None if random_state is None else [random_state, stream])


@dataclass(frozen=True)
class DomainClassifierResult:
    """Outcome of telling current from reference rows.

    ``auc`` is the mean of ``fold_aucs``; ``auc_ci`` its Hanley–McNeil interval at ``ci_level``;
    drift means ``auc > threshold``. ``n_reference`` and ``n_current`` count the rows used per
    side. ``n_invalid`` counts values of numerical columns in the whole current batch that
    were not numbers; they are encoded as missing (data-quality checks report them).

    ``features`` are the columns compared. Importances are measured only when drift is
    detected: without drift the classifier has learned noise, and shares of noise that sum to 1
    would look like an explanation. Then ``importances`` and ``importance_std`` are empty,
    ``features`` keep their column order and ``importance_reason`` says why. With drift,
    ``features`` are sorted by ``importances`` (permutation AUC drop
    averaged over the folds, clipped at 0, as shares that sum to 1 unless no feature carries
    signal, then all 0); ``importance_std`` is the spread of each feature's drop across the
    folds on the same scale, so an importance within a std or two of 0 is noise.
    """

    auc: float
    auc_ci: tuple[float, float]
    threshold: float
    noise_bound: float
    drift_detected: bool
    features: tuple[str, ...]
    importances: tuple[float, ...]
    fold_aucs: tuple[float, ...]
    n_reference: int
    n_current: int
    n_invalid: int
    importance_std: tuple[float, ...] = ()
    importance_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict; tuples become lists."""
        return plain(self)

    def to_pandas(self) -> pd.DataFrame:
        """Importances as a table: ``feature``, ``importance``, ``importance_std`` (NaN
        when not measured, see ``importance_reason``)."""
        n, measured = len(self.features), bool(self.importances)
        return pd.DataFrame({
            "feature": list(self.features),
            "importance": list(self.importances) if measured else [np.nan] * n,
            "importance_std": list(self.importance_std) if measured else [np.nan] * n})


class DomainClassifierDrift:
    """Drift as the cross-validated AUC of a classifier that tells reference from current.

    A fixed AUC cut-off ignores sample size, and a pure significance test flags negligible
    differences on large samples; so drift needs the AUC above both the Mann–Whitney noise bound
    under H0 (AUC = 0.5 at these sample sizes, one-sided level ``alpha``) and ``min_auc``.
    Fold models share training rows, so fold AUCs correlate: simulated nulls (30 to 1000 rows a
    side, 2 to 10 folds) put the spread of their mean at 1.2-1.4x the Mann–Whitney value, so
    the bound and the Hanley–McNeil ``auc_ci`` use sqrt(2)x.
    ``threshold_auc`` replaces both with a fixed cut-off. Each side is subsampled to at most
    ``max_rows`` rows and both sides to the same size so the AUC is balanced and fast.
    ``n_threads`` caps OpenMP threads per fit (None: library default); one thread is as fast at
    these sizes and avoids oversubscription when many detectors share a host.
    """

    _owner = "DomainClassifierDrift"

    def __init__(
        self,
        n_splits: int = 5,
        max_rows: int = 5_000,
        random_state: int | None = 0,
        threshold_auc: float | None = None,
        alpha: float = 0.01,
        min_auc: float = 0.55,
        ci_level: float = 0.95,
        max_categories: int = 20,
        max_iter: int = 100,
        features: Sequence[str] | None = None,
        importance: bool = True,
        n_threads: int | None = 1,
    ) -> None:
        owner = self._owner
        check_range(owner, "n_splits", n_splits, 2, 20, integer=True)
        check_range(owner, "max_rows", max_rows, 20, 10**9, integer=True)
        ok = random_state is None or (is_int(random_state) and random_state >= 0)
        check_param(ok, "random_state", owner, "None or an int >= 0", random_state)
        if threshold_auc is not None:
            check_range(owner, "threshold_auc", threshold_auc, 0.5, 1, "[)")
        check_range(owner, "alpha", alpha, 0, 0.5, "()")
        check_range(owner, "min_auc", min_auc, 0.5, 1, "[)")
        check_range(owner, "ci_level", ci_level, 0, 1, "()")
        check_range(owner, "max_categories", max_categories, 1, 1000, integer=True)
        check_range(owner, "max_iter", max_iter, 1, 10_000, integer=True)
        check_param(isinstance(importance, bool), "importance", owner, "a bool", importance)
        if n_threads is not None:
            check_range(owner, "n_threads", n_threads, 1, 1024, integer=True)
        check_features(features, owner)
        self.n_splits, self.max_rows, self.random_state = n_splits, max_rows, random_state
        self.threshold_auc, self.alpha, self.min_auc = threshold_auc, alpha, min_auc
        self.ci_level, self.max_categories, self.max_iter = ci_level, max_categories, max_iter
        self.features, self.importance, self.n_threads = features, importance, n_threads

    def fit(
        self, reference: Any, schema: Schema | None = None, **schema_hints: Any
    ) -> DomainClassifierDrift:
        """Learn the encoding on the whole reference and keep a subsample of it; returns self.

        Without ``features`` the columns with role ``feature`` are used: from ``schema``, or
        inferred with ``schema_hints`` (target=, prediction=, scores=, id=, ...) as in
        ``Reference.fit``.
        """
        frame = to_frame(reference, "reference", f"{self._owner}.fit")
        names = choose_features(frame, self.features, schema, schema_hints, self._owner)
        self.encoder_ = Encoder(names, self.max_categories, self._owner).fit(frame)
        rng = _rng(self.random_state, 0)
        sample = _take(frame, self.max_rows, rng)
        self.reference_ = self.encoder_.transform(sample, "reference")[0]
        self._check_rows(len(self.reference_), "reference")
        return self

    def _check_rows(self, n: int, role: str) -> None:
        if n < 2 * self.n_splits:
            raise DataError(
                f"The {role} sample of {self._owner} has {n} rows; cross-validation with "
                f"n_splits={self.n_splits} needs at least {2 * self.n_splits}."
            )

    def compare(self, current: Any) -> DomainClassifierResult:
        """Cross-validate the classifier on reference vs current and decide on drift."""
        if not hasattr(self, "encoder_"):
            raise NotFittedError(f"{self._owner} must be fitted with fit(reference) first.")
        frame = to_frame(current, "current", f"{self._owner}.compare")
        rng = _rng(self.random_state, 1)
        sample = _take(frame, self.max_rows, rng)
        cur, n_invalid = self.encoder_.transform(sample, "current")
        if len(sample) < len(frame):
            n_invalid = self.encoder_.count_invalid(frame)
        self._check_rows(len(cur), "current")
        ref = self.reference_
        n = min(len(ref), len(cur))
        ref = ref[np.sort(rng.choice(len(ref), n, replace=False))] if len(ref) > n else ref
        cur = cur[np.sort(rng.choice(len(cur), n, replace=False))] if len(cur) > n else cur
        x = np.vstack([ref, cur])
        y = np.repeat([0, 1], n)
        seed = int(rng.integers(2**31 - 1))
        groups = self.encoder_.groups_
        n_groups = len(self.encoder_.features_)
        fold_aucs, fitted = [], []
        folds = StratifiedKFold(self.n_splits, shuffle=True, random_state=seed)
        with threadpool_limits(limits=self.n_threads, user_api="openmp"):
            for train, test in folds.split(x, y):
                clf = HistGradientBoostingClassifier(
                    max_iter=self.max_iter, early_stopping=len(train) >= 200, random_state=seed
                ).fit(x[train], y[train])
                fold_aucs.append(_auc(y[test], clf.predict_proba(x[test])[:, 1]))
                fitted.append((clf, test))
            result = self._result(fold_aucs, n, n_invalid)
            if not self.importance:
                return replace(result, importance_reason="importance=False: not measured")
            if not result.drift_detected:
                return replace(result, importance_reason=(
                    f"no drift detected (AUC {result.auc:.3f} <= threshold "
                    f"{result.threshold:.3f}): importances of a classifier that learned "
                    "noise would explain nothing"))
            drops = np.stack([
                _permutation_drops(clf, x[test], y[test], auc, groups, n_groups, rng)
                for (clf, test), auc in zip(fitted, fold_aucs, strict=True)])
        return self._with_importances(result, drops)

    def _with_importances(
        self, result: DomainClassifierResult, drops: np.ndarray
    ) -> DomainClassifierResult:
        """Shares of the mean clipped drop; the std of each fold's drop on the same scale."""
        mean = np.clip(drops.mean(axis=0), 0.0, None)
        total = mean.sum()
        scale = 1.0 / total if total > 0 else 0.0
        imp, std = mean * scale, drops.std(axis=0, ddof=1) * scale
        order = np.argsort(-imp, kind="stable")
        names = self.encoder_.features_
        return replace(
            result,
            features=tuple(names[i] for i in order),
            importances=tuple(float(imp[i]) for i in order),
            importance_std=tuple(float(std[i]) for i in order),
        )

    def _result(self, fold_aucs: list[float], n: int, n_invalid: int) -> DomainClassifierResult:
        auc, ci, threshold, noise = auc_band(fold_aucs, n, alpha=self.alpha,
                                             min_auc=self.min_auc, ci_level=self.ci_level,
                                             threshold_auc=self.threshold_auc)
        return DomainClassifierResult(
            auc=auc,
            auc_ci=ci,
            threshold=threshold,
            noise_bound=noise,
            drift_detected=bool(auc > threshold),
            features=tuple(self.encoder_.features_),
            importances=(),
            fold_aucs=tuple(fold_aucs),
            n_reference=n,
            n_current=n,
            n_invalid=n_invalid,
        )


def auc_band(fold_aucs: Sequence[float], n: int, *, alpha: float, min_auc: float,
             ci_level: float, threshold_auc: float | None = None
             ) -> tuple[float, tuple[float, float], float, float]:
    """``(auc, auc_ci, threshold, noise_bound)`` of cross-validated AUCs on ``n`` rows a side
    (see :class:`DomainClassifierDrift`); shared with the text domain classifier."""
    auc = float(np.mean(fold_aucs))
    # Mann–Whitney null: U ~ N(n1 n2 / 2, n1 n2 (n1 + n2 + 1) / 12), AUC = U / (n1 n2).
    se0 = _CV_INFLATION * np.sqrt((2 * n + 1) / (12 * n * n))
    noise = 0.5 + float(norm.ppf(1 - alpha)) * se0
    threshold = threshold_auc if threshold_auc is not None else max(min_auc, noise)
    a = min(max(auc, 1e-9), 1 - 1e-9)  # Hanley–McNeil standard error around the estimate
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se = np.sqrt((a * (1 - a) + (n - 1) * (q1 - a * a) + (n - 1) * (q2 - a * a)) / (n * n))
    half = float(norm.ppf(0.5 + ci_level / 2)) * _CV_INFLATION * float(se)
    return (auc, (max(0.0, auc - half), min(1.0, auc + half)), float(threshold),
            float(noise))


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC as the Mann–Whitney rank sum (ties count half), without metric overhead."""
    pos = y == 1
    n_pos = int(pos.sum())
    rank_sum = float(rankdata(score)[pos].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * (len(y) - n_pos))


def _permutation_drops(
    clf: HistGradientBoostingClassifier,
    x: np.ndarray,
    y: np.ndarray,
    auc: float,
    groups: np.ndarray,
    n_groups: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """AUC lost when one original column (all its encoded columns jointly) is shuffled."""
    shuffled = x[rng.permutation(len(x))]
    drops = np.empty(n_groups)
    for g in range(n_groups):
        cols = groups == g
        xp = x.copy()
        xp[:, cols] = shuffled[:, cols]
        drops[g] = auc - _auc(y, clf.predict_proba(xp)[:, 1])
    return drops
