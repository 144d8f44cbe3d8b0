"""Paired champion/challenger tests against scipy / scikit-learn and the textbook formulas."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import f1_score, roc_auc_score

from aiwarden.engine.model_comparison import (
    compare_abs_error,
    compare_accuracy,
    compare_bootstrap,
    compare_roc_auc,
)
from aiwarden.errors import DataError, ParameterError


def _scores(n: int, seed: int, strength_a: float, strength_b: float):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    shared = rng.normal(size=n)  # correlated errors, as two models of one task have
    a = strength_a * y + shared + 0.5 * rng.normal(size=n)
    b = strength_b * y + shared + 0.5 * rng.normal(size=n)
    return y, a, b


def _delong_by_definition(y, a, b):
    """O(n^2) DeLong from the pairwise kernel psi(x, y) = 1[x > y] + 0.5 * 1[x == y]."""
    out = []
    for s in (a, b):
        pos, neg = s[y == 1], s[y == 0]
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        out.append((psi.mean(), psi.mean(axis=1), psi.mean(axis=0)))
    (auc_a, v10a, v01a), (auc_b, v10b, v01b) = out
    m, k = len(v10a), len(v01a)
    var = (np.var(v10a - v10b, ddof=1) / m + np.var(v01a - v01b, ddof=1) / k)
    return auc_a, auc_b, var


def test_delong_matches_sklearn_auc_and_the_pairwise_definition() -> None:
    y, a, b = _scores(600, 1, 1.0, 1.4)
    a = np.round(a, 1)  # ties, which the midranks must count as one half
    res = compare_roc_auc(y, a, b)
    auc_a, auc_b, var = _delong_by_definition(y, a, b)
    assert res.champion == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    assert res.challenger == pytest.approx(roc_auc_score(y, b), abs=1e-12)
    assert res.champion == pytest.approx(auc_a) and res.challenger == pytest.approx(auc_b)
    z = (auc_b - auc_a) / np.sqrt(var)
    assert res.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)
    assert res.lower < res.better < res.upper
    assert res.significantly_better(0.05) and not res.significantly_worse(0.05)


def test_delong_holds_its_level_on_equal_models() -> None:
    """Two equally good models: p < 0.05 in about 5 % of holdouts, not more."""
    rejections = [compare_roc_auc(*_scores(300, seed, 1.0, 1.0)).p_value < 0.05
                  for seed in range(300)]
    assert np.mean(rejections) < 0.09


def test_mcnemar_is_the_exact_binomial_on_discordant_rows() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 500)
    a = np.where(rng.random(500) < 0.80, y, (y + 1) % 3)
    b = np.where(rng.random(500) < 0.70, y, (y + 2) % 3)
    res = compare_accuracy(y, a, b)
    only_b = int(np.sum((b == y) & (a != y)))
    only_a = int(np.sum((a == y) & (b != y)))
    assert res.p_value == pytest.approx(stats.binomtest(only_b, only_a + only_b).pvalue)
    assert res.champion == pytest.approx(np.mean(a == y))
    assert res.better == pytest.approx(np.mean(b == y) - np.mean(a == y))
    assert res.significantly_worse(0.05)


def test_identical_models_are_never_different() -> None:
    y, a, _ = _scores(100, 4, 1.0, 1.0)
    pred = (a > 0.5).astype(int)
    for res in (compare_accuracy(y, pred, pred), compare_roc_auc(y, a, a),
                compare_abs_error(y.astype(float), a, a)):
        assert res.better == 0 and res.p_value == 1.0, res


def test_paired_t_on_absolute_errors_matches_scipy() -> None:
    rng = np.random.default_rng(5)
    y = rng.normal(size=400)
    a = y + rng.normal(scale=0.5, size=400)
    b = y + rng.normal(scale=0.6, size=400)
    res = compare_abs_error(y, a, b)
    ref = stats.ttest_rel(np.abs(y - a), np.abs(y - b))
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    ci = ref.confidence_interval(0.95)
    assert (res.lower, res.upper) == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert res.better < 0  # the challenger errs more


def test_bootstrap_agrees_with_delong_on_auc() -> None:
    """Two roads to the same interval: the resampled one and DeLong's, within noise."""
    y, a, b = _scores(800, 6, 1.0, 1.3)
    boot = compare_bootstrap(y, a, b, roc_auc_score, name="roc_auc", n_boot=300, seed=1)
    delong = compare_roc_auc(y, a, b)
    assert boot.better == pytest.approx(delong.better)
    assert boot.upper - boot.lower == pytest.approx(delong.upper - delong.lower, rel=0.25)
    f1 = compare_bootstrap(y, (a > 0.5).astype(int), (b > 0.5).astype(int), f1_score,
                           name="f1", n_boot=200)
    assert f1.lower <= f1.better <= f1.upper


def test_bad_input_names_what_is_wrong() -> None:
    with pytest.raises(DataError, match="challenger scores"):
        compare_roc_auc([0, 1, 0], [0.1, 0.2, 0.3], [0.1, 0.2])
    with pytest.raises(DataError, match="2 rows of each class"):
        compare_roc_auc([1, 1, 1, 0], [0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4])
    with pytest.raises(ParameterError, match="confidence"):
        compare_accuracy([1, 0], [1, 0], [1, 0], confidence=95)
    with pytest.raises(ParameterError, match="n_boot"):
        compare_bootstrap([1, 0], [1, 0], [1, 0], f1_score, name="f1", n_boot=10)
