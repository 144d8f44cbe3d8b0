"""Alert states as the dashboard shows them: health per model, firing periods, thresholds.

Read with the same repository calls as ``GET /api/v1/models/{name}/alerts``; nothing here
evaluates a rule, it only shows what the evaluator stored.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from aiwarden.alerting.rules import Rule
from aiwarden.store import alerts_repo as repo

__all__ = ["HEALTH_ORDER", "AlertView", "alerts", "firing_periods", "health", "rules_of",
           "threshold_lines"]

ACTIVE = ("firing", "recovering")
HEALTH_ORDER = {"critical": 0, "warning": 1, "nodata": 2, "ok": 3}


@dataclass(frozen=True)
class AlertView:
    """One alert instance: its rule, labels, state and (when asked) its transitions."""

    id: int
    model_id: int
    rule_name: str
    rule: Rule | None
    labels: dict[str, str]
    state: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def phase(self) -> str:
        return str(self.state.get("phase", "normal"))

    @property
    def severity(self) -> str | None:
        return self.state.get("severity")

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE

    @property
    def title(self) -> str:
        col = self.labels.get("column") or self.labels.get("pair")
        return f"{self.rule_name} ({col})" if col else self.rule_name


def _rule(spec: dict[str, Any]) -> Rule | None:
    try:
        return Rule.model_validate(spec)
    except ValidationError:  # a rule stored by a newer release: show it, draw nothing
        return None


def rules_of(conn: Any, model: str | None = None) -> list[tuple[Any, Rule | None]]:
    """Stored rules with their parsed form."""
    return [(r, _rule(r.spec)) for r in repo.list_rules(conn, model)]


def alerts(conn: Any, model_id: int | None = None, events: bool = False
           ) -> dict[int, list[AlertView]]:
    """Alert instances by model id; ``events`` adds each one's transitions."""
    stored = {r.id: (r, parsed) for r, parsed in rules_of(conn)}
    out: dict[int, list[AlertView]] = defaultdict(list)
    for inst in repo.list_instances(conn, model_id):
        row, parsed = stored.get(inst.rule_id, (None, None))
        out[inst.model_id].append(AlertView(
            inst.id, inst.model_id, row.name if row else inst.labels.get("rule", "?"), parsed,
            inst.labels, inst.state, repo.events_of(conn, inst.id) if events else []))
    return out


def health(found: list[AlertView], has_data: bool) -> tuple[str, list[str]]:
    """ok / warning / critical / nodata, and the alerts that make it so."""
    firing = [a for a in found if a.active]
    for level in ("critical", "warning"):
        hit = [a.title for a in firing if (a.severity or "critical") == level]
        if hit:
            return level, hit
    if not has_data:
        return "nodata", [a.title for a in found if a.phase == "nodata"]
    return "ok", []


def firing_periods(alert: AlertView, start: float, end: float,
                   now: float | None = None) -> list[dict[str, Any]]:
    """``[{from, to, severity}]`` where the alert fired within ``[start, end)``."""
    now = time.time() if now is None else now
    out, opened, sev = [], None, None
    for e in alert.events:
        if e["kind"] in ("firing", "refiring") and opened is None:
            opened, sev = e["at"], e.get("severity")
        elif e["kind"] in ("escalated", "deescalated"):
            sev = e.get("severity") or sev
        elif e["kind"] == "resolved" and opened is not None:
            out.append((opened, e["at"], sev))
            opened = None
    if opened is not None and alert.active:
        out.append((opened, now, sev))
    return [{"from": max(a, start) * 1000, "to": min(b, end) * 1000,
             "severity": s or "critical", "label": alert.title}
            for a, b, s in out if b > start and a < end]


def threshold_lines(rule: Rule, baseline: float | None = None, scale: float = 1.0
                    ) -> list[dict[str, Any]]:
    """The rule's thresholds in the chart's units. A rule relative to the reference
    (``(v - b) / |b|``) is drawn where the value itself would breach: ``b + t·|b|``."""
    if rule.relative_to == "previous":
        return []  # moves with the data: no fixed line to draw
    out = []
    for sev in ("warning", "critical"):
        t = getattr(rule, sev)
        if t is None:
            continue
        if rule.relative_to == "reference":
            if baseline is None:
                continue
            value = baseline + t * abs(baseline)
            text = f"{sev} {rule.op} {value:.3g} ({t:+.0%})"
        else:
            value = t * scale
            text = f"{sev} {rule.op} {value:.3g}"
        out.append({"value": value, "severity": sev, "label": text, "rule": rule.name})
    return out
