"""One alert instance's life: normal → pending → firing → recovering → normal.

Pure and deterministic: :func:`step` takes the previous state, one evaluation and the
time, and returns the new state plus the transitions that happened, so the evaluation
loop, the tests and a restart (state is stored between steps) all see the same logic.

Semantics follow Prometheus/Grafana alerting:

* ``for``: a breach must hold that long (pending) before the alert fires;
* ``keep_firing_for``: once the breach clears, the alert keeps firing (recovering) that
  long and returns to firing if the breach comes back, so a flapping value pages once;
* hysteresis: a firing alert clears only when the value is back past the threshold by a
  margin (``hysteresis`` × |threshold|), not merely back across it;
* no data and evaluation errors map to ``NoData``/``Error`` states or are treated as
  breaching (``Alerting``), clear (``OK``) or ignored (``KeepLast``).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from aiwarden.errors import ParameterError

__all__ = ["AlertState", "Condition", "Evaluation", "Missing", "Phase", "Transition", "step"]


class Phase(StrEnum):
    NORMAL = "normal"
    PENDING = "pending"
    FIRING = "firing"
    RECOVERING = "recovering"
    NODATA = "nodata"
    ERROR = "error"


class Missing(StrEnum):
    """What no data (or an evaluation error) means for the alert."""

    NODATA = "NoData"  # a state of its own, which notifies as such
    ERROR = "Error"  # likewise, for evaluation errors
    ALERTING = "Alerting"  # treat as a critical breach
    OK = "OK"  # treat as clear
    KEEP_LAST = "KeepLast"  # change nothing


_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_SEVERITIES = ("warning", "critical")


@dataclass(frozen=True)
class Condition:
    """When a value breaches: ``value <op> threshold`` at warning and/or critical level."""

    op: str = ">"
    warning: float | None = None
    critical: float | None = None
    hysteresis: float = 0.05
    for_seconds: float = 0.0
    keep_firing_for: float = 0.0
    no_data: Missing = Missing.NODATA
    on_error: Missing = Missing.ERROR

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ParameterError(f"op: expected one of {sorted(_OPS)}, got {self.op!r}.", "op")
        if self.warning is None and self.critical is None:
            raise ParameterError("A condition needs a warning or a critical threshold.",
                                 "critical")
        if self.warning is not None and self.critical is not None:
            worse = _OPS[self.op](self.critical, self.warning) or self.critical == self.warning
            if not worse:
                raise ParameterError(
                    f"critical ({self.critical}) must be at least as severe as warning "
                    f"({self.warning}) for op {self.op!r}.", "critical")
        for name in ("hysteresis", "for_seconds", "keep_firing_for"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value >= 0 and math.isfinite(value)):
                raise ParameterError(f"{name}: expected a finite number ≥ 0, got {value!r}.",
                                     name)

    def level(self, value: float, current: str | None) -> str | None:
        """The severity ``value`` breaches, with hysteresis relative to ``current``."""
        breach = None
        for sev in _SEVERITIES:
            t = self.warning if sev == "warning" else self.critical
            if t is None:
                continue
            if _OPS[self.op](value, self._cleared(t) if _rank(current) >= _rank(sev) else t):
                breach = sev
        return breach

    def _cleared(self, threshold: float) -> float:
        """Where a breach of ``threshold`` ends: past it by the hysteresis margin."""
        margin = self.hysteresis * (abs(threshold) if threshold else 1.0)
        return threshold - margin if self.op in (">", ">=") else threshold + margin


def _rank(severity: str | None) -> int:
    return 0 if severity is None else _SEVERITIES.index(severity) + 1


@dataclass(frozen=True)
class Evaluation:
    """One evaluation's outcome: a value, no data (``value=None``) or an error."""

    value: float | None
    error: str | None = None
    reason: str | None = None  # why there is no value, e.g. "not enough data: ..."


@dataclass(frozen=True)
class AlertState:
    phase: Phase = Phase.NORMAL
    severity: str | None = None  # of the current breach, when pending/firing/recovering
    since: float | None = None  # when the current phase began
    breach_since: float | None = None  # when the current breach began
    clear_since: float | None = None  # when the breach last cleared (recovering)
    fired_at: float | None = None
    value: float | None = None
    error: str | None = None
    reason: str | None = None  # why a NoData state has no value

    @property
    def active(self) -> bool:
        """Notifiable: firing, recovering, or a mapped no-data / error state."""
        return self.phase in (Phase.FIRING, Phase.RECOVERING, Phase.NODATA, Phase.ERROR)

    def to_dict(self) -> dict[str, Any]:
        return {"phase": self.phase.value, "severity": self.severity, "since": self.since,
                "breach_since": self.breach_since, "clear_since": self.clear_since,
                "fired_at": self.fired_at, "value": self.value, "error": self.error,
                "reason": self.reason}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AlertState:
        return cls(phase=Phase(d.get("phase", "normal")), severity=d.get("severity"),
                   since=d.get("since"), breach_since=d.get("breach_since"),
                   clear_since=d.get("clear_since"), fired_at=d.get("fired_at"),
                   value=d.get("value"), error=d.get("error"), reason=d.get("reason"))


@dataclass(frozen=True)
class Transition:
    """A change worth recording or notifying: ``firing``, ``resolved``, ``escalated``…"""

    kind: str
    at: float
    severity: str | None = None
    value: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def step(state: AlertState, ev: Evaluation, cond: Condition,
         now: float) -> tuple[AlertState, list[Transition]]:
    """The state after one evaluation at ``now``, and what changed."""
    if ev.error is not None or ev.value is None or not math.isfinite(ev.value):
        missing = cond.on_error if ev.error is not None else cond.no_data
        return _missing(state, ev, missing, cond, now)
    if state.phase in (Phase.NODATA, Phase.ERROR):  # data is back: start afresh
        back = Transition("data_back" if state.phase == Phase.NODATA else "error_cleared", now)
        new, events = step(AlertState(), ev, cond, now)
        return new, [back, *events]
    severity = cond.level(ev.value, state.severity if state.phase != Phase.NORMAL else None)
    return _breach(state, severity, ev.value, cond, now)


def _breach(state: AlertState, severity: str | None, value: float | None, cond: Condition,
            now: float) -> tuple[AlertState, list[Transition]]:
    s = replace(state, value=value, error=None)
    events: list[Transition] = []
    if severity is not None:
        if s.phase == Phase.NORMAL:
            s = replace(s, phase=Phase.PENDING, severity=severity, since=now, breach_since=now)
            events.append(Transition("pending", now, severity, value))
        elif s.phase == Phase.RECOVERING:  # the breach came back before recovery ended
            s = replace(s, phase=Phase.FIRING, since=now, clear_since=None)
            events.append(Transition("refiring", now, severity, value))
        if s.phase in (Phase.FIRING, Phase.PENDING) and severity != s.severity:
            kind = "escalated" if _rank(severity) > _rank(s.severity) else "deescalated"
            if s.phase == Phase.FIRING:
                events.append(Transition(kind, now, severity, value,
                                         {"from": s.severity}))
            s = replace(s, severity=severity)
        if s.phase == Phase.PENDING and now - _at(s.breach_since, now) >= cond.for_seconds:
            s = replace(s, phase=Phase.FIRING, since=now, fired_at=now)
            events.append(Transition("firing", now, s.severity, value))
        return s, events
    if s.phase == Phase.PENDING:  # never fired: back to normal quietly
        return AlertState(value=value), [Transition("cancelled", now, s.severity, value)]
    if s.phase == Phase.FIRING:
        s = replace(s, phase=Phase.RECOVERING, since=now, clear_since=now)
        events.append(Transition("recovering", now, s.severity, value))
    if s.phase == Phase.RECOVERING and now - _at(s.clear_since, now) >= cond.keep_firing_for:
        events.append(Transition("resolved", now, s.severity, value,
                                 {"fired_at": s.fired_at}))
        return AlertState(value=value), events
    return s, events


def _at(t: float | None, now: float) -> float:
    """A stored time, or ``now`` when unset (0.0 is a valid epoch, not unset)."""
    return now if t is None else t


def _missing(state: AlertState, ev: Evaluation, missing: Missing, cond: Condition,
             now: float) -> tuple[AlertState, list[Transition]]:
    if missing == Missing.KEEP_LAST:
        return replace(state, error=ev.error), []
    if missing == Missing.OK:  # as if the value were fine: the clearing path
        if state.phase in (Phase.NODATA, Phase.ERROR):
            return AlertState(), []
        return _breach(state, None, None, cond, now)
    if missing == Missing.ALERTING:  # a critical breach that fires at once
        reason = {"reason": ev.error or ev.reason or "no data"}
        if state.phase == Phase.FIRING:
            return replace(state, severity="critical", value=None, error=ev.error), []
        if state.phase == Phase.RECOVERING:
            return (replace(state, phase=Phase.FIRING, severity="critical", since=now,
                            clear_since=None, value=None, error=ev.error),
                    [Transition("refiring", now, "critical", None, reason)])
        return (AlertState(phase=Phase.FIRING, severity="critical", since=now, breach_since=now,
                           fired_at=now, value=None, error=ev.error),
                [Transition("firing", now, "critical", None, reason)])
    phase = Phase.ERROR if missing == Missing.ERROR else Phase.NODATA
    if state.phase == phase:
        return replace(state, error=ev.error, reason=ev.reason), []
    kind = "error" if phase == Phase.ERROR else "nodata"
    events = []
    if state.phase in (Phase.FIRING, Phase.RECOVERING):  # the breach can no longer be seen
        events.append(Transition("resolved", now, state.severity, None,
                                 {"fired_at": state.fired_at, "reason": kind}))
    detail = {"error": ev.error} if ev.error else {"reason": ev.reason} if ev.reason else {}
    events.append(Transition(kind, now, None, None, detail))
    return AlertState(phase=phase, since=now, value=None, error=ev.error,
                      reason=ev.reason), events
