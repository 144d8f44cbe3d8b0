"""The leaf scan (_indep64._scans) computes interventional Tree SHAP from per-leaf bit masks
instead of shap's walk: it must give the walk's values (to 1e-12 of the output's size) and
shap's (to float32 rounding) on every shape of tree: deep trees that are walked beside
scanned ones, trees splitting on more than 64 features (walked), stumps, missing values
and a per-row output of a multiclass model."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from aiwarden.explain import _indep64

pytest.importorskip("numba")


def _parsed(shap_module, model, bg: np.ndarray):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        e = shap_module.TreeExplainer(model, data=bg, feature_perturbation="interventional")
    return e


def _both(e, x: np.ndarray, bg: np.ndarray, outs=None) -> tuple[np.ndarray, np.ndarray]:
    scan = _indep64.interventional_values(e.model, x, bg, outs)
    walk = _indep64.interventional_values(e.model, x, bg, outs, scan=False)
    scale = np.maximum(1.0, np.abs(walk.sum(axis=1)))[:, None]
    assert np.max(np.abs(scan - walk) / scale) < 1e-12
    return scan, walk


def _tables(e):
    nodes = _indep64._pack(e.model, e.model.values.shape[0])
    tables_of = _indep64.kernel()[0]
    return tables_of(nodes, int(nodes[:, :, 3].max()) + 1, _indep64._SCAN_LEAVES)


def test_deep_forest_mixes_scanned_and_walked_trees(shap_module, monkeypatch) -> None:
    from sklearn.ensemble import RandomForestRegressor

    rng = np.random.default_rng(3)
    x = rng.normal(size=(1500, 6))
    x[rng.random(x.shape) < 0.05] = np.nan  # sklearn sends NaN to its learned side
    t = 3 * np.nan_to_num(x[:, 0]) - np.nan_to_num(x[:, 1]) ** 2 + rng.normal(0, 1, 1500)
    model = RandomForestRegressor(8, random_state=0, min_samples_leaf=1).fit(x, t)
    leaves = sorted(est.get_n_leaves() for est in model.estimators_)
    monkeypatch.setattr(_indep64, "_SCAN_LEAVES", leaves[3])  # half scanned, half walked
    rows = x[:40].astype(np.float32).astype(np.float64)  # as the trees compare them
    bg = x[100:130].astype(np.float32).astype(np.float64)
    e = _parsed(shap_module, model, bg)
    scanned = _tables(e)[-1]
    assert 0 < scanned.sum() < len(scanned)
    scan, _ = _both(e, rows, bg)
    want = e.shap_values(x[:40].astype(np.float32), check_additivity=False)
    scale = np.maximum(1.0, np.abs(model.predict(x[:40])))[:, None]
    assert np.max(np.abs(scan[:, :-1] - want) / scale) < 1e-5  # shap sums in float32
    # additivity against the float64 sum of the same trees
    out = np.asarray(e.model.predict(rows)).reshape(-1)
    assert np.max(np.abs(scan.sum(axis=1) - out)) < 1e-9


def test_more_than_64_features_on_a_tree_is_walked(shap_module) -> None:
    from sklearn.tree import DecisionTreeRegressor

    rng = np.random.default_rng(5)
    x = rng.normal(size=(4000, 90))
    t = x @ rng.normal(size=90) + rng.normal(0, 0.1, 4000)
    model = DecisionTreeRegressor(random_state=0, max_leaf_nodes=600).fit(x, t)
    rows = x[:12].astype(np.float32).astype(np.float64)
    bg = x[50:70].astype(np.float32).astype(np.float64)
    e = _parsed(shap_module, model, bg)
    assert len(set(model.tree_.feature[model.tree_.feature >= 0])) > 64
    assert not _tables(e)[-1].any()
    scan, _ = _both(e, rows, bg)
    out = np.asarray(e.model.predict(rows)).reshape(-1)
    assert np.max(np.abs(scan.sum(axis=1) - out)) < 1e-9


def test_stump_gives_only_a_base_value(shap_module) -> None:
    from sklearn.tree import DecisionTreeRegressor

    x = np.random.default_rng(0).normal(size=(50, 3))
    model = DecisionTreeRegressor().fit(x, np.full(50, 7.0))
    e = _parsed(shap_module, model, x[:10])
    scan, _ = _both(e, x[10:15], x[:10])
    np.testing.assert_array_equal(scan[:, :3], 0.0)
    np.testing.assert_allclose(scan[:, 3], 7.0)


def test_multiclass_output_per_row_and_missing_values(shap_module) -> None:
    import lightgbm as lgb

    rng = np.random.default_rng(7)
    x = rng.normal(size=(2000, 5))
    x[rng.random(x.shape) < 0.1] = np.nan
    y = np.digitize(np.nan_to_num(x[:, 0]) + 0.5 * np.nan_to_num(x[:, 2]), [-0.5, 0.5])
    model = lgb.LGBMClassifier(n_estimators=30, verbose=-1, random_state=0).fit(x, y)
    rows, bg = x[:50], x[500:540]
    e = _parsed(shap_module, model, bg)
    outs = model.predict_proba(rows).argmax(1)
    assert len(set(outs)) == 3
    scan, _ = _both(e, rows, bg, outs)
    raw = model.predict(rows, raw_score=True)[np.arange(50), outs]
    assert np.max(np.abs(scan.sum(axis=1) - raw)) < 1e-9
    want = np.asarray(e.shap_values(rows, check_additivity=False))[np.arange(50), :, outs]
    assert np.max(np.abs(scan[:, :-1] - want)) < 1e-5
