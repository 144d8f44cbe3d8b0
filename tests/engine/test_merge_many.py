"""Many-way merges (Profile.merge_all): the fast paths give what the pairwise fold gives."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from aiwarden.engine import Reference
from aiwarden.engine.profile import NumericalProfile, Profile


@pytest.fixture(scope="module")
def reference() -> Reference:
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"x": rng.normal(size=3000), "c": rng.choice(list("abc"), 3000)})
    return Reference.fit(df)


def _buckets(reference: Reference, n: int) -> list[Profile]:
    rng = np.random.default_rng(4)
    out = []
    for i in range(n):
        df = pd.DataFrame({"x": rng.normal(0.1 * (i % 3), size=20),
                           "c": rng.choice(list("abcd"), 20)})
        if i % 7 == 0:
            df.loc[0, "x"] = np.nan
        out.append(reference.profile(df))
    return out


def test_merge_all_equals_the_pairwise_fold(reference: Reference) -> None:
    parts = _buckets(reference, 60)
    many = Profile.merge_all(parts)
    fold = parts[0]
    for p in parts[1:]:
        fold = fold.merge(p)  # two at a time: no fast path taken
    assert many.n_rows == fold.n_rows == 1200
    for name in ("x", "c"):
        a, b = many.columns[name], fold.columns[name]
        assert np.array_equal(a.counts, b.counts)
        assert a.n == b.n and a.missing == b.missing
        assert a.examples == b.examples
    assert many.columns["x"].mean == pytest.approx(fold.columns["x"].mean, rel=1e-12)
    assert many.columns["c"].unseen_top == fold.columns["c"].unseen_top


def test_counts_of_mixed_integer_types_still_sum(reference: Reference) -> None:
    parts = _buckets(reference, 5)
    x = parts[1].columns["x"]
    narrow = replace(x, counts=x.counts.astype(np.int32))
    parts[1] = replace(parts[1], columns={**parts[1].columns, "x": narrow})
    many = Profile.merge_all(parts)
    expect = sum(p.columns["x"].counts.astype(np.int64) for p in parts)
    assert np.array_equal(many.columns["x"].counts, expect)


def test_unfingerprinted_profiles_on_other_bins_refuse_to_merge() -> None:
    # Without a reference fingerprint nothing vouches for the bins: lengths are checked,
    # even when the total length would reshape ([3, 5] against [4, 4]).
    def prof(bins: list[int]) -> Profile:
        return Profile(1, {"x": NumericalProfile(np.array(bins, dtype=np.int64), n=1)})

    with pytest.raises(ValueError, match="different bins"):
        Profile.merge_all([prof([1, 0, 0]), prof([0, 1, 0, 0, 0]), prof([0, 0, 1, 0]),
                           prof([0, 0, 0, 1])])
