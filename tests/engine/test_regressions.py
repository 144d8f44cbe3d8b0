"""Bugs found in review, pinned so they stay fixed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats

from aiwarden.engine import Reference
from aiwarden.errors import DataError


def test_duplicate_rows_of_whole_numbers_do_not_collide() -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"age": rng.integers(18, 90, 20_000), "tenure": rng.integers(0, 120, 20_000),
                       "orders": rng.integers(0, 300, 20_000)}).astype(float)
    ref = Reference.fit(df)
    assert ref.profile(df).duplicates == int(df.duplicated().sum())
    unique = df.drop_duplicates()
    assert ref.profile(unique).duplicates == 0


def test_rows_with_different_unseen_categories_are_not_duplicates() -> None:
    ref = Reference.fit(pd.DataFrame({"sku": ["a", "b", "c"] * 100, "x": 1.0}))
    cur = pd.DataFrame({"sku": [f"new{i}" for i in range(1_000)], "x": 1.0})
    assert ref.profile(cur).duplicates == 0


def test_noise_does_not_depend_on_earlier_calls_or_ignore_settings() -> None:
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"x": rng.normal(size=5_000), "c": rng.choice(list("abcde"), 5_000)})
    warm, fresh = Reference.fit(df), Reference.fit(df)
    warm.compare(df.iloc[:49])
    for col in ("x", "c"):
        assert warm.compare(df.iloc[:50])[col].noise == fresh.compare(df.iloc[:50])[col].noise
    # The categorical floor is simulated: the simulation count is honoured.
    many = fresh.compare(df.iloc[:50], settings={"n_simulations": 5_000})["c"].noise
    assert many != fresh.compare(df.iloc[:50])["c"].noise


def test_off_grid_values_in_a_discrete_column_are_measured() -> None:
    rng = np.random.default_rng(2)
    ref_x = rng.poisson(20, 50_000).astype(float)
    cur_x = rng.poisson(20, 20_000) + 0.9
    col = Reference.fit(pd.DataFrame({"x": ref_x})).compare(pd.DataFrame({"x": cur_x}))["x"]
    exact = stats.wasserstein_distance(ref_x, cur_x) / ref_x.std()
    assert col.drifted
    assert col.metrics["wasserstein"] == pytest.approx(exact, rel=0.15)


def test_missing_values_are_not_category_instability() -> None:
    rng = np.random.default_rng(3)
    n = 20_000
    c = rng.choice(["a", "b", "c"], n).astype(object)
    c[n // 2:][rng.random(n // 2) < 0.5] = None  # missing rate changes over time only
    df = pd.DataFrame({"ts": pd.date_range("2026-01-01", periods=n, freq="min"), "c": c})
    assert Reference.fit(df).instability_["c"]["jensenshannon"] == 0.0


def test_timestamps_written_as_text_are_a_clock() -> None:
    rng = np.random.default_rng(4)
    n = 20_000
    ts = rng.permutation(pd.date_range("2026-01-01", periods=n, freq="min"))
    # Exported sorted by x, so row order is not time order; the text timestamps are.
    df = pd.DataFrame({"ts": pd.DatetimeIndex(ts).strftime("%Y-%m-%dT%H:%M:%S"),
                       "x": np.sort(rng.normal(size=n))})
    ref = Reference.fit(df, timestamp="ts")
    assert ref.instability_["x"]["wasserstein"] == 0.0


def test_string_view_and_nested_columns() -> None:
    view = pa.table({"c": pa.array(["a", "b"] * 50).cast(pa.string_view()),
                     "x": np.arange(100.0)})
    assert Reference.fit(view).schema_["c"].dtype.value == "categorical"
    nested = pa.table({"emb": pa.array([[1.0, 2.0]] * 10), "x": np.arange(10.0)})
    with pytest.raises(DataError, match="'emb' holds nested values"):
        Reference.fit(nested)
