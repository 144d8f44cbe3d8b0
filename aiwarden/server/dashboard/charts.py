"""The model page's time series, aggregated on the server.

One read of the model's bucket rollups (``Monitor.windows``, the call behind
``Monitor.series``) gives every window of the range; each chart is a metric of those same
windows (``monitoring.metrics``), so six charts cost one read, and the browser gets at most
a few hundred points per line, never an event. Chart specs are plain dicts that
``static/dashboard.js`` turns into ECharts options.
"""

from __future__ import annotations

import math
from typing import Any

from aiwarden.engine.schema import Role
from aiwarden.errors import ParameterError
from aiwarden.monitoring import metrics, segments
from aiwarden.monitoring.bucket import BucketData
from aiwarden.server.dashboard import alertview
from aiwarden.server.dashboard.concept_marks import change_point_marks
from aiwarden.server.dashboard.confusion_chart import confusion_chart
from aiwarden.server.dashboard.embedding_chart import embedding_charts
from aiwarden.server.dashboard.multivariate_chart import multivariate_charts
from aiwarden.server.dashboard.overview import main_metric
from aiwarden.server.dashboard.ranges import Span
from aiwarden.server.dashboard.specs import add_marks, rounded, time_chart
from aiwarden.store import models_repo

__all__ = ["MIN_LABELS", "model_context", "timeseries"]

MIN_LABELS = 50  # fewer labels than this in a window: no realised number drawn

_GAUGES = {"cpu_percent": ("CPU", "%", 1.0), "rss_bytes": ("Memory (RSS)", "MiB", 2.0**-20),
           "gpu_utilization": ("GPU utilisation", "%", 1.0),
           "gpu_memory_bytes": ("GPU memory", "MiB", 2.0**-20)}


def model_context(app_state: Any, name: str, version: str | None) -> dict[str, Any]:
    """The model, its versions and the stored rules and alerts (with transitions)."""
    monitor = app_state.monitor
    with monitor.db.read() as conn:
        m = models_repo.get_model(conn, name)
        versions = models_repo.list_versions(conn, m)
        current = models_repo.get_version(conn, m, version) if versions else None
        rules = [p for r, p in alertview.rules_of(conn, name) if p is not None
                 and p.applies_to(name)]
        found = alertview.alerts(conn, m.id, events=True).get(m.id, [])
    shown = current.version if current else None
    return {"model": m, "versions": versions, "version": shown, "rules": rules,
            "alerts": [a for a in found if a.labels.get("version") in (None, shown)]}


def _perf(ref: Any, xs: list[int], data: list[Any], metric: str,
          ctx: dict[str, Any], sp: Span) -> dict[str, Any]:
    """Realised (labels) beside estimated (CBPE, or DLE for regression, with its interval),
    on the range's wider performance step: an AUC of twenty rows is noise."""
    spec = time_chart("performance", f"Performance: {metric}", "", sp, scale=True)
    k = sp.perf_step // sp.step
    xs = xs[::k]
    data = [BucketData.merge_all(data[i:i + k]) for i in range(0, len(data), k)]
    real = [((metrics.compute("performance", ref, d) or {}).get("metrics") or {}).get(metric)
            if d.labels >= MIN_LABELS else None for d in data]
    est = [((metrics.compute("estimated_performance", ref, d) or {}).get("metrics") or {})
           .get(metric) for d in data]
    spec["series"].append({"name": "realised (labels)", "type": "line", "symbols": True,
                           "data": [[x, rounded(v)] for x, v in zip(xs, real, strict=True)]})
    if any(e for e in est):
        how = "DLE" if ref.schema_.task.value == "regression" else "CBPE"
        spec["series"].append({"name": f"estimated ({how})", "type": "line", "dashed": True,
                               "symbols": True, "data": [[x, rounded(e and e["estimate"])]
                                                         for x, e in zip(xs, est, strict=True)]})
        pairs = list(zip(xs, est, strict=True))
        spec["band"] = {"name": f"{how} 95 % interval",
                        "lower": [[x, rounded(e and e["lower"])] for x, e in pairs],
                        "upper": [[x, rounded(e and e["upper"])] for x, e in pairs]}
    base = (ref.realised_performance(ref.profile_) or {}).get(metric) if ref else None
    if base is not None and not math.isfinite(base):  # roc_auc of a classifier without
        base = None  # scores: a NaN line broke the panel's JSON (and its charts) in browsers
    if base is not None:
        spec["thresholds"].append({"value": base, "severity": "info",
                                   "label": f"reference {base:.3g}"})
    add_marks(spec, ctx, sp, lambda r: r.metric in ("performance", "estimated_performance")
           and r.stat_name == metric, baseline=base)
    spec["note"] = (f"{sp.perf_step // 60} min windows; realised only where {MIN_LABELS}+ "
                    "labels arrived")
    if not any(v is not None for v in real) and "band" not in spec:
        spec["empty"] = "No labels or scores in this range yet."
    return spec


def _prediction(ref: Any, xs: list[int], data: list[Any], sp: Span) -> dict[str, Any]:
    spec = time_chart("prediction", "Prediction distribution", "%", sp)
    values = [metrics.compute("prediction", ref, d) for d in data]
    first = next((v for v in values if v), None)
    if first is None:
        spec["empty"] = "No predictions in this range."
        return spec
    spec["title"] = f"Prediction distribution: {first['column']}"
    if "categories" in first:
        ref_total = sum(first["reference"]) or 1
        for i, cat in enumerate(first["categories"]):
            if cat == "(unseen)" and not any(v and v["current"][i] for v in values):
                continue
            spec["series"].append({"name": f"class {cat}", "type": "line", "data": [
                [x, rounded(100 * v["current"][i] / (sum(v["current"]) or 1)) if v and v["n"]
                 else None] for x, v in zip(xs, values, strict=True)]})
            spec["thresholds"].append({"value": rounded(100 * first["reference"][i] / ref_total),
                                       "severity": "info", "label": f"reference, class {cat}"})
    else:
        spec["unit"] = ""
        spec["series"].append({"name": "mean", "type": "line", "data": [
            [x, rounded(v.get("mean")) if v else None] for x, v in zip(xs, values, strict=True)]})
        spec["thresholds"].append({"value": rounded(first.get("reference_mean")),
                                   "severity": "info", "label": "reference mean"})
    return spec


def _gauge(value: Any, gauge: str, stat: str, scale: float) -> float | None:
    x = ((value or {}).get("gauges", {}).get(gauge) or {}).get(stat)
    return None if x is None else rounded(x * scale, 4)


def _resources(xs: list[int], data: list[Any], ctx: dict[str, Any], sp: Span
               ) -> list[dict[str, Any]]:
    values = [metrics.compute("resources", None, d) for d in data]
    gauges = sorted({g for v in values for g in (v or {}).get("gauges", {})},
                    key=lambda g: (g not in _GAUGES, g))
    out = []
    for g in [g for g in gauges if g != "cost"][:4]:
        title, unit, scale = _GAUGES.get(g, (g.replace("_", " "), "", 1.0))
        spec = time_chart(f"resources-{g}", f"Resources: {title}", unit, sp, scale=True)
        for stat in ("mean", "max"):
            spec["series"].append({"name": stat, "type": "line", "dashed": stat == "max",
                                   "connect": True,
                                   "data": [[x, _gauge(v, g, stat, scale)]
                                            for x, v in zip(xs, values, strict=True)]})
        add_marks(spec, ctx, sp, lambda r, g=g: r.metric == "resources"
               and (r.stat or "").startswith(g + "_"), scale=scale)
        out.append(spec)
    if any((v or {}).get("cost_per_1k") is not None for v in values):
        spec = time_chart("resources-cost", "Cost per 1,000 predictions", "", sp)
        spec["series"].append({"name": "cost / 1k", "type": "line", "data": [
            [x, rounded((v or {}).get("cost_per_1k"))] for x, v in zip(xs, values, strict=True)]})
        add_marks(spec, ctx, sp, lambda r: r.metric == "resources" and r.stat == "cost_per_1k")
        out.append(spec)
    return out  # none in range: no empty chart, the panel says how to send them (RESOURCES_HOWTO)


RESOURCES_HOWTO = ("No resource samples yet: serving processes send them with POST "
                   "/api/v1/models/{name}/resources (aiwarden.process_usage.ProcessSampler; "
                   "aiwarden serve sends them by itself).")


def timeseries(app_state: Any, name: str, sp: Span, version: str | None,
               perf: str | None = None, segment: str | None = None) -> dict[str, Any]:
    """Every time-series chart of the model page for one range (of one segment's rows,
    ``country:BR``, when ``segment`` is given)."""
    ctx = model_context(app_state, name, version)
    if ctx["version"] is None:
        return {"charts": [], "ctx": ctx, "metric": None}
    windows = sp.windows()
    seg = segment_of(app_state.monitor, name, ctx["version"], segment)
    ref, data = app_state.monitor.windows(name, windows, ctx["version"],
                                          segment=None if seg is None else seg.key)
    xs = [s * 1000 for s, _ in windows]
    minutes = [max(e - s, 60) / 60 for s, e in windows]
    charts = []

    vol = time_chart("volume", "Traffic", "per min", sp)
    for label, attr, kind in (("predictions", "rows", "bar"), ("labels", "labels", "line"),
                              ("quarantined", "quarantined", "line")):
        vol["series"].append({"name": label, "type": kind, "data": [
            [x, rounded(getattr(d, attr) / mins, 4)] for x, d, mins in
            zip(xs, data, minutes, strict=True)]})
    add_marks(vol, ctx, sp, lambda r: r.metric == "volume",
           scale=lambda r: 60 / r.window_seconds)
    charts.append(vol)

    task = ref.schema_.task.value if ref is not None and ref.schema_.task else \
        ctx["model"].task
    metric = perf or main_metric(task)
    if ref is not None and ref.schema_.column_for(Role.TARGET) is not None:
        charts.append(_perf(ref, xs, data, metric, ctx, sp))
        if seg is None:  # change points are the whole version's
            charts[-1]["events"] = change_point_marks(app_state.monitor, ctx, sp)
        pairs = confusion_chart(ref, xs, data, ctx, sp)  # classifiers: bananas -> cucumbers
        if pairs is not None:
            charts.append(pairs)
    charts.append(_prediction(ref, xs, data, sp))
    if seg is None:  # from raw rows of the whole version: not split by segment
        charts += multivariate_charts(app_state, name, ctx, sp)
        charts += embedding_charts(app_state, name, ctx, sp)  # image models' embeddings

    lat = time_chart("latency", "Latency percentiles", "ms", sp, scale=True)
    values = [metrics.compute("latency", None, d) for d in data]
    for p in ("p50", "p90", "p95", "p99"):
        lat["series"].append({"name": p, "type": "line", "data": [
            [x, rounded(v.get(p), 4) if v["count"] else None] for x, v in
            zip(xs, values, strict=True)]})
    add_marks(lat, ctx, sp, lambda r: r.metric == "latency")
    if not any(v["count"] for v in values):
        lat["empty"] = "No latencies in this range (send latency_ms with predictions)."
    charts.append(lat)

    err = time_chart("errors", "Errors and quarantined rows", "%", sp)
    err["series"].append({"name": "error rate", "type": "line", "data": [
        [x, rounded(100 * d.errors / d.rows, 4) if d.rows else None]
        for x, d in zip(xs, data, strict=True)]})
    err["series"].append({"name": "quarantine rate", "type": "line", "dashed": True, "data": [
        [x, rounded(100 * d.quarantined / (d.rows + d.quarantined), 4)
         if d.rows + d.quarantined else None] for x, d in zip(xs, data, strict=True)]})
    add_marks(err, ctx, sp, lambda r: r.metric in ("errors", "quarantined")
           and r.stat_name == "rate", scale=100.0)
    charts.append(err)
    resources = None
    if seg is None:  # resource samples come per process, not per row: no segments
        resources = _resources(xs, data, ctx, sp)
        charts += resources
    return {"charts": charts, "ctx": ctx, "metric": metric, "segment": seg,
            "resources_note": None if resources or seg is not None
            else RESOURCES_HOWTO.format(name=name),
            "points": sum(len(s["data"]) for c in charts for s in c["series"])}


def segment_of(monitor: Any, name: str, version: str | None, segment: str | None
               ) -> segments.Segment | None:
    """The chosen segment, refused with the reason when this version cannot show it."""
    if not segment:
        return None
    seg = segments.parse(segment)
    with monitor.db.read() as conn:
        ref = monitor.refs.get(conn, models_repo.get_version(
            conn, models_repo.get_model(conn, name), version).id)
    why = segments.resolve(ref, seg, monitor.settings.segment_top_n)
    if why is not None:
        raise ParameterError(f"segment: {why}.", "segment")
    return seg
