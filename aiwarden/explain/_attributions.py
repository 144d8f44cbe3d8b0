"""Run one explainer over encoded rows: SHAP values, base values and outputs as arrays.

Every method returns the same shape of answer so rows, windows and drift share one code
path: ``values`` (rows x features), and per row the ``base`` value, the model ``output``
(computed from the model itself, not from the explainer) and the explained class index.
shap comes with ``aiwarden[explain]``; this module is reached only once an explainer exists.
"""

from __future__ import annotations

import ast
import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from aiwarden.errors import Cancelled, DataError, ParameterError
from aiwarden.explain import _deps
from aiwarden.explain._codec import FrameCodec
from aiwarden.explain._model import ModelAdapter, splits_on_categories
from aiwarden.explain.options import LIME_GAP_SD, ExplainOptions

__all__ = ["Attributions", "StopCheck", "compute", "resolve_method", "tree_perturbation"]

#: asked between chunks of work; True stops it with :class:`~aiwarden.errors.Cancelled`
StopCheck = Callable[[], bool] | None
_TREE_CHUNK = 1000  # rows per Tree SHAP call when a caller may stop the work


@dataclass
class Attributions:
    """Raw results; ``space`` is ``probability``, ``margin`` or ``prediction``."""

    method: str
    space: str
    values: np.ndarray
    base: np.ndarray
    output: np.ndarray
    class_index: np.ndarray | None
    details: list[list[str]] | None = None  # LIME's rule per feature, per row
    precision: str = ""  # how ``output`` was summed, when it is not the model's own answer
    #: LIME per row: (samples used, unresolved ties among the first lime_top + 1 ranks)
    lime_fits: list[tuple[int, list[dict[str, Any]]]] | None = None


def stop_here(should_stop: StopCheck) -> None:
    """Raise :class:`Cancelled` when the caller's ``should_stop`` says so."""
    if should_stop is not None and should_stop():
        raise Cancelled("The explanation stopped: its caller asked it to (should_stop).")


@contextlib.contextmanager
def _numpy_seed(seed: int) -> Iterator[None]:
    """shap's Permutation and Kernel explainers draw from numpy's global generator: seed it
    for the call and give the caller its state back afterwards."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def resolve_method(adapter: ModelAdapter, frame: pd.DataFrame, method: str) -> str:
    """``auto``: Tree for tree ensembles and Linear for linear models when the rows are all
    numeric (they then are the model's own input); Permutation over the whole model else."""
    numeric = all(pd.api.types.is_numeric_dtype(t) and not isinstance(t, pd.CategoricalDtype)
                  for t in frame.dtypes)
    family = adapter.family
    if method == "auto":
        return family if family in ("tree", "linear") and numeric else "permutation"
    if method in ("tree", "linear"):
        if family != method:
            what = type(adapter.estimator or adapter.call).__name__
            why = ("its trees split on sets of categories (categorical features), which "
                   "Tree SHAP reads as thresholds" if splits_on_categories(adapter.estimator)
                   else f"it is not a {method} model")
            raise ParameterError(f"method={method!r} cannot read a {what}: {why}; use "
                                 "'permutation' or 'auto'.", "method")
        if not numeric:
            raise ParameterError(f"method={method!r} needs numeric columns (the model's own "
                                 "input); this frame has categorical columns: use "
                                 "'permutation' to explain the whole pipeline.", "method")
    return method


def _class_index(adapter: ModelAdapter, frame: pd.DataFrame, opts: ExplainOptions,
                 proba: np.ndarray | None = None) -> np.ndarray | None:
    """The explained class per row: ``target_class``, the positive class of a binary model,
    or each row's predicted class."""
    if not adapter.is_classifier:
        return None
    classes = adapter.classes or []
    n = len(frame)
    if opts.target_class is not None:
        if opts.target_class not in classes:
            raise ParameterError(f"target_class {opts.target_class!r} is not a class of the "
                                 f"model; classes: {classes}.", "target_class")
        return np.full(n, classes.index(opts.target_class), dtype=np.intp)
    if len(classes) == 2:
        return np.ones(n, dtype=np.intp)
    if proba is None and not hasattr(adapter.call, "predict_proba"):
        # a margin classifier (LinearSVC, RidgeClassifier, a hinge SGD): its predicted class
        at = {str(c): i for i, c in enumerate(classes)}
        got = adapter.call.predict(adapter.model_input(frame))
        return np.array([at[str(c)] for c in np.asarray(got).ravel()], dtype=np.intp)
    p = adapter.proba(frame) if proba is None else proba
    return np.argmax(p, axis=1).astype(np.intp)


def _pick(values: Any, base: Any, k: np.ndarray | None, n: int, d: int
          ) -> tuple[np.ndarray, np.ndarray, bool]:
    """Per-row class slices of multi-output answers; ``single`` marks one output only."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 3 and values.shape[1] != d:  # (classes, rows, features): old layout
        values = np.moveaxis(values, 0, -1)
    base = np.asarray(base, dtype=np.float64)
    rows = np.arange(n)
    if values.ndim == 3:
        kk = np.zeros(n, dtype=np.intp) if k is None else k
        b = base[rows, kk] if base.ndim == 2 else base.reshape(-1)[kk]
        return values[rows, :, kk], b, False
    flat = base.reshape(-1)
    b = flat[:n].copy() if flat.size == n else np.full(n, flat[0])
    return values.reshape(n, d), b, True


def _margin(est: Any, x: Any) -> np.ndarray:
    """The raw score a tree ensemble or linear classifier sums to (before the link)."""
    module = type(est).__module__.split(".")[0]
    if module == "lightgbm":
        return np.asarray(est.predict(x, raw_score=True), dtype=np.float64)
    if module == "xgboost" and type(est).__name__ != "Booster":
        return np.asarray(est.predict(x, output_margin=True), dtype=np.float64)
    if hasattr(est, "decision_function"):
        return np.asarray(est.decision_function(x), dtype=np.float64)
    raise DataError(f"Cannot read the raw margin of a {type(est).__name__}.")


def _margin_output(adapter: ModelAdapter, x: Any, k: np.ndarray | None,
                   single: bool) -> np.ndarray:
    raw = _margin(adapter.estimator, x)
    if raw.ndim == 2 and raw.shape[1] > 1:
        return raw[np.arange(len(raw)), k]
    raw = raw.reshape(-1)
    return np.where(k == 1, raw, -raw) if single and k is not None else raw


def _flip_binary(values: np.ndarray, base: np.ndarray, k: np.ndarray | None, single: bool
                 ) -> tuple[np.ndarray, np.ndarray]:
    """One margin output explains class 1; class 0's margin is its negation."""
    if single and k is not None:
        sign = np.where(k == 1, 1.0, -1.0)
        return values * sign[:, None], base * sign
    return values, base


def tree_perturbation(estimator: Any, asked: str) -> str:
    """``auto``: interventional (against the background, like every other method) except
    where shap 0.51's own reading of the trees does not reproduce the model, so only the
    path-dependent algorithm adds up (options.py): HistGradientBoosting, and XGBoost with
    more than two classes (its per-class intercepts: shap's margin missed XGBoost 3.2's by
    up to 0.18; since ``_xgb_intercepts`` reads them, both algorithms add up to ~1e-13 in
    float64 and this choice only keeps ``auto``'s answers as they were)."""
    if asked != "auto":
        return asked
    hist = type(estimator).__name__.startswith("HistGradientBoosting")
    xgb_multi = (type(estimator).__module__.split(".")[0] == "xgboost"
                 and (getattr(estimator, "n_classes_", 0) or 0) > 2)
    return "tree_path_dependent" if hist or xgb_multi else "interventional"


def _tree(adapter: ModelAdapter, frame: pd.DataFrame, bg: pd.DataFrame,
          opts: ExplainOptions, should_stop: StopCheck = None) -> Attributions:
    shap = _deps.shap()
    x, xb = adapter.model_input(frame), adapter.model_input(bg)
    perturbation = tree_perturbation(adapter.estimator, opts.tree_perturbation)
    data = xb if perturbation == "interventional" else None
    try:
        explainer = shap.TreeExplainer(_readable(adapter.estimator), data=data,
                                       feature_perturbation=perturbation,
                                       model_output="raw")
    except Exception as exc:
        raise ParameterError(f"shap's TreeExplainer cannot read this "
                             f"{type(adapter.estimator).__name__}: {exc}", "method") from None
    _xgb_intercepts(explainer.model)
    tree_output = getattr(explainer.model, "tree_output", None)
    space = ("probability" if tree_output == "probability"
             else "margin" if adapter.is_classifier else "prediction")
    k = _class_index(adapter, frame, opts)
    exact = (_tree64(adapter, explainer, frame, x, k, space, should_stop)
             if perturbation == "interventional"
             else _xgb_path64(adapter, explainer, frame, x, k, space, should_stop))
    if exact is not None:
        return exact
    raw = _tree_values(explainer, x, should_stop)
    values, base, single = _pick(raw, explainer.expected_value, k, len(frame), frame.shape[1])
    if space == "margin":
        values, base = _flip_binary(values, base, k, single)
    return Attributions("tree", space, values, base, _native_output(adapter, frame, x, k,
                                                                    space, single), k)


def _readable(estimator: Any) -> Any:
    """What shap's TreeExplainer is given: the estimator itself, except a scikit-learn
    GradientBoostingClassifier with more than two classes, which shap 0.51 refuses ("binary
    classification only") and is handed in shap's own dictionary format: each stage's tree
    for class c adds its leaf values times the learning rate to output c, and the init's
    per-class raw score is the base offset. The trees then sum to ``decision_function``
    (``_parsed`` checks it on the rows before any value is used). An init that is not a
    constant (a user's estimator) is left to shap, which refuses it."""
    if (type(estimator).__name__ != "GradientBoostingClassifier"
            or type(estimator).__module__.split(".")[0] != "sklearn"
            or getattr(estimator, "estimators_", np.empty((0, 1))).shape[1] < 2):
        return estimator
    offset = _gb_offset(estimator)
    if offset is None:
        return estimator
    n_out = estimator.estimators_.shape[1]
    trees = []
    for stage in estimator.estimators_:
        for c, regressor in enumerate(stage):
            t = regressor.tree_
            values = np.zeros((t.node_count, n_out))
            values[:, c] = t.value[:, 0, 0] * estimator.learning_rate
            missing_left = getattr(t, "missing_go_to_left", None)
            default = (t.children_left if missing_left is None
                       else np.where(missing_left, t.children_left, t.children_right))
            trees.append({"children_left": t.children_left, "children_right": t.children_right,
                          "children_default": default, "features": t.feature,
                          "thresholds": t.threshold.astype(np.float64), "values": values,
                          "node_sample_weight": t.weighted_n_node_samples.astype(np.float64)})
    return {"trees": trees, "base_offset": offset, "input_dtype": np.float32,
            "internal_dtype": np.float64, "tree_output": "raw_value"}


def _gb_offset(estimator: Any) -> np.ndarray | None:
    """The per-class raw score a GradientBoostingClassifier starts from: its
    ``decision_function`` on any row less what the trees add there (the init is a constant:
    'zero' or a DummyClassifier's class priors through the loss's link); None for any other
    init."""
    from sklearn.dummy import DummyClassifier

    init = estimator.init_
    if not (init == "zero" if isinstance(init, str) else isinstance(init, DummyClassifier)):
        return None
    row = np.zeros((1, estimator.n_features_in_), dtype=np.float32)
    names = getattr(estimator, "feature_names_in_", None)
    raw = np.asarray(estimator.decision_function(
        row if names is None else pd.DataFrame(row, columns=names)), dtype=np.float64)[0]
    added = sum(np.array([r.tree_.predict(row).reshape(-1)[0] for r in stage])
                for stage in estimator.estimators_) * estimator.learning_rate
    return raw - added


#: XGBoost objectives whose intercept is saved as a probability or a mean, not a margin
#: (what shap 0.51's own loader converts)
_XGB_LOGIT = ("binary:logistic", "reg:logistic")
_XGB_LOG = ("reg:gamma", "reg:tweedie", "count:poisson", "survival:cox", "survival:aft")


def _xgb_intercepts(model: Any) -> None:
    """Give shap's parsed XGBoost model the intercepts XGBoost adds. XGBoost >= 3.0 saves
    ``base_score`` per class or target ([0.0175, -0.0088, -0.0088] for a 3-class model) and
    shap 0.51 reads the first for every output: its parsed trees missed classes 1 and 2's
    margin by 0.026 there. XGBoost also adds them as float32, the link (logit, log) taken in
    float32, where shap reads the printed decimal as float64 (1001.4065 for XGBoost's
    1001.40649414: 6e-6). ``_parsed`` still checks the result against the model's margin."""
    if getattr(model, "model_type", "") != "xgboost":
        return
    learner = json.loads(model.original_model.save_config())["learner"]
    saved = learner["learner_model_param"]["base_score"]
    values = np.asarray(ast.literal_eval(saved) if isinstance(saved, str) else saved,
                        dtype=np.float32).reshape(-1)
    if values.size == 1:  # one intercept for every output (XGBoost < 3.0 and one output)
        values = np.repeat(values, model.num_outputs)
    if values.size != model.num_outputs:
        return  # a layout not known here: shap's reading stands
    name = learner["objective"]["name"]
    if name in _XGB_LOGIT:
        values = np.log(values / (np.float32(1) - values))
    elif name in _XGB_LOG:
        values = np.log(values)
    model.base_offset = values.astype(np.float64).astype(model.internal_dtype)


def _native_output(adapter: ModelAdapter, frame: pd.DataFrame, x: Any, k: np.ndarray | None,
                   space: str, single: bool) -> np.ndarray:
    """What the model itself answers, in the explained space."""
    if space == "margin":
        return _margin_output(adapter, x, k, single)
    if space == "probability":
        return adapter.proba(frame)[np.arange(len(frame)), k]
    return adapter.predict(frame)


def _tree_input(explainer: Any, x: Any) -> np.ndarray:
    """The rows as the trees compare them, held in float64: XGBoost reads every input as
    float32 (shap 0.51 casts only some XGBoost models' rows), the others as shap's parser
    says (float32 for scikit-learn, float64 for LightGBM)."""
    arr = np.asarray(x, dtype=np.float64)
    model = explainer.model
    dtype = np.float32 if getattr(model, "model_type", "") == "xgboost" else model.input_dtype
    return arr.astype(dtype).astype(np.float64)


def _parsed(adapter: ModelAdapter, explainer: Any, frame: pd.DataFrame, x: Any,
            k: np.ndarray | None, space: str
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool] | None:
    """The rows as the trees compare them, the output explained per row, the float64 sum
    of shap's parsed trees for it and whether the model has one output; None when the
    parsed trees do not reproduce the model's own answer to float32 rounding (or cannot be
    summed: no numba, a transform other than the identity)."""
    from aiwarden.explain import _indep64

    model = explainer.model
    if (getattr(model, "children_left", None) is None or model.model_output != "raw"
            or model.get_transform() != "identity" or _indep64.kernel() is None):
        return None
    n = len(frame)
    single = model.values.shape[2] == 1
    outs = np.zeros(n, dtype=np.intp) if single or k is None else k
    xt = _tree_input(explainer, x)
    sums = np.asarray(model.predict(xt), dtype=np.float64).reshape(n, -1)[np.arange(n), outs]
    native = _native_output(adapter, frame, x, k, space, single)
    if single and k is not None:
        native = np.where(k == 1, native, -native)  # back to class 1's margin to compare
    # float32 sums round at the size of their partial sums, which can exceed the output
    # (a regressor's base 998 and trees taking a row to 0.35: XGBoost missed the float64
    # sum by 5e-5, 1.6e-4 of that output): bound them by the base and each tree's largest
    # |leaf|
    leaves = np.abs(np.asarray(model.values, dtype=np.float64))
    bound = (np.abs(np.asarray(model.base_offset, dtype=np.float64).reshape(-1))
             + leaves.max(axis=1).sum(axis=0))[outs]
    scale = np.maximum(np.maximum(1.0, np.abs(native)), bound)
    if not np.all(np.abs(sums - native) <= _PARSE_TOLERANCE * scale):
        return None
    return xt, outs, sums, single


def _exact(space: str, phi: np.ndarray, sums: np.ndarray, k: np.ndarray | None,
           single: bool) -> Attributions:
    """Attributions from float64 ``phi`` (values, then the base value) and tree sums."""
    d = phi.shape[1] - 1
    values, base = phi[:, :d], phi[:, d]
    if single:
        values, base = _flip_binary(values, base, k, True)
        sums = np.where(k == 1, sums, -sums) if k is not None else sums
    return Attributions("tree", space, values, base, sums, k, precision=_PRECISION)


def _tree64(adapter: ModelAdapter, explainer: Any, frame: pd.DataFrame, x: Any,
            k: np.ndarray | None, space: str, should_stop: StopCheck) -> Attributions | None:
    """Interventional Tree SHAP in float64 (_indep64: shap's algorithm, whose own C code
    keeps thresholds, leaf values and sums in float32) on the trees shap parsed, and the
    output as the float64 sum of the same trees: the residual is then the algorithm's, ~1e-12,
    not float32 rounding (XGBoost's own margin is a float32 sum, 1e-6 to 1e-3 off). None
    when the parsed trees do not reproduce the model (``_parsed``): shap's own values."""
    from aiwarden.explain import _indep64

    parsed = _parsed(adapter, explainer, frame, x, k, space)
    if parsed is None:
        return None
    xt, outs, sums, single = parsed
    bt = _tree_input(explainer, explainer.data)
    n, d = frame.shape
    phi = np.empty((n, d + 1))
    for i in range(0, n, _TREE_CHUNK):
        stop_here(should_stop)
        phi[i:i + _TREE_CHUNK] = _indep64.interventional_values(
            explainer.model, xt[i:i + _TREE_CHUNK], bt, outs[i:i + _TREE_CHUNK])
    return _exact(space, phi, sums, k, single)


def _xgb_path64(adapter: ModelAdapter, explainer: Any, frame: pd.DataFrame, x: Any,
                k: np.ndarray | None, space: str, should_stop: StopCheck
                ) -> Attributions | None:
    """Path-dependent Tree SHAP of XGBoost in float64: shap hands XGBoost models to
    XGBoost's own ``pred_contribs``, float32 (residual 7.6e-6 on a 100-tree depth-6
    classifier, 3e-3 on a regressor predicting ~1,000; docs/explain.md); shap's own C
    algorithm (``dense_tree_shap``, double throughout) on the trees it parsed adds up to
    their float64 sum. Other models: None (LightGBM's own contributions are float64,
    scikit-learn's go through that C code already)."""
    model = explainer.model
    if getattr(model, "model_type", "") != "xgboost":
        return None
    parsed = _parsed(adapter, explainer, frame, x, k, space)
    if parsed is None:
        return None
    xt, outs, sums, single = parsed
    from shap import _cext
    from shap.explainers._tree import feature_perturbation_codes, output_transform_codes

    n, d = frame.shape
    limit = model.values.shape[0] if model.tree_limit is None else model.tree_limit
    phi = np.empty((n, d + 1))
    for i in range(0, n, _TREE_CHUNK):
        stop_here(should_stop)
        part = np.ascontiguousarray(xt[i:i + _TREE_CHUNK])
        out = np.zeros((len(part), d + 1, model.num_outputs))
        _cext.dense_tree_shap(
            model.children_left, model.children_right, model.children_default,
            model.features, model.thresholds, model.threshold_types, model.values,
            model.node_sample_weight, model.max_depth, part, np.isnan(part), None, None,
            None, limit, model.base_offset, out,
            feature_perturbation_codes["tree_path_dependent"],
            output_transform_codes["identity"], False)
        phi[i:i + _TREE_CHUNK] = out[np.arange(len(part)), :, outs[i:i + _TREE_CHUNK]]
    # the C code's base value reads each tree's root value, which shap's XGBoost parser
    # leaves at 0: the cover-weighted mean of the leaves instead (what the values sum to)
    cover = np.asarray(model.node_sample_weight[:limit], dtype=np.float64)
    leaf = (model.children_left[:limit] < 0)[:, :, None]
    leaf_values = np.asarray(model.values[:limit], dtype=np.float64)
    means = (np.where(leaf, leaf_values, 0.0) * cover[:, :, None]).sum(axis=1) / np.maximum(
        cover[:, :1], 1e-300)
    base = np.asarray(model.base_offset, dtype=np.float64).reshape(-1) + means.sum(axis=0)
    phi[:, d] = base[outs]
    return _exact(space, phi, sums, k, single)


#: the parsed trees' float64 sum may differ from the model's own answer by its float32
#: rounding (measured 1.2e-6 relative for a 300-tree XGBoost regressor; 1.7e-7 of the
#: partial sums' bound for a 100-tree one); a misread tree (shap 0.51's XGBoost multiclass
#: intercepts: 0.18) does not pass
_PARSE_TOLERANCE = 1e-5
_PRECISION = ("float64: the trees' leaf values summed in float64 over the rows cast as the "
              "trees compare them (float32 for XGBoost and scikit-learn, float64 for "
              "LightGBM); the model's own output may differ by its float32 rounding")


def _tree_values(explainer: Any, x: Any, should_stop: StopCheck) -> Any:
    """shap's C code cannot be interrupted: a caller that may stop the work gets it in
    chunks of rows (each row's values do not depend on the others). ``from_call`` only
    silences shap's note that LightGBM's binary layout changed (a UserWarning, an error
    under ``-W error``), which ``_pick`` reads either way."""
    n = len(x)
    if should_stop is None or n <= _TREE_CHUNK:
        stop_here(should_stop)
        return explainer.shap_values(x, check_additivity=False, from_call=True)
    parts = []
    for i in range(0, n, _TREE_CHUNK):
        stop_here(should_stop)
        part = x.iloc[i:i + _TREE_CHUNK] if isinstance(x, pd.DataFrame) else x[i:i + _TREE_CHUNK]
        parts.append(np.asarray(explainer.shap_values(part, check_additivity=False,
                                                      from_call=True)))
    axis = 1 if parts[0].ndim == 3 and parts[0].shape[1] != x.shape[1] else 0
    return np.concatenate(parts, axis=axis)  # (classes, rows, features): the old layout


def _linear(adapter: ModelAdapter, frame: pd.DataFrame, bg: pd.DataFrame,
            opts: ExplainOptions) -> Attributions:
    shap = _deps.shap()
    x = frame.to_numpy(dtype=np.float64)
    explainer = shap.LinearExplainer(adapter.estimator, bg.to_numpy(dtype=np.float64))
    k = _class_index(adapter, frame, opts)
    raw = explainer.shap_values(x)
    values, base, single = _pick(raw, explainer.expected_value, k, len(frame), frame.shape[1])
    if adapter.is_classifier:
        values, base = _flip_binary(values, base, k, single)
        output = _margin_output(adapter, adapter.model_input(frame), k, single)
        return Attributions("linear", "margin", values, base, output, k)
    return Attributions("linear", "prediction", values, base, adapter.predict(frame), k)


def _black_box(adapter: ModelAdapter, codec: FrameCodec, should_stop: StopCheck = None
               ) -> Any:
    def f(arr: np.ndarray) -> np.ndarray:
        stop_here(should_stop)  # shap and lime call the model in batches: stop between them
        return adapter.outputs(codec.decode(np.asarray(arr, dtype=np.float64)))
    return f


def _sampled(adapter: ModelAdapter, frame: pd.DataFrame, bg: pd.DataFrame,
             opts: ExplainOptions, method: str, should_stop: StopCheck = None
             ) -> Attributions:
    shap = _deps.shap()
    codec = FrameCodec(frame, bg)
    xe, be = codec.encode(frame), codec.encode(bg)
    f = _black_box(adapter, codec, should_stop)
    out_all = f(xe)
    k = _class_index(adapter, frame, opts, out_all if adapter.is_classifier else None)
    n, d = xe.shape
    with _numpy_seed(opts.seed):
        if method == "permutation":
            masker = shap.maskers.Independent(be, max_samples=len(be))
            explainer = shap.PermutationExplainer(f, masker, seed=opts.seed)
            evals = opts.max_evals or max(500, 2 * d + 1)
            if evals < 2 * d + 1:
                raise ParameterError(f"max_evals must be at least 2 * features + 1 = "
                                     f"{2 * d + 1} for {d} features. Got {evals}.", "max_evals")
            res = explainer(xe, max_evals=evals, silent=True)
            raw, base = res.values, res.base_values
        else:
            k_bg = min(opts.kernel_background, len(be))
            summary = (shap.kmeans(be, k_bg) if not codec.categorical and k_bg < len(be)
                       else be[np.random.default_rng(opts.seed).choice(len(be), k_bg,
                                                                          replace=False)])
            explainer = shap.KernelExplainer(f, summary)
            raw = explainer.shap_values(xe, nsamples=opts.kernel_samples or "auto",
                                        l1_reg=False, silent=True)
            base = explainer.expected_value
    values, base, _ = _pick(raw, base, k, n, d)
    output = out_all[np.arange(n), k] if k is not None else out_all
    space = "probability" if adapter.is_classifier else "prediction"
    return Attributions(method, space, values, base, output, k)


class _RidgeRecorder:
    """lime's own surrogate (``Ridge(alpha=1)``, as ``LimeBase`` builds it) that keeps what
    it was fitted on, so the weights' seed standard errors can be read off the same fit."""

    def __init__(self, random_state: Any) -> None:
        from sklearn.linear_model import Ridge

        self.ridge = Ridge(alpha=1, fit_intercept=True, random_state=random_state)
        self.fitted: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def fit(self, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray) -> _RidgeRecorder:
        self.ridge.fit(x, y, sample_weight=sample_weight)
        self.fitted = (np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64),
                       np.asarray(sample_weight, dtype=np.float64))
        return self

    def __getattr__(self, name: str) -> Any:  # coef_, intercept_, score, predict
        return getattr(self.__dict__["ridge"], name)


def _weight_cov(rec: _RidgeRecorder) -> np.ndarray:
    """Sandwich (HC0) covariance of the weighted ridge slopes: the spread of the weights
    over the seed, i.e. over the i.i.d. perturbed samples (the surrogate is misspecified, so
    the model-based formula would not do). O(samples x features^2)."""
    assert rec.fitted is not None
    x, y, w = rec.fitted
    sw = w.sum()
    xc = x - (w @ x) / sw
    e = y - x @ rec.ridge.coef_ - rec.ridge.intercept_
    a = xc.T @ (xc * w[:, None]) + np.eye(x.shape[1])  # alpha = 1
    psi = xc * (w * e)[:, None]
    a_inv = np.linalg.pinv(a)
    return a_inv @ (psi.T @ psi) @ a_inv


def _gap_z(w: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Features by |weight| (the order explanations list them) and, per adjacent pair of
    ranks, the |weight| gap in seed standard deviations of that gap."""
    order = np.argsort(-np.abs(w), kind="stable")
    a, b = order[:-1], order[1:]
    s = np.sign(w)
    var = (cov[a, a] + cov[b, b] - 2 * s[a] * s[b] * cov[a, b]).clip(min=1e-300)
    return order, (np.abs(w[a]) - np.abs(w[b])) / np.sqrt(var)


def _next_samples(n: int, z: np.ndarray, opts: ExplainOptions) -> int | None:
    """The next sample count, or None to stop: the gap between ranks ``lime_top`` and
    ``lime_top`` + 1 (which features make the top ``lime_top``) is resolved (>= LIME_GAP_SD),
    or the cap is reached (a true tie stays one: reported). Ties inside the top are
    reported, not grown for. Doubles, or jumps to the power-of-two multiple the 1/sqrt law
    predicts, capped at ``lime_max_samples``: at most start x (1 + 2 + 4 + 8) samples with the
    defaults (an observed gap is itself noisy, so a small one is not taken as a true tie)."""
    cap, top = opts.lime_max_samples, opts.lime_top
    if n >= cap or top > len(z):
        return None
    gap = float(z[top - 1])
    if gap >= LIME_GAP_SD:
        return None
    need = n * (LIME_GAP_SD / max(gap, 1e-9)) ** 2
    nxt = 2 * n
    while nxt < need and nxt < cap:
        nxt *= 2
    return min(nxt, cap)


def _lime(adapter: ModelAdapter, frame: pd.DataFrame, bg: pd.DataFrame,
          opts: ExplainOptions, should_stop: StopCheck = None) -> Attributions:
    lt = _deps.lime_tabular()
    codec = FrameCodec(frame, bg)
    xe, be = codec.encode(frame), codec.encode(bg)
    f = _black_box(adapter, codec, should_stop)
    out_all = f(xe)
    k = _class_index(adapter, frame, opts, out_all if adapter.is_classifier else None)
    n, d = xe.shape
    names = list(frame.columns)
    _no_missing_for_lime(codec, names, xe, be)
    cat_names = {j: [str(v) for v in codec.categories[j]] for j in codec.categorical}
    values, base = np.zeros((n, d)), np.zeros(n)
    details: list[list[str]] = []
    fits: list[tuple[int, list[dict[str, Any]]]] = []
    mode = "classification" if adapter.is_classifier else "regression"
    for i in range(n):
        label = int(k[i]) if k is not None else 1
        kw: dict[str, Any] = {"labels": (label,)} if k is not None else {}
        samples: int | None = int(opts.lime_samples)
        while samples is not None:
            # a fresh explainer per fit: row i's answer depends on (seed, row, background,
            # sample count) only, and equals lime called directly with them
            explainer = lt.LimeTabularExplainer(
                be, mode=mode, feature_names=names, categorical_features=codec.categorical,
                categorical_names=cat_names, discretize_continuous=True,
                random_state=opts.seed)
            rec = _RidgeRecorder(explainer.random_state)
            exp = explainer.explain_instance(xe[i], f, num_features=d, num_samples=samples,
                                             model_regressor=rec, **kw)
            key = label if k is not None else next(iter(exp.local_exp))
            # lime lists (feature, rec.coef_[m]) sorted stably by |coef|: the same sort of
            # the fitted columns gives each column's feature
            pairs = exp.local_exp[key]
            m_order = sorted(range(len(pairs)), key=lambda m: abs(rec.coef_[m]), reverse=True)
            cols = np.empty(len(pairs), dtype=np.intp)
            cols[m_order] = [j for j, _ in pairs]
            cov = np.zeros((d, d))
            cov[np.ix_(cols, cols)] = _weight_cov(rec)
            w = np.zeros(d)
            w[[j for j, _ in pairs]] = [v for _, v in pairs]
            order, z = _gap_z(w, cov)
            used = samples
            samples = _next_samples(samples, z, opts) if opts.lime_adaptive else None
        rules = [""] * d
        for (j, wj), (rule, _) in zip(exp.local_exp[key], exp.as_list(label=key), strict=True):
            values[i, j], rules[j] = wj, rule
        base[i] = float(np.ravel(exp.intercept[key])[0])
        details.append(rules)
        fits.append((used, _ties(order, z, names, used, opts.lime_top)))
    output = out_all[np.arange(n), k] if k is not None else out_all
    space = "probability" if adapter.is_classifier else "prediction"
    return Attributions("lime", space, values, base, output, k, details, lime_fits=fits)


def _ties(order: np.ndarray, z: np.ndarray, names: list[str], samples: int, top: int
          ) -> list[dict[str, Any]]:
    """Adjacent ranks among the first ``top`` + 1 whose |weight| gap is under LIME_GAP_SD
    seed standard deviations: which features another seed may list in either order."""
    out = []
    for r in np.flatnonzero(z[:top] < LIME_GAP_SD).tolist():
        out.append({"ranks": [r + 1, r + 2],
                    "features": [names[order[r]], names[order[r + 1]]],
                    "gap_sd": round(float(z[r]), 2),
                    "reason": (f"their |weight| gap is {float(z[r]):.2f} seed standard "
                               f"deviations of LIME's sampling noise at {samples} samples "
                               f"(< {LIME_GAP_SD:g}): another seed may swap them")})
    return out


def _no_missing_for_lime(codec: FrameCodec, names: list[str], *arrays: np.ndarray) -> None:
    """LIME draws numeric columns from their quartiles, which a missing value makes NaN
    (scipy then fails with a 'domain error'): refuse naming the columns instead."""
    holes = [names[j] for j in range(len(names)) if j not in codec.categories
             and any(np.isnan(a[:, j]).any() for a in arrays)]
    if holes:
        raise DataError(f"LIME cannot explain missing values: the rows or the reference "
                        f"have NaN in {holes[:10]}; use method 'permutation' or 'kernel', "
                        "which pass them to the model as they are, or fill them.", holes[0])


def compute(adapter: ModelAdapter, frame: pd.DataFrame, bg: pd.DataFrame,
            opts: ExplainOptions, should_stop: StopCheck = None) -> Attributions:
    """Attributions of ``frame``'s rows with the method ``opts`` asks for (``auto`` resolved;
    Tree falls back to Permutation under ``auto`` when shap cannot read the trees).
    ``should_stop`` is asked between chunks of work (Tree: 1,000 rows; the black boxes:
    each batch of model calls); True raises :class:`~aiwarden.errors.Cancelled`."""
    method = resolve_method(adapter, frame, opts.method)
    stop_here(should_stop)
    if method == "tree":
        try:
            return _tree(adapter, frame, bg, opts, should_stop)
        except ParameterError:
            if opts.method != "auto":
                raise
            method = "permutation"
    if method == "linear":
        return _linear(adapter, frame, bg, opts)
    if method == "lime":
        return _lime(adapter, frame, bg, opts, should_stop)
    return _sampled(adapter, frame, bg, opts, method, should_stop)
