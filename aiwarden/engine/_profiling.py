"""Column-level fitting and profiling: one pass of Arrow/numpy work per column.

Shared by ``Reference.fit`` (which also needs each row's bin to measure the
reference's chunk-to-chunk variability) and ``Reference.profile``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aiwarden.engine._binning import _KERNEL_MIN_ROWS, CategoricalBinning, NumericalBinning
from aiwarden.engine._column_kernel import SUM_BLOCK, kernels
from aiwarden.engine._frame import NumericColumn, as_text, categorical_codes, numeric_values
from aiwarden.engine._pairwise import moments
from aiwarden.engine.profile import (
    HEAVY_HITTERS,
    CategoricalProfile,
    NumericalProfile,
    PresenceProfile,
)
from aiwarden.engine.schema import Column, ColumnType, Role

__all__ = ["Binning", "ColumnPass", "fit_binning", "fit_categorical", "fit_numerical",
           "map_columns",
           "profile_column", "thread_count"]

Binning = NumericalBinning | CategoricalBinning | None
_PRESENCE_TYPES = (ColumnType.IDENTIFIER, ColumnType.DATETIME)
_PRESENCE_ROLES = (Role.ID, Role.TIMESTAMP)


#: Batches smaller than this are profiled on one thread: a pool costs more than it saves.
THREADED_ROWS = 20_000
_T = TypeVar("_T")
_R = TypeVar("_R")


def thread_count(n_threads: int | None, n_rows: int) -> int:
    """Threads for per-column work: ``None`` means up to two (sorts, binning and Arrow
    kernels release the GIL) once a batch has ``THREADED_ROWS`` rows."""
    if n_threads is not None:
        return n_threads
    if n_rows < THREADED_ROWS:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(2, cores or 1))


def map_columns(fn: Callable[[_T], _R], items: Sequence[_T], n_threads: int) -> list[_R]:
    """``[fn(x) for x in items]``, in order, on ``n_threads`` threads: each column's work is
    independent, so the result is the same on any number of threads."""
    if n_threads <= 1 or len(items) < 2:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(min(n_threads, len(items))) as pool:
        return list(pool.map(fn, items))


def binned_kind(col: Column) -> str:
    """'numerical', 'categorical', 'text' (profiled on its length) or 'presence'."""
    if col.role in _PRESENCE_ROLES or col.dtype in _PRESENCE_TYPES:
        return "presence"
    if col.dtype == ColumnType.TEXT:
        return "text"
    if col.dtype == ColumnType.NUMERICAL:
        return "numerical"
    return "categorical"


def _text_lengths(arr: pa.ChunkedArray | pa.Array) -> pa.Array:
    return pc.utf8_length(as_text(arr))


_TRUE = pa.array(["true", "1", "1.0"], type=pa.large_string())
_FALSE = pa.array(["false", "0", "0.0"], type=pa.large_string())


def category_text(col: Column, arr: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Text of a categorical column; booleans written 0/1 or True/TRUE meet as true/false."""
    text = as_text(arr)
    if col.dtype != ColumnType.BOOLEAN:
        return text
    low = pc.utf8_lower(text)
    named = pc.if_else(pc.is_in(low, value_set=_FALSE), pa.scalar("false", pa.large_string()),
                       text)
    return pc.if_else(pc.is_in(low, value_set=_TRUE), pa.scalar("true", pa.large_string()),
                      named)


def fit_binning(col: Column, arr: pa.ChunkedArray, *, max_categories: int) -> Binning:
    """Categories of a categorical column (numerical columns go through ``fit_numerical``)."""
    if binned_kind(col) == "presence":
        return None
    vc = pc.value_counts(category_text(col, arr).drop_null())
    values = np.asarray(vc.field("values").to_pylist(), dtype=object)
    counts = vc.field("counts").to_numpy()
    order = np.lexsort((values.astype(str), -counts))[:max_categories]
    return CategoricalBinning(tuple(str(v) for v in values[order]))


def fit_categorical(col: Column, arr: pa.ChunkedArray, *, max_categories: int,
                    want_rows: bool, encoded: pa.Array | pa.ChunkedArray | None = None
                    ) -> tuple[CategoricalBinning, ColumnPass]:
    """``fit_binning`` then ``profile_column`` of a categorical reference column, from one
    dictionary encoding instead of a value count and a lookup (two hash passes): the
    same categories, order, codes and profile. A column with more distinct values than
    ``max_categories`` (some become unseen) takes the two-pass way. ``encoded``: the
    encoding of ``as_text(arr)`` when schema inference made it (not for booleans, whose
    text is respelt)."""
    text = category_text(col, arr)
    if encoded is None or col.dtype == ColumnType.BOOLEAN:
        enc = pc.dictionary_encode(text)
    else:
        enc = encoded.combine_chunks() if isinstance(encoded, pa.ChunkedArray) else encoded
    n_values = len(enc.dictionary)
    if n_values > max_categories:
        binning = fit_binning(col, arr, max_categories=max_categories)
        assert isinstance(binning, CategoricalBinning)
        return binning, profile_column(col, binning, arr, want_rows=want_rows)
    indices = enc.indices
    # (no nulls: Arrow's indices as they are, without fill_null's copy)
    entry = (pc.fill_null(indices, n_values) if indices.null_count else indices).to_numpy(
        zero_copy_only=False)
    counts = np.bincount(entry, minlength=n_values + 1)
    values = np.asarray(enc.dictionary.to_pylist(), dtype=object)
    order = np.lexsort((values.astype(str), -counts[:n_values]))  # as fit_binning
    binning = CategoricalBinning(tuple(str(v) for v in values[order]))
    code_of = np.empty(n_values + 1, dtype=np.int32)
    code_of[order] = np.arange(n_values, dtype=np.int32)
    code_of[n_values] = n_values  # missing: code k, as categorical_codes
    codes = code_of[entry]
    missing = enc.indices.null_count
    cat_counts = np.append(counts[order], 0).astype(np.int64)  # no unseen value
    examples = {"missing": np.flatnonzero(np.asarray(text.is_null()))[:5].tolist()} \
        if missing else {}
    prof = CategoricalProfile(counts=cat_counts, n=len(text), missing=missing, unseen_top={},
                              examples=examples)
    key = None
    if want_rows:
        key = _text_key(arr) if missing else codes.astype(np.uint64)
    return binning, ColumnPass(prof, codes, key)


@dataclass(frozen=True)
class ColumnPass:
    """A column's profile plus what the caller may reuse: category codes, row keys."""

    profile: NumericalProfile | CategoricalProfile | PresenceProfile
    bin_index: np.ndarray | None  # category code of every row (categorical columns)
    row_key: np.ndarray | None  # uint64 per row for duplicate detection


def profile_column(col: Column, binning: Binning, arr: pa.ChunkedArray,
                   *, want_rows: bool = False) -> ColumnPass:
    kind = binned_kind(col)
    if kind == "presence":
        missing = arr.null_count
        ex = {}
        if missing:
            ex["missing"] = np.flatnonzero(np.asarray(arr.is_null()))[:5].tolist()
        key = None
        if want_rows and col.role not in _PRESENCE_ROLES:
            key = _text_key(arr)
        return ColumnPass(PresenceProfile(len(arr), missing, 0, ex), None, key)
    if kind in ("numerical", "text"):
        assert isinstance(binning, NumericalBinning)
        nc = numeric_values(_text_lengths(arr) if kind == "text" else arr)
        return _profile_numerical(binning, nc, arr, kind, want_rows)
    assert isinstance(binning, CategoricalBinning)
    cc = categorical_codes(category_text(col, arr), binning.value_set(), top_unseen=HEAVY_HITTERS)
    k = len(binning.categories)
    counts = np.bincount(cc.codes, minlength=k + 1).astype(np.int64)
    counts[k] -= cc.missing  # code k held missing and unseen; keep only unseen
    prof = CategoricalProfile(counts=counts, n=cc.n, missing=cc.missing,
                              unseen_top=cc.unseen_top, examples=dict(cc.examples))
    key = None
    if want_rows:
        # Unseen and missing values share code k; then the text itself tells rows apart.
        key = _text_key(arr) if cc.unseen or cc.missing else cc.codes.astype(np.uint64)
    return ColumnPass(prof, cc.codes, key)


def _profile_numerical(binning: NumericalBinning, nc: NumericColumn, arr: pa.ChunkedArray,
                       kind: str, want_rows: bool) -> ColumnPass:
    # Each value's bin from the binning's grid lookup (a few vector passes, no sort); only
    # the out-of-range values, usually none, are sorted for their tail sums.
    v = nc.values
    edges = binning.edges
    fused = _one_pass(binning, v)
    if fused is not None:
        counts, lo, hi, mean, m2, negative = fused
        if counts[0] or counts[-1]:  # the tail sums below take the clamped values
            v = np.clip(v, edges[0], edges[-1])
    else:
        counts = binning.counts_of(v)
        lo, hi = (float(v.min()), float(v.max())) if len(v) else (np.inf, -np.inf)
        raw_negative = None
        if counts[0] or counts[-1]:
            # Moments and tail sums use values clamped to the far band: one corrupted 1e308
            # is a data-quality error (counted in the far bins), not an infinite mean.
            raw_negative = int(np.count_nonzero(v < 0.0))  # the raw values' sign
            v = np.clip(v, edges[0], edges[-1])
        with np.errstate(over="ignore", invalid="ignore"):  # a reference of 1e308s
            mean, m2, clamped_negative = moments(v)
        negative = clamped_negative if raw_negative is None else raw_negative
    below, above = int(counts[0] + counts[1]), int(counts[-1] + counts[-2])
    examples = dict(nc.examples)
    if negative:
        pos = _first_rows(nc.values, -np.inf, 0.0)
        examples["negative"] = (np.flatnonzero(nc.mask)[pos] if nc.mask is not None
                                else pos).tolist()
    below_sum = above_sum = 0.0
    if below or above:
        examples.update(_range_examples(nc.values, nc.mask, edges, counts))
        with np.errstate(over="ignore", invalid="ignore"):
            # Sorted, as a full sort would have summed them (same rounding).
            below_sum = float(np.sort(v[v < edges[1]]).sum())
            above_sum = float(np.sort(v[v >= edges[-2]]).sum())
    prof = NumericalProfile(
        counts=counts, n=nc.n, missing=nc.missing, nan=nc.nan, posinf=nc.posinf,
        neginf=nc.neginf, invalid=nc.invalid, negative=negative, min=lo, max=hi, mean=mean,
        m2=m2, below_sum=below_sum, above_sum=above_sum, examples=examples,
    )
    key = None
    if want_rows:
        key = _text_key(arr) if kind == "text" else nc.raw.view(np.uint64)
    return ColumnPass(prof, None, key)


def _one_pass(binning: NumericalBinning, v: np.ndarray
              ) -> tuple[np.ndarray, float, float, float, float, int] | None:
    """(counts, min, max, mean, m2, negatives) of finite ``v`` from one compiled read
    (:func:`_column_kernel._profile_pass`) instead of five numpy passes; None without numba,
    on a short column or a binning without a grid (then the numpy path).

    Counts, min, max and negatives are exactly the numpy path's; mean and m2 are summed
    in another order (blocks of four lanes, then pairwise), so they agree to rounding
    (relative ~1e-13), not bit for bit. m2 comes from sums about the first (clamped)
    value; when the mean is far from it (cancellation would cost digits) a second pass
    sums the squares about the mean, and on overflow the numpy path decides.
    """
    k = kernels()
    n = len(v)
    if k is None or n < _KERNEL_MIN_ROWS:
        return None
    lut = binning._grid()
    if lut is False:
        return None
    grid_lo, scale, top, first, rounds, padded = lut
    x = np.ascontiguousarray(v, dtype=np.float64)
    clip_lo, clip_hi = float(binning.edges[0]), float(binning.edges[-1])
    center = min(max(float(x[0]), clip_lo), clip_hi)
    blocks = -(-n // SUM_BLOCK)
    sums, squares = np.empty(blocks), np.empty(blocks)
    counts = np.zeros(binning.n_bins, dtype=np.int64)
    lo, hi, negative = k.profile_pass(x, grid_lo, scale, top, first, rounds, padded, clip_lo,
                                      clip_hi, center, counts, sums, squares)
    with np.errstate(over="ignore", invalid="ignore"):
        s1, s2 = float(np.sum(sums)), float(np.sum(squares))
        mean = center + s1 / n
        m2 = s2 - s1 * s1 / n
        if not (np.isfinite(s2) and np.isfinite(mean)):  # 1e308s: as the numpy path
            mean, m2, _ = moments(np.clip(v, clip_lo, clip_hi))
        elif s1 * s1 > 10.0 * n * m2:  # (mean - center)^2 > 10 variances, or m2 < 0
            k.squares_about(x, clip_lo, clip_hi, mean, squares)
            m2 = float(np.sum(squares))
    return counts, float(lo), float(hi), float(mean), float(m2), int(negative)


def fit_numerical(col: Column, arr: pa.ChunkedArray, *, bins: int, far: float,
                  chunk_of_row: np.ndarray | None, chunks: int,
                  want_rows: bool) -> tuple[NumericalBinning, ColumnPass, np.ndarray | None]:
    """Bins, profile and per-chunk counts of a numerical reference column.

    Quantile edges come from an exact selection (a sort only of the cells that hold
    them, :meth:`NumericalBinning.fit_unsorted`); bin counts, per chunk too, from the
    binning's grid lookup and one ``bincount``.
    """
    kind = binned_kind(col)
    nc = numeric_values(_text_lengths(arr) if kind == "text" else arr)
    v = nc.values
    with np.errstate(over="ignore", invalid="ignore"):  # a reference of 1e308s
        mean, m2, negative = moments(v)
    std = float(np.sqrt(m2 / len(v))) if len(v) else 0.0
    lo, hi = (float(v.min()), float(v.max())) if len(v) else (np.inf, -np.inf)
    per_run = None
    if chunk_of_row is None and np.isfinite(std):
        # Without chunks no row needs its bin: the counts come out of the edge selection.
        binning, counts = NumericalBinning.fit_counted(v, bins, far, std, (lo, hi))
    else:
        if np.isfinite(std):
            binning = NumericalBinning.fit_unsorted(v, bins, far, std, (lo, hi))
        else:
            binning = NumericalBinning.fit(np.sort(v), bins, far)
        if chunk_of_row is None:
            counts = binning.counts_of(v)
        else:
            rows = chunk_of_row if nc.mask is None else chunk_of_row[nc.mask]
            per_run = binning.counts_of(v, rows, chunks)
            counts = per_run.sum(axis=0)
    prof = NumericalProfile(
        counts=counts, n=nc.n, missing=nc.missing, nan=nc.nan, posinf=nc.posinf,
        neginf=nc.neginf, invalid=nc.invalid, negative=negative,
        min=lo, max=hi, mean=mean, m2=m2, examples=dict(nc.examples),
    )
    key = None
    if want_rows:
        key = _text_key(arr) if kind == "text" else nc.raw.view(np.uint64)
    return binning, ColumnPass(prof, None, key), per_run


def _range_examples(x: np.ndarray, mask: np.ndarray | None, edges: np.ndarray,
                    counts: np.ndarray) -> dict[str, list[int]]:
    """Row positions of the first values in each out-of-range band that has any."""
    rows = np.flatnonzero(mask) if mask is not None else None
    bands = {
        "far_below_range": (-np.inf, edges[0]),
        "below_range": (edges[0], edges[1]),
        "above_range": (edges[-2], edges[-1]),
        "far_above_range": (edges[-1], np.inf),
    }
    out = {}
    for (name, (lo, hi)), count in zip(bands.items(), counts[[0, 1, -2, -1]], strict=True):
        if count:
            pos = _first_rows(x, lo, hi)
            out[name] = (rows[pos] if rows is not None else pos).tolist()
    return out


_EXAMPLES = 5


def _first_rows(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Positions of the first few finite values in ``[lo, hi)``: a compiled scan that stops
    there when numba is installed, else a mask of the whole column."""
    k = kernels()
    if k is not None and len(x) >= _KERNEL_MIN_ROWS:
        return k.first_in(np.ascontiguousarray(x, dtype=np.float64), float(lo), float(hi),
                          _EXAMPLES)
    return np.flatnonzero((x >= lo) & (x < hi))[:_EXAMPLES]


def _text_key(arr: pa.ChunkedArray) -> np.ndarray:
    enc = pc.dictionary_encode(as_text(arr))
    codes = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False)
    return codes.astype(np.int64).view(np.uint64)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_C1, _C2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _seed(position: int) -> np.uint64:
    """Each column position its own offset, so equal values in two columns differ."""
    return np.uint64((position + 1) * 0x9E3779B97F4A7C15 % 2**64)


def _mixed(key: np.ndarray, seed: np.uint64) -> np.ndarray:
    """splitmix64(key + seed) per row: the numpy twin of the compiled ``mix_into``."""
    z = key + seed
    z ^= z >> np.uint64(30)
    z *= _C1
    z ^= z >> np.uint64(27)
    z *= _C2
    z ^= z >> np.uint64(31)
    return z


class RowHasher:
    """Duplicate-row hashes, folded in column by column as each column's pass ends.

    Why: holding every feature column's row key until the count cost 8 bytes a row per
    column (25 columns of 1M rows: 190 MB); folded at once, only the running hash and the
    columns in flight are held. The combination (xor of each key's splitmix64, seeded by
    the column's position) is order-free, so threads add columns as they finish and the
    hash does not depend on how many there are.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.h: np.ndarray | None = None  # made by the first key: a profile may want none
        self.columns = 0
        self._lock = threading.Lock()

    def add(self, position: int, key: np.ndarray) -> None:
        seed = _seed(position)
        kern = kernels() if self.n >= _KERNEL_MIN_ROWS else None
        if kern is not None:
            key = np.ascontiguousarray(key, dtype=np.uint64)
            with self._lock:
                h = self._hash()
                kern.mix_into(h, key, seed)
                self.columns += 1
            return
        mixed = _mixed(np.asarray(key, dtype=np.uint64), seed)
        with self._lock:
            h = self._hash()
            np.bitwise_xor(h, mixed, out=h)
            self.columns += 1

    def _hash(self) -> np.ndarray:
        if self.h is None:
            self.h = np.zeros(self.n, dtype=np.uint64)
        return self.h

    def duplicates(self) -> int:
        """Rows that repeat an earlier row of the batch (equal hashes); consumes the hash.

        numpy path: sort the 64-bit row hashes (SIMD in numpy) and count equal neighbours.
        With numba: n minus the distinct hashes, counted bucket by bucket in tables that fit
        the cache (~9x cheaper than the sort at 1M rows)."""
        h = self.h
        if h is None or len(h) < 2:
            return 0
        k = kernels()
        if k is not None and len(h) >= _KERNEL_MIN_ROWS:
            # buckets of ~2,000 hashes by their top bits instead of a sort of all of them
            return len(h) - int(k.distinct_hashes(h, max(1, len(h).bit_length() - 11)))
        h.sort()  # in place: the hashes are ours
        return int(np.count_nonzero(h[1:] == h[:-1]))


def count_duplicates(keys: list[np.ndarray]) -> int:
    """Rows that repeat an earlier row of the same batch (by every key)."""
    if not keys:
        return 0
    hasher = RowHasher(len(keys[0]))
    for position, key in enumerate(keys):
        hasher.add(position, key)
    return hasher.duplicates()
