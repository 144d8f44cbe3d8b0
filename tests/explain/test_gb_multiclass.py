"""Multiclass GradientBoostingClassifier through Tree SHAP. shap 0.51's TreeExplainer reads
binary ones only; aiwarden hands it the trees in shap's dictionary format. The values must
be the exact interventional Shapley values of ``decision_function`` for the explained class:
shap's Exact explainer over the same background computes those by brute force."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aiwarden.explain import explain_rows
from aiwarden.explain._codec import summarise_background

BG = 40


def _data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(1200, 5)), columns=list("abcde"))
    y = np.digitize(x.a + 0.5 * x.b * x.c + rng.normal(0, 0.3, len(x)), [-0.5, 0.5])
    return x, np.array(["low", "mid", "high"])[y]


def _exact(shap, model, rows: pd.DataFrame, bg: pd.DataFrame, c: int) -> np.ndarray:
    def f(a: np.ndarray) -> np.ndarray:
        return model.decision_function(pd.DataFrame(a, columns=rows.columns))[:, c]

    masker = shap.maskers.Independent(bg.to_numpy(), max_samples=len(bg))
    return shap.explainers.Exact(f, masker)(rows.to_numpy()).values


@pytest.mark.parametrize("init", [None, "zero"])
def test_multiclass_boosting_is_explained_by_its_trees(init, shap_module) -> None:
    from sklearn.ensemble import GradientBoostingClassifier

    x, y = _data()
    model = GradientBoostingClassifier(n_estimators=30, max_depth=3, subsample=0.8, init=init,
                                       random_state=0).fit(x, y)
    rows = x.iloc[:24]
    r = explain_rows(model, rows, x, background_size=BG, seed=2)
    assert (r.method, r.output_space) == ("tree", "margin")
    assert "float64" in r.output_precision and r.max_abs_residual < 1e-9
    k = model.predict_proba(rows).argmax(1)
    assert [e.explained_class for e in r.explanations] == list(model.classes_[k])
    np.testing.assert_allclose([e.output for e in r.explanations],
                               model.decision_function(rows)[np.arange(len(rows)), k],
                               rtol=0, atol=1e-9)
    bg = summarise_background(x, BG, 2)
    for c in np.unique(k):
        at = k == c
        np.testing.assert_allclose(r.values[at], _exact(shap_module, model, rows[at], bg, c),
                                   rtol=0, atol=1e-9)


def test_a_named_class_is_explained_on_every_row(shap_module) -> None:
    from sklearn.ensemble import GradientBoostingClassifier

    x, y = _data()
    model = GradientBoostingClassifier(n_estimators=20, max_depth=2, random_state=1).fit(x, y)
    rows = x.iloc[:10]
    c = list(model.classes_).index("mid")
    r = explain_rows(model, rows, x, background_size=BG, seed=2, target_class="mid")
    assert r.method == "tree" and {e.explained_class for e in r.explanations} == {"mid"}
    bg = summarise_background(x, BG, 2)
    np.testing.assert_allclose(r.values, _exact(shap_module, model, rows, bg, c),
                               rtol=0, atol=1e-9)


def test_an_init_estimator_is_left_to_permutation() -> None:
    """A user's init estimator is not a constant: its trees alone do not sum to the margin,
    so ``auto`` explains the whole model by Permutation and says so."""
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    x, y = _data()
    model = GradientBoostingClassifier(n_estimators=10, max_depth=2, random_state=0,
                                       init=LogisticRegression()).fit(x, y)
    r = explain_rows(model, x.iloc[:5], x, background_size=20, seed=2)
    assert r.method == "permutation" and r.output_space == "probability"
