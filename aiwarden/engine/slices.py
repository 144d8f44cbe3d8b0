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
  largest excess loss, and the roundest cut whose excess stays within two standard errors of
  that maximum is kept (one let a single chance error past a true boundary move the cut).
  Categorical and boolean features give one slice per frequent category (at most
  ``max_categories`` with ``min_support`` rows) and one for the pooled rest; missing values
  are a slice of their own. Pairs intersect the ``n_pair_parents`` most promising
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

Code: ``_slice_inputs`` (parameter checks, loss per row), ``_slice_candidates`` (conditions,
rounded cuts, per-feature codes) and ``_slice_search`` (tests, correction, refinement, pairs,
greedy cover); this module is the public surface.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
import pandas as pd

from aiwarden.engine._frame import to_table
from aiwarden.engine._slice_candidates import (
    Condition,
    build_features,
    condition_mask,
    describe,
    feature_kind,
)
from aiwarden.engine._slice_candidates import _roundest as _roundest  # tested directly
from aiwarden.engine._slice_inputs import OWNER, Metric, check_params, column, loss_per_row
from aiwarden.engine._slice_search import Search, interval
from aiwarden.errors import check_param

__all__ = ["Condition", "Slice", "SliceReport", "find_failing_slices"]


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
            out &= condition_mask(column(table, cond.feature, "Slice.mask"), cond)
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

    def _repr_html_(self) -> str:
        """Jupyter view: one row per slice (descriptions come from data: escaped)."""
        from aiwarden.engine._results import report_html

        cols = ["description", "support", "metric_value", "rest_value", "excess",
                "adjusted_p_value"]
        return report_html(f"Failing slices ({self.metric}, {self.n_rows:,} rows, overall "
                           f"{self.overall_value:.4g})", self.to_pandas()[cols])


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
    check_params(metric, top_k, max_order, min_support, alpha, correction, n_bins,
                 max_categories, n_pair_parents, shortlist)
    table = to_table(data)
    loss, keep = loss_per_row(metric, table, errors, y_true, y_pred, pos_label)
    used = {v for v in (errors, y_true, y_pred) if isinstance(v, str)}
    if features is None:
        names = [c for c in table.column_names
                 if c not in used and feature_kind(table.schema.field(c).type) is not None]
    else:
        check_param(not isinstance(features, str) and len(features) > 0, "features", OWNER,
                    "a non-empty sequence of column names", features)
        names = list(dict.fromkeys(features))
    loss = loss[keep]
    minsup = max(1, math.ceil(min_support * loss.size) if isinstance(min_support, float)
                 else int(min_support))
    feats = build_features(table, names, keep, n_bins, max_categories, minsup)

    search = Search(loss, feats, metric != "abs_error", minsup, float(alpha), correction)
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
        lo, hi = interval(n, s1, s2, search.binary, alpha, overall)
        conds = search.conditions(i)
        out.append(Slice(
            description=describe(conds), conditions=conds, support=round(n),
            support_share=n / big_n, metric_value=mean,
            rest_value=(search.totals[1] - s1) / (big_n - n), overall_value=overall,
            difference=mean - overall, lift=mean / overall if overall > 0 else float("nan"),
            excess=n * (mean - overall), marginal_excess=marginal, p_value=float(p[i]),
            adjusted_p_value=float(adj[i]), ci_low=lo, ci_high=hi))
    return SliceReport(metric=metric, overall_value=overall, n_rows=table.num_rows,
                       n_evaluated=loss.size, n_candidates_tested=n_tested,
                       min_support=minsup, alpha=float(alpha), correction=correction,
                       slices=tuple(out))
