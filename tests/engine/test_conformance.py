"""Every registered drift method and the reference obey the same contract."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from aiwarden.engine import DriftSettings, Reference
from aiwarden.engine.drift_metrics import METRICS, get_metric
from aiwarden.errors import ParameterError

NUMERICAL_ONLY = sorted(m for m, (_, ordered) in METRICS.items() if ordered)
ANY_KIND = sorted(m for m, (_, ordered) in METRICS.items() if not ordered)


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"x": rng.gamma(2.0, 2.0, 8_000), "c": rng.choice(list("abcd"), 8_000)})
    cur = pd.DataFrame({"x": rng.gamma(2.0, 2.6, 3_000), "c": rng.choice(list("abcd"), 3_000,
                                                                          p=[.4, .3, .2, .1])})
    return ref, cur


def _settings(method: str) -> DriftSettings:
    ordered = METRICS[method][1]
    return DriftSettings(numerical_method=method,
                         categorical_method="jensenshannon" if ordered else method)


@pytest.mark.parametrize("method", sorted(METRICS))
def test_method_is_deterministic_and_survives_pickling(data, method: str) -> None:
    ref_df, cur_df = data
    ref = Reference.fit(ref_df, drift=_settings(method))
    first = ref.compare(cur_df).to_dict()
    assert ref.compare(cur_df).to_dict() == first
    again = pickle.loads(pickle.dumps(ref))
    assert again.compare(cur_df).to_dict() == first
    assert Reference.fit(ref_df, drift=_settings(method)).compare(cur_df).to_dict() == first


@pytest.mark.parametrize("method", sorted(METRICS))
def test_inputs_are_untouched(data, method: str) -> None:
    ref_df, cur_df = data
    ref_copy, cur_copy = ref_df.copy(), cur_df.copy()
    ref = Reference.fit(ref_df, drift=_settings(method))
    ref.compare(ref.profile(cur_df))
    pd.testing.assert_frame_equal(ref_df, ref_copy)
    pd.testing.assert_frame_equal(cur_df, cur_copy)


@pytest.mark.parametrize("method", sorted(METRICS))
def test_distance_is_zero_on_itself_symmetric_and_detects_the_shift(data, method: str) -> None:
    fn, ordered = get_metric(method)
    rng = np.random.default_rng(1)
    a = rng.integers(1, 100, 30).astype(float)
    b = rng.integers(1, 100, 30).astype(float)
    args = (np.arange(29.0),) if method == "wasserstein" else ()
    assert float(fn(a, a * 3, *args)) == pytest.approx(0.0, abs=1e-12)
    assert float(fn(a, b, *args)) == pytest.approx(float(fn(b, a, *args)), rel=1e-12)
    assert float(fn(a, b, *args)) > 0
    ref_df, cur_df = data
    col = "x" if ordered else "c"
    report = Reference.fit(ref_df, drift=_settings(method)).compare(cur_df)
    assert report[col].method == method and report[col].drifted


def test_unknown_method_lists_the_valid_ones() -> None:
    with pytest.raises(ParameterError) as err:
        get_metric("energy")
    for name in METRICS:
        assert name in str(err.value)


@pytest.mark.parametrize("name,value,expected", [
    ("alpha", 0.0, "a float in (0, 1)"),
    ("n_simulations", 10, "an int in [50, 100000]"),
    ("calibration", "sometimes", "one of 'chunks', 'none'"),
    ("min_reference", 0, "an int >= 1"),
])
def test_bad_settings_use_the_house_template(name: str, value, expected: str) -> None:
    with pytest.raises(ParameterError) as err:
        DriftSettings(**{name: value})
    assert str(err.value) == (f"The {name!r} parameter of DriftSettings must be {expected}. "
                              f"Got {value!r} instead.")


@pytest.mark.parametrize("method", NUMERICAL_ONLY)
def test_ordered_methods_refuse_categorical_columns(method: str) -> None:
    with pytest.raises(ParameterError, match="needs ordered numerical bins"):
        DriftSettings(methods={"c": method}).method_for("c", numerical=False)


def test_every_unordered_method_applies_to_both_kinds() -> None:
    for method in ANY_KIND:
        s = DriftSettings(methods={"x": method, "c": method})
        assert s.method_for("x", True) == s.method_for("c", False) == method
