"""Performance and CBPE accumulators of stored partials, merged before they are decoded.

A year of day partials is 365 accumulators per window; building each as an engine object
(``from_dict``: class validation, a dozen small arrays) was half of a cold one-year query.
Here a stored accumulator stays the dict it was stored as (:class:`Stored`) until someone
reads it, windows merge those dicts with a few numpy calls, and only the window's merge is
decoded, once. The classification kinds store their score histograms sparsely (the flat
index of each non-empty cell and its values); they merge exactly as the engine's own merge
does: counts and sums add in part order, minima and maxima take the extreme, a scalar
float is a left fold. Other kinds (regression) are decoded and merged by the engine.

The large lists travel as raw arrays beside a partial's JSON header (:func:`lift`), so
decoding them is ``np.frombuffer`` rather than parsing decimal text; partials stored with
the lists inside the JSON read the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce
from operator import add
from typing import Any

import numpy as np

from aiwarden.engine._accumulators import estimated_from_dict, performance_from_dict
from aiwarden.engine.profile import merge_many

__all__ = ["Stored", "as_dict", "lift", "merge_accumulators", "resolve", "stored_estimated",
           "stored_performance"]

# kind -> (key every part must share, sparse index key -> {value key: how it merges})
_SPARSE: dict[str, dict[str, dict[str, str]]] = {
    "ClassificationStats": {"score_cells": {"score_counts": "sum", "score_min": "min",
                                            "score_max": "max"}},
    "ExpectedClassificationStats": {"hist_cells": {"hist_count": "sum", "hist_p": "sum",
                                                   "hist_p2": "sum"}},
}
_SAME = ("kind", "classes", "n_score_bins")
_REF = "$a"  # {"$a": i}: the i-th array beside the header


class Stored:
    """An accumulator as stored: its dict (``kind`` included), decoded on first use."""

    __slots__ = ("d", "decode")

    def __init__(self, d: dict[str, Any], decode: Callable[[Any], Any]) -> None:
        self.d, self.decode = d, decode

    def value(self) -> Any:
        return self.decode(self.d)

    def to_dict(self) -> dict[str, Any]:
        return self.d

    @property
    def nbytes(self) -> int:
        return sum(v.nbytes for v in self.d.values() if isinstance(v, np.ndarray))


def stored_performance(d: dict[str, Any] | None) -> Stored | None:
    return None if d is None else Stored(d, performance_from_dict)


def stored_estimated(d: dict[str, Any] | None) -> Stored | None:
    return None if d is None else Stored(d, estimated_from_dict)


def merge_accumulators(items: list[Any]) -> Any:
    """The merge of ``items`` (engine objects, :class:`Stored`, or None), as
    :func:`~aiwarden.engine.profile.merge_many` gives it; stored ones merge undecoded."""
    present = [x for x in items if x is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    if all(type(x) is Stored for x in present):
        merged = _merge_dicts([x.d for x in present])
        if merged is not None:
            return Stored(merged, present[0].decode)
    return merge_many([x.value() if type(x) is Stored else x for x in present])


def _merge_dicts(ds: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The stored form of the merge, or None when the engine must decide (another kind,
    parts of other classes or bins: its merge names the mismatch)."""
    first = ds[0]
    sparse = _SPARSE.get(first.get("kind"))  # type: ignore[arg-type]
    if sparse is None or any(d.keys() != first.keys() for d in ds):
        return None
    if any(d[k] != first[k] for d in ds[1:] for k in _SAME):
        return None
    out: dict[str, Any] = {k: first[k] for k in _SAME}
    done = set(_SAME)
    for index_key, values in sparse.items():
        flat = np.concatenate([np.asarray(d[index_key], np.int64) for d in ds])
        # cells are flat indices into a small histogram: scatter into it densely, in part
        # order, then keep the cells some part held (sorted, as the engine stores them)
        size = int(flat.max()) + 1 if flat.size else 0
        if flat.size and flat.min() < 0:
            return None
        held = np.flatnonzero(np.bincount(flat, minlength=size))
        out[index_key] = held
        for key, how in values.items():
            vals = np.concatenate([np.asarray(d[key]) for d in ds])
            if how == "sum":  # in part order, from zero: what adding dense arrays does
                dtype = np.int64 if vals.dtype.kind in "iub" else np.float64
                acc = np.zeros(size, dtype)
                np.add.at(acc, flat, vals.astype(dtype, copy=False))
                if dtype is np.int64 and not acc[held].all():
                    return None  # a cell netted to zero: the engine drops it, so decide there
            else:
                acc = np.full(size, np.inf if how == "min" else -np.inf)
                (np.minimum if how == "min" else np.maximum).at(
                    acc, flat, vals.astype(np.float64, copy=False))
            out[key] = acc[held]
        done |= {index_key, *values}
    for key in first.keys() - done:
        vals = [d[key] for d in ds]
        if isinstance(vals[0], int | np.integer):
            out[key] = int(sum(vals))
        elif isinstance(vals[0], float):
            out[key] = float(reduce(add, vals))  # left fold, as pairwise merges add
        else:  # dense arrays: one sum along the parts' axis, row after row
            out[key] = np.sum([np.asarray(v) for v in vals], axis=0)
    return out


def lift(d: dict[str, Any] | None, arrays: list[np.ndarray]) -> dict[str, Any] | None:
    """``d`` with its sparse histogram lists moved to ``arrays`` (replaced by references):
    raw bytes beside the JSON header instead of decimal text inside it."""
    if d is None or d.get("kind") not in _SPARSE:
        return d
    out = dict(d)
    for index_key, values in _SPARSE[d["kind"]].items():
        for key in (index_key, *values):
            if key in out:
                out[key] = {_REF: len(arrays)}
                arrays.append(np.asarray(d[key]))
    return out


def resolve(d: dict[str, Any] | None, arrays: list[np.ndarray]) -> dict[str, Any] | None:
    """``d`` with array references replaced by the arrays read beside the header."""
    if d is None:
        return None
    for k, v in d.items():
        if type(v) is dict and _REF in v:
            d[k] = arrays[v[_REF]]
    return d


def as_dict(acc: Any, kind: bool) -> dict[str, Any] | None:
    """The stored form of an accumulator, whichever form it is held in (``kind``: with its
    class name first, as realised performance is stored)."""
    if acc is None:
        return None
    if type(acc) is Stored:
        return acc.d
    return {"kind": type(acc).__name__, **acc.to_dict()} if kind else acc.to_dict()
