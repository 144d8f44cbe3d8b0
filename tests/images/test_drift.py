"""Embedding drift: MMD² and its permutation p-value against a direct numpy computation."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from aiwarden.errors import DataError, ParameterError
from aiwarden.images import domain_classifier_auc, mmd_test


def _mmd2_direct(x: np.ndarray, y: np.ndarray, sigma: float) -> float:
    """The unbiased estimator written out term by term (Gretton et al. 2012, eq. 3)."""
    def k(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.exp(-np.sum((a - b) ** 2) / (2 * sigma**2)))
    n, m = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2 * xy


def test_statistic_bandwidth_and_p_value_equal_the_direct_computation() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 3)), rng.normal(0.4, 1.0, size=(25, 3))
    res = mmd_test(x, y, n_permutations=50, seed=3)
    z = np.vstack([x, y])
    d2 = [np.sum((z[i] - z[j]) ** 2) for i in range(len(z)) for j in range(i + 1, len(z))]
    sigma = np.sqrt(np.median(d2) / 2)
    assert res.bandwidth == pytest.approx(sigma, rel=1e-12)
    assert res.statistic == pytest.approx(_mmd2_direct(x, y, sigma), rel=1e-9)
    perm_rng = np.random.default_rng(3)  # the same seeded stream: the same permutations
    perms = []
    for _ in range(50):
        p = perm_rng.permutation(len(z))
        perms.append(_mmd2_direct(z[p[:30]], z[p[30:]], sigma))
    want = (1 + sum(s >= res.statistic for s in perms)) / 51
    assert res.p_value == pytest.approx(want, abs=1e-12)


def test_same_distribution_passes_a_shift_is_detected_and_seeds_repeat() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(300, 8))
    same = rng.normal(size=(300, 8))
    shifted = same + np.r_[0.35, np.zeros(7)]
    assert not mmd_test(ref, same, seed=0).drift_detected
    assert mmd_test(ref, shifted, seed=0).p_value < 0.01
    assert mmd_test(ref, shifted, seed=5) == mmd_test(ref, shifted, seed=5)


def test_false_alarm_rate_is_near_alpha() -> None:
    rng = np.random.default_rng(2)
    hits = sum(mmd_test(rng.normal(size=(40, 2)), rng.normal(size=(40, 2)),
                        n_permutations=99, seed=s).drift_detected for s in range(60))
    assert hits <= 9  # 5% of 60 is 3; binomial 99.9th percentile is about 9


def test_domain_classifier_auc_equals_sklearn_directly() -> None:
    rng = np.random.default_rng(4)
    ref, cur = rng.normal(size=(200, 5)), rng.normal(0.5, 1, size=(150, 5))
    res = domain_classifier_auc(ref, cur, seed=7)
    z, t = np.vstack([ref, cur]), np.r_[np.zeros(200), np.ones(150)]
    proba = cross_val_predict(make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
                              z, t, cv=StratifiedKFold(5, shuffle=True, random_state=7),
                              method="predict_proba")[:, 1]
    assert res.auc == pytest.approx(roc_auc_score(t, proba), abs=1e-12)
    assert res.drift_detected and res.auc > 0.75
    assert not domain_classifier_auc(ref, rng.normal(size=(150, 5))).drift_detected


def test_bad_inputs_name_the_argument() -> None:
    with pytest.raises(DataError, match="same width"):
        mmd_test(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(DataError, match="'current' embeddings of mmd_test have NaN"):
        mmd_test(np.zeros((5, 2)), np.full((5, 2), np.nan))
    with pytest.raises(ParameterError, match="The 'n_permutations' parameter of mmd_test"):
        mmd_test(np.zeros((5, 2)), np.ones((5, 2)), n_permutations=0)
    with pytest.raises(ParameterError, match="The 'max_samples' parameter"):
        domain_classifier_auc(np.zeros((5, 2)), np.ones((5, 2)), max_samples=1)
