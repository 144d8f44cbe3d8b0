"""Text drift: can a classifier tell current prompts from reference prompts? And embeddings.

* :class:`TextDomainClassifierDrift`: hashed character n-grams (scikit-learn's
  ``HashingVectorizer(analyzer="char_wb", ngram_range=(3, 5))``: fast, no vocabulary, no
  model download, any language) and a logistic regression, cross-validated; drift when the
  AUC is above both the Mann–Whitney noise bound and ``min_auc``, exactly as the tabular
  domain classifier decides (:func:`~aiwarden.engine._multivariate_classifier.auc_band`).
  When (and only when) drift is detected, the n-grams that weigh most towards each side are
  named: a classifier that learned noise would explain nothing.
* :func:`mmd_rbf`: embedding drift, the unbiased squared MMD with a Gaussian kernel whose
  bandwidth is the median pairwise distance, and a permutation-test p-value.

Examples
--------
>>> ref = [f"where is my order {i}?" for i in range(60)]
>>> cur = [f"wo ist meine Bestellung {i}?" for i in range(60)]
>>> det = TextDomainClassifierDrift(random_state=0).fit(ref)
>>> det.compare(cur).drift_detected, det.compare(ref[::-1]).drift_detected
(True, False)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.utils import murmurhash3_32

from aiwarden.engine._multivariate_classifier import _auc, _rng, auc_band
from aiwarden.engine._multivariate_encoding import check_range
from aiwarden.errors import DataError, NotFittedError

__all__ = ["MMDResult", "TextDomainClassifierDrift", "TextDriftResult", "mmd_rbf"]


@dataclass(frozen=True)
class TextDriftResult:
    """``auc`` (mean of ``fold_aucs``) with its interval, the decision and, with drift only,
    ``top_ngrams``: ``{"current": [(ngram, weight)], "reference": [...]}``."""

    auc: float
    auc_ci: tuple[float, float]
    threshold: float
    noise_bound: float
    drift_detected: bool
    fold_aucs: tuple[float, ...]
    n_reference: int
    n_current: int
    top_ngrams: dict[str, list[tuple[str, float]]]
    ngram_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_texts(texts: Any, role: str) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise DataError(f"The {role} texts must be a sequence of strings, got "
                        f"{type(texts).__name__}.")
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise DataError(f"The {role} texts must be strings; item {bad} is "
                        f"{type(texts[bad]).__name__}.")
    return list(texts)


class TextDomainClassifierDrift:
    """Drift of texts as the cross-validated AUC of a hashed char n-gram classifier."""

    _owner = "TextDomainClassifierDrift"

    def __init__(self, n_splits: int = 5, max_texts: int = 2000, n_features: int = 2**18,
                 ngram_range: tuple[int, int] = (3, 5), alpha: float = 0.01,
                 min_auc: float = 0.55, ci_level: float = 0.95,
                 threshold_auc: float | None = None, C: float = 1.0, top_ngrams: int = 10,
                 random_state: int | None = 0) -> None:
        o = self._owner
        check_range(o, "n_splits", n_splits, 2, 20, integer=True)
        check_range(o, "max_texts", max_texts, 20, 10**7, integer=True)
        check_range(o, "n_features", n_features, 2**8, 2**24, integer=True)
        check_range(o, "alpha", alpha, 0, 0.5, "()")
        check_range(o, "min_auc", min_auc, 0.5, 1, "[)")
        check_range(o, "ci_level", ci_level, 0, 1, "()")
        if threshold_auc is not None:
            check_range(o, "threshold_auc", threshold_auc, 0.5, 1, "[)")
        check_range(o, "C", C, 0, 1e6, "(]")
        check_range(o, "top_ngrams", top_ngrams, 0, 1000, integer=True)
        lo, hi = ngram_range
        check_range(o, "ngram_range[0]", lo, 1, 10, integer=True)
        check_range(o, "ngram_range[1]", hi, lo, 10, integer=True)
        self.n_splits, self.max_texts, self.n_features = n_splits, max_texts, n_features
        self.ngram_range, self.alpha, self.min_auc = (lo, hi), alpha, min_auc
        self.ci_level, self.threshold_auc, self.C = ci_level, threshold_auc, C
        self.top_ngrams, self.random_state = top_ngrams, random_state

    def _vectorizer(self) -> HashingVectorizer:
        return HashingVectorizer(analyzer="char_wb", ngram_range=self.ngram_range,
                                 n_features=self.n_features, alternate_sign=False,
                                 norm="l2", lowercase=True)

    def _take(self, texts: list[str], rng: np.random.Generator) -> list[str]:
        if len(texts) <= self.max_texts:
            return texts
        idx = np.sort(rng.choice(len(texts), self.max_texts, replace=False))
        return [texts[i] for i in idx]

    def fit(self, reference: Sequence[str]) -> TextDomainClassifierDrift:
        """Keep a seeded subsample of at most ``max_texts`` reference texts; returns self."""
        texts = self._take(_check_texts(reference, "reference"), _rng(self.random_state, 0))
        if len(texts) < 2 * self.n_splits:
            raise DataError(f"The reference of {self._owner} has {len(texts)} texts; "
                            f"n_splits={self.n_splits} needs at least {2 * self.n_splits}.")
        self.reference_ = texts
        return self

    def compare(self, current: Sequence[str]) -> TextDriftResult:
        if not hasattr(self, "reference_"):
            raise NotFittedError(f"{self._owner} must be fitted with fit(reference) first.")
        rng = _rng(self.random_state, 1)
        cur = self._take(_check_texts(current, "current"), rng)
        if len(cur) < 2 * self.n_splits:
            raise DataError(f"The current sample of {self._owner} has {len(cur)} texts; "
                            f"n_splits={self.n_splits} needs at least {2 * self.n_splits}.")
        ref = self.reference_
        n = min(len(ref), len(cur))
        ref = [ref[i] for i in np.sort(rng.choice(len(ref), n, replace=False))]
        cur = [cur[i] for i in np.sort(rng.choice(len(cur), n, replace=False))]
        vec = self._vectorizer()
        x = sparse.vstack([vec.transform(ref), vec.transform(cur)]).tocsr()
        y = np.repeat([0, 1], n)
        seed = int(rng.integers(2**31 - 1))
        folds = StratifiedKFold(self.n_splits, shuffle=True, random_state=seed)
        fold_aucs = []
        for train, test in folds.split(x, y):
            clf = self._classifier().fit(x[train], y[train])
            fold_aucs.append(_auc(y[test], clf.decision_function(x[test])))
        auc, ci, threshold, noise = auc_band(fold_aucs, n, alpha=self.alpha,
                                             min_auc=self.min_auc, ci_level=self.ci_level,
                                             threshold_auc=self.threshold_auc)
        drift = bool(auc > threshold)
        top: dict[str, list[tuple[str, float]]] = {}
        if not drift:
            why = (f"no drift detected (AUC {auc:.3f} <= threshold {threshold:.3f}): the "
                   "n-grams of a classifier that learned noise would explain nothing")
        elif not self.top_ngrams:
            why = "top_ngrams=0: not named"
        else:
            coef = self._classifier().fit(x, y).coef_.ravel()
            top, why = self._name(coef, ref, cur), ""
        return TextDriftResult(auc, ci, threshold, noise, drift, tuple(fold_aucs), n, n,
                               top, why)

    def _classifier(self) -> LogisticRegression:
        return LogisticRegression(C=self.C, solver="liblinear", max_iter=1000)

    def _name(self, coef: np.ndarray, ref: list[str], cur: list[str]
              ) -> dict[str, list[tuple[str, float]]]:
        """The heaviest hashed features each way, named by the most frequent n-gram of the
        samples that hashes to them (a collision names the commoner one)."""
        k = self.top_ngrams
        order = np.argsort(coef)
        want = {int(i) for i in (*order[:k], *order[-k:])}
        analyze = self._vectorizer().build_analyzer()
        seen: dict[int, Counter] = {}
        for t in (*ref, *cur):
            for g in analyze(t):
                i = abs(murmurhash3_32(g, seed=0)) % self.n_features
                if i in want:
                    seen.setdefault(i, Counter())[g] += 1

        def named(idx: Any) -> list[tuple[str, float]]:
            return [(seen[int(i)].most_common(1)[0][0], round(float(coef[i]), 4))
                    for i in idx if int(i) in seen]

        return {"current": named(order[::-1][:k][coef[order[::-1][:k]] > 0]),
                "reference": named(order[:k][coef[order[:k]] < 0])}


@dataclass(frozen=True)
class MMDResult:
    """Unbiased squared MMD, its permutation p-value, drift (``p_value < alpha``), the
    kernel bandwidth, the sizes."""

    mmd2: float
    p_value: float
    alpha: float
    drift_detected: bool
    bandwidth: float
    n_reference: int
    n_current: int
    n_permutations: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sq_dists(z: np.ndarray) -> np.ndarray:
    sq = np.einsum("ij,ij->i", z, z)
    return np.maximum(sq[:, None] + sq[None, :] - 2.0 * z @ z.T, 0.0)


def _mmd2(k: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased MMD² from the pooled kernel matrix and the two index sets."""
    m, n = len(a), len(b)
    kxx, kyy, kxy = k[np.ix_(a, a)], k[np.ix_(b, b)], k[np.ix_(a, b)]
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
                 + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2.0 * kxy.mean())


def mmd_rbf(reference: Any, current: Any, *, n_permutations: int = 200,
            max_rows: int = 1000, alpha: float = 0.01,
            random_state: int | None = 0) -> MMDResult:
    """Maximum mean discrepancy of two samples of vectors (e.g. embeddings).

    Kernel ``exp(-|x - y|² / (2 s²))`` with ``s`` the median pairwise distance of the pooled
    sample (the median heuristic); p-value ``(1 + #{perm >= observed}) / (1 + n_permutations)``
    over random relabellings of the pooled rows. Each side is subsampled to ``max_rows``.
    """
    check_range("mmd_rbf", "n_permutations", n_permutations, 1, 100_000, integer=True)
    check_range("mmd_rbf", "max_rows", max_rows, 4, 100_000, integer=True)
    check_range("mmd_rbf", "alpha", alpha, 0, 0.5, "()")
    x = np.asarray(reference, dtype=float)
    y = np.asarray(current, dtype=float)
    for name, a in (("reference", x), ("current", y)):
        if a.ndim != 2 or len(a) < 2 or not np.isfinite(a).all():
            raise DataError(f"The {name} sample of mmd_rbf must be a 2-D array of finite "
                            f"numbers with at least 2 rows; got shape {a.shape}.")
    if x.shape[1] != y.shape[1]:
        raise DataError(f"The samples of mmd_rbf differ in width: {x.shape[1]} and "
                        f"{y.shape[1]}.")
    rng = np.random.default_rng(random_state)
    if len(x) > max_rows:
        x = x[np.sort(rng.choice(len(x), max_rows, replace=False))]
    if len(y) > max_rows:
        y = y[np.sort(rng.choice(len(y), max_rows, replace=False))]
    z = np.vstack([x, y])
    d2 = _sq_dists(z)
    upper = d2[np.triu_indices(len(z), 1)]
    s2 = float(np.median(upper))
    if s2 <= 0:
        s2 = float(upper[upper > 0].mean()) if (upper > 0).any() else 1.0
    k = np.exp(-d2 / (2.0 * s2))
    m = len(x)
    idx = np.arange(len(z))
    observed = _mmd2(k, idx[:m], idx[m:])
    hits = 0
    for _ in range(n_permutations):
        p = rng.permutation(len(z))
        hits += _mmd2(k, p[:m], p[m:]) >= observed
    p_value = (1 + hits) / (1 + n_permutations)
    return MMDResult(observed, p_value, alpha, bool(p_value < alpha), float(np.sqrt(s2)), m,
                     len(y), n_permutations)
