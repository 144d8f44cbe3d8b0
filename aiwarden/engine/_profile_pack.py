"""One int64 row per profile, so a window of 10,000 buckets merges in a few numpy calls.

Why: merging reads every bucket's counts and scalars. Held column by column, that is
25 objects and 25 small buffers per bucket, and the Python work per object (attribute
reads, one buffer export each) was most of a 10,000-bucket merge. Here each profile
keeps, when it is built, one row holding every column's counts, integer fields and the
bits of its float fields; the columns' ``counts`` become views of that row (so the two
cannot disagree, and an in-place edit of ``counts`` is what the merge reads). A merge
joins one buffer per profile and sums the stacked rows in cache-sized blocks.

Row layout (a :class:`_Layout`, shared by every profile with the same columns, kinds and
bin counts): the counts of every numerical and categorical column, then every column's
integer fields (these two parts are summed, exactly, in int64), then the numerical
columns' float fields, field by field (min of every column, max of every column, ...).
A profile whose columns are not all plain int64 counts (or whose fields do not fit)
gets no row and merges column by column, as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import chain, repeat
from operator import attrgetter, eq, is_, is_not
from typing import Any

import numpy as np

from aiwarden.engine.profile import (
    CategoricalProfile,
    NumericalProfile,
    PresenceProfile,
    combine_moments,
    merge_examples,
    merge_heavy_hitters,
)

__all__ = ["Pack", "merge_packed", "pack_columns"]

_NUM_FLOATS = NumericalProfile._FLOAT_FIELDS  # min, max, mean, m2, below_sum, above_sum
_CHUNK_BYTES = 1 << 20  # a block of stacked rows that stays in the CPU cache
_LAYOUTS: dict[tuple[Any, ...], _Layout] = {}


@dataclass(frozen=True, eq=False)
class _Layout:
    names: tuple[str, ...]
    kinds: tuple[type, ...]
    counts_at: tuple[tuple[int, int], ...]  # each column's counts: row[a:b] (a == b: none)
    ints_at: tuple[int, ...]  # where each column's integer fields start
    int_fields: tuple[tuple[str, ...], ...]
    n_counts: int
    n_int: int  # counts + integer fields: the summed part of a row
    width: int
    numerical: tuple[int, ...]  # column indices
    categorical: tuple[int, ...]
    starts: np.ndarray  # counts starts of the counted columns (for reduceat)
    num_in_starts: np.ndarray  # which of those are numerical

    @classmethod
    def of(cls, names: tuple[str, ...], kinds: tuple[type, ...],
           sizes: tuple[int, ...]) -> _Layout:
        """The one layout object for these columns (compared by identity when merging)."""
        key = (names, kinds, sizes)
        got = _LAYOUTS.get(key)
        if got is None:
            if len(_LAYOUTS) >= 4096:  # one per reference in use; never grows unbounded
                _LAYOUTS.clear()
            got = _LAYOUTS[key] = cls._build(names, kinds, sizes)
        return got

    @classmethod
    def _build(cls, names: tuple[str, ...], kinds: tuple[type, ...],
               sizes: tuple[int, ...]) -> _Layout:
        ends = np.cumsum(sizes).tolist()
        counts_at = tuple((e - s, e) for s, e in zip(sizes, ends, strict=True))
        n_counts = ends[-1] if ends else 0
        ints_at, at = [], n_counts
        for k in kinds:
            ints_at.append(at)
            at += len(k._INT_FIELDS)  # type: ignore[attr-defined]
        numerical = tuple(i for i, k in enumerate(kinds) if k is NumericalProfile)
        counted = [i for i, n in enumerate(sizes) if n]
        return cls(names, kinds, counts_at, tuple(ints_at),
                   tuple(k._INT_FIELDS for k in kinds),  # type: ignore[attr-defined]
                   n_counts, at,
                   at + len(_NUM_FLOATS) * len(numerical), numerical,
                   tuple(i for i, k in enumerate(kinds) if k is CategoricalProfile),
                   np.array([counts_at[i][0] for i in counted], dtype=np.intp),
                   np.array([kinds[i] is NumericalProfile for i in counted], dtype=bool))


@dataclass(frozen=True, eq=False)
class Pack:
    layout: _Layout
    row: bytearray  # a bytearray: ``b"".join`` takes one several times faster than an array
    columns: tuple[Any, ...]  # the column objects packed, to check they are still the ones
    # the columns that have examples / unseen values (most have none): read at build time
    examples: tuple[tuple[str, dict[str, list[int]]], ...]
    tops: tuple[tuple[str, dict[str, int]], ...]


def pack_columns(columns: Mapping[str, Any]) -> Pack | None:
    """The profile's row, with its columns' ``counts`` made views of it; None when a column
    cannot be packed exactly (then merges take the column-by-column path)."""
    if type(columns) is not dict:
        return None
    cols = tuple(columns.values())
    sizes = []
    counts = []
    for c in cols:
        kind = type(c)
        if kind is PresenceProfile:
            sizes.append(0)
            continue
        if kind is not NumericalProfile and kind is not CategoricalProfile:
            return None
        a = c.counts
        if not (type(a) is np.ndarray and a.ndim == 1 and a.dtype == np.int64 and a.size):
            return None
        counts.append(a)
        sizes.append(a.size)
    layout = _Layout.of(tuple(columns), tuple(map(type, cols)), tuple(sizes))
    dicts = list(map(vars, cols))
    per_column = list(zip(dicts, layout.int_fields, strict=True))
    try:
        ints = [d[f] for d, fields in per_column for f in fields]
    except KeyError:  # an object unpickled from before a field existed: class defaults
        ints = [getattr(c, f) for c, (_, fields) in zip(cols, per_column, strict=True)
                for f in fields]
    num = [cols[i] for i in layout.numerical]
    floats = [getattr(c, f) for f in _NUM_FLOATS for c in num]
    buf = bytearray(8 * layout.width)
    row = np.frombuffer(buf, dtype=np.int64)
    try:
        if counts:
            np.concatenate(counts, out=row[:layout.n_counts])
        row[layout.n_counts:layout.n_int] = ints
        row[layout.n_int:].view(np.float64)[:] = floats
    except (OverflowError, TypeError, ValueError):  # huge ints, odd values
        return None
    for c, (a, b) in zip(cols, layout.counts_at, strict=True):
        if a != b:
            object.__setattr__(c, "counts", row[a:b])
    examples = tuple((name, c.examples) for name, c in columns.items() if c.examples)
    tops = tuple((layout.names[i], cols[i].unseen_top) for i in layout.categorical
                 if cols[i].unseen_top)
    return Pack(layout, buf, cols, examples, tops)


def merge_packed(profiles: list[Any], tables: list[dict[str, Any]]
                 ) -> dict[str, Any] | None:
    """The merged columns (sorted by name) of profiles packed on one layout, else None.

    Counts and integer fields are summed exactly in int64, min/max and tail sums taken
    from the float fields, the moments combined with Chan's many-way formula (as the
    column-by-column path does); examples and unseen heavy hitters merge in order."""
    packs = list(map(attrgetter("_pack"), profiles))
    if not all(map(is_not, packs, repeat(None))):
        return None
    layout = packs[0].layout
    if not all(map(is_, map(attrgetter("layout"), packs), repeat(layout))):
        return None
    # ``columns`` is a plain dict: the row holds the column objects it had when the profile
    # was built (the same objects in the same order is checked, by identity)
    snap = map(attrgetter("columns"), packs)
    if not all(map(eq, map(tuple, map(dict.values, tables)), snap)):
        return None
    total, per_part, floats = _sum_rows(list(map(attrgetter("row"), packs)), layout)
    examples = _by_name(chain.from_iterable(map(attrgetter("examples"), packs)))
    tops = _by_name(chain.from_iterable(map(attrgetter("tops"), packs)))
    out: dict[int, Any] = {}
    totals = total.tolist()
    for i, kind in enumerate(layout.kinds):
        at = layout.ints_at[i]
        fields = kind._INT_FIELDS  # type: ignore[attr-defined]
        ints = dict(zip(fields, totals[at:at + len(fields)], strict=True))
        ex = merge_examples(examples[layout.names[i]]) if layout.names[i] in examples else {}
        a, b = layout.counts_at[i]
        if kind is PresenceProfile:
            out[i] = PresenceProfile(examples=ex, **ints)
        elif kind is CategoricalProfile:
            top = merge_heavy_hitters(tops.get(layout.names[i], []))
            out[i] = CategoricalProfile(counts=total[a:b], unseen_top=top, examples=ex, **ints)
        else:
            out[i] = ints, ex, total[a:b]
    if layout.numerical:
        k = len(layout.numerical)
        f = {name: floats[:, j * k:(j + 1) * k] for j, name in enumerate(_NUM_FLOATS)}
        with np.errstate(over="ignore", invalid="ignore"):
            mean, m2 = combine_moments(per_part, f["mean"], f["m2"])
            below, above = f["below_sum"].sum(axis=0), f["above_sum"].sum(axis=0)
            lo, hi = f["min"].min(axis=0), f["max"].max(axis=0)
        for j, i in enumerate(layout.numerical):
            ints, ex, counts = out[i]
            out[i] = NumericalProfile(
                counts=counts, min=float(lo[j]), max=float(hi[j]), mean=float(mean[j]),
                m2=float(m2[j]), below_sum=float(below[j]), above_sum=float(above[j]),
                examples=ex, **ints)
    order = sorted(range(len(layout.names)), key=layout.names.__getitem__)
    return {layout.names[i]: out[i] for i in order}


def _by_name(pairs: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for name, x in pairs:
        out.setdefault(name, []).append(x)
    return out


def _sum_rows(rows: list[bytearray], layout: _Layout
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The column sums of the rows' summed part, each row's count total per numerical
    column, and the rows' float fields (rows x fields) as float64.

    Stacked block by block (about a megabyte each) so a block is summed while in cache."""
    width, n_int, n_counts = layout.width, layout.n_int, layout.n_counts
    step = max(1, _CHUNK_BYTES // (8 * width))
    total = np.zeros(n_int, dtype=np.int64)
    parts: list[np.ndarray] = []
    tails: list[np.ndarray] = []
    numerical = bool(layout.numerical)
    for i in range(0, len(rows), step):
        chunk = rows[i:i + step]
        block = np.frombuffer(b"".join(chunk), dtype=np.int64).reshape(len(chunk), width)
        np.add(total, block[:, :n_int].sum(axis=0), out=total)
        if numerical:
            sums = np.add.reduceat(block[:, :n_counts], layout.starts, axis=1)
            parts.append(sums[:, layout.num_in_starts])
            tails.append(block[:, n_int:].copy())  # a view would keep the block alive
    if not numerical:
        empty = np.empty((len(rows), 0))
        return total, empty, empty
    return total, np.concatenate(parts), np.concatenate(tails).view(np.float64)
