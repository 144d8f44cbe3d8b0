"""PCA reconstruction drift: how badly do current rows fit the reference's principal subspace?

NannyML's data reconstruction drift on rows encoded by
:class:`~aiwarden.engine._multivariate_encoding.Encoder`: a broken correlation moves rows off
the subspace even when every marginal is unchanged. Public through
:mod:`aiwarden.engine.multivariate`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.extmath import randomized_svd

from aiwarden.engine._multivariate_encoding import (
    Encoder,
    check_features,
    check_range,
    choose_features,
    plain,
    to_frame,
)
from aiwarden.engine.schema import Schema
from aiwarden.errors import Cancelled, DataError, NotFittedError

__all__ = ["PCAReconstructionDrift", "PCAReconstructionResult"]

# Below this many rows or encoded columns an exact thin SVD is cheap (rows x columns x
# min(rows, columns)); above it a randomized SVD costs rows x columns x components.
_EXACT = 500
_POWER_ITERATIONS = 4  # randomized SVD: enough for the top subspace of a noisy spectrum
_OVERSAMPLES = 10
_SEED = 0  # the randomized SVD's projection; fixed, so a fit is reproducible
# Share of the reference's variance below which a residual is rounding noise: a subspace that
# leaves less than this unexplained rebuilds every row exactly and judges nothing.
_CAPTURED = 1e-9


@dataclass(frozen=True)
class PCAReconstructionResult:
    """Reconstruction error of the current sample against the reference band.

    ``features`` are sorted by ``current_errors - reference_errors`` (mean squared residual per
    original column, encoded columns summed), so the columns that broke the structure come first.
    ``n_invalid`` counts values of numerical columns that were not numbers; they are encoded as
    missing (data-quality checks report them). When the reference leaves nothing to reconstruct
    (fewer than two varying features, or every component needed to explain it) there is no
    verdict: ``error``, ``lower`` and ``upper`` are None, ``drift_detected`` is False and
    ``reason`` says why.
    """

    error: float | None
    reference_mean: float | None
    reference_std: float | None
    lower: float | None
    upper: float | None
    drift_detected: bool
    n_components: int
    explained_variance: float
    n_current: int
    n_invalid: int
    features: tuple[str, ...]
    current_errors: tuple[float, ...]
    reference_errors: tuple[float, ...]
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict; tuples become lists."""
        return plain(self)

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

    The subspace holds the fewest components explaining ``variance`` of the standardised
    reference, at most ``max_components`` (then ``explained_variance`` is below ``variance``),
    and always fewer than the reference's rank (at most n_features - 1), so some variance is
    left to measure: with every component kept, rows rebuild exactly and the error is rounding
    noise. A reference with fewer than two varying features, or one a single component
    explains entirely, gives no verdict: ``compare`` returns a result with a ``reason``.
    Fitting costs time O(rows x encoded columns x components) and memory O(rows x encoded
    columns): a thin SVD of the rows, exact when rows or columns number at most 500, else
    randomized (seeded, so a fit is reproducible); never a columns x columns matrix.
    """

    _owner = "PCAReconstructionDrift"

    def __init__(
        self,
        variance: float = 0.65,
        n_chunks: int = 10,
        k: float = 3.0,
        max_categories: int = 20,
        features: Sequence[str] | None = None,
        max_components: int = 100,
    ) -> None:
        owner = self._owner
        check_range(owner, "variance", variance, 0, 1, "()")
        check_range(owner, "n_chunks", n_chunks, 2, 1000, integer=True)
        check_range(owner, "k", k, 0, float("inf"), "()")
        check_range(owner, "max_categories", max_categories, 1, 1000, integer=True)
        check_range(owner, "max_components", max_components, 1, 10_000, integer=True)
        check_features(features, owner)
        self.variance, self.n_chunks, self.k = variance, n_chunks, k
        self.max_categories, self.features = max_categories, features
        self.max_components = max_components

    def fit(
        self,
        reference: Any,
        schema: Schema | None = None,
        *,
        should_stop: Callable[[], bool] | None = None,
        **schema_hints: Any,
    ) -> PCAReconstructionDrift:
        """Fit the PCA on the encoded reference and measure its out-of-chunk error band.

        Without ``features`` the columns with role ``feature`` are used: from ``schema``, or
        inferred with ``schema_hints`` (target=, prediction=, scores=, id=, ...) as in
        ``Reference.fit``. ``should_stop`` is asked between the SVDs (one for the subspace, one
        per chunk); when it answers True the fit raises :class:`~aiwarden.errors.Cancelled`.
        """
        frame = to_frame(reference, "reference", f"{self._owner}.fit")
        names = choose_features(frame, self.features, schema, schema_hints, self._owner)
        encoder = Encoder(names, self.max_categories, self._owner).fit(frame)
        x = encoder.transform(frame, "reference")[0]
        if len(x) < 2 * self.n_chunks:
            raise DataError(
                f"The reference sample of {self._owner} has {len(x)} rows; n_chunks="
                f"{self.n_chunks} needs at least {2 * self.n_chunks}."
            )
        if not x.var(axis=0).sum() > 0:
            raise DataError(f"No column of the reference sample of {self._owner} varies.")
        # A thin SVD of the centred rows: time O(rows x columns x components) and memory
        # O(rows x columns), never a columns x columns matrix (issue 11 pt 9).
        mean = x.mean(axis=0)
        xc = x - mean
        total = float((xc**2).sum())
        _check_stop(should_stop)
        s, vt = _top_components(xc, self.max_components, self.variance, total)
        ratio = np.cumsum(s**2) / total
        q = min(int(np.searchsorted(ratio, self.variance, side="right")) + 1, len(s))
        # Never keep the components that explain everything (rank, so n_features - 1 at most).
        q = min(q, int(np.searchsorted(ratio, 1.0 - _CAPTURED, side="left")))
        self.reason_ = _no_verdict(encoder, x, q)
        if self.reason_ is not None:
            q = 0
        bounds = np.linspace(0, len(x), self.n_chunks + 1).astype(int)
        chunk_errors, squares = [], np.zeros(x.shape[1])
        for a, b in pairwise(bounds if q else ()):
            _check_stop(should_stop)
            rest = np.concatenate([xc[:a], xc[b:]])
            centre = rest.mean(axis=0)
            rest -= centre
            basis = _top_components(rest, q, None, None)[1]
            res = _residual(xc[a:b] - centre, basis)
            chunk_errors.append(float(np.linalg.norm(res, axis=1).mean()))
            squares += (res**2).sum(axis=0)
        self.components_ = vt[:q]
        self.explained_variance_ = float(ratio[q - 1]) if q else 0.0
        n_groups = len(encoder.features_)
        self.encoder_, self.mean_ = encoder, mean
        self.chunk_errors_ = np.asarray(chunk_errors)
        self.chunk_size_ = len(x) / self.n_chunks
        self.reference_errors_ = np.bincount(
            encoder.groups_, weights=squares / len(x), minlength=n_groups
        )
        return self

    def to_dict(self) -> dict[str, Any]:
        """Parameters and fitted state as JSON-safe data, so a fit is stored, not redone."""
        if not hasattr(self, "components_"):
            raise NotFittedError(f"{self._owner} must be fitted with fit(reference) first.")
        return {
            "params": {"variance": self.variance, "n_chunks": self.n_chunks, "k": self.k,
                       "max_categories": self.max_categories,
                       "max_components": self.max_components,
                       "features": None if self.features is None else list(self.features)},
            "encoder": self.encoder_.to_dict(),
            "mean": self.mean_.tolist(),
            "components": self.components_.tolist(),
            "explained_variance": self.explained_variance_,
            "chunk_errors": self.chunk_errors_.tolist(),
            "chunk_size": self.chunk_size_,
            "reference_errors": self.reference_errors_.tolist(),
            "reason": self.reason_,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PCAReconstructionDrift:
        """A fitted detector from :meth:`to_dict`; compares exactly as the original does."""
        det = cls(**d["params"])
        det.encoder_ = Encoder.from_dict(d["encoder"])
        det.mean_ = np.asarray(d["mean"], dtype=float)
        det.components_ = np.asarray(d["components"], dtype=float).reshape(
            -1, len(det.mean_))
        det.explained_variance_ = float(d["explained_variance"])
        det.chunk_errors_ = np.asarray(d["chunk_errors"], dtype=float)
        det.chunk_size_ = float(d["chunk_size"])
        det.reference_errors_ = np.asarray(d["reference_errors"], dtype=float)
        # A state stored before "reason" existed may hold every component: refuse it likewise.
        det.reason_ = d.get("reason")
        if det.reason_ is None and det.explained_variance_ >= 1.0 - _CAPTURED:
            det.reason_ = ("no verdict: this stored fit keeps every principal component, so "
                           "every row rebuilds exactly and the error is rounding noise; "
                           "fit the reference again")
        return det

    def compare(self, current: Any) -> PCAReconstructionResult:
        """Reconstruction error of the current sample, the reference band and the decision."""
        if not hasattr(self, "components_"):
            raise NotFittedError(f"{self._owner} must be fitted with fit(reference) first.")
        frame = to_frame(current, "current", f"{self._owner}.compare")
        x, n_invalid = self.encoder_.transform(frame, "current")
        if self.reason_ is not None:  # no residual, so no per-feature errors either
            return PCAReconstructionResult(
                None, None, None, None, None, False, 0, self.explained_variance_, len(x),
                n_invalid, (), (), (), self.reason_)
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
            n_invalid=n_invalid,
            features=tuple(self.encoder_.features_[i] for i in order),
            current_errors=tuple(float(cur[i]) for i in order),
            reference_errors=tuple(float(ref[i]) for i in order),
        )


_CAPTURED_ALL = ("no verdict: one principal component explains all of the reference's "
                 "variance, so every row rebuilds exactly and the reconstruction error is "
                 "rounding noise")


def _no_verdict(encoder: Encoder, x: np.ndarray, q: int) -> str | None:
    """Why the reference leaves nothing to reconstruct, or None when it does."""
    varies = np.bincount(encoder.groups_, weights=x.var(axis=0) > 0,
                         minlength=len(encoder.features_)) > 0
    if varies.sum() < 2:
        names = [f for f, v in zip(encoder.features_, varies, strict=True) if v]
        return (f"no verdict: PCA reconstruction needs at least 2 features that vary in the "
                f"reference; got {len(names)} ({', '.join(names) or 'none'})")
    return _CAPTURED_ALL if q < 1 else None


def _residual(centred: np.ndarray, components: np.ndarray) -> np.ndarray:
    """What the principal subspace (rows of ``components``) cannot explain."""
    return centred - (centred @ components.T) @ components


def _top_components(x: np.ndarray, k: int, variance: float | None, total: float | None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The top (at most ``k``) singular values of ``x`` and right singular vectors (rows).

    With ``variance``, the randomized path starts small and doubles until the values explain
    more than ``variance`` of ``total`` (the squared norm of ``x``) or ``k`` is reached."""
    if min(x.shape) <= _EXACT:
        s, vt = np.linalg.svd(x, full_matrices=False)[1:]
        return s[:k], vt[:k]
    k = min(k, min(x.shape))
    want = k if variance is None else min(k, 16)
    while True:
        s, vt = randomized_svd(x, want, n_oversamples=_OVERSAMPLES,
                               n_iter=_POWER_ITERATIONS, random_state=_SEED)[1:]
        if variance is None or want >= k or float((s**2).sum()) > variance * (total or 0.0):
            return s, vt
        want = min(k, 2 * want)


def _check_stop(should_stop: Callable[[], bool] | None) -> None:
    if should_stop is not None and should_stop():
        raise Cancelled("PCAReconstructionDrift.fit stopped: its caller asked it to "
                        "(should_stop).")
