"""Wide references: fitting many columns at once (the linear path) gives exactly what fitting
each column alone gives, the counts match numpy on the raw data, and ``should_stop`` stops
the fit between columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aiwarden.engine._binning import NumericalBinning
from aiwarden.engine.reference import Reference
from aiwarden.errors import Cancelled, DataError


def _wide(n_num: int = 60, n_cat: int = 30, rows: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    cols: dict[str, object] = {}
    for i in range(n_num):
        x = rng.normal(loc=i, scale=1 + i % 5, size=rows)
        x[rng.random(rows) < 0.05] = np.nan
        cols[f"num_{i}"] = x
    for i in range(n_cat):
        cols[f"cat_{i}"] = rng.choice([f"v{j}" for j in range(2 + i % 7)], rows)
    cols["prediction"] = rng.integers(0, 2, rows)
    names = list(cols)
    order = rng.permutation(len(names))  # column order unrelated to the names
    return pd.DataFrame({names[k]: cols[names[k]] for k in order})


def test_a_wide_fit_equals_the_fit_of_each_column_alone() -> None:
    df = _wide()
    wide = Reference.fit(df, prediction="prediction")
    for name in df.columns:
        if name == "prediction":
            continue
        alone = Reference.fit(df[[name, "prediction"]], prediction="prediction")
        assert wide.schema_[name] == alone.schema_[name]
        assert wide.binnings_[name].to_dict() == alone.binnings_[name].to_dict(), name
        assert wide.profile_.columns[name].to_dict() == alone.profile_.columns[name].to_dict()
        assert wide.instability_.get(name) == alone.instability_.get(name), name


def test_wide_counts_match_numpy_on_the_raw_data() -> None:
    df = _wide()
    ref = Reference.fit(df, prediction="prediction")
    for name in df.columns:
        prof, binning = ref.profile_.columns[name], ref.binnings_[name]
        if not isinstance(binning, NumericalBinning):
            continue
        raw = df[name].to_numpy()
        finite = raw[np.isfinite(raw)]
        assert prof.missing + prof.nan == int(np.isnan(raw).sum())
        assert prof.mean == pytest.approx(float(np.mean(finite)), rel=1e-12)
        assert (prof.min, prof.max) == (finite.min(), finite.max())
        # bin i is [edges[i-1], edges[i])
        expected = np.bincount(np.searchsorted(binning.edges, finite, side="right"),
                               minlength=binning.n_bins)
        np.testing.assert_array_equal(prof.counts, expected)


def test_should_stop_is_asked_between_columns_and_stops_the_fit() -> None:
    df = _wide(n_num=20, n_cat=0)
    asked: list[int] = []

    def stop_after_five() -> bool:
        asked.append(1)
        return len(asked) > 5

    with pytest.raises(Cancelled, match="should_stop"):
        Reference.fit(df, prediction="prediction", should_stop=stop_after_five)
    assert len(asked) == 6  # five columns fitted, then it stopped instead of the 6th

    never = Reference.fit(df, prediction="prediction", should_stop=lambda: False)
    plain = Reference.fit(df, prediction="prediction")
    assert never.fingerprint == plain.fingerprint
    assert never.to_dict() == plain.to_dict()


def test_repeated_column_names_are_named_once_each() -> None:
    table = pd.DataFrame(np.zeros((3, 4)), columns=["a", "b", "a", "b"])
    with pytest.raises(DataError, match=r"Repeated: \['a', 'b'\]"):
        Reference.fit(table)
