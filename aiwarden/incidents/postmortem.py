"""A postmortem draft from what the incident recorded, so nobody starts from a blank page.

Pure: the incident, its timeline, and what the caller knows (versions live, extra
contributing factors) go in; a :class:`Postmortem` with ``to_dict()`` and
``to_markdown()`` comes out. People edit the markdown; the service stores their text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiwarden.incidents.lifecycle import Incident, TimelineEntry

__all__ = ["SYSTEM", "Postmortem", "describe", "draft", "format_duration", "format_time"]

SYSTEM = "system"  # the actor of everything aiwarden does by itself


def format_time(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_duration(seconds: float) -> str:
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    parts = [f"{h} h"] if h else []
    if m or (h and sec):
        parts.append(f"{m} min")
    if sec or not parts:
        parts.append(f"{sec} s")
    return " ".join(parts)


def _alert_name(d: dict[str, Any]) -> str:
    name = str(d.get("rule") or d.get("fingerprint", "?"))
    return f"{name} [{d['column']}]" if d.get("column") else name


def describe(entry: TimelineEntry) -> str:
    """One timeline entry as a sentence for people."""
    d, k = entry.detail, entry.kind
    if k == "opened":
        return f"incident opened: {d.get('title', '')}"
    if k == "alert_fired":
        value = f", value {d['value']:.4g}" if isinstance(d.get("value"), int | float) else ""
        return f"alert fired: {_alert_name(d)} ({d.get('severity')}{value})"
    if k == "alert_resolved":
        return f"alert resolved: {_alert_name(d)}"
    if k == "alert_severity":
        return f"alert {_alert_name(d)} severity {d.get('from')} → {d.get('to')}"
    if k == "severity":
        return f"incident severity {d.get('from')} → {d.get('to')}"
    if k == "status":
        note = f" ({d['note']})" if d.get("note") else ""
        return f"status {d.get('from')} → {d.get('to')}{note}"
    if k == "comment":
        return f"comment: {d.get('text', '')}"
    if k == "assigned":
        return f"assigned to {d.get('assignee') or 'nobody'}"
    if k == "escalation":
        return (f"escalation step {d.get('step', 0) + 1} (round {d.get('round', 0) + 1}): "
                f"notify {d.get('receiver')}")
    if k == "notification":
        if d.get("receiver") == "none":  # the default route: nobody was told
            return "not notified: no receiver configured"
        outcome = "sent" if d.get("ok", True) else f"failed ({d.get('error', 'unknown')})"
        return f"notification to {d.get('receiver')}: {outcome}"
    if k == "action":
        return f"action: {d.get('text', '')}"
    if k == "held_open":
        return "held open" if d.get("held") else "hold released"
    if k == "auto_resolve_held":
        return "all alerts resolved; held open, so not resolved automatically"
    if k == "postmortem_edited":
        return "postmortem edited"
    return f"{k}: {d}" if d else k


@dataclass(frozen=True)
class Postmortem:
    incident_id: int
    title: str
    summary: str
    impact: dict[str, Any]
    detection: dict[str, Any]
    timeline: tuple[TimelineEntry, ...]
    contributing_factors: tuple[str, ...]
    versions: tuple[str, ...]
    actions: tuple[TimelineEntry, ...]
    runbooks: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"incident_id": self.incident_id, "title": self.title, "summary": self.summary,
                "impact": self.impact, "detection": self.detection,
                "timeline": [e.to_dict() | {"text": describe(e)} for e in self.timeline],
                "contributing_factors": list(self.contributing_factors),
                "versions": list(self.versions),
                "actions": [e.to_dict() | {"text": describe(e)} for e in self.actions],
                "runbooks": list(self.runbooks)}

    def to_markdown(self) -> str:
        imp, det = self.impact, self.detection
        duration = ("ongoing" if imp["duration_seconds"] is None
                    else format_duration(imp["duration_seconds"]))
        lines = [f"# Postmortem: {self.title}", "", "## Summary", "", self.summary, "",
                 "## Impact", "", f"- Model: {imp['model']}", f"- Duration: {duration}",
                 f"- Severity: {imp['severity'] or 'unknown'}", f"- Alerts: {imp['alerts']}"]
        if imp["columns"]:
            lines.append(f"- Columns: {', '.join(imp['columns'])}")
        lines += ["", "## Detection", "", f"- Detected: {format_time(det['detected_at'])}"]
        if det["first_alert_at"] is not None:
            lines.append(f"- First alert fired: {format_time(det['first_alert_at'])}")
        for key, label in (("time_to_acknowledge_seconds", "Time to acknowledge"),
                           ("time_to_resolve_seconds", "Time to resolve")):
            if det[key] is not None:
                lines.append(f"- {label}: {format_duration(det[key])}")
        lines += ["", "## Timeline", ""]
        lines += [f"- {format_time(e.at)} · {e.actor} · {describe(e)}" for e in self.timeline]
        lines += ["", "## Contributing factors", ""]
        lines += [f"- {f}" for f in self.contributing_factors] or ["- (to be written)"]
        lines += ["", "## Versions live", ""]
        lines += [f"- {v}" for v in self.versions] or ["- (unknown)"]
        lines += ["", "## Actions taken", ""]
        lines += [f"- {format_time(e.at)} · {e.actor} · {describe(e)}"
                  for e in self.actions] or ["- (none recorded)"]
        if self.runbooks:
            lines += ["", "## Runbooks", "", *[f"- {r}" for r in self.runbooks]]
        return "\n".join(lines) + "\n"


def _factor(alert: Any) -> str:
    labels = alert.labels
    where = f" on column {labels['column']}" if labels.get("column") else ""
    extra = {k: v for k, v in sorted(labels.items())
             if k not in ("rule", "model", "version", "column")}
    text = f"{alert.rule or alert.fingerprint} fired ({alert.severity or 'unknown'}){where}"
    if labels.get("version"):
        text += f", version {labels['version']}"
    if extra:
        text += ", " + ", ".join(f"{k}={v}" for k, v in extra.items())
    notes = [alert.annotations[k] for k in ("summary", "description")
             if alert.annotations.get(k)]
    return text + (": " + " ".join(notes) if notes else "")


def draft(incident: Incident, timeline: Sequence[TimelineEntry], *,
          versions: Iterable[str] | None = None, factors: Iterable[str] = ()) -> Postmortem:
    """The draft; ``versions`` default to those named in the alerts' ``version`` labels."""
    alerts = sorted(incident.alerts, key=lambda a: a.fired_at)
    end = incident.resolved_at or incident.declined_at
    duration = None if end is None else end - incident.created_at
    columns = sorted({a.labels["column"] for a in alerts if a.labels.get("column")})
    if versions is None:
        versions = sorted({a.labels["version"] for a in alerts if a.labels.get("version")})
    ack = incident.acknowledged_at
    detection = {
        "detected_at": incident.created_at,
        "first_alert_at": alerts[0].fired_at if alerts else None,
        "acknowledged_at": ack,
        "time_to_acknowledge_seconds": None if ack is None else ack - incident.created_at,
        "time_to_resolve_seconds": duration if incident.resolved_at is not None else None,
    }
    impact = {"model": incident.model, "duration_seconds": duration, "alerts": len(alerts),
              "severity": incident.severity, "columns": columns}
    acker = next((e.actor for e in timeline if e.kind == "status"
                  and e.detail.get("to") in ("acknowledged", "mitigated")), None)
    summary = (f"{incident.title}. {len(alerts)} alert(s) on model {incident.model}, "
               f"severity {incident.severity or 'unknown'}, detected "
               f"{format_time(incident.created_at)}")
    if ack is not None:
        summary += f", acknowledged after {format_duration(ack - incident.created_at)}"
        summary += f" by {acker}" if acker else ""
    summary += ("; still open." if end is None else
                f"; {incident.status.value} after {format_duration(duration or 0.0)}.")
    actions = tuple(e for e in timeline if e.kind == "action"
                    or (e.kind in ("status", "assigned", "held_open") and e.actor != SYSTEM))
    return Postmortem(
        incident_id=incident.id, title=incident.title, summary=summary, impact=impact,
        detection=detection, timeline=tuple(timeline),
        contributing_factors=tuple([*(_factor(a) for a in alerts), *factors]),
        versions=tuple(versions), actions=actions, runbooks=incident.runbooks)
