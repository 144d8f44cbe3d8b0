"""Latency histograms against numpy; bucket data round-trips and merges by addition."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiwarden.engine import Reference
from aiwarden.engine.profile import Profile
from aiwarden.monitoring import latency
from aiwarden.monitoring.bucket import BucketData

BIN_RATIO = 10 ** (1 / 40)  # 40 log bins per decade
QS = (50, 90, 95, 99)


@pytest.mark.parametrize(("mu", "sigma", "n", "seed"), [
    (np.log(5.0), 0.5, 20_000, 0), (np.log(40.0), 1.2, 50_000, 1),
    (np.log(0.2), 2.0, 5_000, 2), (np.log(3000.0), 0.1, 10_000, 3),
])
def test_percentiles_within_six_percent_of_numpy_on_lognormal(
        mu: float, sigma: float, n: int, seed: int) -> None:
    v = np.random.default_rng(seed).lognormal(mu, sigma, n)
    got = latency.percentiles(latency.histogram(v), QS)
    assert set(got) == {f"p{q}" for q in QS}
    for q in QS:
        want = np.percentile(v, q)
        assert got[f"p{q}"] == pytest.approx(want, rel=0.06), q


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(1e-3, 1e8, allow_nan=False), min_size=1, max_size=300),
       st.sampled_from([1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9]))
def test_percentile_lies_in_the_bin_of_the_exact_order_statistic(
        values: list[float], q: float) -> None:
    """The estimate falls in the bin of numpy's inverted-CDF percentile: at most one bin off."""
    v = np.asarray(values)
    got = latency.percentiles(latency.histogram(v), (q,))[f"p{q:g}"]
    exact = float(np.percentile(v, q, method="inverted_cdf"))
    assert exact / BIN_RATIO * (1 - 1e-9) <= got <= exact * BIN_RATIO * (1 + 1e-9)


def test_negative_nan_and_infinite_latencies_are_ignored() -> None:
    v = np.random.default_rng(4).lognormal(2, 1, 3000)
    junk = np.array([-1.0, -1e-9, -np.inf, np.nan, np.inf, np.nan])
    mixed = np.random.default_rng(5).permutation(np.concatenate([v, junk]))
    h = latency.histogram(mixed)
    assert h.dtype == np.int64 and h.shape == (latency.N_BINS,)
    assert int(h.sum()) == v.size
    np.testing.assert_array_equal(h, latency.histogram(v))
    assert latency.percentiles(h) == latency.percentiles(latency.histogram(v))
    assert latency.percentiles(latency.histogram(junk)) == {}


def test_zero_and_extreme_latencies_land_in_the_edge_bins() -> None:
    h = latency.histogram(np.array([0.0, 1e-6, 1e12]))
    assert h.sum() == 3 and h[0] == 2 and h[-1] == 1


def test_histograms_merge_by_addition() -> None:
    v = np.random.default_rng(6).lognormal(1, 1.5, 4000)
    parts = np.array_split(v, 7)
    np.testing.assert_array_equal(sum(latency.histogram(p) for p in parts),
                                  latency.histogram(v))


# ------------------------------------------------------------------- BucketData
def frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, n)
    score = 1 / (1 + np.exp(-2 * x))
    return pd.DataFrame({"x": x, "c": rng.choice(["a", "b", "c"], n),
                         "amount": rng.lognormal(3, 1, n), "score": score,
                         "pred": (score > 0.5).astype(int),
                         "y": (rng.random(n) < score).astype(int)})


@pytest.fixture(scope="module")
def ref() -> Reference:
    return Reference.fit(frame(3000, 0), target="y", prediction="pred", scores="score")


def bucket(ref: Reference, df: pd.DataFrame, seed: int, reasons: dict[str, int]) -> BucketData:
    lat = np.random.default_rng(seed).lognormal(1, 1, len(df))
    labelled = df.iloc[: len(df) // 2]
    prof = (ref.profile(df.drop(columns="y"))
            + ref.profile(labelled, labels_only=True))
    return BucketData(rows=len(df), profile=prof, latency=latency.histogram(lat),
                      quarantined=sum(reasons.values()), quarantine_reasons=reasons,
                      labels=len(labelled))


def counts(d: BucketData) -> dict:
    """Everything additive in a bucket, as plain values."""
    assert d.profile is not None
    return {
        "rows": d.rows, "latency": d.latency.tolist(), "quarantined": d.quarantined,
        "reasons": dict(sorted(d.quarantine_reasons.items())), "labels": d.labels,
        "n_rows": d.profile.n_rows,
        "columns": {k: (c.counts.tolist(), c.n, c.missing) for k, c in d.profile.columns.items()},
        "performance": d.profile.performance.to_dict(),
        "estimated": d.profile.estimated.to_dict(),
    }


def same(a: object, b: object, path: str = "") -> None:
    """Integers (the counts) exactly; float sums to rounding, since their order differs."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for k in a:
            same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert b == pytest.approx(a, rel=1e-12, abs=1e-12), path
    else:
        assert type(a) is type(b) and a == b, path


def without_examples(p: Profile) -> Profile:
    """Example row positions index one batch; a stored bucket mixes batches, so the
    packed form drops them (the RCA names rows from the raw events instead)."""
    return replace(p, columns={k: replace(c, examples={}) for k, c in p.columns.items()})


def test_bucket_round_trips_through_bytes(ref: Reference) -> None:

    b = bucket(ref, frame(500, 1), 1, {"features.x": 2, "timestamp": 1})
    back = BucketData.from_bytes(b.to_bytes())
    assert counts(back) == counts(b)
    assert back.profile.to_dict() == without_examples(b.profile).to_dict()
    assert ref.compare(back.profile).to_dict() == ref.compare(b.profile).to_dict()
    assert (ref.estimated_performance(back.profile).to_dict()
            == ref.estimated_performance(b.profile).to_dict())
    empty = BucketData.from_bytes(BucketData().to_bytes())
    assert empty.rows == 0 and empty.profile is None and int(empty.latency.sum()) == 0
    only_q = BucketData(quarantined=3, quarantine_reasons={"prediction_id": 3})
    assert BucketData.from_bytes(only_q.to_bytes()).quarantine_reasons == {"prediction_id": 3}


def test_bucket_merge_is_associative_commutative_and_equals_the_union(ref: Reference) -> None:
    dfs = [frame(300, s, shift=0.3 * s) for s in (11, 12, 13)]
    a, b, c = (bucket(ref, df, i, r) for i, (df, r) in enumerate(zip(dfs, [
        {"features.x": 1}, {"timestamp": 2, "features.x": 1}, {}], strict=True)))
    flat = counts(BucketData.merge_all([a, b, c]))
    same(counts(BucketData.merge_all([BucketData.merge_all([a, b]), c])), flat)
    same(counts(BucketData.merge_all([a, BucketData.merge_all([b, c])])), flat)
    same(counts(BucketData.merge_all([c, a, b])), flat)
    same(counts(BucketData.merge_all([b, c, a])), flat)
    # merging stored partials is the same as merging in memory
    stored = [BucketData.from_bytes(x.to_bytes()) for x in (a, b, c)]
    same(counts(BucketData.merge_all(stored)), flat)
    # and equals one bucket of the union of the rows
    whole = pd.concat(dfs, ignore_index=True)
    union = ref.profile(whole.drop(columns="y"))
    merged = BucketData.merge_all([a, b, c])
    for name, col in union.columns.items():
        np.testing.assert_array_equal(merged.profile.columns[name].counts, col.counts)
    assert flat["rows"] == len(whole) and flat["quarantined"] == 4
    assert flat["reasons"] == {"features.x": 2, "timestamp": 2}
    assert flat["labels"] == sum(len(df) // 2 for df in dfs)
    # a bucket holding only quarantined rows merges in without a profile
    q = BucketData(quarantined=5, quarantine_reasons={"timestamp": 5})
    with_q = BucketData.merge_all([a, q, b, c])
    assert with_q.rows == flat["rows"] and with_q.quarantined == 9
    assert with_q.profile.n_rows == merged.profile.n_rows
    assert BucketData.merge_all([]).rows == 0
