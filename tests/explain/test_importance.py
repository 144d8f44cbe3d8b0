"""Window and slice importance: mean |SHAP| of a seeded sample, with honest intervals."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier

from aiwarden.errors import DataError, ParameterError
from aiwarden.explain import (
    explain_rows,
    global_importance,
    importance_from_values,
    slice_importance,
)
from tests.explain.conftest import FEATURES, data


def _population(n: int = 20_000, seed: int = 0) -> np.ndarray:
    """Exact linear SHAP values coef * (x - mean) of skewed features: the truth is known."""
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.exponential(1.0, n), rng.lognormal(0, 0.75, n),
                         rng.normal(0, 1, n)])
    return np.array([2.0, -1.0, 0.5]) * (x - x.mean(axis=0))


@pytest.mark.parametrize(("level", "low", "high"), [(0.95, 0.90, 0.99), (0.5, 0.38, 0.62)])
def test_bootstrap_interval_covers_the_true_mean_at_its_level(level, low, high) -> None:
    pop = _population()
    truth = np.abs(pop).mean(axis=0)
    rng = np.random.default_rng(1)
    reps, hits = 300, np.zeros(3)
    for r in range(reps):
        sample = pop[rng.choice(len(pop), 200, replace=False)]
        gi = importance_from_values(sample, ["a", "b", "c"], level=level, n_boot=400, seed=r)
        got = {f.feature: (f.lower, f.upper) for f in gi.features}
        hits += [got[f][0] <= t <= got[f][1] for f, t in zip("abc", truth, strict=True)]
    coverage = hits / reps
    assert np.all((coverage >= low) & (coverage <= high)), coverage


def test_importance_is_mean_abs_and_ranked() -> None:
    v = np.array([[1.0, -3.0, 0.0], [-1.0, 1.0, 0.0], [2.0, -2.0, 0.0]])
    gi = importance_from_values(v, ["a", "b", "c"], n_boot=200)
    assert [(f.feature, f.rank) for f in gi.features] == [("b", 1), ("a", 2), ("c", 3)]
    assert gi.as_mapping() == {"b": 2.0, "a": 4 / 3, "c": 0.0}
    c = gi.features[2]
    assert c.lower == c.upper == 0.0
    assert all(f.lower <= f.importance <= f.upper for f in gi.features)
    with pytest.raises(ParameterError, match="'level' parameter of global_importance"):
        importance_from_values(v, ["a", "b", "c"], level=1.5)
    with pytest.raises(DataError, match=r"\(rows, 2\) attribution matrix"):
        importance_from_values(v, ["a", "b"])


def test_window_importance_is_the_sampled_rows_mean_abs_shap() -> None:
    x, y, _ = data(3000)
    model = RandomForestClassifier(20, max_depth=6, random_state=0).fit(x, y)
    gi = global_importance(model, x, x, sample_size=300, seed=4, n_boot=300)
    assert gi.n_rows == 3000 and gi.n_explained == 300 and gi.method == "tree"
    assert gi.features[0].feature == "amount" and gi.features[-1].feature == "noise"
    idx = np.sort(np.random.default_rng(4).choice(3000, 300, replace=False))
    rows = explain_rows(model, x.iloc[idx], x, seed=4)
    np.testing.assert_allclose([gi.as_mapping()[f] for f in FEATURES],
                               np.abs(rows.values).mean(axis=0), rtol=1e-12)
    again = global_importance(model, x, x, sample_size=300, seed=4, n_boot=300)
    assert again.to_dict() == gi.to_dict()
    assert gi.to_pandas().shape == (5, 5)


def test_slice_importance_shows_what_drives_the_slice() -> None:
    x, _, _ = data(3000)
    # inside amount < -0.5 the target is all age; elsewhere all amount
    t = np.where(x.amount < -0.5, 4.0 * x.age, x.amount).astype(float)
    model = GradientBoostingRegressor(n_estimators=60, max_depth=3, random_state=0).fit(x, t)
    s = slice_importance(model, x, x, [("amount", "<", -0.5)], sample_size=200, n_boot=200)
    assert s.description == "amount < -0.5"
    assert s.inside.n_rows == int((x.amount < -0.5).sum()) and s.inside.n_explained == 200
    assert s.inside.features[0].feature == "age"
    assert s.rest.as_mapping()["age"] < s.inside.as_mapping()["age"] / 3
    assert s.difference[0][0] == "age" and s.difference[0][1] > 0
    with pytest.raises(DataError, match="holds 0 of 3000 rows"):
        slice_importance(model, x, x, [("amount", "<", -100.0)])
    with pytest.raises(DataError, match="op must be one of"):
        slice_importance(model, x, x, [("amount", "<=", 1.0)])
