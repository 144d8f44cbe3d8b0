"""The model page's multivariate drift charts: domain-classifier AUC and PCA reconstruction
error, each with its band, per window.

Each window costs a cross-validated classifier on a sample of its raw rows
(:mod:`aiwarden.monitoring.multivariate_window`), so the range is cut into at most
:data:`MAX_WINDOWS` windows (multiples of the performance step), not the fine step of the
other charts; results are cached, so only the window still filling is recomputed on reload.
"""

from __future__ import annotations

import math
from typing import Any

from aiwarden.server.dashboard.ranges import Span
from aiwarden.server.dashboard.specs import add_marks, rounded, time_chart

__all__ = ["MAX_WINDOWS", "multivariate_charts"]

MAX_WINDOWS = 12


def multivariate_charts(app_state: Any, name: str, ctx: dict[str, Any], sp: Span
                        ) -> list[dict[str, Any]]:
    monitor = app_state.monitor
    step = sp.perf_step * max(1, math.ceil(sp.seconds / sp.perf_step / MAX_WINDOWS))
    windows = sp.windows(step)
    ref, data = monitor.windows(name, windows, ctx["version"])
    version = next(v for v in ctx["versions"] if v.version == ctx["version"])
    with monitor.db.read() as conn:
        results = [monitor.row_metric(conn, "multivariate_drift", ctx["model"].id, version.id,
                                      version.version, ref, s, e, d.rows)
                   for (s, e), d in zip(windows, data, strict=True)]
    xs = [s * 1000 for s, _ in windows]
    values = [v for v, _ in results]
    auc = time_chart("multivariate-auc", "Multivariate drift: domain classifier AUC", "", sp,
                     scale=True)
    rec = time_chart("multivariate-reconstruction",
                     "Multivariate drift: PCA reconstruction error", "", sp, scale=True)
    for spec, key, lower, upper, band in (
            (auc, "auc", "auc_lower", "auc_upper", "AUC 95 % interval"),
            (rec, "reconstruction_error", "reconstruction_lower", "reconstruction_upper",
             "reference band")):
        spec["series"].append({"name": key.replace("_", " "), "type": "line", "symbols": True,
                               "data": [[x, rounded(v and v[key])]
                                        for x, v in zip(xs, values, strict=True)]})
        spec["band"] = {"name": band,
                        "lower": [[x, rounded(v and v[lower])] for x, v in zip(xs, values,
                                                                               strict=True)],
                        "upper": [[x, rounded(v and v[upper])] for x, v in zip(xs, values,
                                                                               strict=True)]}
        stats = (key, lower, upper)
        add_marks(spec, ctx, sp, lambda r, stats=stats: r.metric == "multivariate_drift"
                  and r.stat_name in stats)
        spec["note"] = (f"{step // 60} min windows; each from at most "
                        f"{monitor.multivariate.settings.rows} sampled rows a side")
        if ref is None:
            spec["empty"] = "This version has no reference to compare with."
        elif not any(values):
            reasons = {why for _, why in results if why}
            spec["empty"] = (next(iter(reasons)) if len(reasons) == 1
                             else "Not enough rows in any window of this range.")
    last = next((v for v in reversed(values) if v), None)
    if last is not None:
        auc["thresholds"].append({"value": rounded(last["auc_threshold"]), "severity": "info",
                                  "label": "drift threshold"})
    return [auc, rec]
