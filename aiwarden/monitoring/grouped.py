"""Profiles of many row groups of one batch in one pass (a segment's rows in each bucket).

Profiling each group on its own repeats the per-row work (parsing numbers, finding bins
and categories, calibrating scores) once per group, and a batch split by a segment column
of 40 values into a few buckets is hundreds of groups. Here that work is done once per
column for the whole batch (:class:`RowPass`); a grouping then costs a handful of
``bincount`` / ``reduceat`` calls per column, whatever the number of groups, and yields
each group's profile directly in the packed form the store keeps.

The result equals ``Packed.from_profile(ref.profile(rows, check_duplicates=False))`` for
each group's rows: counts exactly, float moments and tail sums up to rounding (summed in
another order). Example row positions are not produced: packed profiles never keep them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aiwarden.engine import _accumulators as acc
from aiwarden.engine._binning import CategoricalBinning, NumericalBinning
from aiwarden.engine._frame import as_text, categorical_codes, numeric_values
from aiwarden.engine._profiling import _text_lengths, binned_kind, category_text
from aiwarden.engine.cbpe import CBPE, GroupedRows
from aiwarden.engine.profile import HEAVY_HITTERS
from aiwarden.engine.reference import Reference
from aiwarden.engine.schema import Role, Task
from aiwarden.monitoring.packed import Packed

__all__ = ["RowPass"]

_NAN_TEXT = pa.array(["nan", "-nan", "+nan"], pa.large_string())


@dataclass
class _Num:
    """A numerical (or text-length) column's per-row facts; masks are None when empty."""

    binning: NumericalBinning
    finite: np.ndarray | None  # rows with a finite value (None: all rows)
    bins: np.ndarray  # bin of each finite value
    values: np.ndarray  # the finite values, as read (min, max, negative)
    clipped: np.ndarray  # ... clamped to the far bands (moments and tail sums)
    masks: tuple[np.ndarray | None, ...]  # missing, nan, posinf, neginf, invalid


@dataclass
class _Cat:
    n_bins: int
    codes: np.ndarray  # category code per row; n_bins - 1: unseen or missing
    missing: np.ndarray | None
    unseen_rows: np.ndarray  # positions of rows with an unseen value
    unseen_ids: np.ndarray  # ... the id of that value in unseen_values
    unseen_values: list[str]


class RowPass:
    """The per-row work of profiling ``table`` on ``ref``'s bins, done once.

    ``packed(group, n_groups)`` then gives every group's profile; several groupings of
    the same rows (one per segment column) share this pass.
    """

    def __init__(self, ref: Reference, table: pa.Table) -> None:
        self.ref, self.table, self.n = ref, table, table.num_rows
        present = set(table.column_names)
        self.order = tuple(c.name for c in ref.schema_.columns)
        self.num: list[tuple[str, _Num | None]] = []
        self.cat: list[tuple[str, _Cat | None]] = []
        self.pres: list[tuple[str, np.ndarray | None]] = []
        for col in ref.schema_.columns:
            binning = ref.binnings_[col.name]
            arr = table.column(col.name) if col.name in present else None
            kind = binned_kind(col)
            if kind == "presence":
                self.pres.append((col.name, None if arr is None else _nulls(arr)))
            elif isinstance(binning, NumericalBinning):
                self.num.append((col.name, None if arr is None else _numerical(
                    binning, _text_lengths(arr) if kind == "text" else arr)))
            else:
                assert isinstance(binning, CategoricalBinning)
                self.cat.append((col.name, None if arr is None else _categorical(
                    binning, category_text(col, arr))))
        self.extra = [c for c in table.column_names if c not in ref.schema_]
        self.num_offsets = np.concatenate(
            [[0], np.cumsum([ref.binnings_[k].n_bins for k, _ in self.num])]).astype(np.int64)
        self.nums = _stack([c for _, c in self.num], self.num_offsets, self.n)
        self._cbpe: GroupedRows | bool | None = None
        self.cat_offsets = np.concatenate(
            [[0], np.cumsum([ref.binnings_[k].n_bins for k, _ in self.cat])]).astype(np.int64)

    def packed(self, group: np.ndarray, n_groups: int) -> list[Packed]:
        """Profile of each group: ``group[i]`` is row i's group in ``[0, n_groups)``,
        and every group holds at least one row."""
        g = np.asarray(group, np.int64)
        sizes = np.bincount(g, minlength=n_groups)
        if len(sizes) != n_groups or not sizes.all():
            raise ValueError("Every group needs at least one row, and no group id may "
                             f"reach n_groups={n_groups}.")
        order = np.argsort(g, kind="stable")
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        num_counts, num_ints, num_floats = _numerical_groups(self.nums, g, sizes)
        cat_counts = np.zeros((n_groups, int(self.cat_offsets[-1])), np.int64)
        cat_ints = np.zeros((n_groups, len(self.cat), 4), np.int64)
        tops: list[dict[str, dict[str, int]]] = [{} for _ in range(n_groups)]
        for j, (name, c) in enumerate(self.cat):
            cat_ints[:, j, 0] = sizes
            if c is None:
                cat_ints[:, j, 1] = cat_ints[:, j, 3] = sizes
                continue
            lo, hi = self.cat_offsets[j], self.cat_offsets[j + 1]
            counts = np.bincount(g * c.n_bins + c.codes, minlength=n_groups * c.n_bins)
            cat_counts[:, lo:hi] = counts.reshape(n_groups, c.n_bins)
            if c.missing is not None:
                missing = np.bincount(g[c.missing], minlength=n_groups)
                cat_counts[:, hi - 1] -= missing
                cat_ints[:, j, 1] = missing
            for i, top in _unseen_top(c, g):
                tops[i][name] = top
        pres_ints = np.zeros((n_groups, len(self.pres), 3), np.int64)
        for j, (_, missing) in enumerate(self.pres):
            pres_ints[:, j, 0] = sizes
            if missing is None:
                pres_ints[:, j, 1] = pres_ints[:, j, 2] = sizes
            else:
                pres_ints[:, j, 1] = np.bincount(g[missing], minlength=n_groups)
        parts = np.split(order, starts[1:]) if n_groups > 1 else [order]
        perf, est = self._performance(parts), self._estimated(g, parts)
        names = [tuple(k for k, _ in cols) for cols in (self.num, self.cat, self.pres)]
        return [Packed(
            n_rows=int(sizes[i]), order=self.order, num_names=names[0],
            num_offsets=self.num_offsets, num_counts=num_counts[i], num_ints=num_ints[i],
            num_floats=num_floats[i], cat_names=names[1], cat_offsets=self.cat_offsets,
            cat_counts=cat_counts[i], cat_ints=cat_ints[i], cat_top=tops[i],
            pres_names=names[2], pres_ints=pres_ints[i],
            extra_columns={k: int(sizes[i]) for k in self.extra}, duplicates=0,
            performance=perf[i], estimated=est[i], reference=self.ref.fingerprint)
            for i in range(n_groups)]

    def _performance(self, parts: list[np.ndarray]) -> list[object]:
        """Realised performance needs labels: rare at ingest, so group by group."""
        schema = self.ref.schema_
        target = schema.column_for(Role.TARGET)
        if target is None or target not in self.table.column_names:
            return [None] * len(parts)
        return [acc.realised_batch(schema, self.table.take(pa.array(p)),
                                   self.ref.residual_edges_) for p in parts]

    def _estimated(self, g: np.ndarray, parts: list[np.ndarray]) -> list[object]:
        model, schema = self.ref.performance_model_, self.ref.schema_
        if model is None:
            return [None] * len(parts)
        if isinstance(model, CBPE) and schema.task != Task.REGRESSION:
            if self._cbpe is None:  # once per batch, whatever the groupings
                a = acc._arrays(schema, self.table)
                self._cbpe = (False if not a or "scores" not in a
                              else model.accumulate_groups(a["scores"], a.get("y_pred")))
            if self._cbpe is False:
                return [None] * len(parts)
            return self._cbpe.accumulate(g, len(parts))
        return [acc.estimate_batch(model, schema, self.table.take(pa.array(p)))
                for p in parts]


def _nulls(arr: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(arr.is_null()) if arr.null_count else np.zeros(len(arr), bool)


def _mask(m: np.ndarray) -> np.ndarray | None:
    return m if m.any() else None


def _numerical(binning: NumericalBinning, arr: pa.ChunkedArray | pa.Array) -> _Num:
    nc = numeric_values(arr)
    v, edges = nc.values, binning.edges
    bins = binning.bin_of(v)
    clipped = np.clip(v, edges[0], edges[-1]) if len(v) else v
    if nc.mask is None:
        masks: tuple[np.ndarray | None, ...] = (None,) * 5
    else:
        missing = _nulls(arr) if nc.missing else None
        raw, other = nc.raw, ~nc.mask
        if missing is not None:
            other &= ~missing
        nan, invalid = other & np.isnan(raw), None
        if nc.invalid and not nc.nan:  # not a number (no NaN among them)
            invalid, nan = nan, nan & False
        elif nc.invalid:  # text that is not a number; written "nan" it is a NaN
            text_nan = np.asarray(pc.fill_null(pc.is_in(pc.utf8_lower(as_text(arr)),
                                                        value_set=_NAN_TEXT), False))
            invalid, nan = nan & ~text_nan, nan & text_nan
        masks = (missing, _mask(nan), _mask(other & (raw == np.inf)),
                 _mask(other & (raw == -np.inf)), invalid)
    return _Num(binning, nc.mask, bins, v, clipped, masks)


@dataclass
class _Stacked:
    """Every numerical column's finite values end to end, so a grouping reduces all
    columns in one ``bincount`` per statistic (``cell`` = group x column)."""

    n_cols: int
    n_bins: int
    rows: np.ndarray  # row of each value
    col: np.ndarray  # its column
    bins: np.ndarray  # its bin, offset by its column's first bin
    values: np.ndarray
    clipped: np.ndarray
    low: np.ndarray  # clipped value in the bands below the reference range
    high: np.ndarray  # ... above it
    negative: np.ndarray
    status: list[tuple[np.ndarray, np.ndarray]]  # (rows, columns) per masked field
    absent: np.ndarray  # columns not in the batch


def _stack(cols: list[_Num | None], offsets: np.ndarray, n: int) -> _Stacked:
    rows, col, bins, values, clipped, low, high = [], [], [], [], [], [], []
    status: list[tuple[list[np.ndarray], list[np.ndarray]]] = [([], []) for _ in range(5)]
    for j, c in enumerate(cols):
        if c is None:
            continue
        edges = c.binning.edges
        rows.append(np.arange(n) if c.finite is None else np.flatnonzero(c.finite))
        col.append(np.full(len(c.values), j, np.int64))
        bins.append(c.bins + offsets[j])
        values.append(c.values)
        clipped.append(c.clipped)
        low.append(c.clipped < edges[1])
        high.append(c.clipped >= edges[-2])
        for k, m in enumerate(c.masks):
            if m is not None:
                at = np.flatnonzero(m)
                status[k][0].append(at)
                status[k][1].append(np.full(len(at), j, np.int64))

    def cat(parts: list[np.ndarray], dtype: object) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0, dtype)

    vals = cat(values, np.float64)
    return _Stacked(len(cols), int(offsets[-1]), cat(rows, np.int64), cat(col, np.int64),
                    cat(bins, np.int64), vals, cat(clipped, np.float64), cat(low, bool),
                    cat(high, bool), vals < 0.0,
                    [(cat(r, np.int64), cat(c, np.int64)) for r, c in status],
                    np.array([c is None for c in cols], bool))


def _numerical_groups(s: _Stacked, g: np.ndarray, sizes: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bin counts ``(G, bins)``, integer fields ``(G, columns, 8)`` and float fields
    ``(G, columns, 6)`` of every numerical column in every group."""
    n_groups, n_cols = len(sizes), s.n_cols
    cells = n_groups * n_cols
    gf = g[s.rows]
    counts = np.bincount(gf * s.n_bins + s.bins, minlength=n_groups * s.n_bins)
    cell = gf * n_cols + s.col
    ints = np.zeros((n_groups, n_cols, 8), np.int64)
    ints[:, :, 0] = sizes[:, None]
    for k, (rows, col) in enumerate(s.status, start=1):  # missing, nan, posinf, neginf, invalid
        if len(rows):
            ints[:, :, k] = np.bincount(g[rows] * n_cols + col, minlength=cells).reshape(
                n_groups, n_cols)
    ints[:, s.absent, 1] = ints[:, s.absent, 6] = sizes[:, None]  # missing, absent
    ints[:, :, 7] = np.bincount(cell[s.negative], minlength=cells).reshape(n_groups, n_cols)
    floats = np.zeros((n_groups, n_cols, 6), np.float64)
    finite = np.bincount(cell, minlength=cells)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        total = np.bincount(cell, weights=s.clipped, minlength=cells)
        mean = np.where(finite > 0, total / np.maximum(finite, 1), 0.0)
        m2 = np.bincount(cell, weights=np.square(s.clipped - mean[cell]), minlength=cells)
        below, above = (np.bincount(cell[m], weights=s.clipped[m], minlength=cells)
                        if m.any() else np.zeros(cells) for m in (s.low, s.high))
    lo, hi = np.full(cells, np.inf), np.full(cells, -np.inf)
    np.minimum.at(lo, cell, s.values)
    np.maximum.at(hi, cell, s.values)
    for k, field in enumerate((lo, hi, mean, np.where(finite > 0, m2, 0.0), below, above)):
        floats[:, :, k] = field.reshape(n_groups, n_cols)
    return counts.reshape(n_groups, s.n_bins).astype(np.int64, copy=False), ints, floats


def _categorical(binning: CategoricalBinning, text: pa.Array) -> _Cat:
    cc = categorical_codes(text, binning.value_set())
    k = len(binning.categories)
    codes = np.asarray(cc.codes, np.int64)
    missing = np.asarray(text.is_null()) if cc.missing else None
    rows, ids, values = np.zeros(0, np.int64), np.zeros(0, np.int64), []
    if cc.unseen:
        unseen = codes == k
        if missing is not None:
            unseen &= ~missing
        rows = np.flatnonzero(unseen)
        enc = pc.dictionary_encode(text.take(pa.array(rows)))
        ids = np.asarray(enc.indices.to_numpy(zero_copy_only=False), np.int64)
        values = [str(v) for v in enc.dictionary.to_pylist()]
    return _Cat(k + 1, codes, missing, rows, ids, values)


def _unseen_top(c: _Cat, g: np.ndarray) -> list[tuple[int, dict[str, int]]]:
    """Each group's ``HEAVY_HITTERS`` most frequent unseen values, ties in the order they
    first appear in the group (as ``pyarrow.compute.value_counts`` lists them)."""
    if not len(c.unseen_rows):
        return []
    n_values = len(c.unseen_values)
    key = g[c.unseen_rows] * n_values + c.unseen_ids
    keys, first, counts = np.unique(key, return_index=True, return_counts=True)
    groups = keys // n_values
    at = np.lexsort((first, -counts, groups))
    groups, keys, counts = groups[at], keys[at], counts[at]
    begin = np.searchsorted(groups, groups, side="left")
    keep = np.flatnonzero(np.arange(len(groups)) - begin < HEAVY_HITTERS)
    out: dict[int, dict[str, int]] = {}
    for i in keep.tolist():
        out.setdefault(int(groups[i]), {})[c.unseen_values[keys[i] % n_values]] = int(counts[i])
    return list(out.items())
