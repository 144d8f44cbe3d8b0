"""Issue 15: "LIME top-5 features stable across seeds on a test dataset". With the sample
count left to aiwarden, LIME grows it until the gap between ranks 5 and 6 is 3 seed
standard deviations wide (options.LIME_GAP_SD) or reports the tie: for every pair of seeds,
the features above a reported tie are in the other seed's top five, and two seeds that both
settled rank 5 list the same five. Datasets: eight Gaussian features (five informative of
decreasing weight), a second one with three informative features only (ranks 4-6 are then
true ties among noise features) and a categorical column; models: linear, boosting, forest,
LightGBM, XGBoost. A caller who fixes the sample count gets exactly what lime gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LinearRegression

from aiwarden.explain import _attributions as attributions_module
from aiwarden.explain import explain_rows

COLUMNS = ["a", "b", "c", "d", "e", "g", "h", "i"]
SEEDS = range(5)


def _data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(2000, 8)), columns=COLUMNS)
    t = x.to_numpy() @ np.array([3, -2.2, 1.6, -1.1, 0.8, 0, 0, 0]) + rng.normal(0, 0.3, 2000)
    return x, t


def _sparse_data() -> tuple[pd.DataFrame, np.ndarray]:
    """Three informative features of seven, one of them categorical."""
    rng = np.random.default_rng(1)
    x = pd.DataFrame(rng.normal(size=(1500, 6)), columns=["p", "q", "r", "s", "u", "v"])
    x["shop"] = pd.Categorical(rng.choice(["web", "store", "app"], 1500))
    t = 2 * x.p - 1.5 * x.q + 1.5 * (x.shop == "web") + rng.normal(0, 0.3, 1500)
    return x, (t > 0.5).astype(int).to_numpy()


def _models() -> list[tuple[str, object, pd.DataFrame]]:
    x, t = _data()
    y = (t > 0).astype(int)
    out = [("linear", LinearRegression().fit(x, t), x),
           ("boosting", GradientBoostingClassifier(n_estimators=50, random_state=0).fit(x, y),
            x),
           ("forest", RandomForestClassifier(50, random_state=0).fit(x, y), x)]
    lightgbm = pytest.importorskip("lightgbm")
    xgboost = pytest.importorskip("xgboost")
    out.append(("lightgbm", lightgbm.LGBMRegressor(n_estimators=80, verbose=-1,
                                                   random_state=0).fit(x, t), x))
    xs, ys = _sparse_data()
    out.append(("xgboost-sparse", xgboost.XGBClassifier(n_estimators=60, max_depth=3,
                                                        enable_categorical=True,
                                                        tree_method="hist").fit(xs, ys), xs))
    return out


def _settled(e, k: int = 5) -> tuple[set[str], bool]:
    """The features certainly in the top ``k`` (above any tie group reaching rank k) and
    whether rank k itself is settled."""
    names = [c.feature for c in e.contributions]
    pairs = [t["ranks"] for t in e.ties]
    if [k, k + 1] not in pairs:
        return set(names[:k]), True
    lo = k  # the tie group reaching rank k starts at rank lo
    while [lo - 1, lo] in pairs:
        lo -= 1
    return set(names[:lo - 1]), False


@pytest.mark.parametrize("case", _models(), ids=lambda c: c[0])
def test_lime_top_five_is_stable_across_seeds_or_the_tie_is_reported(case) -> None:
    name, model, x = case
    ties = 0
    for row in range(6):
        exps = [explain_rows(model, x.iloc[[row]], x, method="lime",
                             seed=seed).explanations[0] for seed in SEEDS]
        for e in exps:
            assert 10_000 <= e.samples <= 80_000
            for t in e.ties:
                assert t["gap_sd"] < 3 and str(e.samples) in t["reason"]
        tops = [{c.feature for c in e.top(5)} for e in exps]
        for a, ea in zip(tops, exps, strict=True):
            certain, settled = _settled(ea)
            ties += not settled
            for b, eb in zip(tops, exps, strict=True):
                assert certain <= b, (name, row, certain, b, ea.ties)
                if settled and _settled(eb)[1]:
                    assert a == b, (name, row, a, b, ea.ties, eb.ties)
    if name != "xgboost-sparse":  # five real drivers: rank 5 settles nearly always
        assert ties <= 8, (name, ties)  # measured of 30 (6 rows): 0, 7, 5, 0
    else:  # ranks 4-6 are noise features: the tie is the honest answer (measured 29 of 30)
        assert ties >= 20, ties


def test_sparse_model_reports_its_true_tie() -> None:
    """Only three features drive the model: rank 5 against 6 is noise against noise, and
    LIME says so instead of pretending an order (after growing to the cap)."""
    xgboost = pytest.importorskip("xgboost")
    xs, ys = _sparse_data()
    model = xgboost.XGBClassifier(n_estimators=60, max_depth=3, enable_categorical=True,
                                  tree_method="hist").fit(xs, ys)
    e = explain_rows(model, xs.iloc[[0]], xs, method="lime", seed=0).explanations[0]
    assert {c.feature for c in e.top(3)} == {"p", "q", "shop"}
    assert e.samples == 80_000
    assert [5, 6] in [t["ranks"] for t in e.ties], e.ties
    d = e.to_dict()
    assert d["samples"] == 80_000 and d["ties"] == [dict(t) for t in e.ties]


def test_weight_standard_errors_match_the_seed_spread() -> None:
    """The sandwich standard errors the growth rule reads agree with the weights' actual
    spread over 30 seeds (lime's fits, 10,000 samples each)."""
    x, t = _data()
    model = GradientBoostingClassifier(n_estimators=50, random_state=0).fit(x, t > 0)
    covs: list[np.ndarray] = []
    real = attributions_module._weight_cov

    def spy(rec):
        covs.append(real(rec))
        return covs[-1]

    attributions_module._weight_cov = spy
    try:
        w = np.array([explain_rows(model, x.iloc[[3]], x, method="lime", seed=s,
                                   lime_samples=10_000).values[0] for s in range(30)])
    finally:
        attributions_module._weight_cov = real
    spread = w.std(axis=0, ddof=1)
    estimated = np.sqrt(np.array([np.diag(c) for c in covs])).mean(axis=0)
    # measured ratios 0.90-1.14; a 30-seed sd is itself ~13 % noisy
    assert np.all((estimated / spread > 0.65) & (estimated / spread < 1.5)), estimated / spread


def _lime_direct(model, x: pd.DataFrame, row: int, seed: int, samples: int) -> np.ndarray:
    import lime.lime_tabular as lt

    explainer = lt.LimeTabularExplainer(x.to_numpy(), mode="regression",
                                        feature_names=list(x.columns),
                                        discretize_continuous=True, random_state=seed)
    exp = explainer.explain_instance(x.to_numpy()[row],
                                     lambda a: model.predict(pd.DataFrame(a, columns=x.columns)),
                                     num_features=x.shape[1], num_samples=samples)
    w = np.zeros(x.shape[1])
    for j, v in exp.local_exp[next(iter(exp.local_exp))]:
        w[j] = v
    return w


def test_fixed_sample_count_is_lime_itself_and_adaptive_is_lime_at_its_count() -> None:
    x, t = _data()
    x = x.iloc[:1500]
    model = LinearRegression().fit(x, t[:1500])
    with np.errstate(all="ignore"):
        fixed = explain_rows(model, x.iloc[[4]], x, method="lime", seed=2, lime_samples=3000)
    e = fixed.explanations[0]
    assert e.samples == 3000
    np.testing.assert_array_equal(fixed.values[0], _lime_direct(model, x, 4, 2, 3000))
    grown = explain_rows(model, x.iloc[[0]], x, method="lime", seed=1)
    g = grown.explanations[0]
    np.testing.assert_array_equal(grown.values[0], _lime_direct(model, x, 0, 1, g.samples))
