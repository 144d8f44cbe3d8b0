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
    assert parts[0]._pack is not None  # the packed-row path is the one under test
    fold = parts[0]
    for p in parts[1:]:
        fold = fold.merge(p)
    assert many.n_rows == fold.n_rows == 1200
    for name in ("x", "c"):
        # column objects merged two at a time, field by field: not the packed path
        col = parts[0].columns[name]
        for p in parts[1:]:
            col = col.merge(p.columns[name])
        for b in (fold.columns[name], col):
            a = many.columns[name]
            assert np.array_equal(a.counts, b.counts)
            assert a.n == b.n and a.missing == b.missing
            assert a.examples == b.examples
        if name == "x":
            for f in ("nan", "posinf", "neginf", "invalid", "absent", "negative"):
                assert getattr(many.columns["x"], f) == getattr(col, f)
            assert (many.columns["x"].min, many.columns["x"].max) == (col.min, col.max)
            for f in ("mean", "m2", "below_sum", "above_sum"):
                assert getattr(many.columns["x"], f) == pytest.approx(getattr(col, f),
                                                                      rel=1e-12, abs=1e-12)
    assert many.columns["x"].mean == pytest.approx(fold.columns["x"].mean, rel=1e-12)
    assert many.columns["c"].unseen_top == fold.columns["c"].unseen_top == col.unseen_top
    assert many.columns["c"].unseen_top  # "d" is unseen in the reference


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


def _direct(parts: list[Profile], name: str) -> dict[str, object]:
    """The column's merge computed straight from the parts, without the merge code."""
    cols = [p.columns[name] for p in parts]
    return {"counts": np.sum([c.counts for c in cols], axis=0),
            "n": sum(c.n for c in cols), "missing": sum(c.missing for c in cols),
            "nan": sum(getattr(c, "nan", 0) for c in cols)}


def test_merge_in_small_blocks_equals_the_direct_sums(
        reference: Reference, monkeypatch: pytest.MonkeyPatch) -> None:
    # Count vectors are stacked and summed block by block; a block of a few rows makes
    # the 50 parts span many blocks, and the last one a short one.
    import aiwarden.engine.profile as profile_module

    parts = _buckets(reference, 50)
    whole = Profile.merge_all(parts)
    import aiwarden.engine._profile_pack as pack_module

    monkeypatch.setattr(profile_module, "_CHUNK_BYTES", 3 * parts[0].columns["x"].counts.nbytes)
    monkeypatch.setattr(pack_module, "_CHUNK_BYTES", 3 * len(parts[0]._pack.row))
    blocks = Profile.merge_all(parts)
    assert blocks.to_dict() == whole.to_dict()
    for name in ("x", "c"):
        direct = _direct(parts, name)
        col = blocks.columns[name]
        assert np.array_equal(col.counts, direct["counts"])
        assert (col.n, col.missing, getattr(col, "nan", 0)) == (
            direct["n"], direct["missing"], direct["nan"])
    assert blocks.columns["x"].missing == sum(1 for i in range(50) if i % 7 == 0)  # NaN in pandas


def test_columns_in_another_order_merge_the_same(reference: Reference) -> None:
    parts = _buckets(reference, 12)
    shuffled = [replace(p, columns=dict(reversed(p.columns.items()))) if i % 2 else p
                for i, p in enumerate(parts)]
    assert list(shuffled[1].columns) != list(shuffled[0].columns)
    assert Profile.merge_all(shuffled).to_dict() == Profile.merge_all(parts).to_dict()


def test_a_part_missing_a_newer_field_in_its_dict_merges_with_the_default(
        reference: Reference) -> None:
    # An object unpickled from before a field existed has no entry for it in its __dict__;
    # attribute access falls back to the class default, and so must the merge.
    parts = _buckets(reference, 4)
    x = parts[2].columns["x"]
    old = object.__new__(NumericalProfile)
    object.__setattr__(old, "__dict__", {k: v for k, v in vars(x).items() if k != "negative"})
    assert old.negative == 0
    parts_old = [*parts[:2], replace(parts[2], columns={**parts[2].columns, "x": old}),
                 parts[3]]
    zero = [*parts[:2], replace(parts[2], columns={**parts[2].columns,
                                                   "x": replace(x, negative=0)}), parts[3]]
    assert x.negative > 0  # so the default is what decides
    assert Profile.merge_all(parts_old).to_dict() == Profile.merge_all(zero).to_dict()


def test_packed_rows_survive_pickling_and_in_place_edits(reference: Reference) -> None:
    # The merge reads each column's counts and scalars from one packed row; it must be
    # rebuilt after unpickling (a pickle from before packing has none) and follow the
    # counts, which are a view of it.
    import pickle

    parts = _buckets(reference, 6)
    loaded = pickle.loads(pickle.dumps(parts))
    for p in loaded:
        assert p._pack is not None
        for col in p.columns.values():
            assert np.shares_memory(col.counts, np.frombuffer(p._pack.row, np.int64))
    assert Profile.merge_all(loaded).to_dict() == Profile.merge_all(parts).to_dict()
    edited = pickle.loads(pickle.dumps(parts))
    edited[3].columns["x"].counts[0] += 5
    merged = Profile.merge_all(edited).columns["x"]
    assert merged.counts[0] == Profile.merge_all(parts).columns["x"].counts[0] + 5


def test_packed_and_field_by_field_merges_agree(reference: Reference) -> None:
    # int32 counts leave a part unpacked, so the whole column takes the field-by-field
    # path: both paths must give the same column, moments to rounding.
    parts = _buckets(reference, 40)
    fast = Profile.merge_all(parts).columns["x"]
    x = parts[5].columns["x"]
    parts[5] = replace(parts[5], columns={**parts[5].columns,
                                          "x": replace(x, counts=x.counts.astype(np.int32))})
    assert parts[5]._pack is None
    slow = Profile.merge_all(parts).columns["x"]
    assert np.array_equal(fast.counts, slow.counts)
    for f in NumericalProfile._INT_FIELDS:
        assert getattr(fast, f) == getattr(slow, f)
    assert (fast.min, fast.max) == (slow.min, slow.max)
    for f in ("mean", "m2", "below_sum", "above_sum"):
        assert getattr(fast, f) == pytest.approx(getattr(slow, f), rel=1e-12, abs=1e-12)
    assert fast.examples == slow.examples


def test_a_columns_dict_changed_after_packing_merges_what_it_holds(
        reference: Reference) -> None:
    # Profile.columns is a plain dict: a column swapped in after the profile was built is
    # not in its packed row, so such a profile merges column by column, on what it holds.
    parts = _buckets(reference, 8)
    expect = Profile.merge_all(parts).to_dict()
    edited = [replace(p) for p in parts]
    other = parts[0].columns["x"]
    edited[3].columns["x"] = other
    got = Profile.merge_all(edited)
    direct = sum((p.columns["x"].counts for p in [*parts[:3], parts[0], *parts[4:]]),
                 np.zeros_like(other.counts))
    assert np.array_equal(got.columns["x"].counts, direct)
    assert got.to_dict()["columns"]["c"] == expect["columns"]["c"]


def test_buckets_with_other_columns_and_presence_columns_merge_exactly() -> None:
    # An identifier and a datetime are presence columns, also in the packed row; a bucket
    # lacking a column has another layout, and the window merges column by column.
    rng = np.random.default_rng(5)

    def frame(n: int) -> pd.DataFrame:
        return pd.DataFrame({
            "x": rng.normal(size=n), "c": rng.choice(list("abc"), n),
            "t": pd.date_range("2026-01-01", periods=n, freq="s"),
            "id": [f"r{i}" for i in rng.integers(0, 10**9, n)]})

    ref = Reference.fit(frame(3000), id="id", timestamp="t")
    parts = [ref.profile(frame(20)) for _ in range(30)]
    assert {type(c).__name__ for c in parts[0].columns.values()} >= {"PresenceProfile"}
    packed = Profile.merge_all(parts)
    by_column = {name: parts[0].columns[name] for name in parts[0].columns}
    for p in parts[1:]:
        by_column = {k: v.merge(p.columns[k]) for k, v in by_column.items()}
    for k in ("c", "id", "t"):
        assert packed.columns[k].to_dict() == by_column[k].to_dict()
    for k in ("id", "t"):
        assert (packed.columns[k].n, packed.columns[k].missing) == (600, 0)
    x, want = packed.columns["x"], by_column["x"]
    assert np.array_equal(x.counts, want.counts) and x.n == want.n
    assert x.mean == pytest.approx(want.mean, rel=1e-12)
    lacking = replace(parts[4], columns={k: v for k, v in parts[4].columns.items() if k != "c"})
    mixed = Profile.merge_all([*parts[:4], lacking, *parts[5:]])
    assert mixed.columns["c"].n == 580
    assert np.array_equal(mixed.columns["x"].counts, x.counts)
