"""The fast paths of fitting and profiling give exactly what the plain ones give.

Bins come from a grid lookup instead of a binary search, and columns are worked on by
several threads: neither may change a single count or bit of a moment.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from aiwarden.engine import Reference
from aiwarden.engine._binning import NumericalBinning
from aiwarden.errors import ParameterError

_finite = st.floats(allow_nan=False, allow_infinity=False)
# (a reference reaching the float limit itself makes _wrap's far edge overflow: not tested here)
_ref_values = st.floats(-1e307, 1e307)


@settings(max_examples=300, deadline=None)
@given(
    ref=hnp.arrays(np.float64, st.integers(1, 400), elements=_ref_values),
    cur=hnp.arrays(np.float64, st.integers(0, 400), elements=_finite),
    bins=st.integers(2, 300),
)
def test_grid_lookup_equals_binary_search(ref: np.ndarray, cur: np.ndarray, bins: int) -> None:
    b = NumericalBinning.fit(np.sort(ref), bins, 3.0)
    # The edges themselves and their float neighbours are where an off-by-one would show.
    with np.errstate(over="ignore"):
        near = np.concatenate([b.edges, np.nextafter(b.edges, -np.inf),
                               np.nextafter(b.edges, np.inf)])
    values = np.concatenate([cur, ref, near[np.isfinite(near)]])
    values = np.tile(values, max(1, 64 // max(len(values), 1) + 1))  # past the small-input path
    assert np.array_equal(b.bin_of(values), np.searchsorted(b.edges, values, side="right"))


def _frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame({
        "ts": pd.date_range("2026-01-01", periods=n, freq="s")[rng.permutation(n)],
        "x": rng.normal(10, 3, n),
        "heavy": rng.standard_cauchy(n),
        "k": rng.poisson(4, n).astype(float),
        "gaps": np.where(rng.random(n) < 0.1, np.nan, rng.lognormal(1, 1, n)),
        "c": rng.choice(list("abcde"), n),
        "b": rng.random(n) < 0.3,
        "text": rng.choice(["short", "a longer text", ""], n),
    })


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(7)
    ref, cur = _frame(rng, 30_000), _frame(rng, 30_000)
    cur["x"] = cur["x"] * 1.5 - 40.0  # far out of the reference range on both sides
    cur.loc[5, "heavy"] = 1e308  # (a reference holding 1e308 breaks compare's noise floor)
    return ref, cur


def test_fit_and_profile_identical_on_one_or_two_threads(
        frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ref_df, cur_df = frames
    one = Reference.fit(ref_df, timestamp="ts", n_threads=1)
    two = Reference.fit(ref_df, timestamp="ts", n_threads=2)
    assert one.to_dict() == two.to_dict()
    p1, p2 = one.profile(cur_df, n_threads=1), one.profile(cur_df, n_threads=2)
    assert p1.to_dict() == p2.to_dict()
    assert p1.columns["x"].counts[[0, 1, -2, -1]].sum() > 0  # the tail paths ran
    assert one.compare(p1).to_dict() == two.compare(p2).to_dict()


def test_profile_counts_match_numpy_on_raw_values(
        frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ref_df, cur_df = frames
    ref = Reference.fit(ref_df, timestamp="ts")
    for name in ("x", "heavy", "gaps"):
        prof = ref.profile(cur_df).columns[name]
        v = cur_df[name].to_numpy()
        v = v[np.isfinite(v)]
        edges = ref.binnings_[name].edges
        want = np.bincount(np.searchsorted(edges, v, side="right"), minlength=len(edges) + 1)
        assert np.array_equal(prof.counts, want)
        assert prof.min == v.min() and prof.max == v.max()
        assert prof.negative == int((v < 0).sum())


@pytest.mark.parametrize("bad", [0, -1, 2.0, "2"])
def test_n_threads_is_checked(frames: tuple[pd.DataFrame, pd.DataFrame], bad: object) -> None:
    ref_df, _ = frames
    with pytest.raises(ParameterError, match="'n_threads' parameter of Reference"):
        Reference.fit(ref_df.head(100), n_threads=bad)


@settings(max_examples=200, deadline=None)
@given(
    values=hnp.arrays(np.float64, st.integers(5_000, 6_000),
                      elements=st.one_of(_ref_values, st.floats(-3, 3), st.integers(-50, 50))),
    bins=st.integers(2, 400),
)
def test_quantile_selection_equals_sorting(values: np.ndarray, bins: int) -> None:
    with np.errstate(over="ignore", invalid="ignore"):
        std = float(values.std())
    assume(np.isfinite(std))  # (fit_numerical sorts when the spread overflows)
    fast = NumericalBinning.fit_unsorted(values, bins, 3.0, std)
    plain = NumericalBinning.fit(np.sort(values), bins, 3.0, std=std)
    assert fast.to_dict() == plain.to_dict()


def test_quantile_selection_takes_the_selection_path() -> None:
    # Continuous, well spread: the selection (not the sorted fallback) must be what ran.
    from aiwarden.engine._binning import _order_statistics

    x = np.random.default_rng(1).lognormal(3, 1, 50_000)
    ranks = np.linspace(0, len(x) - 1, 101).round().astype(np.int64)
    got = _order_statistics(x, ranks, float(x.min()), float(x.max()))
    assert got is not None
    assert np.array_equal(got, np.sort(x)[ranks])


@pytest.mark.parametrize("n", [0, 10, 65_536, 150_001])
def test_blocked_counts_equal_one_bincount(n: int) -> None:
    # counts_of works a block of rows at a time: the counts, per group too, must be those of
    # one searchsorted + bincount over the whole array, across block boundaries.
    rng = np.random.default_rng(n)
    binning = NumericalBinning.fit(np.sort(rng.lognormal(size=5000)), 50, 3.0)
    v = np.concatenate([[1e308, -1e308, 0.0], rng.lognormal(0.2, 1.2, n)])[:n]
    idx = np.searchsorted(binning.edges, v, side="right")
    assert np.array_equal(binning.counts_of(v), np.bincount(idx, minlength=binning.n_bins))
    groups = rng.integers(0, 4, len(v))
    expect = np.zeros((4, binning.n_bins), dtype=np.int64)
    np.add.at(expect, (groups, idx), 1)
    assert np.array_equal(binning.counts_of(v, groups, 4), expect)


@settings(max_examples=150, deadline=None)
@given(
    ref=hnp.arrays(np.float64, st.integers(1, 400), elements=_ref_values),
    cur=hnp.arrays(np.float64, st.integers(0, 400), elements=_finite),
    bins=st.integers(2, 300),
)
def test_histogram_counts_equal_binary_search(ref: np.ndarray, cur: np.ndarray,
                                              bins: int) -> None:
    # Past 16,384 values counts_of counts per cell of a fine grid and looks up only the
    # values sharing a cell with an edge: the edges and their neighbours must still count
    # exactly where a binary search puts them, out-of-range values too.
    b = NumericalBinning.fit(np.sort(ref), bins, 3.0)
    with np.errstate(over="ignore"):
        near = np.concatenate([b.edges, np.nextafter(b.edges, -np.inf),
                               np.nextafter(b.edges, np.inf)])
    values = np.concatenate([cur, ref, near[np.isfinite(near)]])
    values = np.tile(values, 20_000 // len(values) + 1)
    want = np.bincount(np.searchsorted(b.edges, values, side="right"), minlength=b.n_bins)
    assert np.array_equal(b.counts_of(values), want)


@pytest.mark.parametrize("dist", ["normal", "lognormal", "poisson", "two_values"])
def test_fit_counted_equals_fit_then_count(dist: str) -> None:
    rng = np.random.default_rng(3)
    n = 120_000
    values = {"normal": rng.normal(5, 2, n), "lognormal": rng.lognormal(2, 1.5, n),
              "poisson": rng.poisson(4, n).astype(float),
              "two_values": np.where(rng.random(n) < 0.3, -1.0, 2.5)}[dist]
    std = float(values.std())
    binning, counts = NumericalBinning.fit_counted(values, 200, 3.0, std)
    if dist == "normal":  # continuous, not crowded: the selection's grid gave the counts
        bounds = (float(values.min()), float(values.max()))
        assert NumericalBinning._fit_on_one_grid(values, 200, 3.0, std, bounds) is not None
    plain = NumericalBinning.fit(np.sort(values), 200, 3.0, std=std)
    assert binning.to_dict() == plain.to_dict()
    want = np.bincount(np.searchsorted(plain.edges, values, side="right"),
                       minlength=plain.n_bins)
    assert np.array_equal(counts, want)


@pytest.mark.parametrize("n", [0, 1, 7, 9, 129, 65_536, 65_537, 1_000_003])
def test_leafwise_moments_are_numpys_bit_for_bit(n: int) -> None:
    from aiwarden.engine._pairwise import moments

    v = np.random.default_rng(n).lognormal(0.0, 3.0, n) - 2.0
    mean = float(v.mean()) if n else 0.0
    m2 = float(np.square(v - mean).sum())
    assert moments(v) == (mean, m2, int(np.count_nonzero(v < 0)))


@pytest.mark.parametrize("n", [1, 2, 32_768, 100_003])
def test_row_hash_is_order_free_and_equal_on_both_paths(n: int,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Columns fold into the row hash as their passes end, in any order (threads): the
    hash is the xor of each key's splitmix64 seeded by its column's position, written out
    here in plain Python integers; the compiled loop and numpy give it bit for bit."""
    from aiwarden.engine import _profiling
    from aiwarden.engine._profiling import RowHasher

    rng = np.random.default_rng(n)
    keys = [rng.normal(size=n).view(np.uint64), rng.integers(0, 3, n).astype(np.uint64),
            rng.poisson(2.0, n).astype(np.float64).view(np.uint64)]
    mask = 2**64 - 1

    def splitmix(x: int) -> int:
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9 & mask
        x = (x ^ (x >> 27)) * 0x94D049BB133111EB & mask
        return x ^ (x >> 31)

    rows = range(n) if n < 1000 else range(0, n, 997)
    want = [0] * len(rows)
    for pos, k in enumerate(keys):
        seed = (pos + 1) * 0x9E3779B97F4A7C15 & mask
        for j, i in enumerate(rows):
            want[j] ^= splitmix(int(k[i]) + seed & mask)

    def hashed(order: list[int]) -> np.ndarray:
        rh = RowHasher(n)
        for pos in order:
            rh.add(pos, keys[pos])
        return rh.h

    fast = hashed([0, 1, 2])
    assert [int(fast[i]) for i in rows] == want
    assert np.array_equal(hashed([2, 0, 1]), fast)
    with monkeypatch.context() as m:
        _no_kernels(m)
        assert np.array_equal(hashed([1, 2, 0]), fast)
    distinct = len({tuple(int(k[i]) for k in keys) for i in range(n)})
    assert _profiling.count_duplicates(keys) == n - distinct


def test_quantile_selection_across_blocks_equals_sorting() -> None:
    # The selection counts and picks a block of rows at a time (2^17): across block
    # boundaries every order statistic must still be the sorted array's.
    from aiwarden.engine._binning import _order_statistics

    x = np.random.default_rng(2).normal(0.0, 1.0, 300_001)
    ranks = np.linspace(0, len(x) - 1, 101).round().astype(np.int64)
    got = _order_statistics(x, ranks, float(x.min()), float(x.max()))
    assert got is not None
    assert np.array_equal(got, np.sort(x)[ranks])


@pytest.mark.parametrize("max_categories", [2000, 3])
def test_one_pass_categorical_fit_equals_count_then_lookup(max_categories: int) -> None:
    # fit_categorical encodes a column once; fit_binning + profile_column count the values
    # and then look each one up: the same categories (ties by text), codes, profile, keys.
    import pyarrow as pa

    from aiwarden.engine._profiling import fit_binning, fit_categorical, profile_column
    from aiwarden.engine.schema import Column, ColumnType

    rng = np.random.default_rng(4)
    cases = {
        ColumnType.CATEGORICAL: rng.choice(["b", "a", "c", "d", None], 5000).tolist(),
        ColumnType.BOOLEAN: rng.choice(["true", "False", "1", "0", None], 5000).tolist(),
    }
    for dtype, values in cases.items():
        col, arr = Column("c", dtype), pa.chunked_array([pa.array(values)])
        binning, one = fit_categorical(col, arr, max_categories=max_categories,
                                       want_rows=True)
        plain = fit_binning(col, arr, max_categories=max_categories)
        two = profile_column(col, plain, arr, want_rows=True)
        assert binning.to_dict() == plain.to_dict()
        assert one.profile.to_dict() == two.profile.to_dict()
        assert np.array_equal(one.bin_index, two.bin_index)
        assert one.bin_index.dtype == two.bin_index.dtype
        assert np.array_equal(one.row_key, two.row_key)
        assert one.profile.missing > 0


@settings(max_examples=100, deadline=None)
@given(
    values=hnp.arrays(np.float64, st.integers(5_000, 7_000),
                      elements=st.one_of(st.floats(-3, 3), st.floats(-1e6, 1e6),
                                         st.sampled_from([0.0, 1.0, -2.5, 1e-300]))),
    bins=st.integers(2, 400),
)
def test_counts_from_the_selection_grid_equal_binary_search(values: np.ndarray,
                                                            bins: int) -> None:
    # fit_counted takes a continuous column's counts from the quantile selection's own
    # per-cell histogram and kept cells: they must be searchsorted's, the edges sort's.
    std = float(values.std())
    binning, counts = NumericalBinning.fit_counted(values, bins, 3.0, std)
    plain = NumericalBinning.fit(np.sort(values), bins, 3.0, std=std)
    assert binning.to_dict() == plain.to_dict()
    want = np.bincount(np.searchsorted(plain.edges, values, side="right"),
                       minlength=plain.n_bins)
    assert np.array_equal(counts, want)


# ------------------------------------------------------- compiled loops (aiwarden[fast])
def _no_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    """The numpy path everywhere, as without numba."""
    from aiwarden.engine import _binning, _profiling

    monkeypatch.setattr(_binning, "kernels", lambda: None)
    monkeypatch.setattr(_profiling, "kernels", lambda: None)


def _raw_frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Columns with every kind of awkward value the kernels see."""
    x = rng.normal(0, 1, n)
    x[rng.random(n) < 0.02] = np.nan
    x[rng.random(n) < 0.01] = np.inf
    x[rng.random(n) < 0.01] = -np.inf
    return pd.DataFrame({
        "x": x,
        "ints": pd.array(rng.poisson(3, n), dtype="Int64"),
        "wide_ints": rng.integers(-10**6, 10**6, n),
        "bools": rng.random(n) < 0.3,
        "const": np.full(n, 7.5),
        "nulls": pd.array([None] * n, dtype="Float64"),
        "few": rng.choice([0.1, 0.2, 1e300, -3.0], n),
        "heavy": rng.standard_cauchy(n),
    })


#: Every column numerical, so ints, bools and few-valued floats take the kernels.
_NUMERICAL = {name: "numerical" for name in ("ints", "bools", "few", "const", "nulls")}


@pytest.fixture(scope="module")
def raw() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(11)
    ref, cur = _raw_frame(rng, 40_000), _raw_frame(rng, 40_000)
    cur["x"] = cur["x"] * 3 + 1  # out of the reference range on both sides
    cur.loc[::501, "x"], cur.loc[1::501, "x"] = 60.0, -60.0  # and far out of it
    cur.loc[::97, "heavy"] = 1e308
    return ref, cur


def test_compiled_and_numpy_paths_are_identical(
        raw: tuple[pd.DataFrame, pd.DataFrame], monkeypatch: pytest.MonkeyPatch) -> None:
    from aiwarden.engine._column_kernel import kernels

    if kernels() is None:
        pytest.skip("numba is not installed")
    ref_df, cur_df = raw
    fast = Reference.fit(ref_df, dtypes=_NUMERICAL)
    fast_p = fast.profile(cur_df)
    with monkeypatch.context() as m:
        _no_kernels(m)
        plain = Reference.fit(ref_df, dtypes=_NUMERICAL)
        plain_p = plain.profile(cur_df)
    # every edge, count, moment of the fit (numpy's own sums either way), example and
    # duplicate; the profile's one compiled pass sums its moments in another order
    assert fast.to_dict() == plain.to_dict()
    _assert_same_profile(fast_p.to_dict(), plain_p.to_dict())
    assert fast_p.columns["x"].counts[[0, 1, -2, -1]].min() > 0  # every band was hit


_SUMMED = ("mean", "m2")


def _assert_same_profile(got: dict, want: dict) -> None:
    """Equal dicts, except mean and m2 of numerical columns: equal to rounding."""
    got, want = dict(got), dict(want)
    gc, wc = got.pop("columns"), want.pop("columns")
    assert got == want
    assert gc.keys() == wc.keys()
    for name in wc:
        g, w = dict(gc[name]), dict(wc[name])
        # (near zero, rounding is relative to the values' scale: |min|, |max|, n)
        scale = max(abs(w.get("min") or 0.0), abs(w.get("max") or 0.0), 1e-300)
        scale = min(scale, 1e150)
        floor = {"mean": 1e-13 * scale, "m2": 1e-13 * scale * scale * max(w.get("n", 1), 1)}
        for key in _SUMMED if w.get("kind") == "numerical" else ():
            a, b = g.pop(key), w.pop(key)
            if not isinstance(a, float) or not isinstance(b, float):  # overflowed: as stored
                assert a == b, (name, key)
            else:
                assert a == pytest.approx(b, rel=1e-12, abs=floor[key]), (name, key, a, b)
        assert g == w, name


def test_compiled_profile_matches_numpy_on_raw_values(
        raw: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ref_df, cur_df = raw
    ref = Reference.fit(ref_df, dtypes=_NUMERICAL)
    prof = ref.profile(cur_df)
    for name in ("x", "ints", "wide_ints", "bools", "const", "few", "heavy"):
        raw_v = cur_df[name].to_numpy(dtype=np.float64, na_value=np.nan)
        v = raw_v[np.isfinite(raw_v)]
        edges = ref.binnings_[name].edges
        p = prof.columns[name]
        want = np.bincount(np.searchsorted(edges, v, side="right"), minlength=len(edges) + 1)
        assert np.array_equal(p.counts, want), name
        assert p.min == v.min() and p.max == v.max(), name
        assert p.negative == int((v < 0).sum()), name
        assert p.posinf == int((raw_v == np.inf).sum()), name
        clipped = np.clip(v, edges[0], edges[-1])
        with np.errstate(over="ignore", invalid="ignore"):  # 1e300s squared
            mean, m2 = clipped.mean(), ((clipped - clipped.mean()) ** 2).sum()
        assert p.mean == pytest.approx(mean, rel=1e-12), name
        assert p.m2 == pytest.approx(m2, rel=1e-9, abs=1e-9), name
    assert prof.columns["x"].missing == int(np.isnan(cur_df["x"].to_numpy()).sum())  # pandas NaN
    assert prof.columns["nulls"].missing == len(cur_df)
    assert prof.columns["nulls"].counts.sum() == 0


def test_compiled_examples_are_the_first_rows(raw: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ref_df, cur_df = raw
    ref = Reference.fit(ref_df, dtypes=_NUMERICAL)
    ex = ref.profile(cur_df).columns["x"].examples
    x = cur_df["x"].to_numpy()
    edges = ref.binnings_["x"].edges
    fin = np.isfinite(x)
    assert ex["negative"] == np.flatnonzero(fin & (x < 0))[:5].tolist()
    assert ex["far_above_range"] == np.flatnonzero(fin & (x >= edges[-1]))[:5].tolist()
    assert ex["below_range"] == np.flatnonzero((x >= edges[0]) & (x < edges[1]))[:5].tolist()


def test_compiled_counts_of_values_on_the_edges() -> None:
    from aiwarden.engine._column_kernel import kernels

    if kernels() is None:
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(3)
    for ref in (rng.normal(size=20_000), rng.poisson(2, 20_000).astype(float),
                np.full(20_000, -2.0), rng.lognormal(0, 3, 20_000)):
        b = NumericalBinning.fit(np.sort(ref), 100, 3.0)
        with np.errstate(over="ignore"):
            near = np.concatenate([b.edges, np.nextafter(b.edges, -np.inf),
                                   np.nextafter(b.edges, np.inf), [1e308, -1e308, 0.0, -0.0]])
        v = np.tile(near, 2_000 // len(near) + 1)
        assert len(v) >= 1_024  # the compiled path
        want = np.bincount(np.searchsorted(b.edges, v, side="right"), minlength=b.n_bins)
        assert np.array_equal(b.counts_of(v), want)


@pytest.mark.parametrize("case", ["poisson", "few_floats", "one_value", "zeros_both_signs",
                                  "just_past_bins", "ints_and_halves"])
def test_distinct_values_fit_equals_the_sorted_fit(case: str) -> None:
    rng = np.random.default_rng(5)
    n, bins = 30_000, 50
    v = {
        "poisson": lambda: rng.poisson(4, n).astype(float),
        "few_floats": lambda: rng.choice([0.1, 1e-300, -7.25, 3e150], n),
        "one_value": lambda: np.full(n, 3.0),
        "zeros_both_signs": lambda: rng.choice([0.0, -0.0, 1.0], n),
        "just_past_bins": lambda: np.concatenate([rng.integers(0, bins, n - 1),
                                                  [bins + 0.5]]).astype(float),
        "ints_and_halves": lambda: rng.integers(0, 2 * bins, n) / 2,
    }[case]()
    std = float(v.std())
    got, counts = NumericalBinning.fit_counted(v, bins, 3.0, std)
    want = NumericalBinning.fit(np.sort(v), bins, 3.0, std=std)
    assert got.to_dict() == want.to_dict()
    assert np.array_equal(counts, np.bincount(np.searchsorted(want.edges, v, side="right"),
                                              minlength=want.n_bins))
    assert NumericalBinning.fit_unsorted(v, bins, 3.0, std).to_dict() == want.to_dict()


# ------------------------------------ one compiled pass per column in profile (numba)
def _one_pass_cases() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(17)
    n = 5_000
    return {
        "normal": rng.normal(3, 2, n),
        "ints": rng.poisson(4, n).astype(np.float64),
        "constant": np.full(n, 7.5),
        "constant_negative_zero": np.full(n, -0.0),
        "far_from_first": np.concatenate([[1e9], rng.normal(0, 1e-3, n)]),  # cancellation
        "heavy": rng.standard_cauchy(n),
        "huge": rng.choice([1e308, -1e308, 1.0], n),  # squares overflow
        "odd_length": rng.normal(size=1_027),  # not a multiple of the four lanes
        "long": rng.lognormal(0, 2, 70_000),  # many sum blocks
    }


def _profile_both(ref: np.ndarray, cur: np.ndarray, monkeypatch: pytest.MonkeyPatch
                  ) -> tuple[dict, dict]:
    fitted = Reference.fit(pd.DataFrame({"v": ref}), dtypes={"v": "numerical"})
    frame = pd.DataFrame({"v": cur})
    fast = fitted.profile(frame).to_dict()
    with monkeypatch.context() as m:
        _no_kernels(m)
        plain = fitted.profile(frame).to_dict()
    return fast, plain


@pytest.mark.parametrize("case", sorted(_one_pass_cases()))
def test_one_pass_profile_equals_the_numpy_path(case: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from aiwarden.engine._column_kernel import kernels

    if kernels() is None:
        pytest.skip("numba is not installed")
    values = _one_pass_cases()[case]
    rng = np.random.default_rng(3)
    # the reference: the column itself, and a narrower one (bands and clamping hit)
    for ref in (values, rng.normal(0, 1, 3_000)):
        fast, plain = _profile_both(ref, values, monkeypatch)
        _assert_same_profile(fast, plain)


def test_one_pass_profile_with_nan_inf_and_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    from aiwarden.engine._column_kernel import kernels

    if kernels() is None:
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(8)
    ref = rng.normal(size=4_000)
    cur = rng.normal(0.5, 2, 4_000)
    cur[::7], cur[1::11], cur[2::13] = np.nan, np.inf, -np.inf
    fast, plain = _profile_both(ref, cur, monkeypatch)
    _assert_same_profile(fast, plain)
    col = fast["columns"]["v"]
    assert col["posinf"] == int(np.sum(cur == np.inf))
    assert col["neginf"] == int(np.sum(cur == -np.inf)) > 0
    # every value NaN: no finite value for the pass to read (an empty input is refused by
    # to_table; the pass's own empty input: test_one_pass_empty_and_short_columns...)
    fast, plain = _profile_both(ref, np.full(3_000, np.nan), monkeypatch)
    assert fast == plain


@pytest.mark.parametrize("case", sorted(_one_pass_cases()))
def test_one_pass_matches_numpy_on_raw_values(case: str) -> None:
    """The compiled pass against numpy on the raw values, not against the other path."""
    from aiwarden.engine._profiling import _one_pass

    values = _one_pass_cases()[case]
    b = NumericalBinning.fit(np.sort(np.random.default_rng(4).normal(0, 1, 3_000)), 50, 3.0)
    got = _one_pass(b, values)
    if got is None:
        pytest.skip("numba is not installed")
    counts, lo, hi, mean, m2, negative = got
    want = np.bincount(np.searchsorted(b.edges, values, side="right"), minlength=b.n_bins)
    assert np.array_equal(counts, want)
    assert lo == values.min() and hi == values.max()
    assert negative == int(np.count_nonzero(values < 0))
    clamped = np.clip(values, b.edges[0], b.edges[-1])
    assert mean == pytest.approx(clamped.mean(), rel=1e-12, abs=1e-15)
    assert m2 == pytest.approx(np.square(clamped - clamped.mean()).sum(), rel=1e-11, abs=1e-15)


def test_one_pass_empty_and_short_columns_take_the_numpy_path() -> None:
    from aiwarden.engine._profiling import _one_pass

    b = NumericalBinning.fit(np.sort(np.random.default_rng(4).normal(0, 1, 3_000)), 50, 3.0)
    assert _one_pass(b, np.array([], dtype=np.float64)) is None
    assert _one_pass(b, np.ones(10)) is None


@pytest.mark.parametrize("n", [2, 1_023, 1_024, 5_000, 200_003])
@pytest.mark.parametrize("distinct", [1, 3, 1_000, None])
def test_compiled_duplicate_count_equals_the_sort(n: int, distinct: int | None,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from aiwarden.engine import _profiling

    rng = np.random.default_rng(n)
    high = 2**63 if distinct is None else distinct
    keys = [rng.integers(0, high, n, dtype=np.uint64) for _ in range(3)]
    fast = _profiling.count_duplicates(keys)
    with monkeypatch.context() as m:
        _no_kernels(m)
        plain = _profiling.count_duplicates(keys)
    rows = {tuple(int(k[i]) for k in keys) for i in range(n)}
    assert fast == plain == n - len(rows)


def test_fit_reusing_inference_encodings_equals_fit_on_a_given_schema() -> None:
    """Schema inference hands its dictionary encodings of text columns to the fit; fitting
    on the same schema given explicitly (no inference, fresh encodings) is identical."""
    from aiwarden.engine.schema import infer_schema

    rng = np.random.default_rng(21)
    n = 30_000
    with_nulls = rng.choice(np.array(["a", "b", "c", None], dtype=object), n)
    df = pd.DataFrame({
        "x": rng.normal(size=n),
        "cat": rng.choice([f"c{i}" for i in range(40)], n),
        "with_nulls": pd.array(with_nulls, dtype="string"),
        "yes_no": rng.choice(["true", "false", "TRUE", "0"], n),
        "many": rng.choice([f"m{i}" for i in range(3_000)], n),  # past max_categories below
        "all_null": pd.array([None] * n, dtype="string"),
        "ids": [f"id{i}" for i in range(n)],
    })
    for hints in ({}, {"dtypes": {"yes_no": "boolean"}}):
        inferred = Reference.fit(df, max_categories=2_500, **hints)
        schema = infer_schema(df, max_categories=2_500, **hints)
        assert inferred.schema_.to_dict() == schema.to_dict()
        given = Reference.fit(df, schema, max_categories=2_500)
        assert inferred.to_dict() == given.to_dict()
        assert inferred.profile(df).to_dict() == given.profile(df).to_dict()
