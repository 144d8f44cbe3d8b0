"""Profiles merge by addition: associative, commutative, and equal to profiling the union."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiwarden.engine import Profile, Reference

N_REF = 5_000


@pytest.fixture(scope="module")
def reference() -> Reference:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({
        "x": rng.normal(10, 3, N_REF),
        "k": rng.poisson(4, N_REF).astype(float),
        "c": rng.choice(list("abcd"), N_REF),
        "b": rng.random(N_REF) < 0.3,
    })
    return Reference.fit(df)


# Non-finite values are counted, not added to moments; 1e308-sized values overflow any
# float sum in some order, so they are covered by the bad-input tests instead.
values = st.one_of(st.floats(-1e6, 1e6), st.sampled_from([np.nan, np.inf, -np.inf]))
rows = st.lists(
    st.fixed_dictionaries({
        "x": values,
        "k": st.integers(0, 20).map(float),
        "c": st.sampled_from(["a", "b", "c", "d", "zz", "é", ""]),
        "b": st.booleans(),
    }),
    min_size=1, max_size=20,
)


def _assert_same(p: Profile, q: Profile) -> None:
    assert p.n_rows == q.n_rows and p.duplicates == q.duplicates
    assert p.columns.keys() == q.columns.keys()
    for name in p.columns:
        a, b = p.columns[name].to_dict(), q.columns[name].to_dict()
        a.pop("examples"), b.pop("examples")
        for key in a:
            if key in ("mean", "m2", "below_sum", "above_sum"):
                x, y = a[key], b[key]
                if np.isfinite(x) and np.isfinite(y):
                    assert x == pytest.approx(y, rel=1e-9, abs=1e-9), (name, key)
                else:
                    assert (np.isnan(x) and np.isnan(y)) or x == y, (name, key)
            else:
                assert a[key] == b[key], (name, key)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows, rows, rows)
def test_merge_is_associative_and_commutative(reference: Reference, a, b, c) -> None:
    pa, pb, pc = (reference.profile(pd.DataFrame(r), check_duplicates=False) for r in (a, b, c))
    _assert_same((pa + pb) + pc, pa + (pb + pc))
    _assert_same(pa + pb, pb + pa)
    _assert_same(Profile.merge_all([pa, pb, pc]), (pa + pb) + pc)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows, rows)
def test_merge_equals_profile_of_the_union(reference: Reference, a, b) -> None:
    whole = reference.profile(pd.DataFrame(a + b), check_duplicates=False)
    parts = (reference.profile(pd.DataFrame(a), check_duplicates=False)
             + reference.profile(pd.DataFrame(b), check_duplicates=False))
    _assert_same(whole, parts)


def test_moments_match_numpy(reference: Reference) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(10, 3, 12_345)
    parts = np.array_split(x, 17)
    prof = Profile.merge_all([reference.profile(pd.DataFrame({"x": p})) for p in parts])
    col = prof.columns["x"]
    assert col.count == len(x)
    assert col.mean == pytest.approx(x.mean(), rel=1e-12)
    assert col.variance == pytest.approx(x.var(), rel=1e-10)
    assert (col.min, col.max) == (x.min(), x.max())


def test_size_does_not_grow_with_rows(reference: Reference) -> None:
    rng = np.random.default_rng(2)
    shapes = []
    for n in (1_000, 100_000):
        df = pd.DataFrame({"x": rng.normal(10, 3, n), "k": rng.poisson(4, n).astype(float),
                           "c": rng.choice(list("abcd"), n), "b": rng.random(n) < 0.3})
        d = reference.profile(df).to_dict()
        shapes.append({k: (len(v.get("counts", [])), len(v)) for k, v in d["columns"].items()})
    assert shapes[0] == shapes[1]


def test_json_round_trip(reference: Reference) -> None:
    df = pd.DataFrame({"x": [1.0, np.nan, np.inf, 1e308], "k": [1.0, 2.0, 3.0, 4.0],
                       "c": ["a", "zz", None, "b"], "b": [True, False, True, True]})
    p = reference.profile(df)
    q = Profile.from_dict(json.loads(json.dumps(p.to_dict())))
    _assert_same(p, q)
    assert reference.compare(p).to_dict() == reference.compare(q).to_dict()


def test_unseen_heavy_hitters_are_bounded_and_keep_the_top(reference: Reference) -> None:
    rng = np.random.default_rng(3)
    profiles = []
    for _ in range(20):
        vals = np.concatenate([np.full(50, "NEW_TOP"), rng.integers(0, 10**6, 100).astype(str)])
        profiles.append(reference.profile(pd.DataFrame({"c": vals})))
    merged = Profile.merge_all(profiles)
    top = merged.columns["c"].unseen_top
    assert len(top) <= 32
    assert next(iter(sorted(top, key=lambda k: -top[k]))) == "NEW_TOP"
    assert top["NEW_TOP"] == 1000
    assert merged.columns["c"].unseen == 20 * 150


def test_duplicates_counted_within_batch(reference: Reference) -> None:
    df = pd.DataFrame({"x": [1.0, 1.0, 2.0, 1.0], "k": [1.0, 1.0, 1.0, 1.0],
                       "c": ["a", "a", "a", "a"], "b": [True, True, True, False]})
    assert reference.profile(df).duplicates == 1


def test_profiles_of_different_references_refuse_to_merge(reference: Reference) -> None:
    rng = np.random.default_rng(4)
    other = Reference.fit(pd.DataFrame({
        "x": rng.normal(size=500), "k": rng.random(500), "c": rng.choice(list("ab"), 500),
        "b": rng.random(500) < 0.5}))
    df = pd.DataFrame({"x": [1.0], "k": [1.0], "c": ["a"], "b": [True]})
    mine, theirs = reference.profile(df), other.profile(df)
    assert mine.reference == reference.fingerprint != theirs.reference
    with pytest.raises(Exception, match="different references"):
        mine + theirs
    with pytest.raises(Exception, match="different references"):
        Profile.merge_all([mine, mine, theirs])
    with pytest.raises(Exception, match="counted on reference"):
        reference.compare(theirs)
    assert sum([mine, mine]).n_rows == 2
