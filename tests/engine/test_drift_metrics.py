"""Histogram distances against scipy on the raw samples (tolerances in docs/drift.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon as scipy_js

from aiwarden.engine import Reference
from aiwarden.engine.drift_metrics import (
    chi2_pvalue,
    hellinger,
    jensenshannon,
    psi,
    total_variation,
    wasserstein,
)

DISTS = {
    "normal": lambda r, n: r.normal(5.0, 2.0, n),
    "lognormal": lambda r, n: r.lognormal(1.0, 0.8, n),
    "uniform": lambda r, n: r.uniform(-3, 7, n),
    "bimodal": lambda r, n: np.where(r.random(n) < 0.4, r.normal(-2, 0.5, n), r.normal(3, 1, n)),
}
SHIFTS = {
    "none": lambda x, r: x,
    "location": lambda x, r: x + 0.3 * x.std(),
    "scale": lambda x, r: x.mean() + (x - x.mean()) * 1.6,
    "mixture": lambda x, r: np.where(r.random(len(x)) < 0.2, x * 3 + 1, x),
}


def _fit(ref_x: np.ndarray, cur_x: np.ndarray, **kw):
    ref = Reference.fit(pd.DataFrame({"x": ref_x}), **kw)
    report = ref.compare(ref.profile(pd.DataFrame({"x": cur_x})))
    return ref, report["x"]


@pytest.mark.parametrize("dist", sorted(DISTS))
@pytest.mark.parametrize("shift", sorted(SHIFTS))
def test_ks_statistic_within_one_bin_of_scipy(dist: str, shift: str) -> None:
    rng = np.random.default_rng(hash((dist, shift)) % 2**32)
    ref_x = DISTS[dist](rng, 50_000)
    cur_x = SHIFTS[shift](DISTS[dist](rng, 20_000), rng)
    ref, col = _fit(ref_x, cur_x)
    exact = stats.ks_2samp(ref_x, cur_x).statistic
    edges = ref.binnings_["x"].interior
    ref_mass = np.histogram(ref_x, edges)[0].max() / len(ref_x)
    cur_mass = np.histogram(cur_x, edges)[0].max() / len(cur_x)
    bound = max(ref_mass, cur_mass) + 1e-12
    # The binned statistic is a supremum over fewer points: never above the exact one.
    assert col.metrics["ks"] <= exact + 1e-12
    assert exact - col.metrics["ks"] <= bound


@pytest.mark.parametrize("dist", sorted(DISTS))
@pytest.mark.parametrize("shift", sorted(SHIFTS))
def test_wasserstein_close_to_scipy(dist: str, shift: str) -> None:
    rng = np.random.default_rng(hash((shift, dist)) % 2**32)
    ref_x = DISTS[dist](rng, 50_000)
    cur_x = SHIFTS[shift](DISTS[dist](rng, 20_000), rng)
    _, col = _fit(ref_x, cur_x)
    exact = stats.wasserstein_distance(ref_x, cur_x) / ref_x.std()
    # Documented tolerance: 3 % relative plus 0.005 reference standard deviations.
    assert col.metrics["wasserstein"] == pytest.approx(exact, rel=0.03, abs=0.005)


def test_numerical_bin_distances_match_scipy_on_same_bins() -> None:
    rng = np.random.default_rng(3)
    ref_x, cur_x = rng.normal(size=30_000), rng.normal(0.2, 1.1, size=10_000)
    ref, col = _fit(ref_x, cur_x)
    edges = ref.binnings_["x"].interior
    full = np.concatenate([[-np.inf], edges, [np.inf]])
    p = np.histogram(ref_x, full)[0].astype(float)
    q = np.histogram(cur_x, full)[0].astype(float)
    assert col.metrics["jensenshannon"] == pytest.approx(scipy_js(p, q, base=2), abs=1e-12)
    assert col.metrics["total_variation"] == pytest.approx(0.5 * np.abs(p / p.sum() - q / q.sum())
                                                           .sum(), abs=1e-12)


def test_categorical_distances_match_scipy_exactly() -> None:
    rng = np.random.default_rng(4)
    cats = np.array(list("abcdefg"))
    ref_c = rng.choice(cats, 40_000, p=[0.3, 0.2, 0.15, 0.15, 0.1, 0.05, 0.05])
    cur_c = rng.choice(cats, 8_000, p=[0.2, 0.2, 0.2, 0.15, 0.1, 0.1, 0.05])
    ref = Reference.fit(pd.DataFrame({"c": ref_c}))
    col = ref.compare(ref.profile(pd.DataFrame({"c": cur_c})))["c"]
    p = pd.Series(ref_c).value_counts().reindex(list(cats)).to_numpy(float)
    q = pd.Series(cur_c).value_counts().reindex(list(cats)).to_numpy(float)
    pp, qq = p / p.sum(), q / q.sum()
    assert col.metrics["jensenshannon"] == pytest.approx(scipy_js(p, q, base=2), abs=1e-12)
    assert col.metrics["total_variation"] == pytest.approx(0.5 * np.abs(pp - qq).sum(), abs=1e-12)
    assert col.metrics["hellinger"] == pytest.approx(
        np.sqrt(0.5 * ((np.sqrt(pp) - np.sqrt(qq)) ** 2).sum()), abs=1e-12)
    assert col.metrics["psi"] == pytest.approx(((qq - pp) * np.log(qq / pp)).sum(), abs=1e-12)
    table = np.vstack([p, q])
    expected_p = stats.chi2_contingency(table, correction=False).pvalue
    assert col.p_value == pytest.approx(expected_p, rel=1e-9, abs=1e-300)


def test_chi2_pvalue_matches_scipy_with_zero_columns() -> None:
    ref = np.array([50, 0, 30, 20])
    cur = np.array([10, 0, 25, 5])
    expected = stats.chi2_contingency(np.vstack([ref, cur])[:, [0, 2, 3]]).pvalue
    assert chi2_pvalue(ref, cur) == pytest.approx(expected, rel=1e-12)


def test_metrics_vectorise_over_leading_axes() -> None:
    rng = np.random.default_rng(5)
    a = rng.integers(0, 50, size=(7, 12))
    b = rng.integers(0, 50, size=(7, 12))
    edges = np.linspace(0, 1, 11)
    for fn in (jensenshannon, hellinger, psi, total_variation):
        batch = fn(a, b)
        assert batch.shape == (7,)
        assert np.allclose(batch, [fn(a[i], b[i]) for i in range(7)])
    assert np.allclose(wasserstein(a, b, edges), [wasserstein(a[i], b[i], edges)
                                                  for i in range(7)])


def test_wasserstein_on_point_masses_is_exact() -> None:
    # Uniform mass on [0, 1) against uniform mass on [1, 2): everything moves by 1.
    edges = np.array([0.0, 1.0, 2.0, 3.0])
    ref, cur = np.array([0, 10, 0, 0, 0]), np.array([0, 0, 10, 0, 0])
    assert wasserstein(ref, cur, edges) == pytest.approx(1.0)
    assert wasserstein(ref, ref, edges) == 0.0
    # Tails beyond the edges are added as given.
    assert wasserstein(ref, ref, edges, 0.25, 0.5) == pytest.approx(0.75)


def test_identical_histograms_have_zero_distance() -> None:
    c = np.array([3, 0, 7, 1])
    for fn in (jensenshannon, hellinger, psi, total_variation):
        assert fn(c, c * 4) == pytest.approx(0.0, abs=1e-12)
