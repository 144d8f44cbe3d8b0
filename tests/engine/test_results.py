"""One result shape: realised performance, CBPE/DLE estimates and drift reports.

Frozen dataclasses with ``to_dict()`` / ``to_pandas()`` (per-metric tables indexed by
``metric``, per-column tables by ``column``) and an escaped Jupyter ``_repr_html_``;
a regression reference estimates with DLE. Numbers are checked against scikit-learn on
the raw rows.
"""

from __future__ import annotations

import dataclasses
import doctest
import json
from importlib import import_module

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    r2_score,
    root_mean_squared_error,
)
from threadpoolctl import threadpool_limits

from aiwarden.engine import CBPEResult, DLEResult, Reference
from aiwarden.engine._results import RealisedPerformance


@pytest.fixture(autouse=True)
def _one_thread():
    with threadpool_limits(limits=1):
        yield


def _regression(n: int, rng: np.random.Generator, shift: float = 0.0) -> pd.DataFrame:
    """y = 2 x + noise whose sd grows with |z|; the model predicts 2 x; c moves the noise."""
    x, z = rng.normal(size=n), rng.normal(shift, 1.0, size=n)
    c = rng.choice(["calm", "wild"], n, p=[0.7, 0.3])
    noise = rng.normal(size=n) * (0.3 + np.abs(z)) * np.where(c == "wild", 2.0, 1.0)
    return pd.DataFrame({"x": x, "z": z, "c": c, "target": 2 * x + noise, "prediction": 2 * x})


def _classified(n: int, rng: np.random.Generator, shift: float = 0.0) -> pd.DataFrame:
    x = rng.normal(shift, 1.0, n)
    p = 1 / (1 + np.exp(-2 * x))
    y = (rng.random(n) < p).astype(int)
    return pd.DataFrame({"x": x, "score": p, "prediction": (p >= 0.5).astype(int), "target": y})


@pytest.fixture(scope="module")
def regression_ref() -> Reference:
    with threadpool_limits(limits=1):
        return Reference.fit(_regression(8_000, np.random.default_rng(0)))


def test_regression_reference_estimates_with_dle(regression_ref: Reference) -> None:
    cur = _regression(6_000, np.random.default_rng(1), shift=1.0)  # covariate shift
    est = regression_ref.estimated_performance(regression_ref.profile(cur.drop(columns="target")))
    assert isinstance(est, DLEResult) and est.n == len(cur)
    mae = mean_absolute_error(cur.target, cur.prediction)
    rmse = root_mean_squared_error(cur.target, cur.prediction)
    assert mae > 1.2 * mean_absolute_error(*_xy(_regression(8_000, np.random.default_rng(0))))
    assert est.metrics["mae"].estimate == pytest.approx(mae, rel=0.05)
    assert est.metrics["rmse"].estimate == pytest.approx(rmse, rel=0.05)
    realised = regression_ref.realised_performance(regression_ref.profile(cur))
    assert realised["mae"] == pytest.approx(mae, rel=1e-12)
    assert realised["rmse"] == pytest.approx(rmse, rel=1e-12)
    assert realised["r2"] == pytest.approx(r2_score(cur.target, cur.prediction), rel=1e-9)
    cmp = est.compare(regression_ref.profile(cur).performance)
    assert cmp["mae"]["within_band"] and cmp["rmse"]["within_band"], cmp


def _xy(df: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    return df.target, df.prediction


def test_regression_reference_round_trips_its_estimator(regression_ref: Reference) -> None:
    back = Reference.from_dict(json.loads(json.dumps(regression_ref.to_dict())))
    cur = _regression(1_500, np.random.default_rng(2), shift=0.5).drop(columns="target")
    a, b = regression_ref.profile(cur), back.profile(cur)
    assert a.to_dict() == b.to_dict()
    assert (regression_ref.estimated_performance(a).to_dict()
            == back.estimated_performance(b).to_dict())
    missing = regression_ref.profile(cur.drop(columns="c"))  # absent feature: all missing
    assert regression_ref.estimated_performance(missing).n == len(cur)


def test_regression_without_features_or_labels_has_no_estimator() -> None:
    rng = np.random.default_rng(3)
    df = _regression(2_000, rng)
    assert Reference.fit(df[["target", "prediction"]]).estimated_performance(df) is None
    tiny = Reference.fit(df.iloc[:60])  # fewer than 100 labelled rows
    assert tiny.performance_model_ is None


def test_classification_results_agree_with_scikit_learn() -> None:
    rng = np.random.default_rng(4)
    ref = Reference.fit(_classified(10_000, rng))
    cur = _classified(5_000, rng, shift=0.7)
    real = ref.realised_performance(ref.profile(cur))
    assert isinstance(real, RealisedPerformance) and real.n == len(cur)
    assert real["accuracy"] == pytest.approx(accuracy_score(cur.target, cur.prediction),
                                             abs=1e-12)
    assert real["f1"] == pytest.approx(f1_score(cur.target, cur.prediction), abs=1e-12)
    est = ref.estimated_performance(ref.profile(cur.drop(columns="target")))
    assert isinstance(est, CBPEResult)
    assert est.metrics["accuracy"].estimate == pytest.approx(real["accuracy"], abs=0.02)
    assert est.metrics["f1"].estimate == pytest.approx(real["f1"], abs=0.03)


def test_one_shape_for_every_result(regression_ref: Reference) -> None:
    rng = np.random.default_rng(5)
    ref = Reference.fit(_classified(4_000, rng))
    cur = _classified(2_000, rng, shift=0.5)
    prof = ref.profile(cur)
    reg_cur = _regression(1_000, rng)
    reg_prof = regression_ref.profile(reg_cur)
    results = [ref.realised_performance(prof), ref.estimated_performance(prof),
               regression_ref.realised_performance(reg_prof),
               regression_ref.estimated_performance(reg_prof)]
    for r in results:
        assert dataclasses.is_dataclass(r) and r.__dataclass_params__.frozen
        with pytest.raises(dataclasses.FrozenInstanceError):
            r.n = 0  # type: ignore[misc]
        d = r.to_dict()
        assert json.loads(json.dumps(d)) == d or _has_nan(d)
        frame = r.to_pandas()
        assert frame.index.name == "metric" and set(frame.index) == set(r.metrics)
        assert "<table" in r._repr_html_()
    real, est = results[0], results[1]
    assert list(est.to_pandas().columns) == ["estimate", "std", "lower", "upper"]
    assert list(results[3].to_pandas().columns) == ["estimate", "std", "lower", "upper"]
    assert list(real.to_pandas().columns) == ["value", "error_bound"]
    assert real.to_pandas().loc["roc_auc", "error_bound"] == real.error_bounds["roc_auc"]
    assert dict(real) == real.metrics and real.get("nope") is None
    drift = ref.compare(prof)
    assert drift.to_pandas().index.name == "column"
    assert dataclasses.is_dataclass(drift) and "to_dict" in dir(drift)


def _has_nan(d: object) -> bool:
    return "NaN" in json.dumps(d)


def test_html_views_escape_what_the_data_says() -> None:
    rng = np.random.default_rng(6)
    evil = "<script>alert(1)</script>"
    df = pd.DataFrame({evil: rng.normal(size=2_000), "c": rng.choice(["a", "b"], 2_000)})
    ref = Reference.fit(df)
    cur = df.assign(**{evil: df[evil] + 3.0, "c": "<b>x</b>"})
    for report in (ref.compare(ref.profile(cur)), ref.check_quality(ref.profile(cur))):
        page = report._repr_html_()
        assert "<script>" not in page and "&lt;script&gt;" in page
        assert "<b>x</b>" not in page
    assert "Drifted features: &lt;script&gt;" in ref.compare(ref.profile(cur))._repr_html_()


def test_slice_report_html_is_escaped() -> None:
    from aiwarden.engine import find_failing_slices

    rng = np.random.default_rng(7)
    n = 3_000
    data = pd.DataFrame({"c": rng.choice(["<i>bad</i>", "ok"], n), "x": rng.normal(size=n)})
    errors = np.where(data.c == "<i>bad</i>", rng.random(n) < 0.5, rng.random(n) < 0.05)
    report = find_failing_slices(data, errors=errors.astype(int))
    page = report._repr_html_()
    assert report.slices and "<i>bad</i>" not in page and "&lt;i&gt;bad&lt;/i&gt;" in page


@pytest.mark.parametrize("module_name", ["aiwarden.engine.dle", "aiwarden.engine.cbpe",
                                         "aiwarden.engine._cbpe_expected"])
def test_module_doctests(module_name: str) -> None:
    result = doctest.testmod(import_module(module_name))
    assert result.attempted > 0 and result.failed == 0
