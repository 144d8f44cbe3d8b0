"""The preorder scan (_indep64._scans) computes interventional Tree SHAP from per-node bit
masks of the features a row and a reference fail, jumping over the subtrees neither
reaches, instead of shap's walk: it must give the walk's values (to 1e-12 of the output's
size), shap's (to float32 rounding, 1e-6 of max(1, |output|)) and add up to the float64 sum
of the trees (1e-9) on every shape of tree: trees of thousands of leaves from scikit-learn,
LightGBM and XGBoost, trees splitting on more than 64 features, a path over 64 distinct
features (walked, beside scanned trees), stumps, missing values and a per-row output of a
multiclass model."""

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


def _as_trees_read(e, a: np.ndarray) -> np.ndarray:
    """The rows as the trees compare them (XGBoost reads float32; the others as parsed)."""
    dtype = np.float32 if e.model.model_type == "xgboost" else e.model.input_dtype
    return np.asarray(a, dtype=np.float64).astype(dtype)


def _both(e, x: np.ndarray, bg: np.ndarray, outs=None) -> tuple[np.ndarray, np.ndarray]:
    scan = _indep64.interventional_values(e.model, x, bg, outs)
    walk = _indep64.interventional_values(e.model, x, bg, outs, scan=False)
    scale = np.maximum(1.0, np.abs(walk.sum(axis=1)))[:, None]
    assert np.max(np.abs(scan - walk) / scale) < 1e-12
    return scan, walk


def _scanned(e) -> np.ndarray:
    """Which trees the scan takes (the others have a path over 64 distinct features)."""
    m = e.model
    nodes = _indep64._pack(m, m.values.shape[0])
    one = np.zeros((1, int(nodes[:, :, 3].max()) + 1))
    phi = np.zeros((1, one.shape[1] + 1))
    return _indep64.kernel()[0](
        nodes, np.asarray(m.thresholds, dtype=np.float64), np.asarray(m.values, dtype=float),
        one, one != one, np.zeros(1, dtype=np.int64), one, one != one,
        _indep64._weights(64), 1, phi)


def _agrees(shap_module, model, x: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """Scan = walk = shap (output 0) and additivity; returns the trees' leaf counts."""
    e = _parsed(shap_module, model, bg)
    rows, back = _as_trees_read(e, x), _as_trees_read(e, bg)
    scan, _ = _both(e, rows.astype(np.float64), back.astype(np.float64))
    out = np.asarray(e.model.predict(rows.astype(np.float64))).reshape(len(x), -1)[:, 0]
    assert np.max(np.abs(scan.sum(axis=1) - out)) < 1e-9
    want = np.asarray(e.shap_values(rows, check_additivity=False))
    want = want[:, :, 0] if want.ndim == 3 else want
    scale = np.maximum(1.0, np.abs(out))[:, None]
    assert np.max(np.abs(scan[:, :-1] - want) / scale) < 1e-6  # shap sums in float32
    assert _scanned(e).all()
    return (e.model.children_left == -1).sum(axis=1)


def _data(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    x[rng.random(x.shape) < 0.03] = np.nan  # each library sends NaN to its learned side
    t = 3 * np.nan_to_num(x[:, 0]) - np.nan_to_num(x[:, 1]) ** 2 + rng.normal(0, 1, n)
    return x, t


def test_unlimited_depth_forest_of_thousands_of_leaves(shap_module) -> None:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    x, t = _data(6000, 8, 1)
    reg = RandomForestRegressor(3, random_state=0, n_jobs=1).fit(x, t)
    assert _agrees(shap_module, reg, x[:25], x[3000:3020]).min() > 3000
    noisy = np.digitize(t + np.random.default_rng(0).normal(0, 4, len(t)), [-2, 2])
    clf = RandomForestClassifier(3, random_state=0, n_jobs=1).fit(x, noisy)
    assert _agrees(shap_module, clf, x[:25], x[3000:3020]).min() > 1024


def test_lightgbm_of_thousands_of_leaves(shap_module) -> None:
    import lightgbm as lgb

    x, t = _data(6000, 8, 2)
    model = lgb.LGBMRegressor(n_estimators=3, num_leaves=3000, min_child_samples=1,
                              min_child_weight=0, verbose=-1, n_jobs=1).fit(x, t)
    assert _agrees(shap_module, model, x[:25], x[3000:3020]).min() == 3000


def test_xgboost_of_thousands_of_leaves(shap_module) -> None:
    import xgboost as xgb

    x, t = _data(8000, 8, 3)
    model = xgb.XGBRegressor(n_estimators=3, max_depth=0, grow_policy="lossguide",
                             max_leaves=4000, min_child_weight=0, n_jobs=1,
                             tree_method="hist").fit(x, t)
    assert _agrees(shap_module, model, x[:25], x[3000:3020]).min() > 1024


def test_more_than_64_features_on_a_tree_is_scanned(shap_module) -> None:
    from sklearn.tree import DecisionTreeRegressor

    rng = np.random.default_rng(5)
    x = rng.normal(size=(4000, 90))
    t = x @ rng.normal(size=90) + rng.normal(0, 0.1, 4000)
    model = DecisionTreeRegressor(random_state=0, max_leaf_nodes=600).fit(x, t)
    assert len(set(model.tree_.feature[model.tree_.feature >= 0])) > 64
    _agrees(shap_module, model, x[:12], x[50:70])


def test_a_path_over_64_features_is_walked_beside_scanned_trees(shap_module) -> None:
    """Row i is -1 on every feature but feature i: each split can isolate one row only,
    the most extreme target first, so a tree is a chain as deep as its distinct rows."""
    from sklearn.ensemble import RandomForestRegressor

    d = 100
    x = np.where(np.eye(d, dtype=bool), 1.0, -1.0)
    model = RandomForestRegressor(6, max_features=None, random_state=1, n_jobs=1).fit(
        x, np.arange(d, dtype=float))
    bg = x[::7].astype(np.float32).astype(np.float64)
    rows = x[1::9].astype(np.float32).astype(np.float64)
    e = _parsed(shap_module, model, bg)
    scanned = _scanned(e)
    assert 0 < scanned.sum() < len(scanned)
    scan, _ = _both(e, rows, bg)
    assert np.max(np.abs(scan.sum(axis=1) - model.predict(rows))) < 1e-9
    want = e.shap_values(rows.astype(np.float32), check_additivity=False)
    assert np.max(np.abs(scan[:, :-1] - want) / 100) < 1e-6


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
