"""Chart descriptions shared by the panels: the JSON ``static/dashboard.js`` draws.

A time chart is ``{id, kind: "time", title, unit, start, end, series, thresholds, firing}``
(times in ms); ``heatmap`` and ``bars``/``hbars`` carry their categories instead. Numbers
are rounded to a few significant digits: the browser needs no more, and pages stay small.
"""

from __future__ import annotations

import math
import time
from typing import Any

from aiwarden.server.dashboard import alertview
from aiwarden.server.dashboard.ranges import Span

__all__ = ["add_marks", "rounded", "time_chart"]


def rounded(v: Any, digits: int = 5) -> float | None:
    """A JSON-safe number with ``digits`` significant digits (None for NaN and inf)."""
    if v is None or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(f"{v:.{digits}g}")


def time_chart(cid: str, title: str, unit: str, sp: Span, **kw: Any) -> dict[str, Any]:
    """An empty time chart over the span; the x axis covers the range even without data."""
    return {"id": cid, "kind": "time", "title": title, "unit": unit,
            "start": sp.start * 1000, "end": sp.end * 1000, "series": [], "thresholds": [],
            "firing": [], **kw}


def add_marks(spec: dict[str, Any], ctx: dict[str, Any], sp: Span, match: Any,
           baseline: float | None = None, scale: Any = 1.0) -> None:
    """Thresholds of the rules ``match`` accepts (one line per value), and the periods
    their alerts fired."""
    names = set()
    seen = {(t["severity"], t["value"]) for t in spec["thresholds"]}
    for rule in ctx["rules"]:
        if match(rule):
            for line in alertview.threshold_lines(
                    rule, baseline, scale(rule) if callable(scale) else scale):
                key = (line["severity"], rounded(line["value"], 4))
                if key not in seen:
                    seen.add(key)
                    spec["thresholds"].append(line)
            names.add(rule.name)
    now = time.time()
    for a in ctx["alerts"]:
        if a.rule_name in names:
            spec["firing"] += alertview.firing_periods(a, sp.start, sp.end, now)


