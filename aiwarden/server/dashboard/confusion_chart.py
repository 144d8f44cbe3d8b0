"""The model page's "most confused pairs" chart: how often each of a classifier's worst
class pairs (bananas called cucumbers) happened, per window, from the joined labels.

It reads the windows the other time series already read (``charts.timeseries``), merged
to the performance step as the performance chart is: a rate of five labels is noise.
Class names are data: they travel as JSON and ``static/dashboard.js`` escapes them in
tooltips (tested with markup in a class name).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aiwarden.engine.class_confusion import ClassConfusion
from aiwarden.monitoring.bucket import BucketData
from aiwarden.server.dashboard.ranges import Span
from aiwarden.server.dashboard.specs import add_marks, rounded, time_chart

__all__ = ["MAX_PAIRS", "confusion_chart"]

MAX_PAIRS = 4  # lines drawn: the range's most confused pairs
MIN_SUPPORT = 10  # true rows of a class a window needs before its pair rates are drawn


def _matrix(d: BucketData) -> np.ndarray | None:
    perf = None if d.profile is None else d.profile.performance
    return None if perf is None or not hasattr(perf, "confusion") else perf.confusion


def confusion_chart(ref: Any, xs: list[int], data: list[BucketData], ctx: dict[str, Any],
                    sp: Span) -> dict[str, Any] | None:
    """None for a model that is not a classifier (or has no target)."""
    if ref is None or not ref.schema_.classes:
        return None
    classes = tuple(ref.schema_.classes)
    spec = time_chart("confusion", "Most confused pairs", "% of the true class", sp,
                      scale=True)
    k = max(1, sp.perf_step // sp.step)
    xs = xs[::k]
    merged = [_matrix(BucketData.merge_all(data[i:i + k])) for i in range(0, len(data), k)]
    found = [m for m in merged if m is not None]
    if not found:
        spec["empty"] = "No labels joined to this range's predictions yet."
        return spec
    total = ClassConfusion(classes, np.sum(found, axis=0))
    top = total.pairs(MAX_PAIRS)
    for p in top:
        i, j = classes.index(p["true"]), classes.index(p["pred"])
        spec["series"].append({"name": f"{p['true']} → {p['pred']}", "type": "line",
                               "symbols": True, "data": [
            [x, rounded(100 * m[i, j] / m[i].sum()) if m is not None
             and m[i].sum() >= MIN_SUPPORT else None]
            for x, m in zip(xs, merged, strict=True)]})
    shown = {f"{p['true']}->{p['pred']}" for p in top}
    add_marks(spec, ctx, sp, lambda r: r.metric == "confusion" and r.stat_name == "rate"
              and (r.pair in (None, "*") or r.pair in shown), scale=100.0)
    spec["note"] = (f"{sp.perf_step // 60} min windows; a point where {MIN_SUPPORT}+ labels "
                    "of the true class arrived")
    if not top:
        spec["empty"] = "No confused pair in this range: every labelled row is on the diagonal."
    return spec
