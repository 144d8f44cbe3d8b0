"""Render a report dict as one self-contained HTML page: inline CSS, inline SVG, no URLs.

The page is the Jinja2 template ``templates/report.html``, the templating the dashboard
uses too, with autoescaping on: every string that came from the data (column names,
category values, messages quoting them) is escaped by the template engine. This module
only shapes the report dict into what the template shows (rows, chart geometry). The page
is made only from the report dict (column-level numbers), so its size grows with the number
of columns, never with rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

__all__ = ["render_html"]

_W, _H, _GAP = 280, 64, 6  # chart size in px


def _num(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:.{digits}g}" if abs(v) >= 1000 or (v and abs(v) < 1e-3) else f"{v:.{digits}f}"


def _pct(v: Any) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


@cache
def _environment() -> Environment:
    env = Environment(loader=PackageLoader("aiwarden.report", "templates"),
                      autoescape=select_autoescape(["html"]), trim_blocks=True,
                      lstrip_blocks=True, undefined=StrictUndefined)
    env.filters.update(num=_num, pct=_pct)
    return env


def render_html(report: Mapping[str, Any]) -> str:
    """The whole page as one string."""
    return _environment().get_template("report.html").render(
        report=_Lenient(report), verdict=_Lenient(report.get("verdict") or {}),
        findings=[_Lenient(f) for f in (report.get("quality") or {}).get("findings") or []],
        schema=_schema(report), drift=_drift(report),
        performance=_performance(report.get("performance") or {}),
        timings=[(k, float(v)) for k, v in (report.get("timings") or {}).items()
                 if v is not None])


class _Lenient(dict):  # type: ignore[type-arg]
    """The report as the template reads it: a missing section is ``None``, not an error
    (StrictUndefined still catches typos in the view-model this module builds)."""

    def __init__(self, d: Mapping[str, Any]) -> None:
        super().__init__({k: _Lenient(v) if isinstance(v, Mapping) else
                          [_Lenient(x) if isinstance(x, Mapping) else x for x in v]
                          if isinstance(v, list) else v for k, v in d.items()})

    def __getattr__(self, name: str) -> Any:
        return self.get(name)


def _schema(report: Mapping[str, Any]) -> dict[str, Any]:
    schema = report.get("schema") or {}
    roles: dict[str, list[str]] = {}
    for c in schema.get("columns", []):
        roles.setdefault(c["role"], []).append(c["name"])
    return {"task": schema.get("task", "none"), "features": len(roles.pop("feature", [])),
            "roles": list(roles.items())}


def _drift(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    hists = report.get("histograms") or {}
    summaries = report.get("columns") or {}
    rows = []
    for c in (report.get("drift") or {}).get("columns", []):
        name = c.get("column")
        summ = summaries.get(name) or {}
        rows.append({"column": name, "role": c.get("role"), "method": c.get("method"),
                     "value": c.get("value"), "threshold": c.get("threshold"),
                     "severity": c.get("severity"), "level": str(c.get("level")),
                     "drifted": bool(c.get("drifted")), "chart": _chart(hists.get(name)),
                     "summary": {"mean_reference": summ.get("mean_reference"),
                                 "mean_current": summ.get("mean_current")}})
    return rows


def _bars(h: Mapping[str, Any]) -> tuple[list[str], list[float], list[float]]:
    labels = list(h.get("labels") or [])
    ref, cur = list(h.get("reference") or []), list(h.get("current") or [])
    if h.get("kind") == "numerical":
        below, above = h.get("below") or {}, h.get("above") or {}
        if (below.get("reference") or 0) > 0 or (below.get("current") or 0) > 0:
            labels.insert(0, f"below {_num(below.get('edge'))}")
            ref.insert(0, below.get("reference") or 0.0)
            cur.insert(0, below.get("current") or 0.0)
        if (above.get("reference") or 0) > 0 or (above.get("current") or 0) > 0:
            labels.append(f"above {_num(above.get('edge'))}")
            ref.append(above.get("reference") or 0.0)
            cur.append(above.get("current") or 0.0)
    return labels, [r or 0.0 for r in ref], [c or 0.0 for c in cur]


def _chart(h: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Geometry of the reference bars (grey) with the current ones overlaid."""
    if not h:
        return None
    labels, ref, cur = _bars(h)
    if not labels:
        return None
    top = max(max(ref, default=0.0), max(cur, default=0.0)) or 1.0
    step = _W / len(labels)
    bar = max(step - (1.0 if len(labels) > 40 else 2.0), 0.5)
    inner = _H - _GAP
    bars = []
    for i, (label, r, c) in enumerate(zip(labels, ref, cur, strict=True)):
        x, hr, hc = i * step, inner * r / top, inner * c / top
        bars.append({"label": label, "ref": r, "cur": c, "x": f"{x:.1f}",
                     "y_ref": f"{_H - hr:.1f}", "w": f"{bar:.1f}", "h_ref": f"{hr:.1f}",
                     "x_cur": f"{x + bar * 0.2:.1f}", "y_cur": f"{_H - hc:.1f}",
                     "w_cur": f"{bar * 0.6:.1f}", "h_cur": f"{hc:.1f}"})
    return {"width": _W, "height": _H, "axis": _H - 0.5, "bars": bars,
            "of": "text length" if h.get("of") == "length" else None}


def _performance(perf: Mapping[str, Any]) -> dict[str, Any]:
    ref = perf.get("reference") or {}
    real = perf.get("realised") or {}
    est = (perf.get("estimated") or {}).get("metrics") or {}
    if not (real or est):
        why = ("the current data has no target column and no scores"
               if perf.get("task") not in (None, "none") else "no target, prediction or scores")
        return {"rows": [], "why": why, "estimated": False, "confidence": None}
    names: list[str] = []
    for source in (est, real, ref):
        names.extend(k for k in source if k not in names)
    rows = [{"name": m, "reference": ref.get(m), "realised": real.get(m),
             "estimated": est.get(m) or None} for m in names]
    return {"rows": rows, "why": None, "estimated": bool(est),
            "confidence": (perf.get("estimated") or {}).get("confidence")}
