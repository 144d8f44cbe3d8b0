"""DLE: tracks realised MAE/RMSE under covariate shift with heteroscedastic noise."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from aiwarden.engine.dle import DLE, ExpectedRegressionStats
from aiwarden.engine.performance import RegressionStats
from aiwarden.errors import DataError, NotFittedError, ParameterError, SchemaError

SHIFT_MEAN = np.array([1.0, 0.0, 0.0])
SHIFT_SCALE = np.array([0.7, 1.0, 1.0])


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # Boosting with OpenMP threads crawls on a busy shared CI box; one thread is predictable.
    with threadpool_limits(limits=1):
        yield


def _draw(rng: np.random.Generator, n: int, mean: float | np.ndarray = 0.0,
          scale: float | np.ndarray = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """y = 2 x0 + sin(x1) + noise with sd 0.3 + 0.8 |x0|; the model misses part of sin(x1)."""
    x = rng.normal(mean, scale, size=(n, 3))
    y = 2 * x[:, 0] + np.sin(x[:, 1]) + rng.normal(size=n) * (0.3 + 0.8 * np.abs(x[:, 0]))
    return x, y, 2 * x[:, 0] + 0.8 * np.sin(x[:, 1])


@pytest.fixture(scope="module")
def fitted() -> DLE:
    x, y, pred = _draw(np.random.default_rng(0), 5_000)
    with threadpool_limits(limits=1):
        return DLE(n_folds=3).fit(x, y, pred)


def test_tracks_realised_error_under_covariate_shift(fitted: DLE) -> None:
    x, y, pred = _draw(np.random.default_rng(1), 10_000, SHIFT_MEAN, SHIFT_SCALE)
    realised = RegressionStats.from_arrays(y, pred)
    cmp = fitted.estimate(fitted.accumulate(x, pred)).compare(realised)
    reference_mae = fitted.reference_check_["mae_realised"]
    assert realised.metrics()["mae"] > 1.15 * reference_mae  # the shift really hurts
    for name in ("mae", "rmse"):
        assert abs(cmp[name]["difference"]) < 0.03 * cmp[name]["realised"], cmp[name]
        assert cmp[name]["within_band"], cmp[name]
    assert cmp["mae"]["estimate"] > 1.1 * reference_mae
    check = fitted.reference_check_
    assert check["mae_estimated"] == pytest.approx(check["mae_realised"], rel=0.02)


@pytest.mark.slow
def test_band_coverage_on_small_windows(fitted: DLE) -> None:
    hits = []
    for w in range(40):
        x, y, pred = _draw(np.random.default_rng(100 + w), 1_000, SHIFT_MEAN, SHIFT_SCALE)
        cmp = fitted.estimate(fitted.accumulate(x, pred)).compare(
            RegressionStats.from_arrays(y, pred))
        hits.append([cmp["mae"]["within_band"], cmp["rmse"]["within_band"]])
    rate = np.mean(hits, axis=0)
    assert (rate >= 0.85).all(), rate


def test_expected_stats_merge_and_round_trip(fitted: DLE) -> None:
    x, _, pred = _draw(np.random.default_rng(2), 900)
    whole = fitted.accumulate(x, pred)
    parts = [fitted.accumulate(x[i::3], pred[i::3]) for i in range(3)]
    merged = parts[2] + parts[0] + parts[1] + ExpectedRegressionStats()
    assert merged.n == whole.n
    for key in ("sum_abs", "sum_sq", "var_abs", "var_sq"):
        assert getattr(merged, key) == pytest.approx(getattr(whole, key), rel=1e-9)
    assert ExpectedRegressionStats.from_dict(json.loads(json.dumps(whole.to_dict()))) == whole
    left, right = (parts[0] + parts[1]) + parts[2], parts[0] + (parts[1] + parts[2])
    for key in ("sum_abs", "sum_sq", "var_abs", "var_sq"):
        assert getattr(left, key) == pytest.approx(getattr(right, key), rel=1e-9)


def test_frames_with_categories_missing_values_and_invalid_rows() -> None:
    rng = np.random.default_rng(3)
    n = 1_200
    frame = pd.DataFrame({"num": rng.normal(size=n), "cat": rng.choice(["lo", "hi"], n)})
    frame.loc[::50, "num"] = np.nan
    noise = np.where(frame["cat"] == "hi", 2.0, 0.2)
    y = rng.normal(size=n) * noise
    pred = np.zeros(n)
    dle = DLE(n_folds=2).fit(frame, y, pred)
    current = frame.assign(cat="hi")
    pred_cur = pred.copy()
    pred_cur[:3] = np.nan
    exp = dle.accumulate(current, pred_cur)
    assert (exp.n, exp.n_invalid) == (n - 3, 3)
    est = dle.estimate(exp).metrics["mae"].estimate
    assert est == pytest.approx(2.0 * np.sqrt(2 / np.pi), rel=0.15)
    with pytest.raises(SchemaError, match="'cat'"):
        dle.accumulate(frame[["num"]], pred)


def test_errors_and_empty_windows(fitted: DLE) -> None:
    with pytest.raises(NotFittedError):
        DLE().accumulate(np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(ParameterError, match="'n_folds' parameter of DLE"):
        DLE(n_folds=1)
    with pytest.raises(DataError, match="at least"):
        DLE().fit(np.zeros((4, 1)), np.zeros(4), np.zeros(4))
    with pytest.raises(DataError, match="y_pred"):
        fitted.accumulate(np.zeros((3, 3)), np.zeros(2))
    empty = fitted.estimate(ExpectedRegressionStats())
    assert np.isnan(empty.metrics["mae"].estimate)
    cmp = empty.compare(RegressionStats.empty())
    assert cmp["mae"]["within_band"] is None
    assert list(empty.to_pandas().columns) == ["estimate", "std", "lower", "upper"]


def test_thread_count_does_not_change_the_result() -> None:
    x, y, pred = _draw(np.random.default_rng(4), 3_000)
    cur, _, cur_pred = _draw(np.random.default_rng(5), 1_000, SHIFT_MEAN, SHIFT_SCALE)
    results = [DLE(n_folds=2, n_threads=n).fit(x, y, pred).accumulate(cur, cur_pred).to_dict()
               for n in (1, 2, None)]
    assert results[0] == results[1] == results[2]
    with pytest.raises(ParameterError, match="'n_threads' parameter of DLE"):
        DLE(n_threads=0)


def test_stored_trees_predict_as_scikit_learn() -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor

    from aiwarden.engine._tree_ensemble import TreeEnsemble

    rng = np.random.default_rng(6)
    n = 4_000
    x = np.column_stack([rng.normal(size=n), rng.integers(0, 30, n).astype(float),
                         rng.normal(size=n)])
    x[::7, 0] = np.nan
    x[::11, 1] = np.nan
    y = np.sin(np.nan_to_num(x[:, 0])) + np.nan_to_num(x[:, 1]) % 3 + rng.normal(size=n)
    model = HistGradientBoostingRegressor(max_iter=40, categorical_features=[False, True, False],
                                          random_state=0).fit(x, y)
    trees = TreeEnsemble.from_hgb(model, 3)
    new = np.column_stack([rng.normal(size=n), rng.integers(-2, 40, n).astype(float),
                           rng.normal(size=n)])
    new[::5, 1] = np.nan  # missing category
    new[::13, 1] = 2.5  # never-seen category value; -2 and 30..39 are unseen too
    new[::3, 0] = np.nan
    np.testing.assert_allclose(trees.predict(new), model.predict(new), rtol=1e-12, atol=1e-12)
    back = TreeEnsemble.from_dict(json.loads(json.dumps(trees.to_dict())))
    np.testing.assert_array_equal(back.predict(new), trees.predict(new))
    numeric = HistGradientBoostingRegressor(max_iter=40, random_state=0).fit(x[:, [0, 2]], y)
    np.testing.assert_allclose(TreeEnsemble.from_hgb(numeric, 2).predict(new[:, [0, 2]]),
                               numeric.predict(new[:, [0, 2]]), rtol=1e-12, atol=1e-12)


def test_json_round_trip_estimates_identically() -> None:
    rng = np.random.default_rng(7)
    n = 2_000
    frame = pd.DataFrame({"num": rng.normal(size=n), "cat": rng.choice(["a", "b", "c"], n)})
    y = rng.normal(size=n) * np.where(frame["cat"] == "a", 2.0, 0.5) + frame["num"]
    pred = frame["num"].to_numpy()
    dle = DLE(n_folds=2).fit(frame, y, pred)
    back = DLE.from_dict(json.loads(json.dumps(dle.to_dict())))
    cur = frame.assign(cat=rng.choice(["a", "b", "zz"], n))
    assert back.accumulate(cur, pred).to_dict() == dle.accumulate(cur, pred).to_dict()
    assert back.reference_check_ == dle.reference_check_
    from sklearn.tree import DecisionTreeRegressor

    custom = DLE(DecisionTreeRegressor(min_samples_leaf=50), n_folds=2).fit(frame, y, pred)
    with pytest.raises(ParameterError, match="custom estimator"):
        custom.to_dict()


def test_estimate_and_realised_agree_with_scikit_learn(fitted: DLE) -> None:
    from sklearn.metrics import mean_absolute_error, root_mean_squared_error

    x, y, pred = _draw(np.random.default_rng(8), 20_000, SHIFT_MEAN, SHIFT_SCALE)
    realised = RegressionStats.from_arrays(y, pred)
    assert realised.metrics()["mae"] == pytest.approx(mean_absolute_error(y, pred), rel=1e-12)
    assert realised.metrics()["rmse"] == pytest.approx(root_mean_squared_error(y, pred),
                                                       rel=1e-12)
    est = fitted.estimate(fitted.accumulate(x, pred))
    assert est.metrics["mae"].estimate == pytest.approx(mean_absolute_error(y, pred), rel=0.03)
    assert est.metrics["rmse"].estimate == pytest.approx(root_mean_squared_error(y, pred),
                                                         rel=0.03)
    frame = est.to_pandas()
    assert frame.index.name == "metric" and list(frame.index) == ["mae", "rmse"]
    assert frame.loc["mae", "estimate"] == est.metrics["mae"].estimate
    assert est.to_dict()["metrics"]["rmse"] == est.metrics["rmse"].to_dict()
    assert "<table" in est._repr_html_() and "DLE" in est._repr_html_()


def test_band_widens_to_the_labelled_rows(fitted: DLE) -> None:
    x, y, pred = _draw(np.random.default_rng(9), 4_000)
    est = fitted.estimate(fitted.accumulate(x, pred))
    few = RegressionStats.from_arrays(y[:400], pred[:400])
    cmp = est.compare(few)["mae"]
    half_all = est.metrics["mae"].upper - est.metrics["mae"].estimate
    assert cmp["upper"] - cmp["estimate"] == pytest.approx(half_all * np.sqrt(10), rel=1e-9)
    assert cmp["severity"] == pytest.approx(
        abs(cmp["realised"] - cmp["estimate"]) / (cmp["upper"] - cmp["estimate"]), rel=1e-9)
