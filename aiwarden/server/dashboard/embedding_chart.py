"""The model page's embedding drift chart (image models whose events carry embeddings).

Each window runs a permutation test on at most 500 vectors a side
(:mod:`aiwarden.monitoring.image_embeddings`), so the range is cut into at most
:data:`MAX_WINDOWS` windows, like the multivariate charts; results are cached. A version
without reference embeddings gets no chart (most models have none).
"""

from __future__ import annotations

import math
from typing import Any

from aiwarden.server.dashboard.ranges import Span
from aiwarden.server.dashboard.specs import add_marks, rounded, time_chart

__all__ = ["MAX_WINDOWS", "embedding_charts"]

MAX_WINDOWS = 12


def embedding_charts(app_state: Any, name: str, ctx: dict[str, Any], sp: Span
                     ) -> list[dict[str, Any]]:
    from aiwarden.monitoring.image_embeddings import ALPHA, read_reference

    monitor = app_state.monitor
    version = next(v for v in ctx["versions"] if v.version == ctx["version"])
    with monitor.db.read() as conn:
        if read_reference(conn, version.id) is None:
            return []
    step = sp.perf_step * max(1, math.ceil(sp.seconds / sp.perf_step / MAX_WINDOWS))
    windows = sp.windows(step)
    _, data = monitor.windows(name, windows, ctx["version"])
    with monitor.db.read() as conn:
        results = [monitor.row_metric(conn, "embedding_drift", ctx["model"].id, version.id,
                                      version.version, None, s, e, d.rows)
                   for (s, e), d in zip(windows, data, strict=True)]
    xs = [s * 1000 for s, _ in windows]
    mmd = time_chart("embedding-mmd", "Embedding drift: MMD² against the reference", "", sp,
                     scale=True)
    mmd["series"].append({"name": "MMD²", "type": "line", "symbols": True, "data": [
        [x, rounded(v and v["mmd2"])] for x, (v, _) in zip(xs, results, strict=True)]})
    pv = time_chart("embedding-p", "Embedding drift: permutation p-value", "", sp)
    pv["series"].append({"name": "p-value", "type": "line", "symbols": True, "data": [
        [x, rounded(v and v["p_value"])] for x, (v, _) in zip(xs, results, strict=True)]})
    pv["thresholds"].append({"value": ALPHA, "severity": "info", "label": "alpha"})
    for spec, stats in ((mmd, ("mmd2",)), (pv, ("p_value", "drifted"))):
        add_marks(spec, ctx, sp, lambda r, stats=stats: r.metric == "embedding_drift"
                  and r.stat_name in stats)
        spec["note"] = (f"{step // 60} min windows; each from at most 500 embeddings a side, "
                        "200 permutations")
        if not any(v for v, _ in results):
            reasons = {why for _, why in results if why}
            spec["empty"] = (next(iter(reasons)) if len(reasons) == 1
                             else "Not enough embeddings in any window of this range.")
    return [mmd, pv]
