"""What follows an evaluation cycle: alerts open or join incidents, and a new incident gets
its root-cause analysis attached to the timeline at once (the on-call reads it first)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from aiwarden.alerting.evaluator import CycleReport
from aiwarden.alerting.notifiers import Notification
from aiwarden.alerting.notify import NotificationCenter
from aiwarden.alerting.rules import Rule
from aiwarden.incidents import AlertInfo, Incident, IncidentService
from aiwarden.monitoring.service import Monitor
from aiwarden.rca import analyse, to_markdown
from aiwarden.store import alerts_repo

__all__ = ["AlertPipeline"]

log = logging.getLogger("aiwarden.alerting")
RCA_ACTION = "Root-cause analysis"


class AlertPipeline:
    def __init__(self, monitor: Monitor, incidents: IncidentService,
                 notifications: NotificationCenter | None = None, *,
                 rca_window: float = 3600.0) -> None:
        self.monitor, self.incidents, self.rca_window = monitor, incidents, rca_window
        self.notifications = notifications

    def after_cycle(self, report: CycleReport) -> list[Incident]:
        if not report.transitions:
            self.tick()
            return []
        infos = self._rule_infos({labels["model"] for labels, _ in report.transitions})
        if self.notifications is not None:  # the policy is fixed when an incident opens
            self.incidents.policies = self.notifications.policies
        touched = self.incidents.on_transitions(
            report.transitions,
            info=lambda labels: infos.get((labels["model"], labels["rule"])))
        for inc in touched:
            if inc.is_open and not self._has_rca(inc.id):
                self.attach_rca(inc)
        if self.notifications is not None:
            self.notifications.on_transitions(report.transitions, {
                k: dict(v.annotations) | ({"runbook": v.runbook} if v.runbook else {})
                for k, v in infos.items()})
        self.tick()
        return touched

    def tick(self, now: float | None = None) -> None:
        """Send due notifications and escalations; note each on its incident's timeline."""
        if self.notifications is None:
            return
        self.incidents.policies = self.notifications.policies
        self._escalate(time.time() if now is None else now)
        for flush in self.notifications.tick(now):
            model, rule = flush.group_labels.get("model"), flush.group_labels.get("rule")
            inc = self.incidents.find_open(model, rule) if model and rule else None
            if inc is not None:
                self.incidents.record_notification(inc.id, flush.receiver, detail={
                    "status": flush.status, "firing": len(flush.firing),
                    "resolved": len(flush.resolved)})

    def _rule_infos(self, models: set[str]) -> dict[tuple[str, str], AlertInfo]:
        out: dict[tuple[str, str], AlertInfo] = {}
        with self.monitor.db.read() as conn:
            for model in models:
                for sr in alerts_repo.list_rules(conn, model):
                    out[(model, sr.name)] = AlertInfo.from_rule(Rule.model_validate(sr.spec))
        return out

    def _has_rca(self, incident_id: int) -> bool:
        return any(e.kind == "action" and e.detail.get("text") == RCA_ACTION
                   for e in self.incidents.timeline(incident_id))

    def attach_rca(self, inc: Incident, now: float | None = None) -> Mapping[str, Any] | None:
        """Run the RCA over the window that led to the incident and put it on the timeline."""
        end = time.time() if now is None else now
        try:
            report = analyse(self.monitor, inc.model, start=end - self.rca_window, end=end)
        except Exception as exc:  # an RCA failure must not lose the incident
            log.warning("RCA for incident %s failed: %s", inc.id, exc)
            return None
        self.incidents.record_action(inc.id, RCA_ACTION, "aiwarden", detail={
            "suspects": report["suspects"][:10], "markdown": to_markdown(report)})
        return report

    def _escalate(self, now: float) -> None:
        for esc in self.incidents.due_escalations(now):
            inc, step = esc.incident, esc.step
            sent = self.notifications.send(step.receiver, Notification(
                title=f"Escalation: {inc.title}", status="firing",
                severity=inc.severity if inc.severity in ("critical", "warning") else "warning",
                model=inc.model, labels={"model": inc.model, "incident": str(inc.id)},
                annotations={"escalation_step": str(step.step + 1),
                             "round": str(step.round + 1)},
                runbook=inc.runbooks[0] if inc.runbooks else None,
                group_key=f"incident-{inc.id}"))
            self.incidents.record_notification(inc.id, step.receiver, ok=sent, detail={
                "escalation_step": step.step + 1, "round": step.round + 1})
