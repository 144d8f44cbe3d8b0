"""Failing slices: readable groups of rows where a model is significantly worse than overall.

Why: an overall error rate hides the customers a model fails. This module searches simple
slices -- one feature range or category, and pairs of them -- and reports only those whose
metric is worse than the rest of the rows with statistical significance and enough support,
ranked by what they cost, so a handful of unlucky rows never wins.

How
---
* **Loss per row.** ``errors`` (0/1 for ``error_rate``, any number for ``abs_error``), or
  ``y_true`` and ``y_pred``: ``error_rate`` is ``y_true != y_pred``, ``abs_error`` is
  ``|y_true - y_pred|``; ``false_positive_rate`` keeps the true negatives only (loss: predicted
  ``pos_label``), ``false_negative_rate`` the true positives only (loss: not predicted).
  Rows whose label, prediction or error is missing are not evaluated.
* **Candidates.** Numeric features are cut at quantiles (``n_bins``); each cut moves to the
  roundest number half-way towards its neighbours ("10" rather than "9.87"). The cuts give
  one-sided ranges ``x < t`` / ``x >= t`` and bins ``a <= x < b`` (``x = v`` when the feature
  has at most ``n_bins`` distinct values). The best significant range on each side is then
  *refined* on the rows between the neighbouring cuts: a cumulative sum finds the cut with the
  largest excess loss, and the roundest cut whose excess stays within one standard error of
  that maximum is kept. Categorical and boolean features give one slice per frequent category
  (at most ``max_categories`` with ``min_support`` rows) and one for the pooled rest; missing
  values are a slice of their own. Pairs intersect the ``n_pair_parents`` most promising
  single slices of two different features. Each slice is a set of per-feature codes, so every
  count is a ``bincount`` on codes (on joint codes for pairs): no Python loop over rows.
  Descriptions are exactly true: membership is computed from the printed cut points.
* **Test.** One-sided, slice against the rest of the evaluated rows: Fisher's exact test
  (hypergeometric tail) for rates, Welch's t-test for ``abs_error``. Confidence intervals
  (level ``1 - alpha``): Clopper-Pearson for rates, Student t for means.
* **Multiple testing.** Benjamini-Hochberg (default: false discovery rate ``alpha``; the
  nested candidates are positively dependent, where it holds) or Bonferroni (family-wise
  ``alpha``), over one family: every single slice with at least ``min_support`` rows *and every
  pair* of them on two different features. Pairs that were not computed (their parents were not
  among the most promising) enter with p = 1, so choosing the parents on the same data does not
  inflate significance. ``n_candidates_tested`` is the size of that family.
* **Rank** by excess loss ``support * (slice metric - overall metric)``: the errors that would
  vanish if the slice did as well as the model overall. It is largest exactly at the boundary of
  a failing region (adding rows better than average lowers it) and small for tiny groups,
  however bad their rate.
* **Redundancy.** A pair is kept only when it is significantly worse than *each* of its
  parents (tested inside the parent, corrected over the same family). The report is then built
  greedily from the ``shortlist`` significant candidates of largest excess: each step takes the
  one adding the most excess loss on rows no earlier slice covers (``marginal_excess``,
  against the mean loss of the uncovered rows); a slice sharing rows with earlier ones must
  still be worse on its uncovered rows than the other uncovered rows, at the Bonferroni level
  ``alpha / n_candidates_tested``. Nested and near-duplicate ranges, and the parents of a
  reported pair, are therefore reported once.

Limits: an interaction where neither single slice is worse than average is not searched; a
refined cut is chosen on the data it is then tested on (a small optimistic bias, kept in check
by refining only ranges that were significant before refinement); the greedy order is not
guaranteed to be the best set of ``top_k`` slices.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from itertools import combinations, pairwise
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy import stats

from aiwarden.engine._class_encoding import encode_labels
from aiwarden.engine._frame import numeric_values, to_table
from aiwarden.errors import DataError, ParameterError, SchemaError, check_param

__all__ = ["Condition", "Slice", "SliceReport", "find_failing_slices"]

Metric = Literal["error_rate", "false_positive_rate", "false_negative_rate", "abs_error"]
_METRICS = ("error_rate", "false_positive_rate", "false_negative_rate", "abs_error")
_OWNER = "find_failing_slices"


class Condition(NamedTuple):
    """One clause ``feature op value``; op is ``<``, ``>=``, ``==``, ``in`` or ``is_missing``."""

    feature: str
    op: str
    value: Any


@dataclass(frozen=True)
class Slice:
    """A reported slice; statistics are over its evaluated rows.

    ``excess = support * difference``; ``marginal_excess`` is the excess on rows no earlier
    slice of the report covers. ``p_value`` is one-sided against the other rows, and
    ``adjusted_p_value`` corrected over the search. ``lift`` is NaN when the overall metric is
    not positive.
    """

    description: str
    conditions: tuple[Condition, ...]
    support: int
    support_share: float
    metric_value: float
    rest_value: float
    overall_value: float
    difference: float
    lift: float
    excess: float
    marginal_excess: float
    p_value: float
    adjusted_p_value: float
    ci_low: float
    ci_high: float

    @property
    def features(self) -> tuple[str, ...]:
        """Distinct features the slice conditions on, in order."""
        return tuple(dict.fromkeys(c.feature for c in self.conditions))

    def mask(self, data: Any) -> np.ndarray:
        """Rows of ``data`` (any supported table) that satisfy every condition."""
        table = to_table(data)
        out = np.ones(table.num_rows, dtype=bool)
        for cond in self.conditions:
            out &= _condition_mask(_column(table, cond.feature, "Slice.mask"), cond)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict; conditions as ``[feature, op, value]`` lists."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["conditions"] = [
            [c.feature, c.op, list(c.value) if isinstance(c.value, tuple) else c.value]
            for c in self.conditions
        ]
        return out


@dataclass(frozen=True)
class SliceReport:
    """Slices in the order the greedy cover took them (largest uncovered excess first).

    ``n_rows`` counts all rows, ``n_evaluated`` the rows the metric is defined on.
    """

    metric: str
    overall_value: float
    n_rows: int
    n_evaluated: int
    n_candidates_tested: int
    min_support: int
    alpha: float
    correction: str
    slices: tuple[Slice, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (``lift`` may be NaN, see :class:`Slice`)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["slices"] = [s.to_dict() for s in self.slices]
        return out

    def to_pandas(self) -> pd.DataFrame:
        """One row per slice, same columns as :meth:`Slice.to_dict` (also when empty)."""
        columns = [f.name for f in fields(Slice)]
        return pd.DataFrame([s.to_dict() for s in self.slices], columns=columns)


# ----------------------------------------------------------------------------- inputs


def _column(table: pa.Table, name: str, owner: str) -> pa.Array:
    """One column as a single plain Arrow array; a missing column is a SchemaError naming it."""
    if name not in table.column_names:
        raise SchemaError(
            f"Column {name!r} requested by {owner} is not in the data "
            f"(columns: {table.column_names[:20]}).", column=name)
    col = table.column(name)
    arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return arr.dictionary_decode() if pa.types.is_dictionary(arr.type) else arr


def _vector(value: Any, table: pa.Table, param: str) -> tuple[pa.Array, str]:
    """A label/error argument (column name or array-like) as an Arrow array of the right length."""
    if isinstance(value, str):
        arr, label = _column(table, value, _OWNER), value
    else:
        label = param
        if hasattr(value, "to_arrow"):  # polars Series
            value = value.to_arrow()
        if isinstance(value, pa.ChunkedArray):
            value = value.combine_chunks()
        try:
            arr = value if isinstance(value, pa.Array) else pa.array(value, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
            raise DataError(f"{param!r} cannot be read as one value per row: {exc}",
                            column=param) from exc
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
    if len(arr) != table.num_rows:
        raise DataError(f"{label!r} has {len(arr)} values but the data has {table.num_rows} "
                        "rows.", column=label)
    return arr, label


def _numbers(arr: pa.Array, label: str) -> np.ndarray:
    """Float values (NaN where missing); text or other types are a DataError, not coerced."""
    col = numeric_values(arr)
    if col.invalid or not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)
                           or pa.types.is_boolean(arr.type) or pa.types.is_null(arr.type)):
        raise DataError(f"Column {label!r} must hold numbers for this metric. Got values of type "
                        f"{arr.type}.", column=label)
    return col.raw


def _labels(y_true: pa.Array, y_pred: pa.Array, names: tuple[str, str]
            ) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """Both label columns as codes into their joint classes (-1 where missing)."""
    classes: dict[Any, None] = {}
    for arr in (y_true, y_pred):
        for v in pc.unique(arr).to_pylist():
            if v is not None and not (isinstance(v, float) and math.isnan(v)):
                classes.setdefault(v, None)
    cls = list(classes)
    codes = [encode_labels(a.to_numpy(zero_copy_only=False), tuple(cls), n)
             for a, n in zip((y_true, y_pred), names, strict=True)]
    return codes[0], codes[1], cls


def _loss(metric: str, table: pa.Table, errors: Any, y_true: Any, y_pred: Any,
          pos_label: Any) -> tuple[np.ndarray, np.ndarray]:
    """(loss per row, rows evaluated by the metric)."""
    if errors is not None:
        if y_true is not None or y_pred is not None:
            raise ParameterError(f"Give {_OWNER} either 'errors' or 'y_true' and 'y_pred', "
                                 "not both.")
        check_param(metric in ("error_rate", "abs_error"), "metric", _OWNER,
                    "'error_rate' or 'abs_error' when 'errors' is given (rates per class "
                    "need y_true and y_pred)", metric)
        arr, label = _vector(errors, table, "errors")
        loss = _numbers(arr, label)
        keep = ~np.isnan(loss)
        if np.isinf(loss).any():
            raise DataError(f"Column {label!r} holds infinite errors.", column=label)
        if metric == "error_rate" and not np.isin(loss[keep], (0.0, 1.0)).all():
            raise DataError(f"Column {label!r} must hold 0/1 or bool errors for "
                            "metric='error_rate'; use metric='abs_error' for other losses.",
                            column=label)
    else:
        if y_true is None or y_pred is None:
            raise ParameterError(f"{_OWNER} needs 'errors' or both 'y_true' and 'y_pred'.")
        (t, t_label), (p, p_label) = _vector(y_true, table, "y_true"), _vector(y_pred, table,
                                                                                "y_pred")
        if metric == "abs_error":
            loss = np.abs(_numbers(t, t_label) - _numbers(p, p_label))
            keep = np.isfinite(loss)
        else:
            tc, pcodes, cls = _labels(t, p, (t_label, p_label))
            keep = (tc >= 0) & (pcodes >= 0)
            loss = (tc != pcodes).astype(np.float64)
            if metric != "error_rate":
                if len(cls) > 2:
                    raise DataError(f"{metric} needs binary labels; {t_label!r} and {p_label!r} "
                                    f"hold {len(cls)} classes.", column=t_label)
                pos = next((i for i, c in enumerate(cls) if c == pos_label), -2)
                positive = metric == "false_negative_rate"
                keep &= (tc == pos) if positive else (tc != pos)
                loss = ((pcodes != pos) if positive else (pcodes == pos)).astype(np.float64)
                if not keep.any():
                    kind = "positive" if positive else "negative"
                    raise DataError(f"No {kind} labels (pos_label={pos_label!r}) in {t_label!r}: "
                                    f"{metric} is undefined.", column=t_label)
        label = t_label
    if not keep.any():
        raise DataError(f"No labels: every row of {label!r} is missing, so no row can be "
                        "evaluated.", column=label)
    return loss, keep


# ----------------------------------------------------------------------------- candidates


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


def _describe(conds: tuple[Condition, ...]) -> str:
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


def _condition_mask(arr: pa.Array, cond: Condition) -> np.ndarray:
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
class _Feature:
    """One feature's codes (one per row), slice specs and their code memberships."""

    name: str
    codes: np.ndarray
    specs: list[tuple[Condition, ...]]
    members: np.ndarray  # bool (n_specs, n_codes)
    values: np.ndarray | None = None  # numeric values, kept for refinement
    grid: np.ndarray | None = None  # numeric cut points
    refinable: bool = False


def _numeric_layout(feat: _Feature, new_cuts: np.ndarray | None = None) -> None:
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


def _numeric_feature(name: str, x: np.ndarray, n_bins: int) -> _Feature:
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
    feat = _Feature(name, np.zeros(0, np.intp), specs, np.zeros((0, 0), bool), x,
                    np.asarray(grid, dtype=np.float64), refinable=not discrete)
    _numeric_layout(feat)
    return feat


def _categorical_feature(name: str, arr: pa.Array, keep: np.ndarray, max_categories: int,
                         min_support: int) -> _Feature:
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
    return _Feature(name, codes.astype(np.intp), specs, members)


def _refine_cut(x: np.ndarray, loss: np.ndarray, window: tuple[float, float], overall: float,
                sigma: float, prefix: bool) -> float | None:
    """Roundest cut in the window whose excess is within one s.e. of the best cut's.

    The s.e. of the excess between two cuts is ``sigma * sqrt(rows between them)``.
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
    near = k[g[best] - g[k] <= sigma * np.sqrt(np.abs(ncum[k] - ncum[best]))]
    return _roundest(v[near - 1], v[near], v[near - 1], g[near])


# ----------------------------------------------------------------------------- statistics


def _p_worse(n: np.ndarray, s1: np.ndarray, s2: np.ndarray, big_n: np.ndarray,
             big_s1: np.ndarray, big_s2: np.ndarray, binary: bool, centre: float) -> np.ndarray:
    """One-sided p-value that the slice's mean loss exceeds the rest's (rest = total - slice)."""
    n, big_n = np.asarray(n, np.float64), np.broadcast_to(np.asarray(big_n, np.float64), n.shape)
    rest = big_n - n
    p = np.ones(n.shape)
    if binary:
        ok = (n > 0) & (rest > 0)
        k, big_k = np.rint(s1), np.rint(np.broadcast_to(big_s1, n.shape))
        p[ok] = stats.hypergeom.sf(k[ok] - 1, big_n[ok], big_k[ok], n[ok])
        return np.clip(p, 0.0, 1.0)
    ok = (n > 1) & (rest > 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        m1, m2 = s1 / n, (big_s1 - s1) / rest
        v1 = np.maximum(s2 - n * (m1 - centre) ** 2, 0.0) / (n - 1) / n
        v2 = np.maximum(big_s2 - s2 - rest * (m2 - centre) ** 2, 0.0) / (rest - 1) / rest
        se2 = v1 + v2
        df = se2**2 / (v1**2 / (n - 1) + v2**2 / (rest - 1))
        tstat = (m1 - m2) / np.sqrt(se2)
    flat = ok & (se2 <= 0)
    p[flat] = np.where(m1[flat] > m2[flat], 0.0, 1.0)
    ok &= se2 > 0
    p[ok] = stats.t.sf(tstat[ok], df[ok])
    return p


def _adjust(p: np.ndarray, correction: str, untested: int = 0) -> np.ndarray:
    """Adjusted p-values; ``untested`` more hypotheses of the family count as p = 1."""
    if p.size == 0:
        return p
    if correction == "bonferroni":
        return np.minimum(p * (p.size + untested), 1.0)
    return stats.false_discovery_control(np.r_[p, np.ones(untested)], method="bh")[: p.size]


def _interval(n: float, s1: float, s2: float, binary: bool, alpha: float, centre: float
              ) -> tuple[float, float]:
    """Two-sided ``1 - alpha`` interval: Clopper-Pearson for rates, Student t for means."""
    if binary:
        k = round(s1)
        lo = stats.beta.ppf(alpha / 2, k, n - k + 1) if k > 0 else 0.0
        hi = stats.beta.ppf(1 - alpha / 2, k + 1, n - k) if k < n else 1.0
        return float(lo), float(hi)
    mean = s1 / n
    if n < 2:
        return float("nan"), float("nan")
    se = math.sqrt(max(s2 - n * (mean - centre) ** 2, 0.0) / (n - 1) / n)
    half = float(stats.t.ppf(1 - alpha / 2, n - 1)) * se
    return mean - half, mean + half


# ----------------------------------------------------------------------------- search


def _check(metric: str, top_k: int, max_order: int, min_support: float, alpha: float,
           correction: str, n_bins: int, max_categories: int, n_pair_parents: int,
           shortlist: int) -> None:
    """Every parameter checked up front, in the house template."""

    def is_int(v: Any) -> bool:
        return isinstance(v, int | np.integer) and not isinstance(v, bool)

    check_param(metric in _METRICS, "metric", _OWNER, f"one of {_METRICS}", metric)
    check_param(is_int(top_k) and top_k >= 1, "top_k", _OWNER, "an int >= 1", top_k)
    check_param(is_int(max_order) and max_order in (1, 2), "max_order", _OWNER, "1 or 2",
                max_order)
    check_param((is_int(min_support) and min_support >= 1) or (
        isinstance(min_support, float) and 0.0 < min_support < 1.0), "min_support", _OWNER,
        "an int >= 1 (rows) or a float in (0, 1) (share of rows)", min_support)
    check_param(isinstance(alpha, float | int) and not isinstance(alpha, bool) and 0 < alpha < 1,
                "alpha", _OWNER, "a float in (0, 1)", alpha)
    check_param(correction in ("bh", "bonferroni"), "correction", _OWNER,
                "'bh' or 'bonferroni'", correction)
    check_param(is_int(n_bins) and 2 <= n_bins <= 1000, "n_bins", _OWNER,
                "an int in [2, 1000]", n_bins)
    for name, value, low in (("max_categories", max_categories, 1),
                             ("n_pair_parents", n_pair_parents, 2), ("shortlist", shortlist, 1)):
        check_param(is_int(value) and value >= low, name, _OWNER, f"an int >= {low}", value)


def _kind(t: pa.DataType) -> str | None:
    """``numeric``, ``categorical`` or None (not sliceable) for an Arrow type."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return "numeric"
    if (pa.types.is_boolean(t) or pa.types.is_string(t) or pa.types.is_large_string(t)
            or pa.types.is_string_view(t)):
        return "categorical"
    return None


class _Search:
    """Candidates of one search: per-candidate (support, loss sum, squared deviations)."""

    def __init__(self, loss: np.ndarray, feats: list[_Feature], binary: bool, minsup: int,
                 alpha: float, correction: str) -> None:
        self.loss, self.feats, self.binary = loss, feats, binary
        self.minsup, self.alpha, self.correction = minsup, alpha, correction
        self.overall = float(loss.mean())
        self.dev2 = None if binary else (loss - self.overall) ** 2
        self.totals = (float(loss.size), float(loss.sum()),
                       0.0 if self.dev2 is None else float(self.dev2.sum()))
        self.singles()

    def singles(self) -> None:
        """(Re)build the single-slice candidates from the features' current specs."""
        self.index = [(fi, r) for fi, f in enumerate(self.feats) for r in range(len(f.specs))]
        self.parents: list[tuple[int, int]] = []
        self.masks: dict[int, np.ndarray] = {}
        self.pair_space = 0
        self.sums = self.sums_in(np.arange(len(self.index)), None, self.weights)

    @property
    def weights(self) -> list[np.ndarray | None]:
        """Row weights of the three sums: count (None), loss, squared deviation."""
        return [None, self.loss, self.dev2]

    @property
    def excess(self) -> np.ndarray:
        """Excess loss of every candidate: support * (mean loss - overall mean loss)."""
        return self.sums[1] - self.overall * self.sums[0]

    def p_worse(self, sums: np.ndarray, within: Any = None) -> np.ndarray:
        """p-values against the other rows of ``within`` (default: all evaluated rows)."""
        return _p_worse(sums[0], sums[1], sums[2], *(within or self.totals), self.binary,
                        self.overall)

    def score(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(tested, p-value, adjusted p-value) of every candidate against the other rows."""
        n = self.sums[0]
        tested = (n >= self.minsup) & (n < self.totals[0])
        p, adj = np.ones(n.size), np.ones(n.size)
        p[tested] = self.p_worse(self.sums[:, tested])
        adj[tested] = _adjust(p[tested], self.correction, self.untested_pairs(tested))
        return tested, p, adj

    def untested_pairs(self, tested: np.ndarray) -> int:
        """Pairs of the search space (tested singles of two features) not computed."""
        if self.pair_space == 0:
            return 0
        return self.pair_space - int(tested[len(self.index):].sum())

    def refine(self) -> None:
        """Refine the best significant ``<`` and ``>=`` cut of each continuous feature."""
        tested, _, adj = self.score()
        excess = self.excess
        good = np.flatnonzero(tested & (adj <= self.alpha) & (excess > 0))
        done: set[tuple[int, str]] = set()
        sigma = float(self.loss.std())
        for i in good[np.argsort(-excess[good], kind="stable")]:
            fi, r = self.index[i]
            f, spec = self.feats[fi], self.feats[fi].specs[r]
            if not f.refinable or len(spec) != 1 or spec[0].op not in ("<", ">=") or (
                    fi, spec[0].op) in done:
                continue
            done.add((fi, spec[0].op))
            assert f.grid is not None and f.values is not None
            j = int(np.searchsorted(f.grid, spec[0].value))
            window = (f.grid[j - 1] if j > 0 else -np.inf,
                      f.grid[j + 1] if j + 1 < f.grid.size else np.inf)
            cut = _refine_cut(f.values, self.loss, window, self.overall, sigma, spec[0].op == "<")
            if cut is not None:
                f.specs[r] = (Condition(f.name, spec[0].op, cut),)
        for fi in {fi for fi, _ in done}:
            f = self.feats[fi]
            f.specs = list(dict.fromkeys(f.specs))
            cuts = np.array([c.value for s in f.specs for c in s if c.op in ("<", ">=")])
            assert f.grid is not None
            new_cuts = np.setdiff1d(cuts, f.grid)
            f.grid = np.union1d(f.grid, cuts).astype(np.float64)
            _numeric_layout(f, new_cuts)
        if done:
            self.singles()

    def add_pairs(self, n_parents: int) -> None:
        """Intersect the best single slices (at most a quarter from one feature) pairwise."""
        excess, n = self.excess, self.sums[0]
        tested = (n >= self.minsup) & (n < self.totals[0])
        per_feature = np.bincount([fi for fi, _ in self.index], tested,
                                  minlength=len(self.feats))
        self.pair_space = int((per_feature.sum() ** 2 - (per_feature**2).sum()) // 2)
        ok = tested & (excess > 0)
        taken: dict[int, list[int]] = {}
        count = 0
        for i in np.argsort(-excess, kind="stable"):
            if count == n_parents or excess[i] <= 0:
                break
            if not ok[i]:
                continue
            bucket = taken.setdefault(self.index[i][0], [])
            if len(bucket) < max(1, n_parents // 4):
                bucket.append(int(i))
                count += 1
        for fa, fb in combinations(sorted(taken), 2):
            self.parents += [(ia, ib) for ia in taken[fa] for ib in taken[fb]]
        pairs = np.arange(len(self.index), len(self.index) + len(self.parents))
        self.sums = np.concatenate([self.sums, self.sums_in(pairs, None, self.weights)], axis=1)

    def eligible(self, tested: np.ndarray, adj: np.ndarray) -> np.ndarray:
        """Significant, worse, and (pairs) significantly worse than each parent too, the
        within-parent tests corrected over the same family as the global ones."""
        ok = tested & (adj <= self.alpha) & (self.excess > 0)
        if self.parents:
            pi = np.arange(len(self.index), self.sums.shape[1])
            within = np.maximum(*(self.p_worse(self.sums[:, pi], tuple(self.sums[:, q]))
                                  for q in np.array(self.parents).T))
            passed, family = np.zeros(pi.size, dtype=bool), tested[pi]
            passed[family] = _adjust(within[family], self.correction,
                                     self.untested_pairs(tested)) <= self.alpha
            ok[pi] &= passed
        return ok

    def conditions(self, i: int) -> tuple[Condition, ...]:
        """The conditions of candidate ``i`` (a pair: its parents' conditions)."""
        if i < len(self.index):
            fi, r = self.index[i]
            return self.feats[fi].specs[r]
        ia, ib = self.parents[i - len(self.index)]
        return self.conditions(ia) + self.conditions(ib)

    def mask(self, i: int) -> np.ndarray:
        """Row mask of candidate ``i`` from its codes (cached: only taken slices need one)."""
        if i not in self.masks:
            if i < len(self.index):
                fi, r = self.index[i]
                self.masks[i] = self.feats[fi].members[r][self.feats[fi].codes]
            else:
                ia, ib = self.parents[i - len(self.index)]
                self.masks[i] = self.mask(ia) & self.mask(ib)
        return self.masks[i]

    def select(self, eligible: np.ndarray, top_k: int, shortlist: int, n_tested: int
               ) -> list[tuple[int, float]]:
        """Greedy cover: (candidate, marginal excess) in the order they were taken.

        Each step takes, among the ``shortlist`` eligible candidates of largest excess, the one
        adding the most excess loss on rows no earlier slice covers. A candidate sharing rows
        with earlier slices must, on its remaining rows, still be worse than the other
        uncovered rows at the Bonferroni level ``alpha / n_tested``; so nested, overlapping and
        explained-away slices drop out.
        """
        n_cond = np.array([len(self.conditions(i)) for i in range(self.sums.shape[1])])
        order = np.lexsort((-self.sums[0], n_cond, -self.excess))
        cand = order[eligible[order]][:shortlist]
        resid = self.sums[:, cand].copy()
        total = np.array(self.totals)
        alive = np.ones(cand.size, dtype=bool)
        uncovered = np.ones(self.loss.size, dtype=bool)
        chosen: list[tuple[int, float]] = []
        while len(chosen) < top_k:
            gain = resid[1] - total[1] / total[0] * resid[0]
            ok = alive & (resid[0] >= self.minsup) & (resid[0] < total[0]) & (gain > 0)
            shared = ok & (resid[0] < self.sums[0][cand])
            if shared.any():
                p = _p_worse(*resid[:, shared], *total, self.binary, self.overall)
                ok[shared] = p <= self.alpha / n_tested
            if not ok.any():
                break
            k = int(np.flatnonzero(ok)[np.argmax(gain[ok])])
            chosen.append((int(cand[k]), float(gain[k])))
            alive[k] = False
            newly = np.flatnonzero(self.mask(int(cand[k])) & uncovered)
            uncovered[newly] = False
            w = [None if x is None else x[newly] for x in self.weights]
            total -= [newly.size, *(0.0 if x is None else x.sum() for x in w[1:])]
            rest = np.flatnonzero(alive)
            resid[:, rest] -= self.sums_in(cand[rest], newly, w)
        return chosen

    def parts(self, i: int) -> list[tuple[int, int]]:
        """(feature, spec) of each single slice that candidate ``i`` intersects."""
        if i < len(self.index):
            return [self.index[i]]
        return [self.index[j] for j in self.parents[i - len(self.index)]]

    def sums_in(self, ids: np.ndarray, rows: np.ndarray | None, w: list[np.ndarray | None]
                ) -> np.ndarray:
        """(3, len(ids)): count and sums of the weights ``w`` over the ``rows`` (None: all) in
        each candidate. One bincount per feature or feature pair on (joint) codes, then the
        candidates' code memberships: no row masks."""
        out = np.zeros((3, ids.size))
        groups: dict[tuple[int, ...], list[int]] = {}
        for pos, i in enumerate(ids):
            groups.setdefault(tuple(f for f, _ in self.parts(int(i))), []).append(pos)
        for key, positions in groups.items():
            sizes = [self.feats[f].members.shape[1] for f in key]
            code = np.zeros(1, dtype=np.int64)
            for f, k in zip(key, sizes, strict=True):
                codes = self.feats[f].codes
                code = code * k + (codes if rows is None else codes[rows])
            hist = np.zeros((3, math.prod(sizes)))
            for j, wk in enumerate(w):
                if j == 0 or wk is not None:
                    hist[j] = np.bincount(code, wk, minlength=hist.shape[1])
            hist = hist.reshape(3, *sizes)
            for pos in positions:
                val = hist
                for f, r in reversed(self.parts(int(ids[pos]))):
                    val = val @ self.feats[f].members[r].astype(np.float64)
                out[:, pos] = val
        return out


def find_failing_slices(
    data: Any,
    *,
    errors: Any = None,
    y_true: Any = None,
    y_pred: Any = None,
    features: Sequence[str] | None = None,
    metric: Metric = "error_rate",
    pos_label: Any = 1,
    top_k: int = 10,
    max_order: int = 2,
    min_support: int | float = 0.01,
    alpha: float = 0.05,
    correction: Literal["bh", "bonferroni"] = "bh",
    n_bins: int = 10,
    max_categories: int = 50,
    n_pair_parents: int = 20,
    shortlist: int = 50,
) -> SliceReport:
    """Top-``top_k`` slices where ``metric`` is significantly worse than on the other rows.

    See the module docstring for the search, the tests, the correction and the ranking.

    Parameters
    ----------
    data
        pandas or polars DataFrame or pyarrow Table with the features.
    errors, y_true, y_pred
        Column names of ``data`` or arrays with one value per row: either ``errors`` (0/1 or
        bool for ``error_rate``, a loss for ``abs_error``) or ``y_true`` and ``y_pred``. These
        columns are never used as features.
    features
        Columns to slice on; default every other numeric, boolean or string column.
    metric
        ``error_rate``, ``false_positive_rate``, ``false_negative_rate`` (binary labels,
        ``pos_label`` is the positive class) or ``abs_error`` (mean absolute error).
    top_k, max_order
        At most ``top_k`` slices, of at most ``max_order`` (1 or 2) features.
    min_support
        Smallest slice tested: a row count (int) or a share of the evaluated rows (float).
    alpha, correction
        Level of the tests and of the confidence intervals; ``"bh"`` or ``"bonferroni"``.
    n_bins, max_categories
        Quantile bins per numeric feature; categories kept per categorical feature.
    n_pair_parents, shortlist
        Single slices intersected into pairs; significant candidates the greedy cover considers.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> amount = rng.lognormal(3.3, 1.2, 5000).round(2)
    >>> df = pd.DataFrame({"amount": amount, "country": rng.choice(["US", "DE", "BR"], 5000)})
    >>> wrong = np.where(amount < 10, rng.random(5000) < 0.9, rng.random(5000) < 0.05)
    >>> report = find_failing_slices(df, errors=wrong)
    >>> top = report.slices[0]
    >>> top.description, top.conditions[0].op, top.conditions[0].value
    ('amount < 10', '<', 10.0)
    >>> bool(top.adjusted_p_value < 0.05), top.support == int((amount < 10).sum())
    (True, True)
    """
    _check(metric, top_k, max_order, min_support, alpha, correction, n_bins, max_categories,
           n_pair_parents, shortlist)
    table = to_table(data)
    loss, keep = _loss(metric, table, errors, y_true, y_pred, pos_label)
    used = {v for v in (errors, y_true, y_pred) if isinstance(v, str)}
    if features is None:
        names = [c for c in table.column_names
                 if c not in used and _kind(table.schema.field(c).type) is not None]
    else:
        check_param(not isinstance(features, str) and len(features) > 0, "features", _OWNER,
                    "a non-empty sequence of column names", features)
        names = list(dict.fromkeys(features))
    loss = loss[keep]
    minsup = max(1, math.ceil(min_support * loss.size) if isinstance(min_support, float)
                 else int(min_support))
    feats: list[_Feature] = []
    for name in names:
        arr = _column(table, name, _OWNER)
        kind = _kind(arr.type)
        if kind is None:
            raise SchemaError(f"Column {name!r} has type {arr.type}; slices need numeric, "
                              "boolean or string features.", column=name)
        if kind == "numeric":
            feats.append(_numeric_feature(name, numeric_values(arr).raw[keep], n_bins))
        else:
            feats.append(_categorical_feature(name, arr, keep, max_categories, minsup))

    search = _Search(loss, feats, metric != "abs_error", minsup, float(alpha), correction)
    search.refine()
    if max_order == 2:
        search.add_pairs(n_pair_parents)
    tested, p, adj = search.score()
    n_tested = int(tested.sum()) + search.untested_pairs(tested)
    chosen = search.select(search.eligible(tested, adj), top_k, shortlist, max(1, n_tested))

    big_n, overall, out = float(loss.size), search.overall, []
    for i, marginal in chosen:
        n, s1, s2 = (float(v) for v in search.sums[:, i])
        mean = s1 / n
        lo, hi = _interval(n, s1, s2, search.binary, alpha, overall)
        conds = search.conditions(i)
        out.append(Slice(
            description=_describe(conds), conditions=conds, support=round(n),
            support_share=n / big_n, metric_value=mean,
            rest_value=(search.totals[1] - s1) / (big_n - n), overall_value=overall,
            difference=mean - overall, lift=mean / overall if overall > 0 else float("nan"),
            excess=n * (mean - overall), marginal_excess=marginal, p_value=float(p[i]),
            adjusted_p_value=float(adj[i]), ci_low=lo, ci_high=hi))
    return SliceReport(metric=metric, overall_value=overall, n_rows=table.num_rows,
                       n_evaluated=loss.size, n_candidates_tested=n_tested,
                       min_support=minsup, alpha=float(alpha), correction=correction,
                       slices=tuple(out))
