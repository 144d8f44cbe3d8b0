"""Embedding drift between a reference and a current set of vectors.

Two views: the kernel two-sample test (MMD², unbiased, RBF kernel, permutation p-value,
seeded) and a domain classifier (how well a logistic regression tells the two sets apart,
as an out-of-fold ROC AUC: 0.5 = indistinguishable). Both subsample each side to
``max_samples`` so the cost is bounded: the permutation test is O(P·N²) on N ≤ 2·max_samples.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from aiwarden.errors import DataError, ParameterError

__all__ = ["DomainClassifierResult", "MMDResult", "domain_classifier_auc", "mmd_test"]


@dataclass(frozen=True)
class MMDResult:
    statistic: float  # unbiased MMD²
    p_value: float
    bandwidth: float  # sigma of exp(-d² / (2 sigma²))
    n_reference: int
    n_current: int
    n_permutations: int
    drift_detected: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DomainClassifierResult:
    auc: float  # out-of-fold ROC AUC of reference-vs-current
    n_reference: int
    n_current: int
    drift_detected: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _prepare(reference: Any, current: Any, max_samples: int, seed: int, who: str
             ) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 2:
        raise ParameterError(f"The 'max_samples' parameter of {who} must be an int >= 2. "
                             f"Got {max_samples!r} instead.", "max_samples")
    rng = np.random.default_rng(seed)
    out = []
    for name, a in (("reference", reference), ("current", current)):
        x = np.asarray(a, dtype=np.float64)
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2 or len(x) < 2:
            raise DataError(f"The '{name}' embeddings of {who} must be a 2-d array with at "
                            f"least 2 rows. Got shape {x.shape} instead.", name)
        if not np.isfinite(x).all():
            raise DataError(f"The '{name}' embeddings of {who} have NaN or infinite values.",
                            name)
        if len(x) > max_samples:
            x = x[np.sort(rng.choice(len(x), max_samples, replace=False))]
        out.append(x)
    if out[0].shape[1] != out[1].shape[1]:
        raise DataError(f"The embeddings of {who} must have the same width. Got "
                        f"{out[0].shape[1]} (reference) and {out[1].shape[1]} (current).",
                        "current")
    return out[0], out[1], rng


def _sq_dists(z: np.ndarray) -> np.ndarray:
    sq = np.einsum("ij,ij->i", z, z)
    return np.maximum(sq[:, None] + sq[None, :] - 2 * z @ z.T, 0.0)


def mmd_test(reference: Any, current: Any, *, bandwidth: float | None = None,
             n_permutations: int = 200, alpha: float = 0.05, max_samples: int = 1000,
             seed: int = 0) -> MMDResult:
    """Unbiased MMD² with an RBF kernel and a permutation p-value.

    ``bandwidth`` defaults to the median heuristic, sigma = sqrt(median(d²) / 2) over the
    pooled sample. The p-value is (1 + #{permuted >= observed}) / (1 + n_permutations).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(100, 4)), rng.normal(0.5, 1, size=(100, 4))
    >>> mmd_test(a, b, seed=0).drift_detected, mmd_test(a, a[::-1], seed=0).drift_detected
    (True, False)
    """
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, int) or not (
            1 <= n_permutations <= 100_000):
        raise ParameterError(f"The 'n_permutations' parameter of mmd_test must be an int in "
                             f"[1, 100000]. Got {n_permutations!r} instead.", "n_permutations")
    if not 0 < alpha < 1:
        raise ParameterError(f"The 'alpha' parameter of mmd_test must be in (0, 1). Got "
                             f"{alpha!r} instead.", "alpha")
    x, y, rng = _prepare(reference, current, max_samples, seed, "mmd_test")
    n, m = len(x), len(y)
    z = np.vstack([x, y])
    d2 = _sq_dists(z)
    if bandwidth is None:
        med = float(np.median(d2[np.triu_indices(len(z), 1)]))
        bandwidth = float(np.sqrt(med / 2)) if med > 0 else 1.0
    elif not bandwidth > 0:
        raise ParameterError(f"The 'bandwidth' parameter of mmd_test must be > 0. Got "
                             f"{bandwidth!r} instead.", "bandwidth")
    k = np.exp(-d2 / (2 * bandwidth**2))
    total = k.sum()
    a0 = np.zeros((1, n + m))
    a0[0, :n] = 1
    perms = np.zeros((n_permutations, n + m))
    for p in range(n_permutations):
        perms[p, rng.permutation(n + m)[:n]] = 1
    stats = _mmd_from_indicators(k, np.vstack([a0, perms]), n, m, total)
    observed = float(stats[0])
    p_value = float((1 + np.sum(stats[1:] >= observed)) / (1 + n_permutations))
    return MMDResult(observed, p_value, float(bandwidth), n, m, n_permutations,
                     p_value < alpha)


def _mmd_from_indicators(k: np.ndarray, a: np.ndarray, n: int, m: int, total: float
                         ) -> np.ndarray:
    """MMD²_u for each row of ``a`` (1 marks the reference side), from one kernel matrix."""
    ka = a @ k
    s_xx = np.einsum("ij,ij->i", ka, a)
    s_xy = ka.sum(axis=1) - s_xx
    s_yy = total - 2 * s_xy - s_xx
    diag = np.diag(k)
    tr_x = a @ diag
    tr_y = diag.sum() - tr_x
    return ((s_xx - tr_x) / (n * (n - 1)) + (s_yy - tr_y) / (m * (m - 1))
            - 2 * s_xy / (n * m))


def domain_classifier_auc(reference: Any, current: Any, *, threshold: float = 0.6,
                          folds: int = 5, max_samples: int = 5000, seed: int = 0
                          ) -> DomainClassifierResult:
    """Out-of-fold ROC AUC of a standardised logistic regression telling current from
    reference; drift when it exceeds ``threshold``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if not 0.5 <= threshold < 1:
        raise ParameterError(f"The 'threshold' parameter of domain_classifier_auc must be in "
                             f"[0.5, 1). Got {threshold!r} instead.", "threshold")
    x, y, _ = _prepare(reference, current, max_samples, seed, "domain_classifier_auc")
    folds = min(folds, len(x), len(y))
    if folds < 2:
        raise DataError("domain_classifier_auc needs at least 2 rows on each side.", "current")
    z = np.vstack([x, y])
    target = np.r_[np.zeros(len(x)), np.ones(len(y))]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    proba = cross_val_predict(model, z, target, cv=cv, method="predict_proba")[:, 1]
    auc = float(roc_auc_score(target, proba))
    return DomainClassifierResult(auc, len(x), len(y), auc > threshold)
