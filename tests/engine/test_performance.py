"""Realised performance accumulators against scikit-learn on the raw rows, and merge laws."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit, softmax
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_absolute_percentage_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
    root_mean_squared_error,
)

from aiwarden.engine.performance import ClassificationStats, RegressionStats
from aiwarden.errors import DataError, ParameterError

TIGHT = 1e-9


def _binary_case(kind: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "moderate":
        p = expit(1.5 * rng.normal(size=n))
    elif kind == "confident":
        p = expit(6.0 * rng.normal(size=n))
    elif kind == "rare":
        p = expit(rng.normal(-5.0, 1.5, size=n))
    else:  # few distinct scores: many exact ties
        p = rng.integers(0, 11, size=n) / 10.0
    y = (rng.random(n) < p).astype(np.int64)
    y[:3], y[3:6] = 1, 0
    return y, p


@pytest.mark.parametrize("kind", ["moderate", "confident", "rare", "ties"])
def test_binary_metrics_match_sklearn(kind: str) -> None:
    y, p = _binary_case(kind, 20_000, seed=1)
    s = ClassificationStats.from_arrays(y, None, p, classes=[0, 1])
    m = s.metrics()
    pred = (p >= 0.5).astype(int)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred), rel=TIGHT)
    if pred.sum():
        assert m["precision"] == pytest.approx(precision_score(y, pred), rel=TIGHT)
    assert m["recall"] == pytest.approx(recall_score(y, pred), rel=TIGHT)
    assert m["f1"] == pytest.approx(f1_score(y, pred), rel=TIGHT)
    assert m["log_loss"] == pytest.approx(log_loss(y, p), rel=TIGHT)
    bounds = s.error_bounds()
    auc_gap = abs(m["roc_auc"] - roc_auc_score(y, p))
    assert auc_gap <= bounds["roc_auc"] + 1e-12
    assert auc_gap < 0.005
    assert bounds["roc_auc"] < 0.005
    ap_gap = abs(m["pr_auc"] - average_precision_score(y, p))
    assert ap_gap <= bounds["pr_auc"] + 1e-12
    assert ap_gap < 0.01


def test_histogram_auc_is_exact_when_scores_sit_on_the_grid() -> None:
    y, p = _binary_case("ties", 5_000, seed=2)
    m = ClassificationStats.from_arrays(y, None, p, classes=[0, 1]).metrics()
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p), rel=TIGHT)
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, p), rel=TIGHT)


@pytest.mark.parametrize(
    ("classes", "mapper"),
    [
        (["neg", "pos"], lambda v: np.where(v == 1, "pos", "neg")),
        ([False, True], lambda v: v.astype(bool)),
        ([0, 1], lambda v: v.astype(float)),
    ],
)
def test_binary_label_types_and_explicit_predictions(classes: list, mapper) -> None:
    y, p = _binary_case("moderate", 2_000, seed=3)
    pred = (p >= 0.3).astype(np.int64)
    s = ClassificationStats.from_arrays(mapper(y), mapper(pred), p, classes=classes)
    assert s.n == 2_000
    assert s.metrics()["recall"] == pytest.approx(recall_score(y, pred), rel=TIGHT)
    via_threshold = ClassificationStats.from_arrays(mapper(y), None, p, classes=classes,
                                                    threshold=0.3)
    assert np.array_equal(via_threshold.confusion, s.confusion)


def test_multiclass_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(4)
    n, c = 20_000, 4
    logits = rng.normal(size=(n, c)) * 1.5
    proba = softmax(logits, axis=1)
    y = (proba.cumsum(axis=1) < rng.random(n)[:, None]).sum(axis=1)
    classes = ["a", "b", "c", "d"]
    labels = np.array(classes)[y]
    s = ClassificationStats.from_arrays(labels, None, proba, classes=classes)
    m = s.metrics()
    pred = np.array(classes)[proba.argmax(axis=1)]
    assert m["accuracy"] == pytest.approx(accuracy_score(labels, pred), rel=TIGHT)
    assert m["macro_f1"] == pytest.approx(f1_score(labels, pred, average="macro"), rel=TIGHT)
    assert m["weighted_f1"] == pytest.approx(f1_score(labels, pred, average="weighted"),
                                             rel=TIGHT)
    recalls = recall_score(labels, pred, average=None, labels=classes)
    for k, label in enumerate(classes):
        assert m[f"recall_{label}"] == pytest.approx(recalls[k], rel=TIGHT)
    assert m["log_loss"] == pytest.approx(log_loss(labels, proba, labels=classes), rel=TIGHT)
    ovr = roc_auc_score(labels, proba, multi_class="ovr", average="macro", labels=classes)
    assert abs(m["roc_auc"] - ovr) <= s.error_bounds()["roc_auc"] + 1e-12
    assert abs(m["roc_auc"] - ovr) < 0.005


def test_multiclass_macro_f1_over_present_classes_like_sklearn() -> None:
    y = np.array([0, 0, 1, 1, 1])
    pred = np.array([0, 1, 1, 1, 0])
    m = ClassificationStats.from_arrays(y, pred, classes=[0, 1, 2]).metrics()
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"), rel=TIGHT)
    assert np.isnan(m["recall_2"])
    assert np.isnan(m["roc_auc"]) and np.isnan(m["log_loss"])


def test_unknown_labels_predictions_and_bad_scores_are_counted() -> None:
    y = np.array(["a", "b", "zz", None, "a", "b", "a"], dtype=object)
    pred = np.array(["a", "b", "a", "a", "q", "b", "a"], dtype=object)
    scores = np.array([0.1, 0.9, 0.5, 0.5, 0.5, np.nan, 1.5])
    s = ClassificationStats.from_arrays(y, pred, scores, classes=["a", "b"])
    assert (s.n_unknown_label, s.n_unknown_pred, s.n_invalid_score) == (2, 1, 2)
    # confusion: labelled rows with a known prediction, whatever the score (0, 1, 5, 6);
    # score metrics: labelled rows with a valid score, whatever the prediction (0, 1, 4)
    assert s.n == 4 and s.n_scored == 3
    assert s.metrics()["accuracy"] == 1.0
    derived = ClassificationStats.from_arrays(y, None, scores, classes=["a", "b"])
    assert (derived.n_unknown_label, derived.n_unknown_pred, derived.n_invalid_score) == (2, 0, 2)
    assert derived.n == 3 and derived.n_scored == 3  # no valid score, no prediction


def _confusion_metrics_match_sklearn(m: dict, y: np.ndarray, pred: np.ndarray,
                                     classes: list) -> None:
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred), rel=TIGHT)
    if len(classes) == 2:
        assert m["precision"] == pytest.approx(precision_score(y, pred), rel=TIGHT)
        assert m["recall"] == pytest.approx(recall_score(y, pred), rel=TIGHT)
        assert m["f1"] == pytest.approx(f1_score(y, pred), rel=TIGHT)
        return
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"), rel=TIGHT)
    assert m["weighted_f1"] == pytest.approx(f1_score(y, pred, average="weighted"), rel=TIGHT)
    recalls = recall_score(y, pred, average=None, labels=classes)
    for k, label in enumerate(classes):
        assert m[f"recall_{label}"] == pytest.approx(recalls[k], rel=TIGHT)


def test_binary_invalid_scores_leave_confusion_metrics_on_all_rows() -> None:
    y, p = _binary_case("moderate", 6_000, seed=11)
    pred = (p >= 0.5).astype(np.int64)
    rng = np.random.default_rng(12)
    bad = rng.choice(len(p), size=1_000, replace=False)
    scores = p.copy()
    scores[bad[:500]], scores[bad[500:]] = np.nan, 1.5
    s = ClassificationStats.from_arrays(y, pred, scores, classes=[0, 1])
    assert (s.n, s.n_scored, s.n_invalid_score, s.n_unknown_pred) == (6_000, 5_000, 1_000, 0)
    _confusion_metrics_match_sklearn(s.metrics(), y, pred, [0, 1])
    ok = np.ones(len(p), dtype=bool)
    ok[bad] = False
    m = s.metrics()
    assert m["log_loss"] == pytest.approx(log_loss(y[ok], p[ok]), rel=TIGHT)
    assert abs(m["roc_auc"] - roc_auc_score(y[ok], p[ok])) <= s.error_bounds()["roc_auc"] + 1e-12
    # without y_pred a row needs its score to be predicted: excluded and counted
    derived = ClassificationStats.from_arrays(y, None, scores, classes=[0, 1])
    assert (derived.n, derived.n_invalid_score, derived.n_unknown_pred) == (5_000, 1_000, 0)
    _confusion_metrics_match_sklearn(derived.metrics(), y[ok], pred[ok], [0, 1])


def test_multiclass_rows_that_are_not_distributions_keep_their_prediction() -> None:
    rng = np.random.default_rng(13)
    n, classes = 3_000, ["a", "b", "c"]
    proba = softmax(rng.normal(size=(n, 3)) * 2.0, axis=1)
    y = np.array(classes)[(proba.cumsum(axis=1) < rng.random(n)[:, None]).sum(axis=1)]
    pred = np.array(classes)[proba.argmax(axis=1)]
    scores = proba.copy()
    scores[:, 0] *= 2.0  # one class doubled: rows leave [0, 1] or stop summing to 1
    s = ClassificationStats.from_arrays(y, pred, scores, classes=classes)
    ok = np.abs(scores.sum(axis=1) - 1.0) <= 0.01
    assert s.n == n and s.n_invalid_score == int((~ok).sum()) > n // 2
    assert s.n_scored == int(ok.sum())
    m = s.metrics()
    _confusion_metrics_match_sklearn(m, y, pred, classes)
    with warnings.catch_warnings():  # rows within PROBA_SUM_TOL of 1 are probabilities to us
        warnings.simplefilter("ignore", UserWarning)
        expected = log_loss(y[ok], scores[ok], labels=classes)
    assert m["log_loss"] == pytest.approx(expected, rel=TIGHT)
    valid = ClassificationStats.from_arrays(y, pred, proba, classes=classes)
    assert valid.n_invalid_score == 0
    assert np.array_equal(valid.confusion, s.confusion)


def test_unknown_prediction_keeps_the_row_in_score_metrics() -> None:
    y, p = _binary_case("moderate", 2_000, seed=14)
    pred = (p >= 0.5).astype(np.int64)
    pred[:200] = 7
    s = ClassificationStats.from_arrays(y, pred, p, classes=[0, 1])
    assert (s.n, s.n_scored, s.n_unknown_pred, s.n_invalid_score) == (1_800, 2_000, 200, 0)
    assert s.metrics()["log_loss"] == pytest.approx(log_loss(y, p), rel=TIGHT)
    _confusion_metrics_match_sklearn(s.metrics(), y[200:], pred[200:], [0, 1])


def test_sum_of_stats_starts_from_zero() -> None:
    y, p = _binary_case("moderate", 3_000, seed=15)
    p = p.copy()
    p[::7] = np.nan
    parts = [ClassificationStats.from_arrays(y[i::3], None, p[i::3], classes=[0, 1])
             for i in range(3)]
    whole = ClassificationStats.from_arrays(y, None, p, classes=[0, 1])
    _same(sum(parts), whole)
    assert (0 + parts[0]) is parts[0]
    with pytest.raises(TypeError):
        _ = "x" + parts[0]  # type: ignore[operator]


def test_undefined_metrics_are_nan() -> None:
    s = ClassificationStats.from_arrays([0, 0, 0], None, [0.1, 0.2, 0.3], classes=[0, 1])
    m = s.metrics()
    assert m["accuracy"] == 1.0
    assert all(np.isnan(m[k]) for k in ("precision", "recall", "f1", "roc_auc", "pr_auc"))
    e = ClassificationStats.empty([0, 1]).metrics()
    assert all(np.isnan(v) for v in e.values())


def test_bad_inputs_raise_house_errors() -> None:
    with pytest.raises(ParameterError, match="'classes' parameter of ClassificationStats"):
        ClassificationStats.from_arrays([0], [0], classes=[0])
    with pytest.raises(ParameterError, match="classes"):
        ClassificationStats.from_arrays([0], [0], classes=[1, True])
    with pytest.raises(DataError, match="shape"):
        ClassificationStats.from_arrays([0, 1], None, np.ones((2, 3)) / 3, classes=[0, 1])
    with pytest.raises(DataError, match="y_pred"):
        ClassificationStats.from_arrays([0, 1], None, classes=[0, 1])
    with pytest.raises(ParameterError, match="n_score_bins"):
        ClassificationStats.from_arrays([0, 1], None, [0.1, 0.2], classes=[0, 1],
                                        n_score_bins=512).merge(ClassificationStats.empty([0, 1]))


def test_split_merge_equals_whole_and_size_is_constant() -> None:
    y, p = _binary_case("moderate", 9_000, seed=5)
    whole = ClassificationStats.from_arrays(y, None, p, classes=[0, 1])
    parts = [ClassificationStats.from_arrays(y[i::3], None, p[i::3], classes=[0, 1])
             for i in range(3)]
    merged = parts[0] + parts[1] + parts[2]
    assert np.array_equal(merged.confusion, whole.confusion)
    assert np.array_equal(merged.score_hist, whole.score_hist)
    assert merged.log_loss_sum == pytest.approx(whole.log_loss_sum, rel=TIGHT)
    assert np.array_equal(merged.score_min, whole.score_min)
    assert np.array_equal(merged.score_max, whole.score_max)
    bigger = ClassificationStats.from_arrays(np.tile(y, 20), None, np.tile(p, 20), classes=[0, 1])
    assert len(bigger.to_dict()["score_cells"]) == len(whole.to_dict()["score_cells"])
    assert len(json.dumps(bigger.to_dict())) < 1.1 * len(json.dumps(whole.to_dict()))


_rows = st.lists(
    st.tuples(st.sampled_from(["x", "y", "z", "other"]), st.sampled_from(["x", "y", "z", "?"]),
              st.floats(0.0, 1.0), st.floats(0.0, 1.0),
              st.sampled_from([1.0, 1.0, 1.0, np.nan, 3.0])),
    max_size=30,
)


def _mc_stats(rows: list) -> ClassificationStats:
    if not rows:
        return ClassificationStats.empty(["x", "y", "z"], n_score_bins=16)
    y, pred, a, b, corrupt = zip(*rows, strict=True)
    s = np.column_stack([np.asarray(a) * 0.5, np.asarray(b) * 0.5, np.zeros(len(a))])
    s[:, 2] = 1.0 - s[:, 0] - s[:, 1]
    s[:, 0] *= np.asarray(corrupt)  # NaN or scaled: an invalid score row
    return ClassificationStats.from_arrays(list(y), list(pred), s, classes=["x", "y", "z"],
                                           n_score_bins=16)


def _same(a: ClassificationStats, b: ClassificationStats) -> None:
    da, db = a.to_dict(), b.to_dict()
    assert da.pop("log_loss_sum") == pytest.approx(db.pop("log_loss_sum"), rel=TIGHT, abs=1e-12)
    assert da == db


@settings(max_examples=60, deadline=None, derandomize=True)
@given(_rows, _rows, _rows)
def test_classification_merge_laws(r1: list, r2: list, r3: list) -> None:
    a, b, c = _mc_stats(r1), _mc_stats(r2), _mc_stats(r3)
    _same((a + b) + c, a + (b + c))
    _same(a + b, b + a)
    _same(a + ClassificationStats.empty(["x", "y", "z"], 16), a)
    _same(ClassificationStats.from_dict(json.loads(json.dumps(a.to_dict()))), a)
    _same(a + b, _mc_stats(r1 + r2))


# --------------------------------------------------------------------------- regression

def test_regression_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(6)
    y = rng.normal(3.0, 2.0, size=10_000)
    y[:100] = 0.0
    f = y + rng.normal(0.2, 1.0, size=y.size)
    m = RegressionStats.from_arrays(y, f).metrics()
    nz = y != 0
    assert m["mae"] == pytest.approx(mean_absolute_error(y, f), rel=TIGHT)
    assert m["rmse"] == pytest.approx(root_mean_squared_error(y, f), rel=TIGHT)
    assert m["mape"] == pytest.approx(mean_absolute_percentage_error(y[nz], f[nz]), rel=TIGHT)
    assert m["r2"] == pytest.approx(r2_score(y, f), rel=TIGHT)
    assert m["mean_error"] == pytest.approx(float(np.mean(f - y)), rel=TIGHT)


def test_regression_invalid_rows_zero_targets_and_histogram() -> None:
    y = np.array([0.0, 1.0, np.nan, 2.0, 4.0])
    f = np.array([1.0, 1.0, 3.0, np.inf, 10.0])
    s = RegressionStats.from_arrays(y, f, residual_edges=[-1.0, 0.0, 1.0])
    assert (s.n, s.n_invalid, s.n_zero_y, s.n_ape) == (3, 2, 1, 2)
    assert s.residual_counts.tolist() == [0, 0, 1, 2]
    assert s.metrics()["mape"] == pytest.approx(0.75)
    assert np.isnan(RegressionStats.from_arrays([2.0, 2.0], [1.0, 3.0]).metrics()["r2"])
    with pytest.raises(ParameterError, match="'residual_edges' parameter of RegressionStats"):
        RegressionStats.from_arrays(y, f, residual_edges=[1.0, 0.0])
    with pytest.raises(ParameterError, match="residual_edges"):
        s.merge(RegressionStats.from_arrays(y, f, residual_edges=[0.0]))


def test_regression_split_merge_equals_whole() -> None:
    rng = np.random.default_rng(7)
    y = rng.lognormal(size=6_000)
    f = y * rng.uniform(0.8, 1.3, size=y.size)
    edges = np.linspace(-1, 1, 9)
    whole = RegressionStats.from_arrays(y, f, residual_edges=edges)
    merged = RegressionStats.empty()
    for i in range(4):
        merged = merged + RegressionStats.from_arrays(y[i::4], f[i::4], residual_edges=edges)
    assert merged.n == whole.n and np.array_equal(merged.residual_counts, whole.residual_counts)
    for k, v in whole.metrics().items():
        assert merged.metrics()[k] == pytest.approx(v, rel=TIGHT)


_reg_rows = st.lists(st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3)), max_size=25)


def _reg(rows: list) -> RegressionStats:
    y, f = (np.asarray(v) for v in zip(*rows, strict=True)) if rows else ([], [])
    return RegressionStats.from_arrays(y, f, residual_edges=[-10.0, 0.0, 10.0])


def _same_reg(a: RegressionStats, b: RegressionStats) -> None:
    da, db = a.to_dict(), b.to_dict()
    for key in ("y_mean", "y_m2", "e_mean", "e_m2", "sse", "sae", "sape"):
        assert da.pop(key) == pytest.approx(db.pop(key), rel=TIGHT, abs=1e-6)
    assert da == db


@settings(max_examples=60, deadline=None, derandomize=True)
@given(_reg_rows, _reg_rows, _reg_rows)
def test_regression_merge_laws(r1: list, r2: list, r3: list) -> None:
    a, b, c = _reg(r1), _reg(r2), _reg(r3)
    _same_reg((a + b) + c, a + (b + c))
    _same_reg(a + b, b + a)
    _same_reg(a + RegressionStats.empty(), a)
    _same_reg(RegressionStats.from_dict(json.loads(json.dumps(a.to_dict()))), a)
    _same_reg(a + b, _reg(r1 + r2))
