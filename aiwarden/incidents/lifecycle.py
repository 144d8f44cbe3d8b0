"""An incident's life, as pure functions: status changes, escalation timing, response times.

Nothing here touches a database or a clock: callers pass the time in, so the service, a
restarted service and the tests all apply the same rules.

Statuses::

    triggered ──► acknowledged ──► mitigated ──► resolved
        │  │            │  │                        ▲
        │  └────────────┼──┴────────────────────────┘ (resolved from any open status)
        └──► declined ◄─┘                             (a false positive)

Forward skips are allowed (an alert that clears on its own resolves a triggered incident;
mitigating implies acknowledging). Declined is final. Resolved is final for people; only
an alert firing again shortly after (the service's ``reopen_window``) reopens a resolved
incident (:func:`reopen`), so a flapping alert is one incident, not one per flap; later,
the same key opens a *new* incident. MTTR then runs from the first opening to the last
resolution: the failure was with us all that time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from aiwarden.errors import ParameterError

__all__ = [
    "SEVERITIES", "TRANSITIONS", "Comment", "DueStep", "EscalationPolicy", "EscalationStep",
    "Incident", "IncidentAlert", "Progress", "ResponseTimes", "Status", "TimelineEntry",
    "due_steps", "reopen", "response_times", "severity_rank", "transition", "worse_severity",
]


class Status(StrEnum):
    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"
    DECLINED = "declined"

    @property
    def closed(self) -> bool:
        return self in (Status.RESOLVED, Status.DECLINED)


_S = Status
TRANSITIONS: Mapping[Status, frozenset[Status]] = MappingProxyType({
    _S.TRIGGERED: frozenset({_S.ACKNOWLEDGED, _S.MITIGATED, _S.RESOLVED, _S.DECLINED}),
    _S.ACKNOWLEDGED: frozenset({_S.MITIGATED, _S.RESOLVED, _S.DECLINED}),
    _S.MITIGATED: frozenset({_S.RESOLVED}),
    _S.RESOLVED: frozenset(),
    _S.DECLINED: frozenset(),
})

SEVERITIES = ("info", "warning", "critical")


def severity_rank(severity: str | None) -> int:
    """0 for none or unknown, so any known severity outranks them."""
    return SEVERITIES.index(severity) + 1 if severity in SEVERITIES else 0


def worse_severity(a: str | None, b: str | None) -> str | None:
    return b if severity_rank(b) > severity_rank(a) else a


@dataclass(frozen=True)
class IncidentAlert:
    """One alert instance (by fingerprint) in an incident, and where it is now."""

    fingerprint: str
    rule: str | None
    labels: dict[str, str]
    annotations: dict[str, str]
    severity: str | None
    state: str  # firing | recovering | resolved
    fired_at: float
    resolved_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "rule": self.rule, "labels": self.labels,
                "annotations": self.annotations, "severity": self.severity,
                "state": self.state, "fired_at": self.fired_at,
                "resolved_at": self.resolved_at}


@dataclass(frozen=True)
class Comment:
    at: float
    actor: str
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "actor": self.actor, "text": self.text}


@dataclass(frozen=True)
class TimelineEntry:
    """One thing that happened: ``kind`` is e.g. alert_fired, status, comment, escalation."""

    at: float
    actor: str
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "actor": self.actor, "kind": self.kind, "detail": self.detail}


@dataclass(frozen=True)
class Incident:
    id: int
    model: str
    key: str
    title: str
    severity: str | None
    status: Status
    created_at: float
    assignee: str | None = None
    acknowledged_at: float | None = None
    mitigated_at: float | None = None
    resolved_at: float | None = None
    declined_at: float | None = None
    held_open: bool = False
    runbooks: tuple[str, ...] = ()
    alerts: tuple[IncidentAlert, ...] = ()
    comments: tuple[Comment, ...] = ()

    @property
    def is_open(self) -> bool:
        return not self.status.closed

    @property
    def last_transition_at(self) -> float:
        """The latest lifecycle timestamp: no status change may be dated before it."""
        times = (self.created_at, self.acknowledged_at, self.mitigated_at, self.resolved_at,
                 self.declined_at)
        return max(t for t in times if t is not None)

    @property
    def alerts_active(self) -> bool:
        return any(a.state != "resolved" for a in self.alerts)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "model": self.model, "key": self.key, "title": self.title,
                "severity": self.severity, "status": self.status.value,
                "assignee": self.assignee, "created_at": self.created_at,
                "acknowledged_at": self.acknowledged_at, "mitigated_at": self.mitigated_at,
                "resolved_at": self.resolved_at, "declined_at": self.declined_at,
                "held_open": self.held_open, "runbooks": list(self.runbooks),
                "alerts": [a.to_dict() for a in self.alerts],
                "comments": [c.to_dict() for c in self.comments]}


def _status(value: Status | str) -> Status:
    try:
        return Status(value)
    except ValueError:
        raise ParameterError(
            f"The 'status' parameter of Incident must be one of {[s.value for s in Status]}. "
            f"Got {value!r} instead.", "status") from None


def transition(incident: Incident, to: Status | str, at: float) -> Incident:
    """The incident after moving to ``to`` at ``at``; refuses illegal or back-dated moves."""
    target = _status(to)
    allowed = TRANSITIONS[incident.status]
    if target not in allowed:
        raise ParameterError(
            f"The 'status' parameter of Incident {incident.id} must be one of "
            f"{sorted(s.value for s in allowed)} when it is {incident.status.value!r}. "
            f"Got {target.value!r} instead.", "status")
    if not (isinstance(at, int | float) and math.isfinite(at)):
        raise ParameterError(f"The 'at' parameter of Incident {incident.id} must be a finite "
                             f"epoch time. Got {at!r} instead.", "at")
    last = incident.last_transition_at
    if at < last:
        raise ParameterError(
            f"The 'at' parameter of Incident {incident.id} must not be earlier than its last "
            f"status change ({last}). Got {at} instead.", "at")
    changes: dict[str, Any] = {"status": target}
    if target in (Status.ACKNOWLEDGED, Status.MITIGATED) and incident.acknowledged_at is None:
        changes["acknowledged_at"] = at  # mitigating means someone is on it
    if target == Status.MITIGATED:
        changes["mitigated_at"] = at
    elif target == Status.RESOLVED:
        changes["resolved_at"] = at
    elif target == Status.DECLINED:
        changes["declined_at"] = at
    return replace(incident, **changes)


def reopen(incident: Incident, at: float) -> Incident:
    """The resolved incident triggered again at ``at`` (an alert of it fired again).

    Its opening and first acknowledgement stay (MTTA is about the first response); the
    mitigation and resolution are undone, since the failure is back.
    """
    if incident.status != Status.RESOLVED:
        raise ParameterError(f"The 'status' parameter of Incident {incident.id} must be "
                             f"'resolved' to reopen it. Got {incident.status.value!r} "
                             "instead.", "status")
    if not (isinstance(at, int | float) and math.isfinite(at)):
        raise ParameterError(f"The 'at' parameter of Incident {incident.id} must be a finite "
                             f"epoch time. Got {at!r} instead.", "at")
    return replace(incident, status=Status.TRIGGERED, mitigated_at=None, resolved_at=None)


# -- escalation -------------------------------------------------------------------------


@dataclass(frozen=True)
class EscalationStep:
    """Wait ``wait_minutes`` (after opening, or after the previous step), then notify."""

    wait_minutes: float
    receiver: str

    def __post_init__(self) -> None:
        w = self.wait_minutes
        if isinstance(w, bool) or not isinstance(w, int | float) or not (
                math.isfinite(w) and w >= 0):
            raise ParameterError("The 'wait_minutes' parameter of EscalationStep must be a "
                                 f"finite number ≥ 0. Got {w!r} instead.", "wait_minutes")
        if not isinstance(self.receiver, str) or not self.receiver:
            raise ParameterError("The 'receiver' parameter of EscalationStep must be a "
                                 f"non-empty name. Got {self.receiver!r} instead.", "receiver")


@dataclass(frozen=True)
class EscalationPolicy:
    """Ordered steps; after the last, the whole sequence runs ``repeat`` more times."""

    steps: tuple[EscalationStep, ...]
    repeat: int = 0
    name: str = "default"

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        if not self.steps:
            raise ParameterError("The 'steps' parameter of EscalationPolicy must hold at "
                                 "least one step. Got [] instead.", "steps")
        if isinstance(self.repeat, bool) or not isinstance(self.repeat, int) or self.repeat < 0:
            raise ParameterError("The 'repeat' parameter of EscalationPolicy must be an int "
                                 f"≥ 0. Got {self.repeat!r} instead.", "repeat")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "repeat": self.repeat,
                "steps": [{"wait_minutes": s.wait_minutes, "receiver": s.receiver}
                          for s in self.steps]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EscalationPolicy:
        return cls(tuple(EscalationStep(s["wait_minutes"], s["receiver"]) for s in d["steps"]),
                   repeat=d.get("repeat", 0), name=d.get("name", "default"))


@dataclass(frozen=True)
class Progress:
    """Where an incident is in its policy: the next step, the round, and since when."""

    step: int
    round: int
    since: float  # the incident's opening, then the due time of the step before

    def due_at(self, policy: EscalationPolicy) -> float:
        return self.since + 60.0 * policy.steps[self.step].wait_minutes


@dataclass(frozen=True)
class DueStep:
    step: int
    round: int
    receiver: str
    due_at: float

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "round": self.round, "receiver": self.receiver,
                "due_at": self.due_at}


def due_steps(policy: EscalationPolicy, progress: Progress | None,
              now: float) -> tuple[list[DueStep], Progress | None]:
    """The steps due by ``now`` (all of them, after an outage) and the progress after them.

    A step's wait counts from the previous step's *due* time, not from when it was sent,
    so the schedule does not drift with the loop's timing. ``None`` progress: finished.
    """
    due: list[DueStep] = []
    while progress is not None and progress.due_at(policy) <= now:
        at = progress.due_at(policy)
        due.append(DueStep(progress.step, progress.round,
                           policy.steps[progress.step].receiver, at))
        if progress.step + 1 < len(policy.steps):
            progress = Progress(progress.step + 1, progress.round, at)
        elif progress.round < policy.repeat:
            progress = Progress(0, progress.round + 1, at)
        else:
            progress = None
    return due, progress


# -- response times ---------------------------------------------------------------------


@dataclass(frozen=True)
class ResponseTimes:
    """MTTA and MTTR of one model's incidents opened in ``[start, end)``.

    MTTA averages over incidents that were acknowledged (declined ones included: someone
    responded); MTTR over resolved ones, from opening to resolution. ``None``: none yet.
    """

    model: str
    start: float
    end: float
    incidents: int
    acknowledged: int
    resolved: int
    mtta_seconds: float | None
    mttr_seconds: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "start": self.start, "end": self.end,
                "incidents": self.incidents, "acknowledged": self.acknowledged,
                "resolved": self.resolved, "mtta_seconds": self.mtta_seconds,
                "mttr_seconds": self.mttr_seconds}


def response_times(incidents: Iterable[Incident], start: float, end: float,
                   models: Iterable[str] = ()) -> dict[str, ResponseTimes]:
    """Per model, over the incidents created in ``[start, end)``; ``models`` always listed."""
    if not end > start:
        raise ParameterError(f"The 'end' parameter of response_times must be after start "
                             f"({start}). Got {end!r} instead.", "end")
    by_model: dict[str, list[Incident]] = {m: [] for m in models}
    for inc in incidents:
        if start <= inc.created_at < end:
            by_model.setdefault(inc.model, []).append(inc)
    out = {}
    for model, incs in sorted(by_model.items()):
        ack = [i.acknowledged_at - i.created_at for i in incs if i.acknowledged_at is not None]
        res = [i.resolved_at - i.created_at for i in incs
               if i.status == Status.RESOLVED and i.resolved_at is not None]
        out[model] = ResponseTimes(model, start, end, len(incs), len(ack), len(res),
                                   sum(ack) / len(ack) if ack else None,
                                   sum(res) / len(res) if res else None)
    return out
