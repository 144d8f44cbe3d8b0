"""Finite but huge values overflow a sum of squares: the accumulator still merges, stores
and reads back, and the metrics it cannot give are NaN with a reason (never an error)."""

from __future__ import annotations

import json
import math

import numpy as np
import orjson
from sklearn.metrics import mean_absolute_error

from aiwarden.engine.dle import ExpectedRegressionStats
from aiwarden.engine.performance import RegressionStats


def _stored(stats):  # what the store does: orjson writes inf/NaN as null
    return type(stats).from_dict(json.loads(orjson.dumps(stats.to_dict())))


def test_huge_prediction_overflows_rmse_with_a_reason_and_keeps_mae() -> None:
    s = RegressionStats.from_arrays([1.0, 2.0], [1e200, 2.0])
    back = _stored(s)
    m = back.metrics()
    assert math.isnan(m["rmse"]) and math.isnan(m["r2"])
    assert m["mae"] == mean_absolute_error([1.0, 2.0], [1e200, 2.0])
    assert set(back.reasons()) == {"rmse", "r2"}
    assert "overflowed float64" in back.reasons()["rmse"]
    merged = back + RegressionStats.from_arrays([3.0], [3.5])  # merging keeps working
    assert merged.n == 3 and "rmse" in merged.reasons()


def test_huge_labels_and_predictions_every_sum_lost_each_named() -> None:
    s = _stored(RegressionStats.from_arrays([1e308, -1e308], [-1e308, 1e308]))
    m = s.metrics()
    assert all(math.isnan(v) for v in m.values())
    assert set(s.reasons()) == set(m)


def test_normal_values_give_no_reason() -> None:
    s = _stored(RegressionStats.from_arrays(np.arange(1.0, 6.0), np.arange(1.5, 6.5)))
    assert s.reasons() == {} and s.metrics()["rmse"] == 0.5


def test_expected_regression_stats_read_a_stored_null() -> None:
    d = ExpectedRegressionStats(n=2, sum_abs=1.0, sum_sq=math.inf).to_dict()
    back = ExpectedRegressionStats.from_dict(json.loads(orjson.dumps(d)))
    assert back.n == 2 and math.isnan(back.sum_sq) and back.sum_abs == 1.0


def test_numerical_profile_reads_a_stored_null_moment() -> None:
    from aiwarden.engine.profile import NumericalProfile

    d = NumericalProfile(np.array([0, 1, 0]), n=1, min=0.0, max=1e300, mean=1e300).to_dict()
    d["m2"] = None  # a moment that overflowed when it was written
    back = NumericalProfile.from_dict(d)
    assert back.mean == 1e300 and math.isnan(back.m2)
