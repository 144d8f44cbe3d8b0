"""The packed bucket profile is a faithful second form of the engine's Profile.

Merging packed buckets must give what ``Profile.merge_all`` gives on the same profiles
(integers exactly, float moments to rounding), blobs stored before packing existed must
still be read, and the resource gauges merge to (samples, sum, max).
"""

from __future__ import annotations

import zlib

import numpy as np
import orjson
import pandas as pd
import pytest

from aiwarden.engine import Reference
from aiwarden.engine.profile import Profile
from aiwarden.errors import DataError
from aiwarden.monitoring.bucket import BucketData
from aiwarden.monitoring.packed import Packed
from tests.monitoring.test_latency_bucket import same, without_examples


def frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, n)
    score = 1 / (1 + np.exp(-2 * x))
    return pd.DataFrame({
        "id": [f"r{seed}-{i}" for i in range(n)],
        "x": x, "k": rng.integers(0, 5, n), "c": rng.choice(["a", "b", "c"], n),
        "amount": rng.lognormal(3, 1, n), "score": score, "pred": (score > 0.5).astype(int),
        "y": (rng.random(n) < score).astype(int)})


@pytest.fixture(scope="module")
def ref() -> Reference:
    return Reference.fit(frame(3000, 0), target="y", prediction="pred", scores="score",
                         id="id")


def dirty(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Missing, NaN, infinite, out-of-range and unseen values, so every counter moves."""
    rng = np.random.default_rng(seed)
    out = df.copy()
    idx = rng.choice(len(df), 12, replace=False)
    out.loc[idx[:3], "x"] = np.nan
    out.loc[idx[3:5], "x"] = np.inf
    out.loc[idx[5:7], "amount"] = -5.0
    out["c"] = out["c"].astype(object)
    out.loc[idx[7:10], "c"] = [f"new-{seed}-{i}" for i in range(3)]
    out.loc[idx[10:], "c"] = None
    return out


def profiles(ref: Reference, seeds: range) -> list[Profile]:
    out = []
    for s in seeds:
        df = dirty(frame(200 + 37 * s, s, shift=0.2 * s), s)
        out.append(ref.profile(df.drop(columns="y")) + ref.profile(df, labels_only=True))
    return out


def as_dict(p: Profile) -> dict:
    d = p.to_dict()
    d["columns"] = dict(sorted(d["columns"].items()))  # column order is not part of a merge
    return d


def test_packing_round_trips_every_field(ref: Reference) -> None:
    for p in profiles(ref, range(1, 4)):
        packed = Packed.from_profile(p)
        assert set(packed.num_names) >= {"x", "amount", "score"}
        assert "c" in packed.cat_names and "id" in packed.pres_names
        back = packed.to_profile()
        assert back.to_dict() == without_examples(p).to_dict()
        assert list(back.columns) == list(p.columns)


def test_packed_merge_equals_the_engine_merge(ref: Reference) -> None:
    parts = profiles(ref, range(1, 9))
    want = as_dict(without_examples(Profile.merge_all(parts)))
    got = as_dict(Packed.merge_all([Packed.from_profile(p) for p in parts]).to_profile())
    same(got, want)
    # unseen heavy hitters and every counter really were exercised
    assert want["columns"]["c"]["unseen_top"] and want["columns"]["x"]["posinf"]
    assert want["columns"]["amount"]["negative"]


def test_stored_buckets_merge_packed_and_answer_like_the_engine(ref: Reference) -> None:
    parts = profiles(ref, range(1, 6))
    stored = [BucketData.from_bytes(BucketData(rows=p.n_rows, profile=p).to_bytes())
              for p in parts]
    assert all(b._profile is None for b in stored)  # read packed, not converted
    merged = BucketData.merge_all(stored)
    engine = Profile.merge_all(parts)
    assert merged.rows == engine.n_rows
    assert ref.compare(merged.profile).to_dict() == ref.compare(engine).to_dict()
    assert (ref.check_quality(merged.profile).to_dict()
            == ref.check_quality(without_examples(engine)).to_dict())
    assert ref.realised_performance(merged.profile) == ref.realised_performance(engine)


def test_blobs_stored_before_packing_are_still_read(ref: Reference) -> None:
    p = profiles(ref, range(1, 2))[0]
    lat = np.zeros(BucketData().latency.size, np.int64)
    lat[[3, 7]] = [2, 5]
    old = zlib.compress(orjson.dumps({
        "format": 1, "rows": 9, "profile": p.to_dict(), "latency": [[3, 7], [2, 5]],
        "quarantined": 1, "quarantine_reasons": {"timestamp": 1}, "labels": 4}), 1)
    back = BucketData.from_bytes(old)
    assert back.rows == 9 and back.labels == 4 and back.errors == 0 and back.resources == {}
    np.testing.assert_array_equal(back.latency, lat)
    assert back.profile.to_dict() == p.to_dict()  # format 1 kept them
    new = BucketData.from_bytes(BucketData(rows=1, profile=p).to_bytes())
    both = BucketData.merge_all([back, new])
    assert both.rows == 10
    assert both.profile.columns["x"].count == 2 * p.columns["x"].count


def test_errors_and_resource_gauges_merge_to_samples_sum_and_peak() -> None:
    a = BucketData(rows=10, errors=2, resources={"cpu_percent": (3, 150.0, 80.0)})
    b = BucketData(rows=5, errors=1, resources={"cpu_percent": (2, 40.0, 30.0),
                                                "rss_bytes": (1, 2e9, 2e9)})
    merged = BucketData.merge_all([BucketData.from_bytes(a.to_bytes()), b])
    assert merged.errors == 3 and merged.rows == 15
    assert merged.resources == {"cpu_percent": (5, 190.0, 80.0), "rss_bytes": (1, 2e9, 2e9)}


def test_profiles_of_different_references_still_refuse_to_merge(ref: Reference) -> None:
    other = Reference.fit(frame(500, 9, shift=3.0), target="y", prediction="pred",
                          scores="score", id="id")
    a = Packed.from_profile(ref.profile(frame(50, 1)))
    b = Packed.from_profile(other.profile(frame(50, 2)))
    with pytest.raises(DataError, match="different references"):
        Packed.merge_all([a, b])
