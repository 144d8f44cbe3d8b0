"""Multivariate drift on samples: a domain classifier and PCA reconstruction error.

Univariate tests look at one column at a time and miss changes in how columns move together.

* :class:`DomainClassifierDrift` trains a gradient-boosting classifier to tell reference rows
  from current rows. Its cross-validated ROC AUC is 0.5 when the samples are exchangeable and
  grows with any learnable difference; permutation importance names the columns behind it.
* :class:`PCAReconstructionDrift` learns the reference's principal subspace and measures how
  badly current rows are rebuilt from it (NannyML's data reconstruction drift): a broken
  correlation moves rows off the subspace even when every marginal is unchanged.

Both take pandas DataFrames, polars DataFrames or pyarrow Tables and share one encoding learned
on the reference: numerical columns are imputed with the median, flagged with a missing indicator
and standardised; categorical columns are one-hot encoded on the most frequent reference
categories, the rest pooled into one "other" column. One-hot columns stay 0/1 rather than
being standardised, so a rare category cannot dominate the reconstruction error.

Example
-------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> x, y = rng.normal(size=(2, 2000))
>>> reference = pd.DataFrame({"a": x, "b": x + 0.3 * rng.normal(size=2000)})
>>> current = pd.DataFrame({"a": y, "b": -y + 0.3 * rng.normal(size=2000)})
>>> PCAReconstructionDrift().fit(reference).compare(current).drift_detected
True
>>> shifted = pd.DataFrame({"a": y + 1.0, "b": y + 0.3 * rng.normal(size=2000)})
>>> result = DomainClassifierDrift(max_rows=1000).fit(reference).compare(shifted)
>>> result.drift_detected, result.features[0]
(True, 'a')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.stats import norm, rankdata
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from aiwarden.errors import DataError, NotFittedError, SchemaError, check_param

__all__ = [
    "DomainClassifierDrift",
    "DomainClassifierResult",
    "PCAReconstructionDrift",
    "PCAReconstructionResult",
]

_MISSING = "<missing>"
_CV_INFLATION = float(np.sqrt(2.0))  # see DomainClassifierDrift: CV fold AUCs are correlated


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _check_range(
    owner: str,
    name: str,
    value: Any,
    lo: float,
    hi: float,
    brackets: str = "[]",
    integer: bool = False,
) -> None:
    """House-style range check; ``brackets`` says which ends are closed."""
    ok = _is_int(value) if integer else _is_real(value)
    if ok:
        above = value >= lo if brackets[0] == "[" else value > lo
        ok = above and (value <= hi if brackets[1] == "]" else value < hi)
    kind = "an int" if integer else "a float"
    check_param(ok, name, owner, f"{kind} in {brackets[0]}{lo}, {hi}{brackets[1]}", value)


def _is_polars(data: object) -> bool:
    return type(data).__module__.split(".")[0] == "polars" and hasattr(data, "to_pandas")


def _to_frame(data: object, name: str, owner: str) -> pd.DataFrame:
    """Convert once to pandas; everything downstream works on numpy blocks from it."""
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, pa.Table | pa.RecordBatch) or _is_polars(data):
        frame = data.to_pandas()
    else:
        raise DataError(
            f"The {name} sample of {owner} must be a pandas DataFrame, polars DataFrame or "
            f"pyarrow Table. Got {type(data).__name__} instead."
        )
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise DataError(
            f"The {name} sample of {owner} is empty ({frame.shape[0]} rows, "
            f"{frame.shape[1]} columns); it needs at least one row and one column."
        )
    return frame


def _check_features(features: Sequence[str] | None, owner: str) -> None:
    ok = features is None or (
        isinstance(features, list | tuple)
        and len(features) > 0
        and all(isinstance(f, str) for f in features)
        and len(set(features)) == len(features)
    )
    check_param(ok, "features", owner, "None or a non-empty list of unique column names", features)


def _kind(series: pd.Series) -> str | None:
    """'num', 'cat' or None (unsupported); bools are categories so NaN-bearing ones agree."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "cat"
    if pd.api.types.is_numeric_dtype(dtype):
        return "num"
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_object_dtype(dtype):
        return "cat"
    return "cat" if pd.api.types.is_string_dtype(dtype) else None


def _as_text(series: pd.Series) -> pd.Series:
    return series.astype(object).where(series.notna(), _MISSING).astype(str)


class _Encoder:
    """Reference-learned encoding so both samples land in the same standardised space."""

    def __init__(self, features: Sequence[str] | None, max_categories: int, owner: str) -> None:
        self.features = None if features is None else list(features)
        self.max_categories = max_categories
        self.owner = owner

    def fit(self, frame: pd.DataFrame) -> _Encoder:
        names = self.features if self.features is not None else list(frame.columns)
        self._require(frame, names, "reference")
        self.features_ = [str(c) for c in names]
        self.columns_ = list(names)
        self.kinds_: list[str] = []
        self.stats_: list[Any] = []
        groups: list[int] = []
        for g, col in enumerate(self.columns_):
            kind = _kind(frame[col])
            if kind is None:
                raise SchemaError(
                    f"Column {str(col)!r} of the reference has dtype {frame[col].dtype}, which "
                    f"{self.owner} cannot encode; pass numerical or categorical columns only.",
                    column=str(col),
                )
            if kind == "num":
                x = frame[col].to_numpy(dtype=float, na_value=np.nan)
                x = x[np.isfinite(x)]
                if x.size == 0:
                    raise DataError(
                        f"Column {str(col)!r} of the reference has no finite values, so "
                        f"{self.owner} cannot learn its median and scale.",
                        column=str(col),
                    )
                scale = float(x.std())
                self.stats_.append((float(np.median(x)), float(x.mean()), scale or 1.0))
                groups += [g, g]
            else:
                counts = _as_text(frame[col]).value_counts().sort_index()
                counts = counts.sort_values(ascending=False, kind="stable")
                top = list(counts.index[: self.max_categories])
                self.stats_.append(top)
                groups += [g] * (len(top) + 1)
            self.kinds_.append(kind)
        self.groups_ = np.asarray(groups, dtype=np.intp)
        return self

    def _require(self, frame: pd.DataFrame, names: Sequence[Any], role: str) -> None:
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise SchemaError(
                f"Column {str(missing[0])!r} is missing from the {role} sample of {self.owner} "
                f"(missing: {[str(c) for c in missing]}; the {role} has "
                f"{[str(c) for c in frame.columns][:20]}).",
                column=str(missing[0]),
            )

    def transform(self, frame: pd.DataFrame, role: str) -> np.ndarray:
        self._require(frame, self.columns_, role)
        blocks = []
        for col, kind, stats in zip(self.columns_, self.kinds_, self.stats_, strict=True):
            if _kind(frame[col]) != kind:
                raise SchemaError(
                    f"Column {str(col)!r} is {'numerical' if kind == 'num' else 'categorical'} "
                    f"in the reference but has dtype {frame[col].dtype} in the {role} sample "
                    f"of {self.owner}.",
                    column=str(col),
                )
            if kind == "num":
                median, mean, scale = stats
                x = frame[col].to_numpy(dtype=float, na_value=np.nan)
                miss = ~np.isfinite(x)
                blocks += [(np.where(miss, median, x) - mean) / scale, miss.astype(float)]
            else:
                codes = pd.Index(stats, dtype=object).get_indexer(_as_text(frame[col]))
                slots = np.r_[np.arange(len(stats)), -1]  # top categories, then "other"
                blocks.append((codes[:, None] == slots[None, :]).astype(float))
        return np.column_stack(blocks)


def _take(frame: pd.DataFrame, max_rows: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= max_rows:
        return frame
    return frame.iloc[np.sort(rng.choice(len(frame), size=max_rows, replace=False))]


def _rng(random_state: int | None, stream: int) -> np.random.Generator:
    """Separate seeded streams for fit and compare, so their subsamples are not aligned."""
    return np.random.default_rng(None if random_state is None else [random_state, stream])


def _plain(result: Any) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(result).items()}


@dataclass(frozen=True)
class DomainClassifierResult:
    """Outcome of telling current from reference rows.

    ``auc`` is the mean of ``fold_aucs``; ``auc_ci`` its Hanley–McNeil interval at ``ci_level``;
    drift means ``auc > threshold``. ``n_reference`` and ``n_current`` count the rows used per
    side. ``features`` are sorted by ``importances`` (permutation AUC drop, clipped at 0), which
    sum to 1 unless no feature carries signal, in which case all are 0.
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

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict; tuples become lists."""
        return _plain(self)

    def to_pandas(self) -> pd.DataFrame:
        """Feature importances as a table with columns ``feature`` and ``importance``."""
        return pd.DataFrame({"feature": list(self.features), "importance": list(self.importances)})


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
        _check_range(owner, "n_splits", n_splits, 2, 20, integer=True)
        _check_range(owner, "max_rows", max_rows, 20, 10**9, integer=True)
        ok = random_state is None or (_is_int(random_state) and random_state >= 0)
        check_param(ok, "random_state", owner, "None or an int >= 0", random_state)
        if threshold_auc is not None:
            _check_range(owner, "threshold_auc", threshold_auc, 0.5, 1, "[)")
        _check_range(owner, "alpha", alpha, 0, 0.5, "()")
        _check_range(owner, "min_auc", min_auc, 0.5, 1, "[)")
        _check_range(owner, "ci_level", ci_level, 0, 1, "()")
        _check_range(owner, "max_categories", max_categories, 1, 1000, integer=True)
        _check_range(owner, "max_iter", max_iter, 1, 10_000, integer=True)
        check_param(isinstance(importance, bool), "importance", owner, "a bool", importance)
        if n_threads is not None:
            _check_range(owner, "n_threads", n_threads, 1, 1024, integer=True)
        _check_features(features, owner)
        self.n_splits, self.max_rows, self.random_state = n_splits, max_rows, random_state
        self.threshold_auc, self.alpha, self.min_auc = threshold_auc, alpha, min_auc
        self.ci_level, self.max_categories, self.max_iter = ci_level, max_categories, max_iter
        self.features, self.importance, self.n_threads = features, importance, n_threads

    def fit(self, reference: Any) -> DomainClassifierDrift:
        """Learn the encoding on the whole reference and keep a subsample of it; returns self."""
        frame = _to_frame(reference, "reference", f"{self._owner}.fit")
        self.encoder_ = _Encoder(self.features, self.max_categories, self._owner).fit(frame)
        rng = _rng(self.random_state, 0)
        self.reference_ = self.encoder_.transform(_take(frame, self.max_rows, rng), "reference")
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
        frame = _to_frame(current, "current", f"{self._owner}.compare")
        rng = _rng(self.random_state, 1)
        cur = self.encoder_.transform(_take(frame, self.max_rows, rng), "current")
        self._check_rows(len(cur), "current")
        ref = self.reference_
        n = min(len(ref), len(cur))
        ref = ref[np.sort(rng.choice(len(ref), n, replace=False))] if len(ref) > n else ref
        cur = cur[np.sort(rng.choice(len(cur), n, replace=False))] if len(cur) > n else cur
        x = np.vstack([ref, cur])
        y = np.repeat([0, 1], n)
        seed = int(rng.integers(2**31 - 1))
        groups = self.encoder_.groups_
        drops = np.zeros(len(self.encoder_.features_))
        fold_aucs = []
        folds = StratifiedKFold(self.n_splits, shuffle=True, random_state=seed)
        with threadpool_limits(limits=self.n_threads, user_api="openmp"):
            for train, test in folds.split(x, y):
                clf = HistGradientBoostingClassifier(
                    max_iter=self.max_iter, early_stopping=len(train) >= 200, random_state=seed
                ).fit(x[train], y[train])
                auc = _auc(y[test], clf.predict_proba(x[test])[:, 1])
                fold_aucs.append(auc)
                if self.importance:
                    xt, yt = x[test], y[test]
                    drops += _permutation_drops(clf, xt, yt, auc, groups, len(drops), rng)
        return self._result(fold_aucs, drops, n)

    def _result(self, fold_aucs: list[float], drops: np.ndarray, n: int) -> DomainClassifierResult:
        auc = float(np.mean(fold_aucs))
        # Mann–Whitney null: U ~ N(n1 n2 / 2, n1 n2 (n1 + n2 + 1) / 12), AUC = U / (n1 n2).
        se0 = _CV_INFLATION * np.sqrt((2 * n + 1) / (12 * n * n))
        noise = 0.5 + float(norm.ppf(1 - self.alpha)) * se0
        threshold = (
            self.threshold_auc if self.threshold_auc is not None else max(self.min_auc, noise)
        )
        a = min(max(auc, 1e-9), 1 - 1e-9)  # Hanley–McNeil standard error around the estimate
        q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
        se = np.sqrt((a * (1 - a) + (n - 1) * (q1 - a * a) + (n - 1) * (q2 - a * a)) / (n * n))
        half = float(norm.ppf(0.5 + self.ci_level / 2)) * _CV_INFLATION * float(se)
        imp = np.clip(drops / len(fold_aucs), 0.0, None)
        imp = imp / imp.sum() if imp.sum() > 0 else imp
        order = np.argsort(-imp, kind="stable")
        names = self.encoder_.features_
        return DomainClassifierResult(
            auc=auc,
            auc_ci=(max(0.0, auc - half), min(1.0, auc + half)),
            threshold=float(threshold),
            noise_bound=float(noise),
            drift_detected=bool(auc > threshold),
            features=tuple(names[i] for i in order),
            importances=tuple(float(imp[i]) for i in order),
            fold_aucs=tuple(fold_aucs),
            n_reference=n,
            n_current=n,
        )


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


@dataclass(frozen=True)
class PCAReconstructionResult:
    """Reconstruction error of the current sample against the reference band.

    ``features`` are sorted by ``current_errors - reference_errors`` (mean squared residual per
    original column, encoded columns summed), so the columns that broke the structure come first.
    """

    error: float
    reference_mean: float
    reference_std: float
    lower: float
    upper: float
    drift_detected: bool
    n_components: int
    explained_variance: float
    n_current: int
    features: tuple[str, ...]
    current_errors: tuple[float, ...]
    reference_errors: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict; tuples become lists."""
        return _plain(self)

    def to_pandas(self) -> pd.DataFrame:
        """Per-feature table: reference_error, current_error, excess and share of current."""
        cur = np.asarray(self.current_errors, dtype=float)
        ref = np.asarray(self.reference_errors, dtype=float)
        share = cur / cur.sum() if cur.sum() > 0 else np.zeros_like(cur)
        return pd.DataFrame(
            {
                "feature": list(self.features),
                "reference_error": ref,
                "current_error": cur,
                "excess": cur - ref,
                "share": share,
            }
        )


class PCAReconstructionDrift:
    """Drift as the error of rebuilding current rows from the reference's principal components.

    The reference is cut into ``n_chunks`` contiguous chunks; each chunk's mean error is measured
    with a PCA fitted on the other chunks (so the band is out-of-sample like the current) and the
    band is mean ± ``k``·std of those chunk errors. A current sample smaller than a chunk is
    noisier, so the band widens by sqrt(chunk size / current size); it never narrows. Errors
    outside the band either way are drift. Row error is the Euclidean norm of the residual.
    """

    _owner = "PCAReconstructionDrift"

    def __init__(
        self,
        variance: float = 0.65,
        n_chunks: int = 10,
        k: float = 3.0,
        max_categories: int = 20,
        features: Sequence[str] | None = None,
    ) -> None:
        owner = self._owner
        _check_range(owner, "variance", variance, 0, 1, "()")
        _check_range(owner, "n_chunks", n_chunks, 2, 1000, integer=True)
        _check_range(owner, "k", k, 0, float("inf"), "()")
        _check_range(owner, "max_categories", max_categories, 1, 1000, integer=True)
        _check_features(features, owner)
        self.variance, self.n_chunks, self.k = variance, n_chunks, k
        self.max_categories, self.features = max_categories, features

    def fit(self, reference: Any) -> PCAReconstructionDrift:
        """Fit the PCA on the encoded reference and measure its out-of-chunk error band."""
        frame = _to_frame(reference, "reference", f"{self._owner}.fit")
        encoder = _Encoder(self.features, self.max_categories, self._owner).fit(frame)
        x = encoder.transform(frame, "reference")
        if len(x) < 2 * self.n_chunks:
            raise DataError(
                f"The reference sample of {self._owner} has {len(x)} rows; n_chunks="
                f"{self.n_chunks} needs at least {2 * self.n_chunks}."
            )
        if not x.var(axis=0).sum() > 0:
            raise DataError(f"No column of the reference sample of {self._owner} varies.")
        # PCA from scatter matrices: one pass over the rows serves the full fit and every
        # leave-one-chunk-out fit, which keeps large references cheap.
        mean = x.mean(axis=0)
        xc = x - mean
        bounds = np.linspace(0, len(x), self.n_chunks + 1).astype(int)
        sums = np.add.reduceat(xc, bounds[:-1], axis=0)
        scatters = np.stack([xc[a:b].T @ xc[a:b] for a, b in pairwise(bounds)])
        values, vectors = np.linalg.eigh(scatters.sum(axis=0) / len(x))
        values, vectors = np.clip(values[::-1], 0.0, None), vectors[:, ::-1]
        ratio = np.cumsum(values) / values.sum()
        q = min(int(np.searchsorted(ratio, self.variance, side="right")) + 1, len(values))
        chunk_errors, squares = [], np.zeros(x.shape[1])
        for c, (a, b) in enumerate(pairwise(bounds)):
            n_rest = len(x) - (b - a)
            centre = (sums.sum(axis=0) - sums[c]) / n_rest
            cov = (scatters.sum(axis=0) - scatters[c]) / n_rest - np.outer(centre, centre)
            basis = np.linalg.eigh(cov)[1][:, ::-1][:, :q].T
            res = _residual(xc[a:b] - centre, basis)
            chunk_errors.append(float(np.linalg.norm(res, axis=1).mean()))
            squares += (res**2).sum(axis=0)
        n_groups = len(encoder.features_)
        self.encoder_, self.mean_ = encoder, mean
        self.components_, self.explained_variance_ = vectors[:, :q].T, float(ratio[q - 1])
        self.chunk_errors_ = np.asarray(chunk_errors)
        self.chunk_size_ = len(x) / self.n_chunks
        self.reference_errors_ = np.bincount(
            encoder.groups_, weights=squares / len(x), minlength=n_groups
        )
        return self

    def compare(self, current: Any) -> PCAReconstructionResult:
        """Reconstruction error of the current sample, the reference band and the decision."""
        if not hasattr(self, "components_"):
            raise NotFittedError(f"{self._owner} must be fitted with fit(reference) first.")
        frame = _to_frame(current, "current", f"{self._owner}.compare")
        x = self.encoder_.transform(frame, "current")
        res = _residual(x - self.mean_, self.components_)
        error = float(np.linalg.norm(res, axis=1).mean())
        mean, std = float(self.chunk_errors_.mean()), float(self.chunk_errors_.std(ddof=1))
        spread = self.k * std * max(1.0, float(np.sqrt(self.chunk_size_ / len(x))))
        lower, upper = max(0.0, mean - spread), mean + spread
        groups = self.encoder_.groups_
        n_groups = len(self.encoder_.features_)
        cur = np.bincount(groups, weights=(res**2).mean(axis=0), minlength=n_groups)
        ref = self.reference_errors_
        order = np.argsort(-(cur - ref), kind="stable")
        return PCAReconstructionResult(
            error=error,
            reference_mean=mean,
            reference_std=std,
            lower=lower,
            upper=upper,
            drift_detected=bool(error > upper or error < lower),
            n_components=len(self.components_),
            explained_variance=self.explained_variance_,
            n_current=len(x),
            features=tuple(self.encoder_.features_[i] for i in order),
            current_errors=tuple(float(cur[i]) for i in order),
            reference_errors=tuple(float(ref[i]) for i in order),
        )


def _residual(centred: np.ndarray, components: np.ndarray) -> np.ndarray:
    """What the principal subspace (rows of ``components``) cannot explain."""
    return centred - (centred @ components.T) @ components
