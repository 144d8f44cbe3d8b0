"""Issue 15: "LIME top-5 features stable across seeds on a test dataset". Five informative
features of decreasing weight and three of noise; for each of three models and eight rows,
LIME's top five under five seeds (the default ``lime_samples``). Where the fifth feature's
weight is near the noise features' (a row whose value of ``e`` sits mid-distribution), the
fifth place may trade with a noise feature; the first three never change."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LinearRegression

from aiwarden.explain import explain_rows

COLUMNS = ["a", "b", "c", "d", "e", "g", "h", "i"]


def _data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(2000, 8)), columns=COLUMNS)
    t = x.to_numpy() @ np.array([3, -2.2, 1.6, -1.1, 0.8, 0, 0, 0]) + rng.normal(0, 0.3, 2000)
    return x, t


def _models() -> list[tuple[str, object]]:
    x, t = _data()
    y = (t > 0).astype(int)
    return [("linear", LinearRegression().fit(x, t)),
            ("boosting", GradientBoostingClassifier(n_estimators=50, random_state=0).fit(x, y)),
            ("forest", RandomForestClassifier(100, random_state=0).fit(x, y))]


@pytest.mark.parametrize(("name", "model"), _models(), ids=lambda v: v if isinstance(v, str)
                         else "")
def test_lime_top_five_is_stable_across_seeds(name, model) -> None:
    x, _ = _data()
    unstable = 0
    for row in range(8):
        tops = [[c.feature for c in explain_rows(model, x.iloc[[row]], x, method="lime",
                                                 seed=seed).explanations[0].top(5)]
                for seed in range(5)]
        assert all(set(t[:3]) == set(tops[0][:3]) for t in tops), (name, row, tops)
        assert all(set(t[:3]) <= {"a", "b", "c", "d", "e"} for t in tops), (name, row, tops)
        unstable += any(set(t) != set(tops[0]) for t in tops)
    assert unstable <= 2, (name, unstable)  # measured 0-2 of 8 a model; at 5,000 samples 6
