"""Per-row explanations agree with shap called directly, add up, and read every model kind."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.ensemble import (
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.tree import DecisionTreeClassifier

from aiwarden.errors import ParameterError, SchemaError
from aiwarden.explain import explain_rows
from aiwarden.explain._codec import summarise_background

BG = 50


def _direct_tree(shap, model, x, bg):
    """shap itself, called the way its docs show, on the same background (path-dependent
    for HistGradientBoosting, as ExplainOptions.tree_perturbation='auto' does)."""
    if type(model).__name__.startswith("HistGradientBoosting"):
        e = shap.TreeExplainer(model, feature_perturbation="tree_path_dependent")
    else:
        e = shap.TreeExplainer(model, data=bg.to_numpy(),
                               feature_perturbation="interventional")
    v = np.asarray(e.shap_values(x.to_numpy(), check_additivity=False))
    base = np.asarray(e.expected_value).reshape(-1)
    if v.ndim == 3:
        return v[:, :, 1], base[1]
    return v, base[0]


def _classifiers():
    import lightgbm as lgb
    import xgboost as xgb

    return [RandomForestClassifier(20, max_depth=6, random_state=0),
            GradientBoostingClassifier(n_estimators=30, random_state=0),
            HistGradientBoostingClassifier(max_iter=30, random_state=0),
            DecisionTreeClassifier(max_depth=5, random_state=0),
            lgb.LGBMClassifier(n_estimators=30, verbose=-1, random_state=0),
            xgb.XGBClassifier(n_estimators=30, max_depth=4, random_state=0)]


@pytest.mark.parametrize("model", _classifiers(), ids=lambda m: type(m).__name__)
def test_tree_classifiers_equal_shap_and_add_up(model, xy, shap_module) -> None:
    x, y, _ = xy
    model.fit(x, y)
    rows = x.iloc[:40]
    r = explain_rows(model, rows, x, background_size=BG, seed=3)
    assert r.method == "tree" and r.background_size == BG
    bg = summarise_background(x, BG, 3)
    want, base = _direct_tree(shap_module, model, rows, bg)
    np.testing.assert_allclose(r.values, want, atol=1e-6, rtol=0)
    assert all(abs(e.base_value - base) < 1e-6 for e in r.explanations)
    assert all(e.explained_class == 1 for e in r.explanations)
    expected_space = ("probability" if isinstance(model, RandomForestClassifier |
                                                  DecisionTreeClassifier) else "margin")
    assert r.output_space == expected_space
    if type(model).__module__.startswith("xgboost"):
        # XGBoost sums its margin in float32: the residual is that rounding, within a few
        # float32 steps of the output (|margin| ~ 10 -> ~1e-6), not an explainer error
        assert all(abs(e.residual) <= 4 * np.spacing(np.float32(abs(e.output)))
                   for e in r.explanations)
    else:
        assert r.max_abs_residual < 1e-6
    # the output is the model's own: probability of class 1, or its raw margin
    if expected_space == "probability":
        np.testing.assert_allclose([e.output for e in r.explanations],
                                   model.predict_proba(rows)[:, 1], atol=1e-12)


@pytest.mark.parametrize("model", [RandomForestRegressor(20, random_state=0),
                                   GradientBoostingRegressor(n_estimators=30, random_state=0),
                                   ExtraTreesRegressor(10, random_state=0),
                                   HistGradientBoostingRegressor(max_iter=30)],
                         ids=lambda m: type(m).__name__)
def test_tree_regressors_equal_shap(model, xy, shap_module) -> None:
    x, _, t = xy
    model.fit(x, t)
    r = explain_rows(model, x.iloc[:30], x, background_size=BG)
    want, _ = _direct_tree(shap_module, model, x.iloc[:30], summarise_background(x, BG, 0))
    np.testing.assert_allclose(r.values, want, atol=1e-6, rtol=0)
    assert r.output_space == "prediction" and r.max_abs_residual < 1e-6


def test_path_dependent_tree_equals_shap(xy, shap_module) -> None:
    x, y, _ = xy
    model = RandomForestClassifier(10, random_state=0).fit(x, y)
    r = explain_rows(model, x.iloc[:20], x, tree_perturbation="tree_path_dependent")
    want = shap_module.TreeExplainer(model).shap_values(x.iloc[:20].to_numpy())[:, :, 1]
    np.testing.assert_allclose(r.values, want, atol=1e-6, rtol=0)
    assert r.max_abs_residual < 1e-6


@pytest.mark.parametrize("model", [LogisticRegression(), LinearRegression(), Ridge(1.0)],
                         ids=lambda m: type(m).__name__)
def test_linear_equals_shap_and_closed_form(model, xy, shap_module) -> None:
    x, y, t = xy
    target = y if isinstance(model, LogisticRegression) else t
    model.fit(x, target)
    r = explain_rows(model, x.iloc[:50], x, background_size=BG)
    bg = summarise_background(x, BG, 0)
    want = shap_module.LinearExplainer(model, bg.to_numpy()).shap_values(x.iloc[:50].to_numpy())
    np.testing.assert_allclose(r.values, want, atol=1e-6, rtol=0)
    # interventional linear SHAP is coef * (x - mean of the background)
    closed = np.ravel(model.coef_) * (x.iloc[:50].to_numpy() - bg.to_numpy().mean(axis=0))
    np.testing.assert_allclose(r.values, closed, atol=1e-9)
    assert r.method == "linear" and r.max_abs_residual < 1e-9
    assert r.output_space == ("margin" if isinstance(model, LogisticRegression)
                              else "prediction")


def test_multiclass_explains_the_predicted_class(shap_module) -> None:
    from sklearn.datasets import make_classification

    x, y = make_classification(400, 5, n_informative=3, n_classes=3, random_state=0)
    x = pd.DataFrame(x, columns=list("abcde"))
    model = RandomForestClassifier(10, random_state=0).fit(x, y)
    r = explain_rows(model, x.iloc[:30], x, background_size=BG)
    pred = model.predict_proba(x.iloc[:30]).argmax(axis=1)
    assert [e.explained_class for e in r.explanations] == pred.tolist()
    full = shap_module.TreeExplainer(model, data=summarise_background(x, BG, 0).to_numpy()
                                     ).shap_values(x.iloc[:30].to_numpy())
    np.testing.assert_allclose(r.values, full[np.arange(30), :, pred], atol=1e-6)
    fixed = explain_rows(model, x.iloc[:5], x, background_size=BG, target_class=2)
    assert {e.explained_class for e in fixed.explanations} == {2}
    with pytest.raises(ParameterError, match=r"target_class 7 .* classes: \[0, 1, 2\]"):
        explain_rows(model, x.iloc[:5], x, target_class=7)


def test_negative_class_of_a_margin_model_is_the_negated_margin(xy) -> None:
    x, y, _ = xy
    model = LogisticRegression().fit(x, y)
    pos = explain_rows(model, x.iloc[:10], x)
    neg = explain_rows(model, x.iloc[:10], x, target_class=0)
    np.testing.assert_allclose(neg.values, -pos.values)
    assert neg.max_abs_residual < 1e-9


def test_permutation_equals_shap_and_is_exactly_additive(xy, shap_module) -> None:
    x, y, _ = xy
    model = GradientBoostingClassifier(n_estimators=20, random_state=0).fit(x, y)
    r = explain_rows(model, x.iloc[:4], x, method="permutation", background_size=20,
                     max_evals=200, seed=5)
    bg = summarise_background(x, 20, 5).to_numpy()
    masker = shap_module.maskers.Independent(bg, max_samples=20)
    np.random.seed(5)
    direct = shap_module.PermutationExplainer(
        lambda a: model.predict_proba(pd.DataFrame(a, columns=x.columns)), masker, seed=5)(
        x.iloc[:4].to_numpy(), max_evals=200, silent=True)
    np.testing.assert_allclose(r.values, direct.values[:, :, 1], atol=1e-9)
    assert r.output_space == "probability" and r.max_abs_residual < 1e-9
    again = explain_rows(model, x.iloc[:4], x, method="permutation", background_size=20,
                         max_evals=200, seed=5)
    np.testing.assert_array_equal(again.values, r.values)


def test_kernel_equals_shap_on_the_kmeans_background(xy, shap_module) -> None:
    x, y, _ = xy
    model = LogisticRegression().fit(x, y)
    r = explain_rows(model, x.iloc[:3], x, method="kernel", background_size=BG,
                     kernel_background=10, kernel_samples=200)
    assert r.method == "kernel" and r.max_abs_residual < 1e-6
    # 5 features: 200 samples enumerate every coalition, so both are exact and equal
    summary = shap_module.kmeans(summarise_background(x, BG, 0).to_numpy(), 10)
    direct = shap_module.KernelExplainer(
        lambda a: model.predict_proba(pd.DataFrame(a, columns=x.columns)), summary
    ).shap_values(x.iloc[:3].to_numpy(), nsamples=200, l1_reg=False, silent=True)
    np.testing.assert_allclose(r.values, np.asarray(direct)[:, :, 1], atol=1e-9)


def test_pipeline_with_categories_is_explained_in_the_input_space(xy) -> None:
    x, y, _ = xy
    cat = x.copy()
    cat["shop"] = np.where(x.amount > 0.5, "web", np.where(x.age > 0, "store", "phone"))
    pipe = make_pipeline(
        make_column_transformer((OneHotEncoder(handle_unknown="ignore"), ["shop"]),
                                remainder="passthrough"),
        RandomForestClassifier(10, random_state=0)).fit(cat, y)
    r = explain_rows(pipe, cat.iloc[:5], cat, background_size=30, max_evals=200)
    assert r.method == "permutation" and r.max_abs_residual < 1e-9
    assert set(r.features) == set(cat.columns)
    shop = next(c for c in r.explanations[0].contributions if c.feature == "shop")
    assert shop.value == cat.shop.iloc[0]  # the raw category, not a one-hot column
    with pytest.raises(ParameterError, match="not a tree model; use 'permutation'"):
        explain_rows(pipe, cat.iloc[:2], cat, method="tree")
    native = cat.astype({"shop": "category"})  # a tree that reads categories itself
    hgb = HistGradientBoostingClassifier(max_iter=10, categorical_features="from_dtype"
                                         ).fit(native, y)
    with pytest.raises(ParameterError, match="categorical"):
        explain_rows(hgb, native.iloc[:2], native, method="tree")
    r = explain_rows(hgb, native.iloc[:2], native, background_size=20, max_evals=100)
    assert r.method == "permutation" and r.max_abs_residual < 1e-9


def test_registry_predictors_are_accepted(xy) -> None:
    pytest.importorskip("skops")
    pytest.importorskip("skl2onnx")
    import skops.io as sio
    from skl2onnx import to_onnx

    from aiwarden.registry import FORMATS

    x, y, _ = xy
    model = RandomForestClassifier(10, random_state=0).fit(x, y)
    pred = FORMATS["skops"].load(sio.dumps(model), model="m", version="1",
                                 trusted_types=["sklearn.tree._tree.Tree"])
    direct = explain_rows(model, x.iloc[:10], x)
    via = explain_rows(pred, x[["noise", *x.columns[:-1]]].iloc[:10], x)  # reordered columns
    assert via.method == "tree"
    np.testing.assert_allclose(via.values, direct.values, atol=1e-12)
    onnx = to_onnx(model, x.to_numpy(np.float32)[:1],
                   options={id(model): {"zipmap": False}}).SerializeToString()
    box = FORMATS["onnx"].load(onnx, model="m", version="2", inputs=list(x.columns))
    r = explain_rows(box, x.iloc[:3], x, background_size=20, max_evals=100)
    assert r.method == "permutation" and r.output_space == "probability"
    assert r.max_abs_residual < 1e-6


def test_lime_is_reproducible_and_finds_the_driver(xy) -> None:
    x, y, _ = xy
    model = LogisticRegression().fit(x, y)
    a = explain_rows(model, x.iloc[:3], x, method="lime", lime_samples=1000, seed=1)
    b = explain_rows(model, x.iloc[:3], x, method="lime", lime_samples=1000, seed=1)
    np.testing.assert_array_equal(a.values, b.values)
    assert [e.base_value for e in a.explanations] == [e.base_value for e in b.explanations]
    # a row is explained the same whatever rows come with it
    alone = explain_rows(model, x.iloc[[2]], x, method="lime", lime_samples=1000, seed=1)
    np.testing.assert_array_equal(alone.values[0], a.values[2])
    assert a.explanations[0].contributions[0].rule  # LIME's condition, e.g. "amount > 0.67"
    # the features that matter come in the same order whatever the seed (the last two,
    # score and noise, weigh ~0.02 and trade places: they are noise for LIME as well)
    for row, want in ((1, ["age", "amount", "hour"]), (2, ["amount", "hour", "age"])):
        for seed in range(4):
            e = explain_rows(model, x.iloc[[row]], x, method="lime", lime_samples=2000,
                             seed=seed).explanations[0]
            assert [c.feature for c in e.top(3)] == want, (row, seed)


def test_bad_input_names_the_problem(xy) -> None:
    x, y, _ = xy
    model = RandomForestClassifier(5, random_state=0).fit(x, y)
    with pytest.raises(SchemaError, match=r"rows lack the column\(s\) \['noise'\]"):
        explain_rows(model, x.drop(columns="noise").iloc[:2], x)
    with pytest.raises(ParameterError, match="'method' parameter of ExplainOptions"):
        explain_rows(model, x.iloc[:2], x, method="deep")
    with pytest.raises(ParameterError, match="not a linear model"):
        explain_rows(model, x.iloc[:2], x, method="linear")
    with pytest.raises(ParameterError, match="Unknown explain option"):
        explain_rows(model, x.iloc[:2], x, colour="red")
    with pytest.raises(ParameterError, match="no predict"):
        explain_rows(object(), x.iloc[:2], x)


def test_to_dict_is_json(xy) -> None:
    import json

    x, y, _ = xy
    model = LogisticRegression().fit(x, y)
    d = explain_rows(model, x.iloc[:2], x).to_dict()
    text = json.dumps(d, allow_nan=False)
    assert d["explanations"][0]["contributions"][0]["feature"] in x.columns
    assert '"output_space": "margin"' in text


def test_bare_arrays_take_the_models_column_names(xy) -> None:
    x, y, _ = xy
    model = RandomForestClassifier(5, random_state=0).fit(x, y)
    named = explain_rows(model, x.iloc[:5], x)
    bare = explain_rows(model, x.iloc[:5].to_numpy(), x.to_numpy())
    assert bare.features == tuple(x.columns)
    np.testing.assert_array_equal(bare.values, named.values)
    unnamed = RandomForestClassifier(5, random_state=0).fit(x.to_numpy(), y)
    r = explain_rows(unnamed, x.iloc[:5].to_numpy(), x.to_numpy())
    assert r.features == ("f0", "f1", "f2", "f3", "f4") and r.max_abs_residual < 1e-6


def _boosters():
    import lightgbm as lgb
    import xgboost as xgb

    return [("xgb-reg", xgb.XGBRegressor(n_estimators=30, max_depth=4, random_state=0)),
            ("lgb-reg", lgb.LGBMRegressor(n_estimators=30, verbose=-1, random_state=0)),
            ("xgb-clf", xgb.XGBClassifier(n_estimators=30, max_depth=4, random_state=0)),
            ("lgb-clf", lgb.LGBMClassifier(n_estimators=30, verbose=-1, random_state=0)),
            ("xgb-3", xgb.XGBClassifier(n_estimators=20, max_depth=3, random_state=0)),
            ("lgb-3", lgb.LGBMClassifier(n_estimators=20, verbose=-1, random_state=0))]


@pytest.mark.parametrize("perturbation", ["auto", "tree_path_dependent"])
@pytest.mark.parametrize(("kind", "model"), _boosters(), ids=lambda v: v if isinstance(v, str)
                         else "")
def test_boosters_equal_shap_both_ways(kind, model, perturbation, xy, shap_module) -> None:
    """XGBoost and LightGBM regressors, binary and 3-class classifiers, both Tree SHAP
    algorithms (``auto``: interventional, but path-dependent for multiclass XGBoost, whose
    interventional values shap 0.51 computes from a margin 0.18 off XGBoost's own): shap's
    own values to 1e-6, adding up to the booster's own margin within its float32 rounding
    (XGBoost) or 1e-6 (LightGBM)."""
    import warnings

    from aiwarden.explain._attributions import tree_perturbation

    x, y, t = xy
    target = t if kind.endswith("reg") else y if kind.endswith("clf") else np.digitize(
        x.amount, [-0.5, 0.5])
    model.fit(x, target)
    rows = x.iloc[:30]
    r = explain_rows(model, rows, x, background_size=BG, tree_perturbation=perturbation)
    used = tree_perturbation(model, perturbation)
    assert used == ("tree_path_dependent" if kind == "xgb-3" else perturbation
                    if perturbation != "auto" else "interventional")
    bg = summarise_background(x, BG, 0).to_numpy() if used == "interventional" else None
    with warnings.catch_warnings():  # shap's note on LightGBM's binary output layout
        warnings.simplefilter("ignore", UserWarning)
        e = shap_module.TreeExplainer(model, data=bg, feature_perturbation=used)
        want = np.asarray(e.shap_values(rows.to_numpy(), check_additivity=False))
    if want.ndim == 3:  # per class: binary explains class 1, multiclass the predicted one
        k = np.ones(30, int) if kind.endswith("clf") else model.predict_proba(rows).argmax(1)
        want = want[np.arange(30), :, k]
    elif isinstance(want, np.ndarray) and want.ndim == 2 and kind == "lgb-clf" and \
            want.shape[0] == 2:  # an old list layout [class 0, class 1]
        want = want[1]
    assert r.method == "tree"
    # float64 answers (output_precision) equal shap's float32 ones to its rounding, which
    # scales with the output (XGBoost's pred_contribs of a regressor: values of hundreds)
    scale = (np.maximum(1.0, np.abs([e.output for e in r.explanations]))[:, None]
             if "float64" in r.output_precision else 1.0)
    assert np.max(np.abs(r.values - want) / scale) < 1e-6
    worst = max(abs(e.residual) / max(1.0, abs(e.output)) for e in r.explanations)
    assert worst < (4 * np.finfo(np.float32).eps * 30 if kind.startswith("xgb") else 1e-6)
