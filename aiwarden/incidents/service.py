"""Incidents from alert transitions and from people, kept in the database.

The evaluator reports transitions (``CycleReport.transitions``: ``(labels, Transition)``);
:meth:`IncidentService.on_transitions` turns them into incidents: a firing alert opens an
incident for its (model, key) or joins the open one, a resolved alert may resolve it.
People acknowledge, mitigate, resolve, decline, assign, comment and hold incidents open.
Each call is one transaction and all state is in the database, so a new service object
(after a restart, or in another server process) continues exactly where the last one was.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Connection

from aiwarden.alerting.state import Transition
from aiwarden.errors import ParameterError
from aiwarden.incidents import store
from aiwarden.incidents.lifecycle import (
    DueStep,
    EscalationPolicy,
    Incident,
    IncidentAlert,
    Progress,
    ResponseTimes,
    Status,
    TimelineEntry,
    due_steps,
    reopen,
    response_times,
    severity_rank,
    transition,
    worse_severity,
)
from aiwarden.incidents.postmortem import SYSTEM, Postmortem, draft
from aiwarden.store.alerts_repo import fingerprint
from aiwarden.store.database import Database

__all__ = ["OPENING_KINDS", "SYMPTOMS", "AlertInfo", "Escalation", "IncidentService",
           "StoredPostmortem"]

OPENING_KINDS = frozenset({"firing", "refiring"})  # alert transitions that need an incident


# Rule metrics that describe one kind of failure: alerts of one family on one version of a
# model, firing close together, are one failure (a bad canary trips its accuracy rule and the
# default realised-AUC rule seconds apart) and share one incident.
SYMPTOMS = {"performance": "performance", "estimated_performance": "performance",
            "estimate_gap": "performance", "concept_drift": "performance",
            "confusion": "performance", "class_recall": "performance",
            "drift": "drift", "multivariate_drift": "drift",
            "quality": "quality", "quarantined": "quality"}


@dataclass(frozen=True)
class AlertInfo:
    """What the rule that fired says about its alert: runbook, annotations, a title, and
    its symptom family (``SYMPTOMS``; the metric itself when it has no family)."""

    runbook: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    title: str | None = None
    symptom: str | None = None

    @classmethod
    def from_rule(cls, rule: Any) -> AlertInfo:
        """From anything shaped like ``alerting.rules.Rule`` (runbook, annotations, metric)."""
        ann = dict(getattr(rule, "annotations", None) or {})
        metric = getattr(rule, "metric", None)
        return cls(getattr(rule, "runbook", None), ann, ann.get("summary"),
                   SYMPTOMS.get(metric, metric) if metric else None)


@dataclass(frozen=True)
class Escalation:
    """A step that is due: notify ``step.receiver`` about the incident."""

    incident: Incident
    step: DueStep

    def to_dict(self) -> dict[str, Any]:
        return {"incident_id": self.incident.id, "model": self.incident.model,
                "key": self.incident.key, "severity": self.incident.severity,
                **self.step.to_dict()}


@dataclass(frozen=True)
class StoredPostmortem:
    incident_id: int
    text: str | None  # None until the incident resolves (or someone writes one)
    edited_by: str | None  # None while it is the system's draft
    updated_at: float | None

    @property
    def edited(self) -> bool:
        return self.edited_by is not None

    def to_dict(self) -> dict[str, Any]:
        return {"incident_id": self.incident_id, "text": self.text,
                "edited_by": self.edited_by, "updated_at": self.updated_at,
                "edited": self.edited}


def _symptom_of(info: Callable[[Mapping[str, str]], AlertInfo | None] | None
                ) -> Callable[[Mapping[str, str]], str | None] | None:
    if info is None:
        return None
    return lambda labels: getattr(info(labels), "symptom", None)


def _now(at: float | None) -> float:
    return time.time() if at is None else float(at)


def _alert_detail(alert: IncidentAlert, **extra: Any) -> dict[str, Any]:
    d = {"fingerprint": alert.fingerprint, "rule": alert.rule,
         "column": alert.labels.get("column"), "severity": alert.severity}
    return {k: v for k, v in d.items() if v is not None} | extra


class IncidentService:
    """Incidents over a :class:`~aiwarden.store.database.Database` (SQLite or PostgreSQL).

    Parameters
    ----------
    policies : escalation policy per model name, ``"*"`` for every other model; fixed
        into an incident when it opens, so editing a policy never reschedules live pages.
    key_labels : the alert labels whose values form the dedup key (after the model); an
        ``incident_key`` label, when a rule sets one, is the key instead, so several
        rules can share an incident.
    versions_live : model name → the versions serving now, for postmortem drafts written
        when an incident resolves by itself (default: the alerts' ``version`` labels).
    group_window : seconds; an alert with no incident of its own joins an open incident of
        the same model opened at most this long before, when that incident holds an active
        alert on the same version with the same symptom family (``AlertInfo.symptom``):
        one failure, one incident, every alert on its timeline. 0 turns grouping off.
    reopen_window : seconds; an alert with no open incident to join, firing at most this
        long after an incident of its key and version (or holding it) resolved, reopens that
        incident ("reopened" on its timeline, naming who resolved it) instead of opening
        another: a flapping alert is one incident. An alert that was firing when a person
        resolved the incident reopens nothing (they judged it); its firings go on the
        timeline. A reopen pages again (the policy from its first step) only when the
        severity rose. 0: never reopen.
    """

    def __init__(self, db: Database, *, policies: Mapping[str, EscalationPolicy] | None = None,
                 key_labels: Sequence[str] = ("rule",),
                 versions_live: Callable[[str], Iterable[str]] | None = None,
                 group_window: float = 900.0, reopen_window: float = 300.0) -> None:
        if isinstance(key_labels, str) or not key_labels:
            raise ParameterError("The 'key_labels' parameter of IncidentService must be a "
                                 f"non-empty list of label names. Got {key_labels!r} instead.",
                                 "key_labels")
        for name, value in (("group_window", group_window), ("reopen_window", reopen_window)):
            if not (isinstance(value, int | float) and 0 <= value < float("inf")):
                raise ParameterError(f"The '{name}' parameter of IncidentService must be a "
                                     f"number of seconds >= 0. Got {value!r} instead.", name)
        self.group_window = float(group_window)
        self.reopen_window = float(reopen_window)
        self.db = db
        self.policies = dict(policies or {})
        self.key_labels = tuple(key_labels)
        self.versions_live = versions_live

    # -- from alerts ----------------------------------------------------------------------

    def key_for(self, labels: Mapping[str, str]) -> tuple[str, str]:
        """(model, dedup key) of an alert's labels."""
        model = labels.get("model")
        if not model:
            raise ParameterError("The 'labels' parameter of IncidentService must name a "
                                 f"'model'. Got {dict(labels)!r} instead.", "labels")
        key = labels.get("incident_key") or ":".join(labels.get(k, "") for k in self.key_labels)
        return model, key

    def on_transitions(self, transitions: Iterable[tuple[Mapping[str, str], Transition]],
                       info: Callable[[Mapping[str, str]], AlertInfo | None] | None = None,
                       ) -> list[Incident]:
        """Apply a cycle's transitions in order; the incidents they touched (no repeats)."""
        touched: dict[int, Incident] = {}
        for labels, tr in transitions:
            inc = self.on_transition(labels, tr, info(labels) if info else None,
                                     symptom_of=_symptom_of(info))
            if inc is not None:
                touched[inc.id] = inc
        return list(touched.values())

    def on_transition(self, labels: Mapping[str, str], tr: Transition,
                      info: AlertInfo | None = None, *,
                      symptom_of: Callable[[Mapping[str, str]], str | None] | None = None,
                      ) -> Incident | None:
        """Open, join or update an incident; ``None`` for transitions incidents ignore.

        ``symptom_of`` gives the symptom family of another alert (by its labels), so this
        one can join the incident of the same failure (see ``group_window``).
        """
        if tr.kind in OPENING_KINDS:
            return self._fired(labels, tr, info or AlertInfo(), symptom_of)
        if tr.kind in ("resolved", "recovering", "escalated", "deescalated"):
            return self._alert_changed(labels, tr)
        return None  # pending, cancelled, nodata, error…: not (yet) an incident's business

    def _fired(self, labels: Mapping[str, str], tr: Transition, info: AlertInfo,
               symptom_of: Callable[[Mapping[str, str]], str | None] | None = None
               ) -> Incident:
        model, key = self.key_for(labels)
        fp = fingerprint(dict(labels))
        with self.db.write() as conn:
            inc = store.find_open(conn, model, key, for_update=True)
            events: list[TimelineEntry] = []
            if inc is None:  # it came back while the incident it joined is still open
                inc = store.open_holding(conn, model, fp)
            if inc is None and symptom_of is not None:
                inc = self._same_failure(conn, model, labels, tr.at, info.symptom, symptom_of)
            if inc is None:
                inc = self._reopened(conn, model, key, fp, labels, tr, events)
            if inc is None:
                inc = self._open(conn, model, key, labels, tr, info, events)
            before = next((a for a in inc.alerts if a.fingerprint == fp), None)
            active_before = before is not None and before.state != "resolved"
            alert = IncidentAlert(
                fp, labels.get("rule"), dict(labels),
                dict(info.annotations) or (before.annotations if before else {}),
                tr.severity, "firing", before.fired_at if before and active_before else tr.at)
            store.upsert_alert(conn, inc.id, alert)
            if not active_before:
                events.append(TimelineEntry(tr.at, SYSTEM, "alert_fired",
                                            _alert_detail(alert, value=tr.value)))
            if not inc.is_open:  # firing when a person resolved it: on its timeline only
                store.add_events(conn, inc.id, events)
                return store.get(conn, inc.id)
            severity = worse_severity(inc.severity, tr.severity)
            if severity != inc.severity:
                events.append(TimelineEntry(tr.at, SYSTEM, "severity",
                                            {"from": inc.severity, "to": severity}))
            runbooks = inc.runbooks
            if info.runbook and info.runbook not in runbooks:
                runbooks = (*runbooks, info.runbook)
            inc = replace(inc, severity=severity, runbooks=runbooks)
            store.save(conn, inc)
            store.add_events(conn, inc.id, events)
            return store.get(conn, inc.id)

    def _same_failure(self, conn: Connection, model: str, labels: Mapping[str, str],
                      at: float, symptom: str | None,
                      symptom_of: Callable[[Mapping[str, str]], str | None]
                      ) -> Incident | None:
        """The open incident this alert belongs to as the same failure, if any."""
        version = labels.get("version")
        if not version or not symptom or self.group_window <= 0:
            return None
        for inc in store.list_incidents(conn, model=model, open_only=True,
                                        created_from=at - self.group_window):
            if any(a.state != "resolved" and a.labels.get("version") == version
                   and symptom_of(a.labels) == symptom for a in inc.alerts):
                return store.get(conn, inc.id, for_update=True)
        return None

    def _reopened(self, conn: Connection, model: str, key: str, fp: str,
                  labels: Mapping[str, str], tr: Transition, events: list[TimelineEntry]
                  ) -> Incident | None:
        """The recently resolved incident this firing belongs to, reopened; left resolved
        when a person resolved it while this very alert fired (they judged it: its flaps
        are no news); None: none within ``reopen_window``, so a new incident opens."""
        if self.reopen_window <= 0:
            return None
        inc = store.recently_resolved(conn, model, key, fp, tr.at - self.reopen_window)
        if inc is None or inc.resolved_at is None:
            return None
        resolved = [e for e in store.timeline(conn, inc.id)
                    if e.kind == "status" and e.detail.get("to") == Status.RESOLVED.value]
        by = resolved[-1].actor if resolved else SYSTEM
        held = next((a for a in inc.alerts if a.fingerprint == fp), None)
        version = labels.get("version")
        if held is None and version and not any(
                a.labels.get("version") in (version, None) for a in inc.alerts):
            return None  # the same rule on another version: another failure
        if held is not None and (held.state != "resolved" or (
                by != SYSTEM and (held.resolved_at or 0.0) > inc.resolved_at)):
            return inc  # it fired when they resolved it: they judged it; no news
        if inc.key != key:  # it carries another rule's key, which may have opened anew
            current = store.find_open(conn, model, inc.key, for_update=True)
            if current is not None:
                return current
        rule = labels.get("rule") or key
        text = f"reopened: {rule} fired again"
        if by != SYSTEM:
            text += f" (resolved by {by})"
        events.append(TimelineEntry(tr.at, SYSTEM, "reopened", {
            "text": text, "rule": rule, "resolved_by": by, "resolved_at": inc.resolved_at,
            **({"version": labels["version"]} if labels.get("version") else {})}))
        new = reopen(inc, tr.at)
        store.save(conn, new)
        if severity_rank(tr.severity) > severity_rank(inc.severity) and \
                store.restart_escalation(conn, inc.id, tr.at):
            events.append(TimelineEntry(tr.at, SYSTEM, "escalation_restarted", {
                "from": inc.severity, "to": tr.severity}))
        return new

    def find_holding(self, model: str, rule: str | None, version: str | None = None
                     ) -> Incident | None:
        """The newest open incident of ``model`` holding an alert of ``rule`` (on
        ``version``): with grouping, an alert's incident may carry another rule's key."""
        with self.db.read() as conn:
            for inc in store.list_incidents(conn, model=model, open_only=True):
                if any(a.rule == rule and (version is None or a.labels.get("version") == version)
                       for a in inc.alerts):
                    return inc
        return None

    def _open(self, conn: Connection, model: str, key: str, labels: Mapping[str, str],
              tr: Transition, info: AlertInfo, events: list[TimelineEntry]) -> Incident:
        title = info.title or f"{labels.get('rule') or key} firing on {model}"
        iid = store.insert_incident(conn, model=model, key=key, title=title,
                                    severity=tr.severity, created_at=tr.at, runbooks=())
        if iid is None:  # opened concurrently by another process: join it
            inc = store.find_open(conn, model, key, for_update=True)
            if inc is None:  # pragma: no cover - it closed in between; nothing sane to do
                raise RuntimeError(f"incident for {model}/{key} vanished while opening")
            return inc
        events.append(TimelineEntry(tr.at, SYSTEM, "opened",
                                    {"key": key, "title": title, "severity": tr.severity}))
        policy = self.policies.get(model) or self.policies.get("*")
        if policy is not None:
            store.start_escalation(conn, iid, policy, Progress(0, 0, tr.at))
        return store.get(conn, iid)

    def _alert_changed(self, labels: Mapping[str, str], tr: Transition) -> Incident | None:
        """An alert resolved, recovered or changed severity, in every incident holding it."""
        fp = fingerprint(dict(labels))
        last = None
        with self.db.write() as conn:
            for iid in store.active_holders(conn, fp):
                inc = store.get(conn, iid, for_update=True)
                last = self._update_alert(conn, inc, fp, tr)
        return last

    def _update_alert(self, conn: Connection, inc: Incident, fp: str,
                      tr: Transition) -> Incident:
        alert = next(a for a in inc.alerts if a.fingerprint == fp)
        events: list[TimelineEntry] = []
        if tr.kind == "resolved":
            alert = replace(alert, state="resolved", resolved_at=tr.at)
            events.append(TimelineEntry(tr.at, SYSTEM, "alert_resolved", _alert_detail(alert)))
        elif tr.kind == "recovering":
            alert = replace(alert, state="recovering")
        elif tr.severity != alert.severity:  # escalated / deescalated
            events.append(TimelineEntry(tr.at, SYSTEM, "alert_severity", _alert_detail(
                alert, **{"from": alert.severity, "to": tr.severity})))
            alert = replace(alert, severity=tr.severity)
            severity = worse_severity(inc.severity, tr.severity)
            if inc.is_open and severity != inc.severity:
                events.append(TimelineEntry(tr.at, SYSTEM, "severity",
                                            {"from": inc.severity, "to": severity}))
                inc = replace(inc, severity=severity)
                store.save(conn, inc)
        store.upsert_alert(conn, inc.id, alert)
        inc = replace(inc, alerts=tuple(alert if a.fingerprint == fp else a
                                        for a in inc.alerts))
        all_clear = tr.kind == "resolved" and inc.is_open and not inc.alerts_active
        if all_clear and inc.held_open:
            events.append(TimelineEntry(tr.at, SYSTEM, "auto_resolve_held", {}))
        store.add_events(conn, inc.id, events)
        if all_clear and not inc.held_open:  # clocks may disagree: never date it backwards
            inc = self._move(conn, inc, Status.RESOLVED, max(tr.at, inc.last_transition_at),
                             SYSTEM, "all alerts resolved")
        return inc

    # -- from people ----------------------------------------------------------------------

    def transition(self, incident_id: int, to: Status | str, actor: str,
                   at: float | None = None, *, note: str | None = None,
                   versions: Iterable[str] | None = None) -> Incident:
        """Move to ``to``; an illegal or back-dated move raises ParameterError."""
        with self.db.write() as conn:
            inc = store.get(conn, incident_id, for_update=True)
            return self._move(conn, inc, to, _now(at), actor, note, versions)

    def acknowledge(self, incident_id: int, actor: str, at: float | None = None, *,
                    note: str | None = None) -> Incident:
        return self.transition(incident_id, Status.ACKNOWLEDGED, actor, at, note=note)

    def mitigate(self, incident_id: int, actor: str, at: float | None = None, *,
                 note: str | None = None) -> Incident:
        return self.transition(incident_id, Status.MITIGATED, actor, at, note=note)

    def resolve(self, incident_id: int, actor: str, at: float | None = None, *,
                note: str | None = None, versions: Iterable[str] | None = None) -> Incident:
        return self.transition(incident_id, Status.RESOLVED, actor, at, note=note,
                               versions=versions)

    def decline(self, incident_id: int, actor: str, at: float | None = None, *,
                note: str | None = None) -> Incident:
        """A false positive: closed, and left out of MTTR."""
        return self.transition(incident_id, Status.DECLINED, actor, at, note=note)

    def _move(self, conn: Connection, inc: Incident, to: Status | str, at: float, actor: str,
              note: str | None = None, versions: Iterable[str] | None = None) -> Incident:
        new = transition(inc, to, at)
        store.save(conn, new)
        detail = {"from": inc.status.value, "to": new.status.value}
        store.add_events(conn, inc.id, [TimelineEntry(at, actor, "status", detail | (
            {"note": note} if note else {}))])
        if new.status != Status.TRIGGERED:  # someone is on it, or it is over: stop paging
            store.stop_escalation(conn, inc.id)
        if new.status == Status.RESOLVED:
            self._store_draft(conn, new, at, versions)
        return new

    def _store_draft(self, conn: Connection, inc: Incident, at: float,
                     versions: Iterable[str] | None) -> None:
        _, edited_by, _ = store.postmortem(conn, inc.id)
        if edited_by is not None:  # never overwrite what people wrote
            return
        if versions is None and self.versions_live is not None:
            versions = list(self.versions_live(inc.model))
        doc = draft(inc, store.timeline(conn, inc.id), versions=versions)
        store.set_postmortem(conn, inc.id, doc.to_markdown(), None, at)

    def _record(self, incident_id: int, entry: TimelineEntry,
                change: Callable[[Incident], Incident] | None = None) -> Incident:
        with self.db.write() as conn:
            inc = store.get(conn, incident_id, for_update=True)
            if change is not None:
                inc = change(inc)
                store.save(conn, inc)
            store.add_events(conn, incident_id, [entry])
            return store.get(conn, incident_id)

    def assign(self, incident_id: int, assignee: str | None, actor: str,
               at: float | None = None) -> Incident:
        return self._record(incident_id, TimelineEntry(_now(at), actor, "assigned",
                                                       {"assignee": assignee}),
                            lambda inc: replace(inc, assignee=assignee))

    def comment(self, incident_id: int, text: str, actor: str,
                at: float | None = None) -> Incident:
        if not isinstance(text, str) or not text.strip():
            raise ParameterError("The 'text' parameter of comment must be non-empty. "
                                 f"Got {text!r} instead.", "text")
        return self._record(incident_id, TimelineEntry(_now(at), actor, "comment",
                                                       {"text": text}))

    def record_action(self, incident_id: int, text: str, actor: str, at: float | None = None,
                      detail: Mapping[str, Any] | None = None) -> Incident:
        """Something done about it (rollback, retrain, new reference): for the postmortem."""
        return self._record(incident_id, TimelineEntry(_now(at), actor, "action",
                                                       {"text": text, **(detail or {})}))

    def record_notification(self, incident_id: int, receiver: str, at: float | None = None,
                            *, ok: bool = True, detail: Mapping[str, Any] | None = None,
                            actor: str = SYSTEM) -> Incident:
        return self._record(incident_id, TimelineEntry(
            _now(at), actor, "notification", {"receiver": receiver, "ok": ok,
                                              **(detail or {})}))

    def hold_open(self, incident_id: int, held: bool, actor: str,
                  at: float | None = None) -> Incident:
        """Keep an incident open after its alerts resolve; releasing may resolve it now."""
        at = _now(at)
        with self.db.write() as conn:
            inc = store.get(conn, incident_id, for_update=True)
            if held and not inc.is_open:
                raise ParameterError(f"Cannot hold incident {incident_id} open: it is "
                                     f"{inc.status.value}.", "held")
            inc = replace(inc, held_open=held)
            store.save(conn, inc)
            store.add_events(conn, incident_id, [TimelineEntry(at, actor, "held_open",
                                                               {"held": held})])
            if not held and inc.is_open and inc.alerts and not inc.alerts_active:
                self._move(conn, inc, Status.RESOLVED, max(at, inc.last_transition_at),
                           SYSTEM, "all alerts resolved; hold released")
            return store.get(conn, incident_id)

    # -- reading --------------------------------------------------------------------------

    def get(self, incident_id: int) -> Incident:
        with self.db.read() as conn:
            return store.get(conn, incident_id)

    def list_incidents(self, *, model: str | None = None,
                       status: Iterable[Status | str] | None = None, open_only: bool = False,
                       limit: int | None = None) -> list[Incident]:
        """Newest first."""
        with self.db.read() as conn:
            return store.list_incidents(conn, model=model, status=status,
                                        open_only=open_only, limit=limit)

    def find_open(self, model: str, key: str) -> Incident | None:
        with self.db.read() as conn:
            return store.find_open(conn, model, key)

    def timeline(self, incident_id: int) -> list[TimelineEntry]:
        with self.db.read() as conn:
            store.get(conn, incident_id)  # NotFound for an unknown id, not an empty list
            return store.timeline(conn, incident_id)

    # -- escalation -----------------------------------------------------------------------

    def due_escalations(self, now: float) -> list[Escalation]:
        """The steps due by ``now``, claimed: each is returned once, then recorded.

        Only triggered incidents escalate; acknowledging (or closing) stops the policy.
        The caller notifies each step's receiver and may :meth:`record_notification`.
        """
        out = []
        with self.db.write() as conn:
            for inc, policy, progress in store.due_progress(conn, now):
                steps, after = due_steps(policy, progress, now)
                store.advance_progress(conn, inc.id, policy, after)
                store.add_events(conn, inc.id, [TimelineEntry(
                    now, SYSTEM, "escalation", s.to_dict() | {"policy": policy.name})
                    for s in steps])
                out += [Escalation(inc, s) for s in steps]
        return out

    def escalation(self, incident_id: int) -> tuple[EscalationPolicy, Progress | None] | None:
        """The incident's policy and next step (``None``: stopped or done), if it has one."""
        with self.db.read() as conn:
            return store.progress_of(conn, incident_id)

    # -- metrics --------------------------------------------------------------------------

    def response_times(self, start: float, end: float,
                       model: str | None = None) -> dict[str, ResponseTimes]:
        """MTTA/MTTR per model over incidents opened in ``[start, end)``."""
        with self.db.read() as conn:
            incs = store.list_incidents(conn, model=model, created_from=start, created_to=end)
        return response_times(incs, start, end, models=[model] if model else ())

    # -- postmortem -----------------------------------------------------------------------

    def draft_postmortem(self, incident_id: int, *, versions: Iterable[str] | None = None,
                         factors: Iterable[str] = ()) -> Postmortem:
        """A fresh draft from what is stored now (the stored text is not changed)."""
        with self.db.read() as conn:
            inc = store.get(conn, incident_id)
            if versions is None and self.versions_live is not None:
                versions = list(self.versions_live(inc.model))
            return draft(inc, store.timeline(conn, incident_id), versions=versions,
                         factors=factors)

    def postmortem(self, incident_id: int) -> StoredPostmortem:
        with self.db.read() as conn:
            return StoredPostmortem(incident_id, *store.postmortem(conn, incident_id))

    def edit_postmortem(self, incident_id: int, text: str, actor: str,
                        at: float | None = None) -> StoredPostmortem:
        """Store people's text; from now on resolution never replaces it with a draft."""
        if not isinstance(text, str) or not text.strip():
            raise ParameterError("The 'text' parameter of edit_postmortem must be non-empty. "
                                 f"Got {text!r} instead.", "text")
        at = _now(at)
        with self.db.write() as conn:
            store.get(conn, incident_id, for_update=True)
            store.set_postmortem(conn, incident_id, text, actor, at)
            store.add_events(conn, incident_id, [TimelineEntry(at, actor, "postmortem_edited",
                                                               {"chars": len(text)})])
            return StoredPostmortem(incident_id, *store.postmortem(conn, incident_id))
