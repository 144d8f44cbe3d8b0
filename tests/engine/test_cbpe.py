"""CBPE: calibration choice, tracking under covariate shift, band coverage, merge laws."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit, logit, softmax

from aiwarden.engine.cbpe import CBPE, CBPEResult, ExpectedClassificationStats
from aiwarden.engine.performance import ClassificationStats
from aiwarden.errors import DataError, NotFittedError, ParameterError

BETA = np.array([2.0, -1.0])
W3 = np.array([[1.5, 0.0, -1.0], [0.0, 1.5, -1.0]])
CLASSES3 = ["a", "b", "c"]


def _binary(rng: np.random.Generator, n: int, mean: float | np.ndarray = 0.0,
            scale: float = 1.0, distortion: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Known P(y|x) = expit(x @ BETA - 0.5); the model scores a monotone distortion of it."""
    x = rng.normal(mean, scale, size=(n, 2))
    p = expit(x @ BETA - 0.5)
    y = (rng.random(n) < p).astype(np.int64)
    return expit(distortion * logit(p) + (0.3 if distortion != 1.0 else 0.0)), y


def _multiclass(rng: np.random.Generator, n: int, mean: float | np.ndarray = 0.0,
                scale: float = 1.0, temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(mean, scale, size=(n, 2))
    logits = x @ W3
    proba = softmax(logits, axis=1)
    y = (proba.cumsum(axis=1) < rng.random(n)[:, None]).sum(axis=1)
    return softmax(logits * temperature, axis=1), np.array(CLASSES3)[y]


def _coverage(cbpe: CBPE, draw, classes, n_windows: int = 200) -> dict[str, float]:
    hits: dict[str, list[bool]] = {}
    for w in range(n_windows):
        s, y = draw(np.random.default_rng(10_000 + w))
        result = cbpe.estimate(cbpe.accumulate(s))
        cmp = result.compare(ClassificationStats.from_arrays(y, None, s, classes=classes))
        for name, row in cmp.items():
            if row["within_band"] is not None:
                hits.setdefault(name, []).append(row["within_band"])
    return {k: float(np.mean(v)) for k, v in hits.items()}


def test_binary_band_coverage_is_close_to_nominal() -> None:
    s, y = _binary(np.random.default_rng(0), 5_000)
    cbpe = CBPE("none").fit(y, s, classes=[0, 1])
    cov = _coverage(cbpe, lambda r: _binary(r, 1_000, mean=0.2), [0, 1])
    assert set(cov) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    for name, rate in cov.items():
        assert 0.90 <= rate <= 0.99, (name, rate)


def test_multiclass_band_coverage() -> None:
    s, y = _multiclass(np.random.default_rng(1), 5_000)
    cbpe = CBPE("none").fit(y, s, classes=CLASSES3)
    cov = _coverage(cbpe, lambda r: _multiclass(r, 1_000, mean=0.3), CLASSES3)
    for name, rate in cov.items():
        # the macro ROC AUC sd is the mean of per-class sds: conservative by design
        upper = 1.0 if name == "roc_auc" else 0.99
        assert 0.90 <= rate <= upper, (name, rate)


def test_binary_estimate_tracks_realised_under_covariate_shift() -> None:
    rng = np.random.default_rng(2)
    s_ref, y_ref = _binary(rng, 10_000, distortion=1.8)
    cbpe = CBPE().fit(y_ref, s_ref, classes=[0, 1])
    assert cbpe.calibration_report_["1"]["calibrated"]
    s_cur, y_cur = _binary(rng, 10_000, mean=np.array([0.15, 0.3]), scale=0.4, distortion=1.8)
    realised = ClassificationStats.from_arrays(y_cur, None, s_cur, classes=[0, 1])
    cmp = cbpe.estimate(cbpe.accumulate(s_cur)).compare(realised)
    for name in ("accuracy", "f1", "roc_auc"):
        assert abs(cmp[name]["difference"]) < 0.02, (name, cmp[name])
        assert cmp[name]["within_band"], (name, cmp[name])
    reference = cbpe.estimate(cbpe.reference_expected_)
    ref_realised = cbpe.reference_stats_.metrics()
    for name in ("accuracy", "roc_auc"):
        assert realised.metrics()[name] < ref_realised[name] - 0.05  # the drop is real
        assert cmp[name]["estimate"] < reference.metrics[name].lower  # and detected
    raw = CBPE("none").fit(y_ref, s_ref, classes=[0, 1])
    raw_cmp = raw.estimate(raw.accumulate(s_cur)).compare(realised)
    assert abs(raw_cmp["accuracy"]["difference"]) > 0.05  # calibration was needed


def test_multiclass_estimate_tracks_realised_under_covariate_shift() -> None:
    rng = np.random.default_rng(3)
    s_ref, y_ref = _multiclass(rng, 10_000, temperature=0.6)
    cbpe = CBPE().fit(y_ref, s_ref, classes=CLASSES3)
    assert any(v["calibrated"] for v in cbpe.calibration_report_.values())
    s_cur, y_cur = _multiclass(rng, 10_000, mean=np.array([0.8, 0.8]), scale=0.5,
                               temperature=0.6)
    realised = ClassificationStats.from_arrays(y_cur, None, s_cur, classes=CLASSES3)
    cmp = cbpe.estimate(cbpe.accumulate(s_cur)).compare(realised)
    for name in ("accuracy", "macro_f1", "weighted_f1", "roc_auc"):
        assert abs(cmp[name]["difference"]) < 0.02, (name, cmp[name])
    assert realised.metrics()["accuracy"] < cbpe.reference_stats_.metrics()["accuracy"] - 0.05


def test_auto_calibration_keeps_calibrated_scores_and_isotonic_forces_it() -> None:
    s, y = _binary(np.random.default_rng(4), 4_000)
    assert not CBPE().fit(y, s, classes=[0, 1]).calibration_report_["1"]["calibrated"]
    forced = CBPE("isotonic").fit(y, s, classes=[0, 1])
    assert forced.calibrators_[0] is not None
    none = CBPE("none").fit(y, s, classes=[0, 1])
    assert none.calibrators_ == (None,)
    assert np.isnan(none.calibration_report_["1"]["brier_calibrated"])


def test_calibration_map_equals_sklearn_isotonic() -> None:
    from sklearn.isotonic import IsotonicRegression

    s, y = _binary(np.random.default_rng(5), 3_000, distortion=2.0)
    cbpe = CBPE("isotonic").fit(y, s, classes=[0, 1])
    iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(s, y)
    grid = np.linspace(0, 1, 501)
    np.testing.assert_allclose(cbpe.calibrate(grid)[:, 1], iso.predict(grid), atol=1e-12)


def test_expected_counts_match_their_definition() -> None:
    rng = np.random.default_rng(6)
    s, y = _multiclass(rng, 500)
    cbpe = CBPE("none").fit(y, s, classes=CLASSES3)
    exp = cbpe.accumulate(s)
    pred = s.argmax(axis=1)
    for j in range(3):
        np.testing.assert_allclose(exp.expected_confusion[:, j], s[pred == j].sum(axis=0))
    assert exp.pred_counts.tolist() == np.bincount(pred, minlength=3).tolist()
    np.testing.assert_allclose(exp.cross_true, s.T @ s)


def test_unknown_predictions_and_bad_scores_are_counted() -> None:
    s, y = _binary(np.random.default_rng(7), 1_000)
    cbpe = CBPE().fit(y, s, classes=[0, 1])
    scores = np.array([0.1, 0.9, np.nan, 1.2, 0.4])
    exp = cbpe.accumulate(scores, y_pred=[0, 1, 1, 1, 7])
    assert (exp.n, exp.n_unknown_pred, exp.n_invalid_score) == (2, 1, 2)
    derived = cbpe.accumulate(scores)
    assert (derived.n, derived.n_invalid_score) == (3, 2)


def test_invalid_rows_are_counted_in_the_result_and_unknown_predictions_still_rank() -> None:
    s, y = _binary(np.random.default_rng(20), 2_000)
    cbpe = CBPE().fit(y, s, classes=[0, 1])
    cur, _ = _binary(np.random.default_rng(21), 1_000)
    cur[:50], cur[50:80] = np.nan, 1.7
    pred = (cur >= 0.5).astype(np.int64)
    pred[80:100] = 9
    exp = cbpe.accumulate(cur, y_pred=pred)
    assert (exp.n, exp.n_invalid_score, exp.n_unknown_pred) == (900, 80, 20)
    assert int(exp.hist_count.sum()) == 920  # valid scores, unknown prediction included
    result = cbpe.estimate(exp)
    assert (result.n, result.n_invalid_score, result.n_unknown_pred) == (900, 80, 20)
    assert result.to_dict()["n_invalid_score"] == 80
    clean = cbpe.estimate(cbpe.accumulate(cur[100:], y_pred=pred[100:]))
    assert result.metrics["accuracy"].estimate == pytest.approx(
        clean.metrics["accuracy"].estimate, rel=1e-12)


def test_fit_rejects_scores_that_are_not_probabilities() -> None:
    s, y = _binary(np.random.default_rng(22), 10_000)
    logits = logit(s)
    with pytest.raises(DataError, match=r"probabilities in \[0, 1\].*of 10,000 reference rows"
                                        r".*decision_function") as err:
        CBPE().fit(y, logits, classes=[0, 1])
    assert err.value.column == "scores"
    ms, my = _multiclass(np.random.default_rng(23), 3_000)
    doubled = ms.copy()
    doubled[:, 0] *= 2.0
    with pytest.raises(DataError, match="outside"):
        CBPE().fit(my, doubled, classes=CLASSES3)
    ovr = np.clip(ms * 1.3, 0.0, 1.0)  # in [0, 1] but rows do not sum to 1
    with pytest.raises(DataError, match=r"sum.*to 1 per row"):
        CBPE().fit(my, ovr, classes=CLASSES3)


def test_fit_skips_a_few_bad_reference_rows_and_counts_them() -> None:
    s, y = _binary(np.random.default_rng(24), 5_000)
    s = s.copy()
    s[:30], s[30:60] = np.nan, 1.2  # 0.6 % outside [0, 1]
    cbpe = CBPE().fit(y, s, classes=[0, 1])
    assert cbpe.reference_stats_.n_invalid_score == 60
    assert cbpe.reference_expected_.n_invalid_score == 60
    with pytest.raises(DataError, match="30 of 4,970 reference rows"):
        CBPE(max_invalid_share=0.0).fit(y, s, classes=[0, 1])
    with pytest.raises(ParameterError, match="'max_invalid_share' parameter of CBPE"):
        CBPE(max_invalid_share=2.0)


def test_reference_stats_count_every_labelled_row_with_a_prediction() -> None:
    s, y = _binary(np.random.default_rng(25), 4_000)
    pred = (s >= 0.5).astype(np.int64)
    s = s.copy()
    s[:20] = np.nan
    cbpe = CBPE().fit(y, s, classes=[0, 1], y_pred=pred)
    assert cbpe.reference_stats_.n == 4_000 and cbpe.reference_stats_.n_scored == 3_980


def test_sum_of_expected_stats_and_old_dicts_without_max_invalid_share() -> None:
    s, y = _binary(np.random.default_rng(26), 3_000)
    cbpe = CBPE().fit(y[:1500], s[:1500], classes=[0, 1])
    parts = [cbpe.accumulate(s[1500 + i::3]) for i in range(3)]
    _same(sum(parts), parts[0] + parts[1] + parts[2])
    d = cbpe.to_dict()
    assert d["params"]["max_invalid_share"] == 0.01
    del d["params"]["max_invalid_share"]
    assert CBPE.from_dict(d).max_invalid_share == 0.01


def test_undefined_values_and_compare_with_missing_classes() -> None:
    s, y = _binary(np.random.default_rng(8), 2_000)
    cbpe = CBPE().fit(y, s, classes=[0, 1])
    empty = cbpe.estimate(ExpectedClassificationStats.empty((0, 1), cbpe.n_score_bins))
    assert all(np.isnan(m.estimate) for m in empty.metrics.values())
    low = np.full(5, 0.01)
    result = cbpe.estimate(cbpe.accumulate(low))
    cmp = result.compare(ClassificationStats.from_arrays(np.zeros(5, int), None, low,
                                                         classes=[0, 1]))
    assert cmp["recall"]["within_band"] is None and np.isnan(cmp["recall"]["difference"])
    assert cmp["accuracy"]["within_band"] is True
    json.dumps(result.to_dict())
    assert list(result.to_pandas().columns) == ["estimate", "std", "lower", "upper"]


def test_errors_follow_house_style() -> None:
    with pytest.raises(ParameterError, match="'calibration' parameter of CBPE"):
        CBPE("platt")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="'confidence' parameter of CBPE"):
        CBPE(confidence=95.0)
    with pytest.raises(NotFittedError):
        CBPE().accumulate([0.5])
    with pytest.raises(DataError, match="two classes"):
        CBPE().fit([1, 1, 1], [0.2, 0.3, 0.9], classes=[0, 1])
    s, y = _binary(np.random.default_rng(9), 500)
    cbpe = CBPE().fit(y, s, classes=[0, 1])
    with pytest.raises(DataError, match="shape"):
        cbpe.accumulate(np.ones((3, 3)))
    with pytest.raises(ParameterError, match="classes"):
        cbpe.estimate(ExpectedClassificationStats.empty(("x", "y"), cbpe.n_score_bins))
    other = ClassificationStats.from_arrays(["x"], ["x"], classes=["x", "y"])
    with pytest.raises(ParameterError, match="realised"):
        cbpe.estimate(cbpe.accumulate(s)).compare(other)


def test_cbpe_round_trips_through_json() -> None:
    s, y = _multiclass(np.random.default_rng(10), 3_000, temperature=0.6)
    cbpe = CBPE().fit(y, s, classes=CLASSES3)
    again = CBPE.from_dict(json.loads(json.dumps(cbpe.to_dict())))
    cur, _ = _multiclass(np.random.default_rng(11), 1_000, mean=0.5, temperature=0.6)
    a = cbpe.estimate(cbpe.accumulate(cur))
    b = again.estimate(again.accumulate(cur))
    assert isinstance(b, CBPEResult)
    assert a.to_dict() == b.to_dict()


def test_split_merge_equals_whole() -> None:
    s, y = _binary(np.random.default_rng(12), 6_000, distortion=1.5)
    cbpe = CBPE().fit(y[:3000], s[:3000], classes=[0, 1])
    whole = cbpe.accumulate(s[3000:])
    merged = cbpe.accumulate(s[3000:4000]) + cbpe.accumulate(s[4000:5500]) + cbpe.accumulate(
        s[5500:])
    _same(whole, merged)
    for name, est in cbpe.estimate(whole).metrics.items():
        assert cbpe.estimate(merged).metrics[name].estimate == pytest.approx(est.estimate,
                                                                              rel=1e-9)


def _same(a: ExpectedClassificationStats, b: ExpectedClassificationStats) -> None:
    da, db = a.to_dict(), b.to_dict()
    for key in ("expected_confusion", "cross_true", "cross_pred", "hist_p", "hist_p2"):
        np.testing.assert_allclose(np.asarray(da.pop(key), dtype=float),
                                   np.asarray(db.pop(key), dtype=float), rtol=1e-9, atol=1e-12)
    assert da == db


_FITTED: dict[str, CBPE] = {}


def _fitted() -> CBPE:
    if "m" not in _FITTED:
        s, y = _multiclass(np.random.default_rng(13), 2_000, temperature=0.7)
        _FITTED["m"] = CBPE(n_score_bins=16).fit(y, s, classes=CLASSES3)
    return _FITTED["m"]


_batches = st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0)),
                    max_size=20)


def _acc(rows: list) -> ExpectedClassificationStats:
    arr = np.asarray(rows, dtype=float).reshape(-1, 3)
    total = arr.sum(axis=1, keepdims=True)
    arr = np.divide(arr, total, out=np.full_like(arr, 1 / 3), where=total > 0)
    return _fitted().accumulate(arr)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(_batches, _batches, _batches)
def test_expected_stats_merge_laws(r1: list, r2: list, r3: list) -> None:
    a, b, c = _acc(r1), _acc(r2), _acc(r3)
    _same((a + b) + c, a + (b + c))
    _same(a + b, b + a)
    _same(a + ExpectedClassificationStats.empty(tuple(CLASSES3), 16), a)
    _same(ExpectedClassificationStats.from_dict(json.loads(json.dumps(a.to_dict()))), a)
    _same(a + b, _acc(r1 + r2))
