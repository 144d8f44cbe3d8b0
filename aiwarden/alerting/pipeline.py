"""What follows an evaluation cycle: alerts open or join incidents, and a new incident gets
its root-cause analysis attached to the timeline at once (the on-call reads it first).

Notifications and escalation pages go out from one process only: the one holding the
evaluator lease (:class:`Leadership`), or two processes sharing a database would page
twice. A process that gains the lease reloads the dispatcher's stored state and resumes
the outbox before it sends anything; one that loses it drops its in-memory queue.

The hand-over of alert transitions to incidents and notifications is driven by the store:
the notifying process takes every alert event above a stored mark (``DISPATCHED``) and
moves the mark in the transaction that saves the notification groups. A leader killed
between recording a transition and grouping it leaves the event above the mark, and its
successor hands it over when it takes the lease: nothing is missed and nothing is grouped
twice. A :class:`Heartbeat` renews the lease every few seconds apart from the evaluation
cycle, so the lease can be short and a successor takes over within about its TTL; on
PostgreSQL the holder also holds the lease's session lock, which the database releases
when the holder's process dies, so a successor takes over at its next beat (about 1 s).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiwarden.alerting.evaluator import LEASE, CycleReport
from aiwarden.alerting.notifiers import Notification
from aiwarden.alerting.notify import NotificationCenter
from aiwarden.alerting.rules import Rule
from aiwarden.alerting.state import Transition
from aiwarden.errors import ParameterError
from aiwarden.incidents import AlertInfo, Incident, IncidentService
from aiwarden.incidents.rollback import Rollbacks, Rolled, Verdict
from aiwarden.monitoring.service import Monitor
from aiwarden.rca import analyse, to_markdown
from aiwarden.store import alerts_repo, kv
from aiwarden.store.database import Database
from aiwarden.store.session_lock import SessionLock

__all__ = ["DISPATCHED", "AlertPipeline", "Heartbeat", "Leadership", "heartbeat_every"]

log = logging.getLogger("aiwarden.alerting")
RCA_ACTION = "Root-cause analysis"
MAX_RCA_RUNS = 5  # an incident's analysis is redone when a new rule joins it, this often at most
DISPATCHED = "alerting.dispatched"  # the last alert event id handed to notifications


def heartbeat_every(ttl: float, *, postgres: bool = False) -> float:
    """How often the lease is renewed: five beats per TTL, so a few late beats (a loaded
    machine) do not lose it, and at most every 2 s; on PostgreSQL at most every 1 s, as a
    beat is also when a follower tries the holder's session lock (one cheap statement)
    and so how soon it sees a dead holder."""
    return max(0.05, min(1.0 if postgres else 2.0, ttl / 5))


class Heartbeat(threading.Thread):
    """Calls ``beat`` every ``every`` seconds until stopped: the lease renewal (and, in a
    process that is not the leader, the take-over once the leader's lease lapsed), apart
    from evaluation cycles and maintenance, which may take longer than the lease."""

    def __init__(self, beat: Callable[[], Any], every: float) -> None:
        super().__init__(name="aiwarden-lease-heartbeat", daemon=True)
        self.beat, self.every = beat, every
        self.stop = threading.Event()

    def run(self) -> None:
        while True:
            try:
                self.beat()
            except Exception:  # the database is away: the next beat retries
                log.exception("lease heartbeat failed")
            if self.stop.wait(self.every):
                return


class Leadership:
    """Whether this process is the one that notifies: the evaluator lease names it.

    With ``take`` (a process running the evaluation loop) each check takes the lease when
    it is free and renews it. Without, the process only notifies while the lease still
    names it (it took it by evaluating on request) and never renews it, so a process whose
    loop is off cannot keep evaluation away from the others. Checks use the wall clock,
    whatever ``now`` a cycle was evaluated at.
    """

    def __init__(self, db: Database, holder: str, ttl: float, *, take: bool = True) -> None:
        self.db, self.holder, self.ttl, self.take = db, holder, ttl, take
        # PostgreSQL: the holder's liveness, so a dead holder is replaced at the next beat
        self.alive = SessionLock(db.url, LEASE) if take and not db.is_sqlite else None
        self._mutex = threading.Lock()  # the heartbeat's and the evaluation's checks
        self._quiet_until = 0.0

    def check(self) -> bool:
        try:
            if not self.take:
                with self.db.write() as conn:
                    return alerts_repo.holds_lease(conn, LEASE, self.holder)
            with self._mutex:
                return self._take()
        except Exception as exc:  # the database is away: do not act as the leader
            log.warning("could not check the %s lease: %s", LEASE, type(exc).__name__)
            return False

    def _take(self) -> bool:
        """The lock first, then the row. A lock just taken proves the row's holder has no
        session: take the row whoever it names. Without it, renew our own row or take one
        whose TTL lapsed (the holder's lock outlived it: a stall, or a partitioned peer
        whose backend lives on). A lock holder that finds the row taken (it stalled past
        the TTL) lets the lock go and leaves it alone for TTL/2, so the new holder takes
        it instead of this process taking it back."""
        hold = "none"
        if self.alive is not None and time.monotonic() >= self._quiet_until:
            hold = self.alive.hold()
        now = time.time()
        with self.db.write() as conn:
            if hold == "new":
                return alerts_repo.take_lease(conn, LEASE, self.holder, self.ttl, now)
            ok = alerts_repo.acquire_lease(conn, LEASE, self.holder, self.ttl, now,
                                           create=self.alive is None)
        if not ok and hold == "held" and self.alive is not None:
            log.warning("the %s lease was taken while this process held its session lock "
                        "(a stall past the TTL): letting the lock go", LEASE)
            self.alive.release()
            self._quiet_until = time.monotonic() + self.ttl / 2
        return ok

    def release(self) -> None:
        """Hand the lease over now (a clean shutdown), so no one waits for it to expire:
        the session lock first (a follower that takes it takes the row at once), then the
        row, expired, if nobody took it meanwhile."""
        if self.alive is not None:
            self.alive.close()
        with self.db.write() as conn:
            if alerts_repo.holds_lease(conn, LEASE, self.holder):
                # renewed for zero seconds: expired from this instant on
                alerts_repo.acquire_lease(conn, LEASE, self.holder, 0.0, time.time())


class AlertPipeline:
    """``leadership`` None: this process is alone and always notifies."""

    def __init__(self, monitor: Monitor, incidents: IncidentService,
                 notifications: NotificationCenter | None = None, *,
                 rca_window: float = 3600.0, leadership: Leadership | None = None,
                 rollbacks: Rollbacks | None = None,
                 lock: threading.RLock | None = None) -> None:
        self.monitor, self.incidents, self.rca_window = monitor, incidents, rca_window
        self.notifications, self.rollbacks = notifications, rollbacks
        # set by the server: switch this process's gateways at once after a rollback
        self.after_rollback: Callable[[str], Any] | None = None
        # set by the server: what each version leans on (mean |SHAP|), for "drift that
        # matters" in the RCA (aiwarden.rca.analysis.Importance)
        self.importance: Any = None
        self.leadership = leadership
        self.leading = False
        self._lead_lock = threading.Lock()
        # the evaluator's cycle lock (Evaluator.lock): alert events are handed over in the
        # order they were committed, never while this process is recording more
        self.lock = lock or threading.RLock()

    def lead(self) -> bool:
        """Check the lease; on gaining it take over the stored state, on losing it stand
        down. True when this process may notify now."""
        if self.notifications is None:
            return False
        with self._lead_lock:
            ok = self.leadership is None or self.leadership.check()
            if ok and not self.leading:
                resumed = self.notifications.take_over()
                log.info("Notifying from this process now; %d queued message(s) resumed.",
                         resumed)
            elif not ok and self.leading:
                dropped = self.notifications.stand_down()
                log.info("Another process notifies now; %d queued message(s) left to it.",
                         dropped)
            elif ok:
                self.notifications.refresh()  # config or silences set through another process
            self.leading = ok
            return ok

    def release(self) -> None:
        """Stop notifying and hand the lease over (at shutdown)."""
        with self._lead_lock:
            if self.leading and self.notifications is not None:
                self.notifications.stand_down()
            self.leading = False
            if self.leadership is not None:
                self.leadership.release()

    def start(self) -> None:
        """Set the hand-over mark on a store that has none (a new one, or one from before
        the mark existed): events recorded before it were handed over by then."""
        with self.monitor.db.write() as conn:
            kv.put_if_absent(conn, DISPATCHED, alerts_repo.last_event_id(conn))

    def after_cycle(self, report: CycleReport) -> list[Incident]:
        with self.lock:
            if self.rollbacks is not None and report.evaluated:
                for rolled in self.rollbacks.check_canaries():  # measured, not alerted
                    self._rolled_back(rolled, self.notifications if self.lead() else None)
            center = self.notifications if self.lead() else None  # a new leader reloads first
            if center is None:  # incidents follow; the notifying process hands them over
                return self._handle(report.transitions, None) if report.transitions else []
            touched = self._catch_up(center, report.transitions)
            if not touched and not report.transitions:
                self.tick()
            return touched

    def beat(self) -> bool:
        """The heartbeat: renew (or take) the lease; a process that leads hands over what
        its predecessor recorded but did not (unless a cycle of its own is doing it)."""
        leading = self.lead()
        if leading and self.notifications is not None and self.lock.acquire(blocking=False):
            try:
                self._catch_up(self.notifications, None)
            finally:
                self.lock.release()
        return leading

    def tick(self, now: float | None = None) -> None:
        """Send due notifications and escalations, and judge rollbacks whose wait is over,
        in the process holding the lease only."""
        if self.notifications is not None and self.lead():
            if self.rollbacks is not None:
                for verdict in self.rollbacks.verify_due(now):
                    self._verified(verdict, self.notifications)
            self._send(self.notifications, now)

    def _catch_up(self, center: NotificationCenter,
                  fallback: list[tuple[dict[str, str], Transition]] | None
                  ) -> list[Incident]:
        """Hand every alert event above the stored mark to incidents and notifications,
        moving the mark with the groups. ``fallback``: this cycle's transitions, used
        when the store has no mark yet (a pipeline that was never started)."""
        touched: dict[int, Incident] = {}
        while True:
            with self.monitor.db.read() as conn:
                mark = kv.get(conn, DISPATCHED)
                if mark is None:
                    if fallback:
                        return self._handle(fallback, center)
                    return []
                rows = alerts_repo.events_after(conn, int(mark))
            if not rows:
                return list(touched.values())
            transitions = [(labels, Transition(**event)) for _, labels, event in rows]
            for inc in self._handle(transitions, center, mark=rows[-1][0]):
                touched[inc.id] = inc
            if len(rows) < 10_000:
                return list(touched.values())

    def _handle(self, transitions: list[tuple[dict[str, str], Transition]],
                center: NotificationCenter | None, mark: int | None = None
                ) -> list[Incident]:
        """Incidents, their RCA, rollbacks, then (from the notifying process) grouping."""
        infos = self._rule_infos({labels["model"] for labels, _ in transitions})
        if center is not None:  # the policy is fixed when an incident opens
            self.incidents.policies = center.policies
        touched = self.incidents.on_transitions(
            transitions, info=lambda labels: infos.get((labels["model"], labels["rule"])))
        for inc in touched:
            if inc.is_open and self._rca_is_stale(inc):
                self.attach_rca(inc)
        if self.rollbacks is not None:
            for rolled in self.rollbacks.on_transitions(transitions):
                self._rolled_back(rolled, center)
        if center is not None:
            center.on_transitions(transitions, {
                k: dict(v.annotations) | ({"runbook": v.runbook} if v.runbook else {})
                for k, v in infos.items()}, also=None if mark is None else {DISPATCHED: mark})
            self._send(center, None)
        elif self.notifications is not None:
            log.warning("%d alert transition(s) evaluated while another process held the "
                        "lease: the one notifying hands them over.", len(transitions))
        return touched

    # --------------------------------------------------------------- rollbacks
    def rollback_by_hand(self, model: str, alias: str, to: str | None, reason: str,
                         actor: str) -> Rolled:
        if self.rollbacks is None:
            raise ParameterError("Rollbacks are not enabled on this server.", "model")
        rolled = self.rollbacks.rollback(model, alias, to=to, reason=reason, actor=actor)
        self._rolled_back(rolled, self.notifications if self.lead() else None)
        return rolled

    def _incident_of(self, rolled: Rolled) -> Incident | None:
        if rolled.rule is not None:
            inc = self.incidents.find_holding(rolled.model, rolled.rule, rolled.from_version)
            if inc is not None:
                return inc
        found = self.incidents.list_incidents(model=rolled.model, open_only=True, limit=1)
        return found[0] if found else None

    def _rolled_back(self, rolled: Rolled, center: NotificationCenter | None) -> None:
        """On the incident's timeline, and to the receivers the model's alerts go to."""
        if self.after_rollback is not None:
            try:
                self.after_rollback(rolled.model)
            except Exception:  # the gateways' own poll still catches the move
                log.exception("reloading the gateways of %s failed", rolled.model)
        text = (f"Rolled {rolled.model}@{rolled.alias} back from version "
                f"{rolled.from_version} to {rolled.to_version}")
        inc = self._incident_of(rolled)
        if inc is not None:
            self.incidents.record_action(inc.id, text, rolled.actor, detail=rolled.to_dict())
        self._announce(center, rolled, f"Rollback: {text}", {"reason": rolled.reason}, inc)

    def _verified(self, verdict: Verdict, center: NotificationCenter) -> None:
        inc = self._incident_of(verdict.rolled)
        if inc is not None:
            self.incidents.record_action(inc.id, verdict.text(), "aiwarden", detail={
                "outcome": verdict.outcome, "value": verdict.value,
                "rollback": verdict.rolled.to_dict()})
        self._announce(center, verdict.rolled, verdict.text(), {"outcome": verdict.outcome},
                       inc)

    def _announce(self, center: NotificationCenter | None, rolled: Rolled, title: str,
                  annotations: dict[str, str], inc: Incident | None) -> None:
        labels = {"model": rolled.model, "rule": rolled.rule or "rollback",
                  "version": rolled.to_version, "severity": "critical", "kind": "rollback"}
        self._tell(center, labels, title, annotations, f"rollback-{rolled.at}", inc,
                   {"rollback": title})

    def _tell(self, center: NotificationCenter | None, labels: dict[str, str], title: str,
              annotations: dict[str, str], group_key: str, inc: Incident | None,
              noted: dict[str, Any]) -> None:
        """Send an event that is not an alert (a rollback, a training run) to the routes the
        model's alerts go to, and note each delivery on its incident."""
        if center is None:
            return
        for route in center.dispatcher.router.match(labels):
            if route.receiver == "none":
                continue
            sent = center.send(route.receiver, Notification(
                title=title, status="firing", severity=labels["severity"],
                model=labels["model"], labels=labels, annotations=annotations,
                group_key=group_key))
            if inc is not None:
                self.incidents.record_notification(inc.id, route.receiver, ok=sent,
                                                   detail=noted)

    def announce(self, model: str, kind: str, title: str, *, severity: str = "warning",
                 labels: Mapping[str, str] | None = None, key: str | None = None) -> None:
        """An event of another part of the loop (``kind``: training, promotion) on the
        model's open incident's timeline and to its routes, from the lead process only."""
        found = self.incidents.list_incidents(model=model, open_only=True, limit=1)
        inc = found[0] if found else None
        center = self.notifications if self.lead() else None
        self._tell(center, {"model": model, "rule": kind, "severity": severity, "kind": kind,
                            **(labels or {})}, title, {}, key or f"{kind}-{time.time()}", inc,
                   {kind: title})

    def _send(self, center: NotificationCenter, now: float | None) -> None:
        """Queue due escalations and group notifications; note each on its incident."""
        self.incidents.policies = center.policies
        self._escalate(center, time.time() if now is None else now)
        for flush in center.tick(now):
            model, rule = flush.group_labels.get("model"), flush.group_labels.get("rule")
            inc = self.incidents.find_holding(model, rule) if model and rule else None
            if inc is not None:
                nobody = flush.receiver == "none"  # the default route: nobody was told
                self.incidents.record_notification(inc.id, flush.receiver, ok=not nobody,
                                                   detail={
                    "status": flush.status, "firing": len(flush.firing),
                    "resolved": len(flush.resolved),
                    **({"error": "no receiver configured"} if nobody else {})})

    def _rule_infos(self, models: set[str]) -> dict[tuple[str, str], AlertInfo]:
        out: dict[tuple[str, str], AlertInfo] = {}
        with self.monitor.db.read() as conn:
            for model in models:
                for sr in alerts_repo.list_rules(conn, model):
                    out[(model, sr.name)] = AlertInfo.from_rule(Rule.model_validate(sr.spec))
        return out

    def _rca_is_stale(self, inc: Incident) -> bool:
        """No RCA yet, or a rule fired since the last one: a later alert (a labelled accuracy
        drop after a drift alert) brings evidence the first analysis could not see, so the
        incident's analysis is redone, up to ``MAX_RCA_RUNS`` times."""
        runs = [e for e in self.incidents.timeline(inc.id)
                if e.kind == "action" and e.detail.get("text") == RCA_ACTION]
        if not runs:
            return True
        seen = set(runs[-1].detail.get("alerts") or ())
        return len(runs) < MAX_RCA_RUNS and bool(seen) and any(
            a.rule not in seen for a in inc.alerts if a.rule)

    def attach_rca(self, inc: Incident, now: float | None = None) -> Mapping[str, Any] | None:
        """Run the RCA over the window that led to the incident and put it on the timeline."""
        end = time.time() if now is None else now
        # the version the alerts fired on: a canary's incident is about the canary's rows
        fired = [a.labels.get("version") for a in inc.alerts if a.labels.get("version")]
        try:
            report = analyse(self.monitor, inc.model, start=end - self.rca_window, end=end,
                             version=fired[0] if fired else None,
                             symptom=self._metric_of(inc), importance=self.importance)
        except Exception as exc:  # an RCA failure must not lose the incident
            log.warning("RCA for incident %s failed: %s", inc.id, exc)
            return None
        self.incidents.record_action(inc.id, RCA_ACTION, "aiwarden", detail={
            "suspects": report["suspects"][:10], "markdown": to_markdown(report),
            "alerts": sorted({a.rule for a in inc.alerts if a.rule})})
        return report

    def _metric_of(self, inc: Incident) -> str | None:
        """The metric of the rule that opened the incident (what the RCA explains)."""
        rule = inc.alerts[0].rule if inc.alerts else None
        with self.monitor.db.read() as conn:
            for sr in alerts_repo.list_rules(conn, inc.model):
                if sr.name == rule:
                    return sr.spec.get("metric")
        return None

    def _escalate(self, center: NotificationCenter, now: float) -> None:
        for esc in self.incidents.due_escalations(now):
            inc, step = esc.incident, esc.step
            sent = center.send(step.receiver, Notification(
                title=f"Escalation: {inc.title}", status="firing",
                severity=inc.severity if inc.severity in ("critical", "warning") else "warning",
                model=inc.model, labels={"model": inc.model, "incident": str(inc.id)},
                annotations={"escalation_step": str(step.step + 1),
                             "round": str(step.round + 1)},
                runbook=inc.runbooks[0] if inc.runbooks else None,
                group_key=f"incident-{inc.id}"))
            self.incidents.record_notification(inc.id, step.receiver, ok=sent, detail={
                "escalation_step": step.step + 1, "round": step.round + 1})
