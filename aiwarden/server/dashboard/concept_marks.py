"""Change points of the concept-drift detectors as markers on the performance chart.

Each marker sits at the prediction time of the outcome on which a detector fired, so it
lines up with the realised-performance line it explains (the detection itself happened
later, once the labels were in: the marker's label says when).
"""

from __future__ import annotations

from typing import Any

from aiwarden.monitoring.concept_drift import ConceptDrift
from aiwarden.monitoring.windows import to_iso
from aiwarden.server.dashboard.ranges import Span

__all__ = ["MAX_MARKS", "change_point_marks"]

MAX_MARKS = 50  # the latest ones in the range: more would hide the line they explain


def change_point_marks(monitor: Any, ctx: dict[str, Any], sp: Span) -> list[dict[str, Any]]:
    """``{"at": ms, "label", "detail"}`` for each change point of the shown version in the
    range, oldest first."""
    concept = ConceptDrift(monitor.db, monitor.refs)
    with monitor.db.read() as conn:
        state = concept.state(conn, ctx["model"].id)
    found = sorted((p for p in state.get("change_points", [])
                    if p["version"] == ctx["version"] and sp.start <= p["at"] < sp.end),
                   key=lambda p: p["at"])
    return [{"at": p["at"] * 1000, "label": f"change ({p['detector']})",
             "detail": f"{p['detector']} fired on the outcome of {p['prediction_id']}: mean "
                       f"{p['mean_before']:.3g} before, estimate {p['statistic']:.3g}; found "
                       f"{to_iso(p['detected_at'])}"}
            for p in found[-MAX_MARKS:]]
