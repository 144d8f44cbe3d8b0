"""Candidate slices: conditions, rounded cut points, and per-feature codes to count them on.

Why apart: a slice is only useful when its description is exactly true and readable, so the
cut points are rounded *before* membership is computed, and every candidate of a feature is a
set of that feature's codes (one per row), so the search counts slices with ``bincount``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aiwarden.engine._frame import is_stringlike, numeric_values
from aiwarden.engine._slice_inputs import OWNER, column
from aiwarden.errors import SchemaError

__all__ = ["Condition", "Feature", "build_features", "condition_mask", "describe",
           "feature_kind", "numeric_layout", "refine_cut"]


class Condition(NamedTuple):
    """One clause ``feature op value``; op is ``<``, ``>=``, ``==``, ``in`` or ``is_missing``."""

    feature: str
    op: str
    value: Any


def _roundest(lo: Any, hi: Any, target: Any, score: Any = 0.0) -> float:
    """The number with the fewest significant digits in any interval ``(lo_i, hi_i]``.

    Ties between intervals go to the highest ``score``; inside an interval, to the multiple
    nearest ``target``.
    """
    lo, hi, target, score = np.broadcast_arrays(*(np.atleast_1d(np.asarray(a, np.float64))
                                                  for a in (lo, hi, target, score)))
    with np.errstate(invalid="ignore"):  # infinite ends become finite stand-ins
        hi = np.where(np.isfinite(hi), hi, np.where(np.isfinite(lo), lo + np.abs(lo) + 1.0, 0.0))
        lo = np.where(np.isfinite(lo), lo, hi - np.abs(hi) - 1.0)
    target = np.where(np.isfinite(target), target, hi)
    valid = lo < hi
    if not valid.any():
        return float(hi[np.argmax(score)])
    top = math.floor(math.log10(float(np.max(np.abs(np.r_[lo[valid], hi[valid]]))))) + 1
    for exp in range(top, top - 20, -1):
        for mult in (10, 5, 2):
            step = mult * 10.0 ** (exp - 1)
            k_lo, k_hi = np.floor(lo / step) + 1, np.floor(hi / step)
            has = valid & (k_lo <= k_hi)
            if has.any():
                i = int(np.flatnonzero(has)[np.argmax(score[has])])
                k = np.clip(np.round(target[i] / step), k_lo[i], k_hi[i])
                value = float(f"{k * step:.12g}")
                if lo[i] < value <= hi[i]:
                    return value
    return float(hi[np.argmax(score)])


def _fmt(v: Any) -> str:
    """Shortest exact text of a value: the description must hold for the printed number."""
    if isinstance(v, float):
        text = repr(v)
        return text[:-2] if text.endswith(".0") else text
    return str(v)


def describe(conds: tuple[Condition, ...]) -> str:
    """Readable text of a slice; a ``>= a`` / ``< b`` pair on one feature reads ``a <= x < b``."""
    parts, i = [], 0
    while i < len(conds):
        c = conds[i]
        nxt = conds[i + 1] if i + 1 < len(conds) else None
        if c.op == ">=" and nxt is not None and nxt.op == "<" and nxt.feature == c.feature:
            parts.append(f"{_fmt(c.value)} <= {c.feature} < {_fmt(nxt.value)}")
            i += 2
            continue
        if c.op == "is_missing":
            parts.append(f"{c.feature} is missing")
        elif c.op == "in":
            parts.append(f"{c.feature} in {{{', '.join(_fmt(v) for v in c.value)}}}")
        else:
            parts.append(f"{c.feature} {'=' if c.op == '==' else c.op} {_fmt(c.value)}")
        i += 1
    return " and ".join(parts)


def condition_mask(arr: pa.Array, cond: Condition) -> np.ndarray:
    """Rows satisfying one condition, on the raw column (missing values never satisfy it)."""
    if cond.op == "is_missing":
        nan_is_null = pa.types.is_floating(arr.type)
        out = pc.is_null(arr, nan_is_null=nan_is_null)
    elif cond.op == "in":
        out = pc.is_in(arr, value_set=pa.array(list(cond.value)))
    else:
        fn = {"<": pc.less, ">=": pc.greater_equal, "==": pc.equal}[cond.op]
        out = fn(arr, pa.scalar(cond.value))
    return np.asarray(pc.fill_null(out, False).to_numpy(zero_copy_only=False), dtype=bool)


@dataclass
class Feature:
    """One feature's codes (one per row), slice specs and their code memberships."""

    name: str
    codes: np.ndarray
    specs: list[tuple[Condition, ...]]
    members: np.ndarray  # bool (n_specs, n_codes)
    values: np.ndarray | None = None  # numeric values, kept for refinement
    grid: np.ndarray | None = None  # numeric cut points
    refinable: bool = False


def numeric_layout(feat: Feature, new_cuts: np.ndarray | None = None) -> None:
    """Codes and memberships of a numeric feature from its grid and specs.

    With ``new_cuts`` (just added to the grid) the codes are updated instead of recomputed.
    """
    grid, x = feat.grid, feat.values
    assert grid is not None and x is not None
    if new_cuts is None:
        codes = np.searchsorted(grid, x, side="right")
    else:
        codes = feat.codes
        for cut in new_cuts:
            codes += x >= cut
    codes[np.isnan(x)] = grid.size + 1
    lower, upper = np.r_[-np.inf, grid], np.r_[grid, np.inf]
    members = np.zeros((len(feat.specs), grid.size + 2), dtype=bool)
    for i, conds in enumerate(feat.specs):
        if conds[0].op == "is_missing":
            members[i, -1] = True
            continue
        m = np.ones(grid.size + 1, dtype=bool)
        for c in conds:
            m &= {"<": upper <= c.value, ">=": lower >= c.value,
                  "==": (lower <= c.value) & (c.value < upper)}[c.op]
        members[i, :-1] = m
    feat.codes, feat.members = codes, members


def _numeric_feature(name: str, x: np.ndarray, n_bins: int) -> Feature:
    """Rounded quantile cuts, or one code per value when there are at most ``n_bins``."""
    xs = np.sort(x[~np.isnan(x)])
    new = np.r_[True, xs[1:] != xs[:-1]] if xs.size else np.zeros(0, dtype=bool)
    specs: list[tuple[Condition, ...]] = []
    discrete = int(new.sum()) <= n_bins
    if discrete:
        uniq = xs[new]
        grid = np.array([_roundest(a, b, b) for a, b in pairwise(uniq)])
        if uniq.size > 1:
            specs += [(Condition(name, "==", float(u)),) for u in uniq]
        specs += [(Condition(name, "<", float(t)),) for t in grid[1:]]
        specs += [(Condition(name, ">=", float(t)),) for t in grid[:-1]]
    else:
        fin = xs[np.isfinite(xs)]
        q = np.unique(fin[(np.arange(1, n_bins) * fin.size) // n_bins])
        pts = np.r_[fin[0], q, fin[-1]]
        mids = (pts[:-1] + pts[1:]) / 2
        grid = np.unique([_roundest(mids[i], mids[i + 1], q[i]) for i in range(q.size)])
        specs += [(Condition(name, "<", float(t)),) for t in grid]
        specs += [(Condition(name, ">=", float(t)),) for t in grid]
        specs += [(Condition(name, ">=", float(a)), Condition(name, "<", float(b)))
                  for a, b in pairwise(grid)]
    if xs.size < x.size:
        specs.append((Condition(name, "is_missing", None),))
    feat = Feature(name, np.zeros(0, np.intp), specs, np.zeros((0, 0), bool), x,
                    np.asarray(grid, dtype=np.float64), refinable=not discrete)
    numeric_layout(feat)
    return feat


def _categorical_feature(name: str, arr: pa.Array, keep: np.ndarray, max_categories: int,
                         min_support: int) -> Feature:
    """One code per frequent category, one for the pooled rest, one for missing."""
    enc = pc.dictionary_encode(arr)
    raw = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.intp)[keep]
    labels = enc.dictionary.to_pylist()
    counts = np.bincount(raw[raw >= 0], minlength=len(labels))
    order = np.argsort(-counts, kind="stable")
    kept = [int(c) for c in order[:max_categories] if counts[c] >= min_support]
    rare = [int(c) for c in order[len(kept):] if counts[c] > 0]
    m = len(kept)
    lut = np.full(len(labels), m, dtype=np.intp)
    lut[kept] = np.arange(m)
    codes = np.where(raw < 0, m + 1, lut[np.maximum(raw, 0)] if len(labels) else m)
    specs = [(Condition(name, "==", labels[c]),) for c in kept]
    rows = list(range(m))
    if rare and len(rare) <= max_categories:
        specs.append((Condition(name, "in", tuple(labels[c] for c in rare)),))
        rows.append(m)
    if (raw < 0).any():
        specs.append((Condition(name, "is_missing", None),))
        rows.append(m + 1)
    members = np.zeros((len(specs), m + 2), dtype=bool)
    members[np.arange(len(specs)), rows] = True
    return Feature(name, codes.astype(np.intp), specs, members)


def refine_cut(x: np.ndarray, loss: np.ndarray, window: tuple[float, float], overall: float,
                sigma: float, prefix: bool, z: float = 2.0) -> float | None:
    """Roundest cut in the window whose excess is within ``z`` s.e. of the best cut's.

    The s.e. of the excess between two cuts is ``sigma * sqrt(rows between them)``. With one
    s.e., a single chance error just past a true boundary (``amount < 10``) moved the cut to
    the next round number beyond it (``amount < 12``); two s.e. (a 95 % band) keep the cut at
    the boundary the data supports. The cut itself always lies in a gap between observed
    values, so the description is exactly true of the rows.
    """
    inside = (x >= window[0]) & (x < window[1])
    xw, lw = x[inside], loss[inside]
    order = np.argsort(xw, kind="stable")
    xw, lw = xw[order], lw[order]
    starts = np.flatnonzero(np.r_[True, xw[1:] != xw[:-1]]) if xw.size else np.zeros(0, int)
    if starts.size < 3:
        return None
    v = xw[starts]
    gain = np.r_[0.0, np.cumsum(np.add.reduceat(lw - overall, starts))]
    ncum = np.r_[0, np.cumsum(np.diff(np.r_[starts, xw.size]))]
    g = gain if prefix else -gain
    k = np.arange(1, v.size)  # split k: the k smallest values are below the cut (v[k-1], v[k]]
    best = 1 + int(np.argmax(g[k]))
    near = k[g[best] - g[k] <= z * sigma * np.sqrt(np.abs(ncum[k] - ncum[best]))]
    return _roundest(v[near - 1], v[near], v[near - 1], g[near])


def feature_kind(t: pa.DataType) -> str | None:
    """``numeric``, ``categorical`` or None (not sliceable) for an Arrow type."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return "numeric"
    if pa.types.is_boolean(t) or is_stringlike(t):
        return "categorical"
    return None


def build_features(table: pa.Table, names: list[str], keep: np.ndarray, n_bins: int,
                   max_categories: int, min_support: int) -> list[Feature]:
    """The candidates of every feature in ``names``, on the evaluated rows ``keep``."""
    feats: list[Feature] = []
    for name in names:
        arr = column(table, name, OWNER)
        kind = feature_kind(arr.type)
        if kind is None:
            raise SchemaError(f"Column {name!r} has type {arr.type}; slices need numeric, "
                              "boolean or string features.", column=name)
        if kind == "numeric":
            feats.append(_numeric_feature(name, numeric_values(arr).raw[keep], n_bins))
        else:
            feats.append(_categorical_feature(name, arr, keep, max_categories, min_support))
    return feats
