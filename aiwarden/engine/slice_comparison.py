"""Slices where a challenger is significantly worse than the champion on the same rows.

Why: a candidate can beat the champion overall and still fail one group of customers (the
fraud model that flags every transaction under $10). The overall paired test cannot see it;
this search looks for it before any customer does.

How: candidate slices come from the slice finder run twice on the holdout, once on the
challenger's extra loss per row (its loss minus the champion's: where it got worse) and once
on the challenger's own loss (where it fails). Each distinct candidate is then tested *inside
the slice* with the paired test of ``model_comparison`` (McNemar for labels, paired t on
absolute errors for regression), Bonferroni-corrected over the candidates tested, and kept
only when the drop is at least ``min_drop`` too (a significant but negligible drop on a huge
holdout refuses nobody).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from aiwarden.engine.model_comparison import (
    PairedComparison,
    compare_abs_error,
    compare_accuracy,
)
from aiwarden.engine.slices import Slice, find_failing_slices
from aiwarden.errors import check_param

__all__ = ["SliceRegression", "find_slice_regressions"]


@dataclass(frozen=True)
class SliceRegression:
    """A slice and the paired comparison of the two models on its rows."""

    description: str
    conditions: tuple[Any, ...]
    support: int
    comparison: PairedComparison
    adjusted_p_value: float

    def to_dict(self) -> dict[str, Any]:
        return {"description": self.description, "support": self.support,
                "conditions": [[c.feature, c.op, list(c.value) if isinstance(c.value, tuple)
                                else c.value] for c in self.conditions],
                "adjusted_p_value": float(f"{self.adjusted_p_value:.6g}"),
                **{f"{k}": v for k, v in self.comparison.to_dict().items()
                   if k in ("metric", "method", "champion", "challenger", "better")}}


def find_slice_regressions(data: Any, y_true: Any, champion: Any, challenger: Any, *,
                           task: Literal["classification", "regression"] = "classification",
                           features: Sequence[str] | None = None, alpha: float = 0.05,
                           min_drop: float = 0.02, min_support: int | float = 0.01,
                           top_k: int = 10) -> list[SliceRegression]:
    """Slices where ``challenger`` is significantly worse than ``champion``, worst first."""
    check_param(task in ("classification", "regression"), "task", "find_slice_regressions",
                "'classification' or 'regression'", task)
    check_param(0 < alpha < 1, "alpha", "find_slice_regressions", "a float in (0, 1)", alpha)
    check_param(min_drop >= 0, "min_drop", "find_slice_regressions", "a number >= 0",
                min_drop)
    y, a, b = np.asarray(y_true), np.asarray(champion), np.asarray(challenger)
    if task == "regression":
        loss_a = np.abs(y.astype(float) - a.astype(float))
        loss_b = np.abs(y.astype(float) - b.astype(float))
    else:
        loss_a, loss_b = (a != y).astype(float), (b != y).astype(float)
    search = {"features": features, "min_support": min_support, "top_k": top_k}
    candidates: dict[str, Slice] = {}
    for found in (find_failing_slices(data, errors=loss_b - loss_a, metric="abs_error",
                                      **search),
                  find_failing_slices(data, errors=loss_b, metric="abs_error"
                                      if task == "regression" else "error_rate", **search)):
        for s in found.slices:
            candidates.setdefault(s.description, s)
    if not candidates:
        return []
    compare = compare_abs_error if task == "regression" else compare_accuracy
    out = []
    for s in candidates.values():
        rows = s.mask(data)
        if rows.sum() < 2:
            continue
        res = compare(y[rows], a[rows], b[rows], confidence=1 - alpha)
        adjusted = min(1.0, res.p_value * len(candidates))
        if res.better < 0 and -res.better >= min_drop and adjusted < alpha:
            out.append(SliceRegression(s.description, s.conditions, int(rows.sum()), res,
                                       adjusted))
    # the drop times the rows it touches: what shipping the challenger would cost
    return sorted(out, key=lambda r: r.comparison.better * r.support)
