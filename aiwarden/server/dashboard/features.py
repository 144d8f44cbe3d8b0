"""Feature drift over time (heatmap) and one feature's reference vs current distribution.

The heatmap has one column per window of the range's heatmap step (at most ~70), each
cell the drift severity (the chosen method's value divided by its threshold, so 1 is the
line between "moved" and "drifted" for every method alike).
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np

from aiwarden.engine._binning import CategoricalBinning
from aiwarden.engine.profile import CategoricalProfile, NumericalProfile
from aiwarden.engine.schema import Role
from aiwarden.monitoring import metrics
from aiwarden.monitoring.bucket import BucketData
from aiwarden.server.dashboard import alertview
from aiwarden.server.dashboard.ranges import Span
from aiwarden.server.dashboard.specs import add_marks, rounded, time_chart

__all__ = ["MAX_ROWS", "METHODS", "distribution", "feature_view", "heatmap"]

METHODS = ("psi", "ks", "wasserstein", "jensenshannon", "hellinger")
_DISPLAY_BINS = 20
MAX_ROWS = 40  # heatmap rows; a wider schema shows its most drifted columns


def _columns(ref: Any) -> list[tuple[str, str]]:
    """(column, role) in schema order: features first, then what the model outputs."""
    cols = [(c.name, c.role.value) for c in ref.schema_.columns if c.role == Role.FEATURE]
    return cols + [(c.name, c.role.value) for c in ref.schema_.columns
                   if c.role in (Role.PREDICTION, Role.SCORE)]


def heatmap(app_state: Any, name: str, sp: Span, version: str | None, method: str | None,
            ctx: dict[str, Any], segment: Any = None,
            leans: tuple[dict[str, float] | None, str | None] | None = None) -> dict[str, Any]:
    """The heatmap spec, the share-of-drifted-features chart and the range's verdicts (of
    one segment's rows when ``segment``, a checked :class:`Segment`, is given). ``leans``
    (the version's importance per feature, or None and why) sorts the rows by impact: the
    range's worst drift of each feature times its share of the model's attribution."""
    windows = sp.windows(sp.heat_step)
    ref, data = app_state.monitor.windows(name, windows, version,
                                          None if segment is None else segment.key)
    if ref is None:
        return {"heatmap": None, "share": None, "drifted": [], "recent": [], "ever": [],
                "columns": []}
    cols = _columns(ref)
    rows = [metrics.compute("drift", ref, d, method=method, detail=False) for d in data]
    whole = metrics.compute("drift", ref, BucketData.merge_all(data), method=method,
                            detail=False)
    drifted = list((whole or {}).get("drifted_features", []))
    total = len(cols)
    if total > MAX_ROWS:  # keep the rows worth a look: the most drifted at any time
        worst = {c: max((((r or {}).get("columns") or {}).get(c, {}).get("severity") or 0)
                        for r in rows) for c, _ in cols}
        keep = set(sorted(worst, key=lambda c: -worst[c])[:MAX_ROWS])
        cols = [(c, role) for c, role in cols if c in keep]
    impact, sort_note = _by_impact(cols, rows, leans)
    if impact:
        cols.sort(key=lambda cr: (impact.get(cr[0]) is None, -(impact.get(cr[0]) or 0.0)))
    cells = []
    for xi, r in enumerate(rows):
        for yi, (col, _) in enumerate(cols):
            c = ((r or {}).get("columns") or {}).get(col)
            if c and c.get("severity") is not None:
                cells.append([xi, yi, rounded(c["severity"], 3), rounded(c.get("value"), 4),
                              c.get("method"), int(bool(c.get("drifted")))])
    seen = [r for r in rows if r][-3:]  # the latest windows with data
    recent = [c for c, _ in cols if any(c in (r.get("columns") or {}) and
                                        r["columns"][c].get("drifted") for r in seen)]
    ever = [c for c, _ in cols if any(r and (r.get("columns") or {}).get(c, {}).get("drifted")
                                      for r in rows)]
    labels = [f"{'▲ ' if c in recent else ''}{c}{' (' + role + ')' if role != 'feature' else ''}"
              for c, role in cols]
    spec = {"id": "drift-heatmap", "kind": "heatmap", "title": "Feature drift over time",
            "x": [s * 1000 for s, _ in windows], "y": labels, "columns": [c for c, _ in cols],
            "data": cells, "step": sp.heat_step * 1000, "method": method or "default",
            "shown": len(cols), "total": total,
            "sort": "impact" if impact else "schema", "sort_note": sort_note,
            "impact": {c: rounded(v, 4) for c, v in impact.items()}}
    share = time_chart("drift-share", "Share of features drifted", "%", sp)
    share["series"].append({"name": "drifted features", "type": "line", "area": True,
                            "data": [[s * 1000, rounded(100 * r["share_drifted"], 4)
                                      if r else None]
                                     for (s, _), r in zip(windows, rows, strict=True)]})
    add_marks(share, ctx, sp, lambda r: r.metric == "drift" and r.column is None
              and r.stat_name == "share_drifted", scale=100.0)
    col_rules = {r.name for r in ctx["rules"] if r.metric == "drift" and r.column}
    now = time.time()
    for a in ctx["alerts"]:
        if a.rule_name in col_rules:  # per-feature drift alerts shade the same chart
            share["firing"] += alertview.firing_periods(a, sp.start, sp.end, now)
    return {"heatmap": spec, "share": share, "drifted": drifted, "recent": recent,
            "ever": ever, "columns": [c for c, _ in cols]}


def _by_impact(cols: list[tuple[str, str]], rows: list[Any],
               leans: tuple[dict[str, float] | None, str | None] | None
               ) -> tuple[dict[str, float], str | None]:
    """``{feature: worst severity x importance share}`` (outputs and features without an
    importance are left out, so they sort last), and why not when it cannot be."""
    if leans is None:
        return {}, None
    importance, why = leans
    if not importance:
        return {}, f"not sorted by impact: {why}"
    from aiwarden.explain import weigh_drift

    worst = {c: max((((r or {}).get("columns") or {}).get(c, {}).get("severity") or 0.0)
                    for r in rows) for c, _ in cols if c in importance}
    return {w.feature: float(w.impact) for w in weigh_drift(worst, importance)
            if w.impact is not None}, None


def distribution(ref: Any, d: BucketData, column: str) -> dict[str, Any] | None:
    """Reference vs current shares on the reference's bins, as a chart spec."""
    cur = d.profile.columns.get(column) if d.profile is not None else None
    base, binning = ref.profile_.columns.get(column), ref.binnings_.get(column)
    if cur is None or base is None or binning is None:
        return None
    if isinstance(cur, CategoricalProfile) and isinstance(binning, CategoricalBinning):
        names = [*binning.categories, "(unseen)"]
        return {"id": f"dist-{column}", "kind": "bars", "title": f"{column}: categories",
                "unit": "% of rows", "categories": names, "series": [
                    {"name": "reference", "data": _shares(base.counts)},
                    {"name": "current", "data": _shares(cur.counts)}]}
    if not isinstance(cur, NumericalProfile):
        return None
    edges = np.asarray(binning.edges, dtype=float)
    # edges [far_lo, e0..ek, far_hi]; bin i is [edges[i-1], edges[i]): bins 2..k+1 are the
    # reference's range [e0, ek] (its quantile bins), bins 0-1 lie below it, k+2 and k+3 above
    inner = edges[1:-1]
    ref_counts = np.asarray(base.counts, dtype=float)
    cur_counts = np.asarray(cur.counts, dtype=float)
    fine = slice(2, len(edges) - 1)
    # display bins holding equal shares of the reference: the reference reads flat and the
    # current shows where the mass moved, however skewed the feature
    cum = np.concatenate([[0.0], np.cumsum(ref_counts[fine])])
    cuts = np.unique(np.searchsorted(cum, np.linspace(0, cum[-1], _DISPLAY_BINS + 1)))
    cuts = np.unique(np.concatenate([[0], np.clip(cuts, 0, len(cum) - 1), [len(cum) - 1]]))
    labels = [f"< {_fmt(inner[0])}"] + [f"{_fmt(inner[a])}–{_fmt(inner[b])}"
                                         for a, b in itertools.pairwise(cuts)] + \
        [f"≥ {_fmt(inner[-1])}"]
    series = []
    for label, counts in (("reference", ref_counts), ("current", cur_counts)):
        total = counts.sum() or 1.0
        part = np.concatenate([[0.0], np.cumsum(counts[fine])])
        values = [counts[:2].sum(), *np.diff(part[cuts]), counts[len(edges) - 1:].sum()]
        series.append({"name": label, "data": [rounded(100 * v / total, 4) for v in values]})
    if not any(s["data"][0] for s in series):  # nothing below the range: no empty bar
        labels, series = labels[1:], [{**s, "data": s["data"][1:]} for s in series]
    if not any(s["data"][-1] for s in series):
        labels, series = labels[:-1], [{**s, "data": s["data"][:-1]} for s in series]
    return {"id": f"dist-{column}", "kind": "bars", "title": f"{column}: distribution",
            "unit": "% of rows", "categories": labels, "series": series,
            "note": "each bin holds an equal share of the reference"}


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.2e}"


def _shares(counts: Any) -> list[float | None]:
    arr = np.asarray(counts, dtype=float)
    return [rounded(100 * v / (arr.sum() or 1), 4) for v in arr]


def feature_view(app_state: Any, name: str, sp: Span, version: str | None,
                 feature: str | None, method: str | None, segment: Any = None
                 ) -> dict[str, Any]:
    """Every feature's drift over the whole range and the chosen feature's detail."""
    ref, d = app_state.monitor.window(name, sp.start, sp.end, version,
                                      None if segment is None else segment.key)
    if ref is None or d.profile is None or d.profile.n_rows == 0:
        return {"feature": feature, "columns": [], "chart": None, "rows": d.rows}
    drift = metrics.compute("drift", ref, d, method=method) or {"columns": {}}
    # the drift answer leaves out a column with no value in the range (all missing or NaN,
    # e.g. a PNG's JPEG block step): the panel says so instead of showing nothing
    cols = [{"column": c, "role": role, **drift["columns"].get(c, {
        "reason": "not compared: no value of this column in the range (all missing or "
                  "NaN)"})} for c, role in _columns(ref)]
    cols.sort(key=lambda c: (c["role"] != "feature", -(c.get("severity") or 0)))
    chosen = feature if feature in {c["column"] for c in cols} else cols[0]["column"]
    quality = metrics.compute("quality", ref, d)
    prof = d.profile.columns.get(chosen)
    counts = {k: int(getattr(prof, k)) for k in ("n", "missing", "nan", "posinf", "neginf",
                                                 "invalid", "absent")
              if prof is not None and hasattr(prof, k)}
    if isinstance(prof, CategoricalProfile):
        counts["unseen"] = prof.unseen
    quarantined = {k: v for k, v in d.quarantine_reasons.items() if chosen in k}
    return {"feature": chosen, "columns": cols, "rows": d.rows,
            "chart": distribution(ref, d, chosen), "counts": counts,
            "quarantined": quarantined, "selected": next(c for c in cols
                                                         if c["column"] == chosen),
            "findings": [f for f in quality.get("findings", []) if f.get("column") == chosen]}
