"""The slice gate's search: a challenger better overall but failing one group is caught."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aiwarden.engine.model_comparison import compare_accuracy
from aiwarden.engine.slice_comparison import find_slice_regressions
from aiwarden.errors import ParameterError


def _holdout(n: int, seed: int, bad_small: bool):
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({"amount": rng.lognormal(4.0, 1.0, n),
                         "country": rng.choice(["US", "BR", "DE"], n)})
    y = rng.integers(0, 2, n)
    champion = np.where(rng.random(n) < 0.10, 1 - y, y)
    err_b = np.where((data["amount"] < 10) & bad_small, 0.45, 0.05)
    challenger = np.where(rng.random(n) < err_b, 1 - y, y)
    return data, y, champion, challenger


def test_a_challenger_better_overall_is_refused_on_the_slice_it_fails() -> None:
    data, y, a, b = _holdout(6000, 1, bad_small=True)
    assert compare_accuracy(y, a, b).better > 0  # better overall: the overall gate passes it
    found = find_slice_regressions(data, y, a, b)
    assert found, "the slice went unseen"
    worst = found[0]
    feature, op, cut = worst.to_dict()["conditions"][0]
    assert feature == "amount" and op in ("<", "<=") and 7 <= float(cut) <= 13
    rows = (data["amount"] < float(cut)).to_numpy()
    # the comparison inside the slice is the paired test on exactly those rows
    assert worst.comparison.challenger == pytest.approx(np.mean(b[rows] == y[rows]), abs=0.02)
    assert worst.comparison.better < -0.2 and worst.adjusted_p_value < 0.05


def test_a_uniformly_better_challenger_has_no_regressed_slice() -> None:
    for seed in range(5):
        data, y, a, b = _holdout(4000, 10 + seed, bad_small=False)
        assert find_slice_regressions(data, y, a, b) == []


def test_regression_models_compare_absolute_errors() -> None:
    rng = np.random.default_rng(7)
    n = 4000
    data = pd.DataFrame({"region": rng.choice(list("abcd"), n), "x": rng.normal(size=n)})
    y = rng.normal(size=n)
    a = y + rng.normal(scale=0.5, size=n)
    b = y + rng.normal(scale=np.where(data["region"] == "c", 2.0, 0.4), size=n)
    found = find_slice_regressions(data, y, a, b, task="regression", min_drop=0.1)
    assert [r.description for r in found][:1] == ["region = c"], found
    assert found[0].comparison.metric == "mae"


def test_parameters_are_checked() -> None:
    data, y, a, b = _holdout(200, 2, bad_small=True)
    with pytest.raises(ParameterError, match="task"):
        find_slice_regressions(data, y, a, b, task="ranking")
    with pytest.raises(ParameterError, match="alpha"):
        find_slice_regressions(data, y, a, b, alpha=5)
