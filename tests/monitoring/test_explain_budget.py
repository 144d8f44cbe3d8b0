"""The explanation budget: interventional Tree SHAP on a big forest is refused before any
work (from the outside review: 1000 rows x 1000 background rows x 300 trees held a core for
23 minutes), and a sample size not asked for is fitted to the budget."""

from __future__ import annotations

import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

from aiwarden.errors import DataError
from aiwarden.explain import ExplainOptions
from aiwarden.monitoring.explanations import (
    MAX_TREE_WORK,
    MIN_SAMPLE,
    SAMPLE_SIZE,
    _fitted_sample,
    _within_budget,
)


def test_a_big_forest_against_a_big_background_is_refused_naming_the_field() -> None:
    forest = RandomForestClassifier(n_estimators=300)  # max_depth None: counted as 20 levels
    big = ExplainOptions(background_size=1000)
    with pytest.raises(DataError) as err:
        _within_budget(big, 1000, "rows", "tree", forest)
    assert err.value.field == "rows" and "tree_path_dependent" in str(err.value)
    _within_budget(ExplainOptions(), 1000, "rows", "tree", forest)  # 100 background rows: 6e8
    path = ExplainOptions(background_size=1000, tree_perturbation="tree_path_dependent")
    _within_budget(path, 1000, "rows", "tree", forest)  # a pass over the trees: no bound
    # HistGradientBoosting's auto perturbation is path-dependent (options.py): no bound
    _within_budget(big, 1000, "rows", "tree", HistGradientBoostingClassifier())


def test_a_sample_not_asked_for_fits_the_budget() -> None:
    forest = RandomForestClassifier(n_estimators=300, max_depth=10)
    big = ExplainOptions(background_size=1000)
    n = _fitted_sample(big, None, 2, "tree", forest)
    assert n == MAX_TREE_WORK // (1000 * 300 * 10 * 2) and MIN_SAMPLE <= n < SAMPLE_SIZE
    assert _fitted_sample(ExplainOptions(), None, 2, "tree", forest) == SAMPLE_SIZE
    with pytest.raises(DataError) as err:
        _fitted_sample(big, 5000, 2, "tree", forest)
    assert err.value.field == "sample_size"
    # Permutation: 500 evaluations x 100 background rows per row
    assert _fitted_sample(ExplainOptions(), None, 2, "permutation") == 50


def test_a_registered_forest_is_counted_by_its_estimator() -> None:
    """The registry's predictor holds the estimator: its trees and depth count (the wrapper
    has neither, and was once counted as one tree of 12 levels: no refusal ever)."""
    from aiwarden.registry.predictor import EstimatorPredictor

    forest = RandomForestClassifier(n_estimators=300)
    served = EstimatorPredictor(forest, "skops", model="m", version="1", sha256="0" * 64)
    big = ExplainOptions(background_size=1000)
    with pytest.raises(DataError):
        _within_budget(big, 1000, "rows", "tree", served)
    assert _fitted_sample(big, None, 2, "tree", served) == _fitted_sample(
        big, None, 2, "tree", forest) < SAMPLE_SIZE
    hist = EstimatorPredictor(HistGradientBoostingClassifier(), "skops", sha256="1" * 64)
    _within_budget(big, 1000, "rows", "tree", hist)  # path-dependent through it too
