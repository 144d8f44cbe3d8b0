"""Reference-fitted binnings: the fixed grid every later profile counts on.

Numerical columns get reference-quantile edges (one bin per value when the
column has few distinct values, so discrete data is exact), wrapped in an
"out of range" band and a "far out of range" band on each side, so a single
corrupted 1e308 lands in a bin of its own. Categorical columns get the
reference's categories in frequency order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from aiwarden.engine._column_kernel import distinct, kernels

__all__ = ["CategoricalBinning", "NumericalBinning", "sorted_counts"]


@dataclass(frozen=True, eq=False)
class NumericalBinning:
    """Edges ``[far_lo, e0, ..., ek, far_hi]``; bin ``i`` is ``[edges[i-1], edges[i])``.

    Bin 0 is far below, bin 1 below the reference range, bins ``2..k+1`` are the
    reference quantile bins, bin ``k+2`` is above and ``k+3`` far above.
    """

    edges: np.ndarray
    std: float
    discrete: bool
    atoms: np.ndarray | None = None  # the distinct values of a discrete column

    @property
    def n_bins(self) -> int:
        return len(self.edges) + 1

    @property
    def interior(self) -> np.ndarray:
        """The reference range edges ``e0..ek``."""
        return self.edges[1:-1]

    @property
    def w1_edges(self) -> np.ndarray:
        """Positions for Wasserstein: the bin edges, or for a discrete column its values
        (with a zero-width last step), since all its reference mass sits on them."""
        if self.atoms is None:
            return self.interior
        return np.append(self.atoms, self.atoms[-1])

    def bin_of(self, values: np.ndarray) -> np.ndarray:
        """Bin of every finite value, exactly ``searchsorted(edges, values, 'right')``.

        A uniform grid over the reference range maps each value to the first bin its cell
        can hold (the grid is monotone, so no edge is skipped), then a few comparisons with
        the next edges finish the job: several times cheaper than a binary search or a sort.
        """
        lut = self._grid()
        if lut is False or len(values) < 64:
            return np.searchsorted(self.edges, values, side="right")
        lo, scale, top, first, rounds, padded = lut
        b = first[_cell(values, lo, scale, top)]
        for _ in range(rounds):
            b += values >= padded[b]
        return b

    def _grid(self) -> Any:
        lut = self.__dict__.get("_lut")
        if lut is None:
            lut = _grid_lookup(self.edges)
            object.__setattr__(self, "_lut", lut)
        return lut

    def counts_of(self, values: np.ndarray, groups: np.ndarray | None = None,
                  n_groups: int = 1) -> np.ndarray:
        """``np.bincount(self.bin_of(values))`` (per group of rows when ``groups`` is given:
        shape ``(n_groups, n_bins)``), exactly, a block of rows at a time.

        The lookup makes several temporary arrays per value (cell, bin, edge, comparison);
        on 65,536 rows they stay in the CPU cache instead of streaming 8 MB arrays through
        memory: about 1.5x faster on a million rows, the same counts. Without groups a
        large input is counted per cell of a fine grid instead (:meth:`_histogram_counts`).
        """
        nb = self.n_bins
        if groups is None:
            k = kernels()
            lut = self._grid() if k is not None and len(values) >= _KERNEL_MIN_ROWS else False
            if lut is not False:  # one compiled pass (the same lookup)
                lo, scale, top, first, rounds, padded = lut
                out = np.zeros(nb, dtype=np.int64)
                k.bin_counts(np.ascontiguousarray(values, dtype=np.float64), lo, scale, top,
                             first, rounds, padded, out)
                return out
        if groups is None and len(values) >= _HIST_MIN_ROWS:
            hist = self._hist_grid()
            if hist is not False:
                return self._histogram_counts(values, *hist)
        out = np.zeros(nb * n_groups, dtype=np.int64)
        for start in range(0, len(values), _BLOCK_ROWS):
            b = self.bin_of(values[start:start + _BLOCK_ROWS])
            if groups is not None:
                b = groups[start:start + _BLOCK_ROWS] * nb + b
            out += np.bincount(b, minlength=nb * n_groups)
        return out if groups is None else out.reshape(n_groups, nb)

    @property
    def empty(self) -> bool:
        """The reference had no finite value: there is no range to compare with."""
        return self.std < 0

    @classmethod
    def fit(cls, sorted_values: np.ndarray, bins: int, far: float,
            std: float | None = None) -> NumericalBinning:
        """Edges from sorted finite values; ``std`` saves a pass when the caller has it."""
        x = sorted_values
        if len(x) == 0:
            inner = np.array([0.0, np.nextafter(0.0, np.inf)])
            return cls(_wrap(inner, far), -1.0, False)
        lo, hi = float(x[0]), float(x[-1])
        uniq = _unique_sorted(x, limit=bins)
        if uniq is not None:
            inner = _discrete_inner(uniq)
            discrete = True
        else:
            inner = _continuous_inner(x[_quantile_ranks(len(x), bins)], lo, hi, bins)
            discrete = False
        if len(inner) < 2:
            inner = np.array([lo, np.nextafter(hi, np.inf)])
        return cls(_wrap(inner, far), _std(x) if std is None else std, discrete,
                   uniq if discrete else None)

    @classmethod
    def fit_distinct(cls, uniq: np.ndarray, value_counts: np.ndarray, far: float, std: float
                     ) -> tuple[NumericalBinning, np.ndarray]:
        """:meth:`fit` and the bin counts of a column of at most ``bins`` distinct values,
        from those values (sorted) and their counts: no sort of the column."""
        binning = cls(_wrap(_discrete_inner(uniq), far), std, True, uniq)
        counts = np.zeros(binning.n_bins, dtype=np.int64)
        np.add.at(counts, np.searchsorted(binning.edges, uniq, side="right"), value_counts)
        return binning, counts

    @classmethod
    def _distinct(cls, values: np.ndarray, bins: int, bounds: tuple[float, float] | None
                  ) -> tuple[np.ndarray, np.ndarray] | None:
        """(distinct values, counts) by one compiled pass; None without numba, on a short
        column or past ``bins`` values (then the caller sorts)."""
        k = kernels()
        if k is None or len(values) < _KERNEL_MIN_ROWS:
            return None
        bounds = bounds or (float(values.min()), float(values.max()))
        return distinct(k, np.ascontiguousarray(values, dtype=np.float64), bins, bounds)

    @classmethod
    def fit_unsorted(cls, values: np.ndarray, bins: int, far: float, std: float,
                     bounds: tuple[float, float] | None = None) -> NumericalBinning:
        """What :meth:`fit` gives on ``np.sort(values)``, without sorting a continuous column.

        A column proven to have more than ``bins`` distinct values (its first ones do) needs
        only its quantile ranks: a monotone grid counts the values per cell and sorts only
        the cells that hold a wanted rank. Anything else takes the sorted path.
        """
        n = len(values)
        if n < _SELECT_MIN_ROWS or len(np.unique(values[:4 * bins])) <= bins:
            d = cls._distinct(values, bins, bounds)
            if d is not None:
                return cls.fit_distinct(*d, far, std)[0]
            return cls.fit(np.sort(values), bins, far, std=std)
        lo, hi = bounds or (float(values.min()), float(values.max()))
        q = _order_statistics(values, _quantile_ranks(n, bins), lo, hi)
        if q is None:
            return cls.fit(np.sort(values), bins, far, std=std)
        inner = _continuous_inner(q, lo, hi, bins)
        if len(inner) < 2:
            inner = np.array([lo, np.nextafter(hi, np.inf)])
        return cls(_wrap(inner, far), std, False, None)

    @classmethod
    def fit_counted(cls, values: np.ndarray, bins: int, far: float, std: float,
                    bounds: tuple[float, float] | None = None
                    ) -> tuple[NumericalBinning, np.ndarray]:
        """:meth:`fit_unsorted` plus ``counts_of(values)``, the counts taken from the pass
        that found the edges (the sorted values, or the selection's cell histogram).
        ``bounds``: the values' (min, max) when the caller has them (saves two passes)."""
        n = len(values)
        if n < _SELECT_MIN_ROWS or len(np.unique(values[:4 * bins])) <= bins:
            d = cls._distinct(values, bins, bounds)
            if d is not None:
                return cls.fit_distinct(*d, far, std)
            x = np.sort(values)
            binning = cls.fit(x, bins, far, std=std)
            return binning, sorted_counts(x, binning.edges)
        bounds = bounds or (float(values.min()), float(values.max()))
        shared = cls._fit_on_one_grid(values, bins, far, std, bounds)
        if shared is not None:
            return shared
        binning = cls.fit_unsorted(values, bins, far, std, bounds)
        return binning, binning.counts_of(values)

    @classmethod
    def _fit_on_one_grid(cls, values: np.ndarray, bins: int, far: float, std: float,
                         bounds: tuple[float, float]
                         ) -> tuple[NumericalBinning, np.ndarray] | None:
        """The selection of :meth:`fit_unsorted` run on the grid :meth:`counts_of` will use
        for the resulting edges (``[min, nextafter(max)]``), keeping the values of every
        cell that can hold an edge: its per-cell histogram and those values then give the
        counts, with no third pass over the column. The edges are the selection's (exact
        order statistics); None when the grid does not fit (then two passes, as before)."""
        lo, hi = bounds
        top = _HIST_CELLS - 1
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            scale = top / (np.nextafter(hi, np.inf) - lo)
        if not (np.isfinite(scale) and scale > 0):
            return None
        ranks = _quantile_ranks(len(values), bins)
        even = _even_edges(lo, hi, bins, len(ranks))
        # the even edges' cells, and the last cell: the top edge, nextafter(max), is there
        also = np.append(_cell(even, lo, scale, top), top)
        sel = _selection(values, ranks, lo, scale, top, also)
        if sel is None:
            return None
        q, per_cell, picked, keep = sel
        inner = _continuous_inner(q, lo, hi, bins)
        if len(inner) < 2:
            return None
        binning = cls(_wrap(inner, far), std, False, None)
        hist = binning._hist_grid()
        if hist is False or hist[:3] != (lo, scale, top) or not keep[hist[3]].all():
            return None
        rest = picked[np.take(hist[3], _cell(picked, lo, scale, top))]
        return binning, binning._counts_from_cells(per_cell, rest, hist[3], hist[4])

    def _hist_grid(self) -> Any:
        hist = self.__dict__.get("_hist")
        if hist is None:
            hist = _hist_lookup(self.edges)
            object.__setattr__(self, "_hist", hist)
        return hist

    def _histogram_counts(self, values: np.ndarray, lo: float, scale: float, top: int,
                          is_edge: np.ndarray, bounds: np.ndarray) -> np.ndarray:
        """Counts from a histogram over a fine uniform grid of the reference range.

        The grid is monotone, so every value of a cell that holds no edge falls in the
        same bin (``bounds`` lists each bin's cells); only the values of the few cells
        holding an edge (all out-of-range values among them) are looked up one by one.
        Two vector passes and one ``bincount`` per value instead of the lookup's six.
        """
        cells = top + 1
        hist = np.zeros(cells, dtype=np.int64)
        size = min(len(values), _BLOCK_ROWS)
        t, cell, edge = np.empty(size), np.empty(size, dtype=np.intp), np.empty(size, bool)
        picked = []
        for start in range(0, len(values), _BLOCK_ROWS):
            part = values[start:start + _BLOCK_ROWS]
            k = len(part)
            _cell(part, lo, scale, top, t[:k], cell[:k])
            hist += np.bincount(cell[:k], minlength=cells)
            np.take(is_edge, cell[:k], out=edge[:k])
            picked.append(part[edge[:k]])
        return self._counts_from_cells(hist, np.concatenate(picked), is_edge, bounds)

    def _counts_from_cells(self, per_cell: np.ndarray, rest: np.ndarray, is_edge: np.ndarray,
                           bounds: np.ndarray) -> np.ndarray:
        """Bin counts from a per-cell histogram (cells without an edge: their bin's run of
        cells) plus a lookup of ``rest``, the values of the cells that hold an edge."""
        hist = per_cell.copy()
        hist[is_edge] = 0
        cum = np.concatenate([[0], np.cumsum(hist)])
        counts = cum[bounds[1:]] - cum[bounds[:-1]]
        counts += np.bincount(self.bin_of(rest), minlength=self.n_bins)
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "numerical", "edges": self.edges.tolist(), "std": self.std,
                "discrete": self.discrete,
                "atoms": None if self.atoms is None else self.atoms.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NumericalBinning:
        atoms = d.get("atoms")
        return cls(np.asarray(d["edges"], dtype=np.float64), float(d["std"]), bool(d["discrete"]),
                   None if atoms is None else np.asarray(atoms, dtype=np.float64))


_GRID_PER_EDGE, _MAX_ROUNDS = 32, 6
_BLOCK_ROWS = 1 << 16  # rows per block of counts_of: its temporaries fit in L2
# counts_of's histogram: cells over the reference range (few values share a cell with an
# edge: 0.3-4 % on the benchmark's columns) and the smallest input it pays off on.
_HIST_CELLS, _HIST_MIN_ROWS = 1 << 16, 1 << 14
_SELECT_MIN_ROWS, _SELECT_CELLS, _SELECT_BLOCK = 5_000, 1 << 16, 1 << 17
#: Shortest column the compiled loops take (below, numpy's few calls cost as little).
_KERNEL_MIN_ROWS = 1_024


def _quantile_ranks(n: int, bins: int) -> np.ndarray:
    return np.linspace(0, n - 1, bins // 2 + 1).round().astype(np.int64)


def _even_edges(lo: float, hi: float, bins: int, n_quantiles: int) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        even = lo + (np.linspace(0.0, 1.0, bins - n_quantiles + 2) * (hi / 2 - lo / 2)) * 2
    return even[np.isfinite(even)]


def _discrete_inner(uniq: np.ndarray) -> np.ndarray:
    """One bin per value, split halfway between neighbours: a current value off the grid
    (20.9 against integers) counts at the nearest reference value."""
    mids = uniq[:-1] / 2 + uniq[1:] / 2
    return np.concatenate([uniq[:1], mids, [np.nextafter(uniq[-1], np.inf)]])


def _continuous_inner(q: np.ndarray, lo: float, hi: float, bins: int) -> np.ndarray:
    """Half the edges at reference quantiles ``q`` (KS resolution where the mass is), half
    evenly spaced (Wasserstein resolution in the tails, where quantile bins are wide)."""
    inner = np.unique(np.concatenate([q, _even_edges(lo, hi, bins, len(q))]))
    inner[-1] = np.nextafter(hi, np.inf)
    return np.unique(inner)


def _order_statistics(x: np.ndarray, ranks: np.ndarray, lo: float, hi: float
                      ) -> np.ndarray | None:
    """``np.sort(x)[ranks]`` exactly, sorting only the grid cells that hold a wanted rank;
    None when those cells hold a quarter of the values (a sort is then as cheap)."""
    top = _SELECT_CELLS - 1
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        scale = top / (hi - lo)
    if not (np.isfinite(scale) and scale > 0):
        return None
    sel = _selection(x, ranks, lo, scale, top)
    return None if sel is None else sel[0]


def _selection(x: np.ndarray, ranks: np.ndarray, lo: float, scale: float, top: int,
               also: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """``np.sort(x)[ranks]`` on the grid ``(lo, scale, top)``, with the per-cell counts,
    the sorted values of the cells kept (those holding a wanted rank, plus the cells
    ``also``) and the kept-cell mask; None when the wanted cells hold a quarter of the
    values (a sort is then as cheap)."""
    # Two passes a block at a time (cells recomputed), never a full-length temporary.
    cells = top + 1
    size = min(len(x), _SELECT_BLOCK)
    t, cell, mask = np.empty(size), np.empty(size, dtype=np.intp), np.empty(size, dtype=bool)
    blocks = [(start, min(start + _SELECT_BLOCK, len(x)))
              for start in range(0, len(x), _SELECT_BLOCK)]
    per_cell = np.zeros(cells, dtype=np.int64)
    kern = kernels()
    if kern is not None:
        x = np.ascontiguousarray(x, dtype=np.float64)
        kern.cell_counts(x, lo, scale, top, per_cell)
    else:
        for start, stop in blocks:
            k = stop - start
            per_cell += np.bincount(_cell(x[start:stop], lo, scale, top, t[:k], cell[:k]),
                                    minlength=cells)
    end = np.cumsum(per_cell)
    at = np.searchsorted(end, ranks, side="right")  # the cell holding each rank
    wanted = np.unique(at)
    if per_cell[wanted].sum() > len(x) // 4:
        return None
    keep = np.zeros(cells, dtype=bool)
    keep[wanted] = True
    if also is not None:
        keep[also] = True
    kept = np.flatnonzero(keep)
    if kern is not None:
        picked = kern.pick(x, lo, scale, top, keep, int(per_cell[kept].sum()))
    else:
        parts = []
        for start, stop in blocks:
            k = stop - start
            np.take(keep, _cell(x[start:stop], lo, scale, top, t[:k], cell[:k]), out=mask[:k])
            parts.append(x[start:stop][mask[:k]])
        picked = np.concatenate(parts)
    picked.sort()  # cells are monotone: sorted cell by cell
    start_in_picked = np.cumsum(per_cell[kept]) - per_cell[kept]
    first = start_in_picked[np.searchsorted(kept, at)]
    return picked[first + ranks - (end[at] - per_cell[at])], per_cell, picked, keep


def _cell(x: np.ndarray, lo: float, scale: float, top: int,
          t: np.ndarray | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """Grid cell of each value: a monotone map, so values and edges keep their order.

    ``t`` (float64) and ``out`` (intp), of ``x``'s length, are scratch to reuse.
    """
    with np.errstate(over="ignore"):  # 1e308 - (-1e308): inf, clipped to the last cell
        t = np.subtract(x, lo, out=t)
        t *= scale
    np.clip(t, 0.0, top, out=t)
    if out is None:
        return t.astype(np.intp)
    np.copyto(out, t, casting="unsafe")  # the same truncation as astype
    return out


def _hist_lookup(edges: np.ndarray) -> Any:
    """(lo, scale, top, edge cells, each bin's first cell) for ``_histogram_counts``, or
    False when the reference range has no finite width to grid."""
    lo, hi = float(edges[1]), float(edges[-2])
    top = _HIST_CELLS - 1
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        scale = top / (hi - lo)
    if not (np.isfinite(scale) and scale > 0):
        return False
    fe = _cell(edges, lo, scale, top)
    is_edge = np.zeros(top + 1, dtype=bool)
    is_edge[fe] = True
    # A cell without an edge holds bin "number of edges in earlier cells" only.
    first = np.searchsorted(fe, np.arange(top + 1), side="left")
    bounds = np.searchsorted(first, np.arange(len(edges) + 2), side="left")
    return lo, scale, top, is_edge, bounds


def sorted_counts(s: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin counts of sorted values: one binary search per edge instead of one per value.

    Bin ``i`` holds ``edges[i-1] <= x < edges[i]``, as ``searchsorted(edges, x, 'right')``.
    """
    return np.diff(np.concatenate([[0], np.searchsorted(s, edges), [len(s)]])).astype(np.int64)


def _grid_lookup(edges: np.ndarray) -> Any:
    """(lo, scale, top, first bin per cell, rounds, edges + inf) or False when the edges
    crowd into too few cells (a 1e308 outlier at the range's end) to pay off."""
    lo, hi = float(edges[1]), float(edges[-2])
    top = _GRID_PER_EDGE * len(edges) - 1
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        scale = top / (hi - lo)
    if not (np.isfinite(scale) and scale > 0):
        return False
    fe = _cell(edges, lo, scale, top)
    rounds = int(np.bincount(fe).max())
    if rounds > _MAX_ROUNDS:
        return False
    first = np.searchsorted(fe, np.arange(top + 1), side="left")
    return lo, scale, top, first, rounds, np.append(edges, np.inf)


def _unique_sorted(x: np.ndarray, limit: int) -> np.ndarray | None:
    """Distinct values of a sorted array, or None when there are more than ``limit``."""
    change = np.flatnonzero(x[1:] != x[:-1])
    if len(change) + 1 > limit:
        return None
    return np.concatenate([x[:1], x[change + 1]])


def _std(x: np.ndarray) -> float:
    """Standard deviation that survives values near the float limit (scaled, then restored)."""
    if len(x) < 2:
        return 0.0
    scale = max(abs(float(x[0])), abs(float(x[-1])))
    if scale == 0.0:
        return 0.0
    return float(np.std(x / scale)) * scale


def _wrap(inner: np.ndarray, far: float) -> np.ndarray:
    """Add the far-out-of-range edges; a constant reference gets a band of its own size."""
    lo, hi = float(inner[0]), float(inner[-1])
    with np.errstate(over="ignore", invalid="ignore"):
        span = hi - lo
    # (a constant 0 spans one subnormal step, which 1e-9 * max(...) underflows to miss)
    if not np.isfinite(span) or span <= 1e-9 * max(abs(lo), abs(hi)) \
            or span < np.finfo(np.float64).tiny:
        span = max(abs(lo), 1.0)
    with np.errstate(over="ignore"):
        far_lo = max(lo - far * span, -np.finfo(np.float64).max)
        far_hi = min(hi + far * span, np.finfo(np.float64).max)
    if far_lo >= lo:
        far_lo = np.nextafter(lo, -np.inf)
    if far_hi <= hi:
        far_hi = np.nextafter(hi, np.inf)
    return np.concatenate([[far_lo], inner, [far_hi]])


@dataclass(frozen=True, eq=False)
class CategoricalBinning:
    """The reference's categories (text form), most frequent first; code ``k`` is unseen."""

    categories: tuple[str, ...]

    @property
    def n_bins(self) -> int:
        return len(self.categories) + 1

    def value_set(self) -> pa.Array:
        cached = self.__dict__.get("_value_set")
        if cached is None:
            cached = pa.array(self.categories, type=pa.large_string())
            object.__setattr__(self, "_value_set", cached)
        return cached

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "categorical", "categories": list(self.categories)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CategoricalBinning:
        return cls(tuple(d["categories"]))
