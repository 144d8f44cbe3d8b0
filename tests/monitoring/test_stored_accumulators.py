"""Stored partials: accumulators merge before decoding, exactly as decoded ones merge, and
partials written in the previous format (histogram lists inside the JSON) still read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from aiwarden.engine.performance import ClassificationStats
from aiwarden.engine.profile import Profile
from aiwarden.monitoring.bucket import BucketData
from aiwarden.monitoring.stored_accumulators import Stored, merge_accumulators
from tests.monitoring.test_packed import profiles, ref  # noqa: F401 (fixture)

DATA = Path(__file__).resolve().parents[1] / "data" / "partials"


def test_a_format_2_partial_still_decodes_to_what_the_previous_code_read() -> None:
    # format2.bin was written, and format2.json read back, by the code before format 3
    blob = (DATA / "format2.bin").read_bytes()
    expected = orjson.loads((DATA / "format2.json").read_bytes())
    d = BucketData.from_bytes(blob)
    got = orjson.loads(orjson.dumps(d.profile.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY))
    assert got == expected
    assert expected["performance"]["score_cells"]  # the lists that format 3 moves out
    assert (d.rows, d.labels, d.quarantine_reasons) == (400, 400, {"schema": 2})
    again = BucketData.from_bytes(d.to_bytes())  # rewritten in the current format
    assert orjson.loads(orjson.dumps(again.profile.to_dict(),
                                     option=orjson.OPT_SERIALIZE_NUMPY)) == expected


def test_old_and_new_partials_merge_as_their_decoded_profiles_do() -> None:
    old = BucketData.from_bytes((DATA / "format2.bin").read_bytes())
    new = BucketData.from_bytes(old.to_bytes())
    merged = BucketData.merge_all([old, new, old])
    direct = Profile.merge_all([BucketData.from_bytes((DATA / "format2.bin").read_bytes())
                                .profile for _ in range(3)])
    assert merged.profile.performance.to_dict() == direct.performance.to_dict()
    assert merged.profile.estimated.to_dict() == direct.estimated.to_dict()


@pytest.mark.parametrize("k", [2, 3, 17])
def test_stored_accumulators_merge_exactly_as_the_engine_merges_decoded_ones(
        ref, k: int) -> None:  # noqa: F811
    parts = profiles(ref, range(k))
    stored = [BucketData.from_bytes(BucketData(rows=p.n_rows, profile=p).to_bytes())
              for p in parts]
    assert all(type(s.packed.performance) is Stored for s in stored)  # not decoded yet
    window = BucketData.merge_all(stored)
    assert type(window.packed.performance) is Stored  # merged undecoded
    engine = Profile.merge_all(parts)  # pairwise merges of the engine's objects
    assert window.profile.performance.to_dict() == engine.performance.to_dict()
    assert window.profile.estimated.to_dict() == engine.estimated.to_dict()
    assert window.profile.performance.metrics() == pytest.approx(
        engine.performance.metrics(), nan_ok=True, rel=0, abs=0)


def test_accumulators_of_other_classes_are_refused_by_the_engine() -> None:
    a = ClassificationStats.from_arrays(["a", "b"], None, [0.2, 0.7], classes=["a", "b"])
    b = ClassificationStats.from_arrays(["a", "c"], None, [0.2, 0.7], classes=["a", "c"])
    stored = [Stored({"kind": "ClassificationStats", **x.to_dict()},
                     lambda d: ClassificationStats.from_dict(
                         {k: v for k, v in d.items() if k != "kind"}))
              for x in (a, b, a)]
    with pytest.raises(ValueError) as engine_error:
        a.merge(b)
    with pytest.raises(type(engine_error.value), match="classes"):
        merge_accumulators(stored)


def test_a_histogram_cell_that_nets_to_zero_is_left_to_the_engine() -> None:
    a = ClassificationStats.from_arrays(["a", "b"], None, [0.2, 0.7], classes=["a", "b"])
    d = {"kind": "ClassificationStats", **a.to_dict()}
    neg = {**d, "score_counts": [-c for c in d["score_counts"]]}
    decode = lambda x: ClassificationStats.from_dict(  # noqa: E731
        {k: v for k, v in x.items() if k != "kind"})
    got = merge_accumulators([Stored(d, decode), Stored(neg, decode)])
    assert not isinstance(got, Stored)
    assert not np.any(got.score_hist)


def test_regression_accumulators_are_decoded_and_merged_by_the_engine() -> None:
    import pandas as pd

    from aiwarden.engine import Reference

    def frame(n: int, seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        x = rng.normal(size=n)
        return pd.DataFrame({"x": x, "pred": 2 * x + rng.normal(size=n),
                             "y": 2 * x + rng.normal(size=n)})

    reg = Reference.fit(frame(3000, 0), target="y", prediction="pred")
    parts = [reg.profile(frame(200, s)) for s in range(1, 6)]
    stored = [BucketData.from_bytes(BucketData(rows=p.n_rows, profile=p).to_bytes())
              for p in parts]
    window = BucketData.merge_all(stored).profile
    engine = Profile.merge_all(parts)
    assert type(engine.performance).__name__ == "RegressionStats"
    assert window.performance.to_dict() == engine.performance.to_dict()
    assert window.estimated.to_dict() == engine.estimated.to_dict()
