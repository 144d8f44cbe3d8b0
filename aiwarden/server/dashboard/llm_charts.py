"""The LLM model page's charts and totals, from the same bucket merges as the API.

One read of the version's rollups (``Monitor.windows``) gives every window of the range;
each chart is the ``llm`` metric (``monitoring.llm_metrics``) or the ``latency`` metric of
those windows, so the page's numbers are exactly what ``GET /models/{name}/metrics``
answers for the same windows. Rates are drawn in percent with the thresholds of the
``metric: llm`` rules on the same stat.
"""

from __future__ import annotations

from typing import Any

from aiwarden.llm.descriptors import SAFETY_CATEGORIES
from aiwarden.monitoring import metrics
from aiwarden.monitoring.bucket import BucketData
from aiwarden.server.dashboard.charts import model_context, segment_of
from aiwarden.server.dashboard.ranges import Span
from aiwarden.server.dashboard.specs import add_marks, rounded, time_chart

__all__ = ["RATE_STATS", "TOTAL_STATS", "llm_timeseries"]

#: violation rates drawn, in this order: (stat, label)
RATE_STATS = (("unsafe_rate", "unsafe (any)"),
              *((f"unsafe_{c}_rate", c.replace("_", " ")) for c in SAFETY_CATEGORIES),
              ("pii_rate", "PII"), ("refusal_rate", "refusal"), ("injection_rate", "injection"))
#: the range's totals shown above the charts (same keys as the ``llm`` metric)
TOTAL_STATS = ("unsafe_rate", *(f"unsafe_{c}_rate" for c in SAFETY_CATEGORIES), "pii_rate",
               "refusal_rate", "injection_rate", "cost_sum", "tokens_in_sum",
               "tokens_out_sum", "feedback_mean", "feedback_count")


def _line(name: str, xs: list[int], values: list[Any], key: str, scale: float = 1.0,
          **kw: Any) -> dict[str, Any]:
    return {"name": name, "type": "line", **kw, "data": [
        [x, None if (v or {}).get(key) is None else rounded(v[key] * scale, 4)]
        for x, v in zip(xs, values, strict=True)]}


def _rates(cid: str, title: str, stats: tuple[tuple[str, str], ...], xs: list[int],
           values: list[dict[str, Any]], ctx: dict[str, Any], sp: Span) -> dict[str, Any]:
    """Rates in percent, one line per stat, with the thresholds of rules on those stats."""
    spec = time_chart(cid, title, "%", sp)
    names = {s for s, _ in stats}
    for stat, label in stats:
        spec["series"].append(_line(label, xs, values, stat, 100.0, dashed=stat != stats[0][0]))
    add_marks(spec, ctx, sp, lambda r: r.metric == "llm" and r.stat_name in names,
              scale=100.0)
    if not any(p[1] is not None for s in spec["series"] for p in s["data"]):
        spec["empty"] = "No profiled events in this range (a version needs its reference)."
    return spec


def llm_timeseries(app_state: Any, name: str, sp: Span, version: str | None,
                   segment: str | None = None) -> dict[str, Any]:
    """Every chart of the LLM page and the range's totals (of one segment's rows when
    ``segment`` is given, ``locale:de``)."""
    ctx = model_context(app_state, name, version)
    if ctx["version"] is None:
        return {"charts": [], "ctx": ctx, "totals": None, "segment": None}
    windows = sp.windows()
    seg = segment_of(app_state.monitor, name, ctx["version"], segment)
    ref, data = app_state.monitor.windows(name, windows, ctx["version"],
                                          segment=None if seg is None else seg.key)
    xs = [s * 1000 for s, _ in windows]
    minutes = [max(e - s, 60) / 60 for s, e in windows]
    llm = [metrics.compute("llm", ref, d) for d in data]
    lat = [metrics.compute("latency", None, d) for d in data]
    charts = []

    vol = time_chart("llm-volume", "Requests", "per min", sp)
    vol["series"].append({"name": "requests", "type": "bar", "data": [
        [x, rounded(d.rows / m, 4)] for x, d, m in zip(xs, data, minutes, strict=True)]})
    add_marks(vol, ctx, sp, lambda r: r.metric == "volume",
              scale=lambda r: 60 / r.window_seconds)
    charts.append(vol)

    latency = time_chart("llm-latency", "Latency", "ms", sp, scale=True)
    for p in ("p50", "p95"):
        latency["series"].append({"name": p, "type": "line", "dashed": p == "p95", "data": [
            [x, rounded(v.get(p), 4) if v["count"] else None]
            for x, v in zip(xs, lat, strict=True)]})
    add_marks(latency, ctx, sp, lambda r: r.metric == "latency")
    if not any(v["count"] for v in lat):
        latency["empty"] = "No latencies in this range (send latency_ms with the events)."
    charts.append(latency)

    charts.append(_rates("llm-unsafe", "Unsafe output by category", RATE_STATS[:5], xs, llm,
                         ctx, sp))
    charts.append(_rates("llm-other", "PII, refusals and injections", RATE_STATS[5:], xs, llm,
                         ctx, sp))

    tokens = time_chart("llm-tokens", "Tokens", "per window", sp)
    for stat, label in (("tokens_in_sum", "in"), ("tokens_out_sum", "out")):
        tokens["series"].append(_line(label, xs, llm, stat, type="bar"))
    charts.append(tokens)

    cost = time_chart("llm-cost", "Cost", "USD per window", sp)
    cost["series"].append(_line("cost", xs, llm, "cost_sum"))
    add_marks(cost, ctx, sp, lambda r: r.metric == "llm" and r.stat_name == "cost_sum")
    charts.append(cost)

    fb = time_chart("llm-feedback", "User feedback", "mean score", sp, scale=True)
    fb["series"].append(_line("feedback mean", xs, llm, "feedback_mean", symbols=True))
    add_marks(fb, ctx, sp, lambda r: r.metric == "llm" and r.stat_name == "feedback_mean")
    if not any(v.get("feedback_count") for v in llm):
        fb["empty"] = "No feedback joined to this range's events yet."
    charts.append(fb)

    whole = BucketData.merge_all(list(data)) if data else BucketData()
    total = metrics.compute("llm", ref, whole)
    totals = {k: total.get(k) for k in TOTAL_STATS}
    totals["rows"] = whole.rows
    totals["reasons"] = total.get("reasons", {})
    whole_lat = metrics.compute("latency", None, whole)
    totals["latency_p50"] = whole_lat.get("p50") if whole_lat["count"] else None
    totals["latency_p95"] = whole_lat.get("p95") if whole_lat["count"] else None
    return {"charts": charts, "ctx": ctx, "totals": totals, "segment": seg,
            "points": sum(len(s["data"]) for c in charts for s in c["series"])}
