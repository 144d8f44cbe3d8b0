"""shap's warm-up compiles everything a first Permutation explanation of a regressor or a
classifier would (explain/warm.py): after it, explaining real models compiles nothing."""

from __future__ import annotations

import sys

from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor

from aiwarden.explain import explain_rows
from aiwarden.explain.warm import warm_up
from tests.explain.conftest import data


def _compiled() -> dict[str, int]:
    """Compiled signatures of every numba function shap has loaded."""
    from numba.core.registry import CPUDispatcher

    out = {}
    for name, module in list(sys.modules.items()):
        if not name.startswith("shap") or module is None:
            continue
        for attr, value in vars(module).items():
            if isinstance(value, CPUDispatcher):
                out[f"{name}.{attr}"] = len(value.signatures)
    return out


def test_after_warm_up_a_first_permutation_compiles_nothing() -> None:
    warm_up()
    assert warm_up() == 0.0  # once per process
    before = _compiled()
    assert sum(before.values()) > 0
    x, y, t = data(300)
    for model in (GradientBoostingClassifier(n_estimators=10, random_state=0).fit(x, y),
                  GradientBoostingRegressor(n_estimators=10, random_state=0).fit(x, t)):
        r = explain_rows(model, x.iloc[:2], x, method="permutation", background_size=20)
        assert r.method == "permutation" and r.max_abs_residual < 1e-6
    assert _compiled() == before
