"""Alert groups and their timers: which receiver hears about which alerts, and when.

A pure, time-driven state machine in the manner of Alertmanager's dispatcher: nothing here
reads the clock or starts a thread, ``now`` (epoch seconds) is passed in, so a loop in the
server, a test and a process restarted from :meth:`Dispatcher.to_dict` behave the same.

* :meth:`Dispatcher.receive` routes an alert and puts it into one group per matching route,
  keyed by the route and the alert's ``group_by`` label values.
* :meth:`Dispatcher.due` ticks every group whose timer has run out and returns the
  :class:`Flush` es to send. A new group first ticks ``group_wait`` after it opened (so
  alerts arriving together go out together), then ``group_interval`` after each tick (so two
  messages about one group are never closer than that). A tick notifies
  when a firing alert is new to the receiver, an alert resolved, every alert resolved, or
  ``repeat_interval`` passed since the last notification of an unchanged firing group.
* Silenced and inhibited alerts are left out at tick time; a tick left with nothing to say
  sends nothing. Resolved alerts are sent (at most) once, then dropped.
* A group emptied by resolution is kept for one more ``group_interval``, so an alert that
  flaps back joins it instead of opening a new group with a fresh ``group_wait``.

Examples
--------
>>> d = Dispatcher.from_config({"route": {"receiver": "ops", "group_by": ["model"]}})
>>> for rule in ("drift", "latency"):
...     _ = d.receive({"labels": {"model": "fraud", "rule": rule}, "severity": "warning"}, 0)
>>> d.due(29), d.next_due()
([], 30.0)
>>> flush, = d.due(30)
>>> flush.receiver, [a["labels"]["rule"] for a in flush.firing]
('ops', ['drift', 'latency'])
>>> to_notification(flush).headline
'[FIRING:2] fraud'
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yaml

from aiwarden import _yaml as bounded_yaml
from aiwarden.alerting.notifiers.base import SEVERITIES, STATUSES, Notification
from aiwarden.alerting.routing import Route, Router, fail
from aiwarden.alerting.silences import Inhibitor, InhibitRule, Silences
from aiwarden.errors import ParameterError
from aiwarden.monitoring.windows import parse_instant, to_iso

__all__ = ["Dispatcher", "Flush", "to_notification"]

_ALERT_KEYS = ("fingerprint", "labels", "status", "severity", "startsAt", "endsAt",
               "annotations")


@dataclass(frozen=True)
class Flush:
    """One notification due now: a group's unmuted firing and resolved alerts."""

    receiver: str
    group_key: str
    route: str
    group_labels: Mapping[str, str]
    firing: tuple[dict[str, Any], ...]
    resolved: tuple[dict[str, Any], ...]
    at: float

    @property
    def status(self) -> str:
        return "firing" if self.firing else "resolved"

    def to_dict(self) -> dict[str, Any]:
        return {"receiver": self.receiver, "group_key": self.group_key, "route": self.route,
                "group_labels": dict(self.group_labels), "status": self.status,
                "firing": copy.deepcopy(list(self.firing)),
                "resolved": copy.deepcopy(list(self.resolved)), "at": self.at}


@dataclass
class _Sent:
    """What the receiver was last told (Alertmanager's notification log entry)."""

    at: float
    receiver: str  # a new receiver for the route (config change) has been told nothing
    firing: frozenset[str]
    resolved: frozenset[str]


@dataclass
class _Group:
    key: str
    route: str
    labels: dict[str, str]
    next_at: float
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)
    ticked: bool = False
    last: _Sent | None = None

    def to_dict(self) -> dict[str, Any]:
        last = None if self.last is None else {
            "at": self.last.at, "receiver": self.last.receiver,
            "firing": sorted(self.last.firing),
            "resolved": sorted(self.last.resolved)}
        return {"key": self.key, "route": self.route, "labels": dict(self.labels),
                "next_at": self.next_at, "ticked": self.ticked, "last": last,
                "alerts": [copy.deepcopy(self.alerts[fp]) for fp in sorted(self.alerts)]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> _Group:
        last = d.get("last")
        return cls(d["key"], d["route"], dict(d["labels"]), float(d["next_at"]),
                   {a["fingerprint"]: copy.deepcopy(dict(a)) for a in d.get("alerts", [])},
                   bool(d.get("ticked")), None if last is None else _Sent(
                       float(last["at"]), last["receiver"], frozenset(last["firing"]),
                       frozenset(last["resolved"])))


def fingerprint(labels: Mapping[str, str]) -> str:
    """Identity of an alert from its labels alone (order does not matter)."""
    return hashlib.sha256(json.dumps(sorted(labels.items())).encode()).hexdigest()[:16]


def match_labels(alert: Mapping[str, Any]) -> dict[str, str]:
    """The labels routes, silences and inhibition see: ``severity`` added when only a field."""
    labels = dict(alert["labels"])
    if alert.get("severity") and "severity" not in labels:
        labels["severity"] = alert["severity"]
    return labels


def is_resolved(alert: Mapping[str, Any], now: float) -> bool:
    """Resolved when said so, or when its ``endsAt`` has passed (its sender went quiet)."""
    ends = alert.get("endsAt")
    return alert["status"] == "resolved" or (ends is not None and ends <= now)


def _normalize(alert: Mapping[str, Any], now: float) -> dict[str, Any]:
    owner = "an alert"
    if not isinstance(alert, Mapping):
        raise fail("alert", "Dispatcher.receive", "a mapping", alert)
    labels = alert.get("labels")
    if not isinstance(labels, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise fail("labels", owner, "a mapping of str to str", labels)
    status = alert.get("status", "firing")
    if status not in STATUSES:
        raise fail("status", owner, f"one of {list(STATUSES)}", status)
    severity = alert.get("severity") or labels.get("severity")
    if severity is not None and not isinstance(severity, str):
        raise fail("severity", owner, "a str", severity)
    annotations = alert.get("annotations") or {}
    if not isinstance(annotations, Mapping):
        raise fail("annotations", owner, "a mapping", annotations)
    fp = alert.get("fingerprint") or fingerprint(labels)
    if not isinstance(fp, str):
        raise fail("fingerprint", owner, "a str", fp)
    starts = alert.get("startsAt")
    ends = alert.get("endsAt")
    rec = {k: copy.deepcopy(v) for k, v in alert.items() if k not in _ALERT_KEYS}
    rec.update(fingerprint=fp, labels=dict(labels), status=status, severity=severity,
               annotations=dict(annotations),
               startsAt=now if starts is None else parse_instant(starts, "startsAt"),
               endsAt=None if ends is None else parse_instant(ends, "endsAt"))
    if status == "resolved" and rec["endsAt"] is None:
        rec["endsAt"] = now
    return rec


def _order(item: tuple[str, dict[str, Any]]) -> tuple[Any, ...]:
    """Oldest first, then by labels: the order people read alerts in a message."""
    fp, alert = item
    return alert["startsAt"], sorted(alert["labels"].items()), fp


def _should_notify(last: _Sent | None, firing: frozenset[str], resolved: frozenset[str],
                   now: float, repeat: float) -> bool:
    """Alertmanager's dedup rule, with the repeat due at exactly ``repeat`` seconds."""
    if not firing and not resolved:
        return False  # everything muted: nothing to say, and nothing recorded as said
    if last is None:
        return bool(firing)  # a group born resolved has nobody to tell
    if not firing <= last.firing:
        return True
    if not firing:
        return bool(last.firing)  # everything resolved (or went quiet)
    if not resolved <= last.resolved:
        return True
    return now >= last.at + repeat


class Dispatcher:
    """Holds the groups; feed it with :meth:`receive`, poll it with :meth:`due`.

    ``silences`` is shared, not copied: silences added to it later apply at the next tick.
    A silenced alert still inhibits others while it fires, as in Alertmanager: silencing
    the critical alert must not let its warnings through.
    """

    def __init__(self, router: Router, *, silences: Silences | None = None,
                 inhibit_rules: Iterable[InhibitRule] = ()) -> None:
        self.router = router
        self.silences = silences if silences is not None else Silences()
        self.inhibit_rules = tuple(inhibit_rules)
        self._groups: dict[str, _Group] = {}
        self._where: dict[str, set[str]] = {}  # fingerprint -> keys of groups holding it

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | str, *,
                    silences: Silences | None = None) -> Dispatcher:
        """Build from ``{route: ..., inhibit_rules: [...]}`` (a mapping or YAML text).

        A ``receivers`` list may sit alongside; it is read by ``receiver_from_config``.
        """
        if isinstance(config, str):
            try:
                config = bounded_yaml.safe_load(config)
            except yaml.YAMLError as exc:
                raise ParameterError(f"routing config: not valid YAML: {exc}", "route") from None
        if not isinstance(config, Mapping) or "route" not in config:
            raise ParameterError("The 'route' field of the routing config is required.",
                                 "route")
        unknown = sorted(str(k) for k in config if k not in ("route", "inhibit_rules",
                                                              "receivers"))
        if unknown:
            raise ParameterError(f"The {unknown[0]!r} field of the routing config is not "
                                 f"known. Valid fields are ['inhibit_rules', 'receivers', "
                                 f"'route'].", unknown[0])
        rules = config.get("inhibit_rules")
        rules = [] if rules is None else rules
        if isinstance(rules, str) or not isinstance(rules, Sequence):
            raise fail("inhibit_rules", "the routing config", "a list", rules)
        return cls(Router.from_config({"route": config["route"]}), silences=silences,
                   inhibit_rules=[InhibitRule.from_config(r, f"inhibit_rules[{i}]")
                                  for i, r in enumerate(rules)])

    # -- input ------------------------------------------------------------------------------

    def receive(self, alert: Mapping[str, Any], now: float) -> list[str]:
        """Take a new or updated alert; return the keys of the groups it is in.

        An alert whose labels (or severity) changed so that it now belongs elsewhere is
        marked resolved in the groups it left. A resolved alert nobody heard about is ignored.
        """
        now = float(now)
        rec = _normalize(alert, now)
        fp = rec["fingerprint"]
        if is_resolved(rec, now) and not self._where.get(fp):
            return []
        keys = [self._insert(rec, route, now, now + route.group_wait)
                for route in self.router.match(match_labels(rec))]
        for key in sorted(self._where.get(fp, set()) - set(keys)):
            old = self._groups[key].alerts[fp]
            if not is_resolved(old, now):
                old.update(status="resolved", endsAt=now)
        self._where[fp] = self._where.get(fp, set()) | set(keys)
        return keys

    def _insert(self, rec: dict[str, Any], route: Route, now: float, next_at: float) -> str:
        labels = route.group_labels(match_labels(rec))
        key = f"{route.key}:{{{','.join(f'{k}={json.dumps(v)}' for k, v in labels.items())}}}"
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(key, route.key, labels, next_at)
        fp = rec["fingerprint"]
        old = group.alerts.get(fp)
        new = dict(rec)
        if old is not None and not is_resolved(old, now) and not is_resolved(new, now):
            new["startsAt"] = min(old["startsAt"], new["startsAt"])  # same episode
        group.alerts[fp] = new
        if not group.ticked and new["startsAt"] + route.group_wait <= now:
            group.next_at = min(group.next_at, now)  # it has waited long enough already
        return key

    # -- time -------------------------------------------------------------------------------

    def next_due(self) -> float | None:
        """When :meth:`due` will next have work (None: no groups), for a loop to sleep."""
        return min((g.next_at for g in self._groups.values()), default=None)

    def due(self, now: float) -> list[Flush]:
        """Tick every group whose timer ran out by ``now``; return what to send, in order."""
        now = float(now)
        ready = sorted((g for g in self._groups.values() if g.next_at <= now),
                       key=lambda g: (g.next_at, g.key))
        if not ready:
            return []
        firing_labels = {fp: match_labels(a) for g in self._groups.values()
                         for fp, a in g.alerts.items() if not is_resolved(a, now)}
        inhibitor = Inhibitor(self.inhibit_rules, firing_labels)
        flushes = []
        for group in ready:
            flush = self._tick(group, now, inhibitor)
            if flush is not None:
                flushes.append(flush)
        return flushes

    def _tick(self, group: _Group, now: float, inhibitor: Inhibitor) -> Flush | None:
        route = self.router.route(group.route)
        if route is None or (group.ticked and not group.alerts):
            self._drop_group(group)
            return None
        firing, resolved = [], []
        for fp, alert in sorted(group.alerts.items(), key=_order):
            labels = match_labels(alert)
            muted = self.silences.is_silenced(labels, now) or inhibitor.inhibited(labels, fp)
            done = is_resolved(alert, now)
            if done:  # sent now if unmuted, and never again
                del group.alerts[fp]
                self._forget(fp, group.key)
            if not muted:
                out = {**copy.deepcopy(alert), "status": "resolved" if done else "firing"}
                (resolved if done else firing).append(out)
        group.ticked = True
        group.next_at = now + route.group_interval  # from now, even when polled late
        fps = frozenset(a["fingerprint"] for a in firing)
        rfps = frozenset(a["fingerprint"] for a in resolved)
        last = group.last if group.last and group.last.receiver == route.receiver else None
        if not _should_notify(last, fps, rfps, now, route.repeat_interval):
            if not group.alerts and group.last is None:
                self._drop_group(group)
            return None
        group.last = _Sent(now, route.receiver, fps, rfps)
        return Flush(route.receiver, group.key, route.key, dict(group.labels), tuple(firing),
                     tuple(resolved), now)

    def _drop_group(self, group: _Group) -> None:
        for fp in group.alerts:
            self._forget(fp, group.key)
        del self._groups[group.key]

    def _forget(self, fp: str, key: str) -> None:
        keys = self._where.get(fp, set())
        keys.discard(key)
        if not keys:
            self._where.pop(fp, None)

    # -- inspection and persistence ---------------------------------------------------------

    def groups(self) -> list[dict[str, Any]]:
        """Every group with its alerts, timer and last notification, sorted by key."""
        return [self._groups[k].to_dict() for k in sorted(self._groups)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state; silences and config are persisted separately."""
        return {"version": 1, "groups": self.groups()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], router: Router, *,
                  silences: Silences | None = None,
                  inhibit_rules: Iterable[InhibitRule] = ()) -> Dispatcher:
        """Restore :meth:`to_dict` state under ``router`` (possibly a changed config).

        Groups whose route no longer exists hand their firing alerts to the new routes,
        keeping their timer, so the next tick tells the new receivers.
        """
        if d.get("version") != 1:
            raise fail("version", "dispatcher state", "1", d.get("version"))
        self = cls(router, silences=silences, inhibit_rules=inhibit_rules)
        orphans = []
        for raw in d.get("groups", []):
            group = _Group.from_dict(raw)
            if router.route(group.route) is None:
                orphans.append(group)
                continue
            self._groups[group.key] = group
            for fp in group.alerts:
                self._where.setdefault(fp, set()).add(group.key)
        for group in orphans:
            for fp, alert in sorted(group.alerts.items()):
                if alert["status"] == "resolved":
                    continue
                for route in router.match(match_labels(alert)):
                    key = self._insert(alert, route, group.next_at, group.next_at)
                    self._where.setdefault(fp, set()).add(key)
        return self


_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def to_notification(flush: Flush, *, url: str | None = None) -> Notification:
    """The message a :class:`~aiwarden.alerting.notifiers.Deliverer` sends for ``flush``.

    Labels and annotations are those all its alerts share; the severity is the worst
    firing one; ``created_at`` is the flush time, so the same flush gives the same
    notification id (receivers drop duplicates by it).
    """
    alerts = [*flush.firing, *flush.resolved]
    shown = flush.firing or flush.resolved
    common = _common([match_labels(a) for a in alerts])
    annotations = _common([{k: v for k, v in a["annotations"].items() if isinstance(v, str)}
                           for a in alerts])
    severity = min((a["severity"] for a in shown if a.get("severity") in _RANK),
                   key=_RANK.__getitem__, default="warning")
    name = common.get("alertname") or common.get("rule")
    model = common.get("model")
    title = " on ".join(x for x in (name, model) if x) or ", ".join(
        f"{k}={v}" for k, v in flush.group_labels.items()) or f"Alerts for {flush.receiver}"
    runbook = next((r for a in shown for r in (a.get("runbook"),
                                               a["annotations"].get("runbook"),
                                               a["annotations"].get("runbook_url"))
                    if isinstance(r, str) and r), None)
    return Notification(
        title=title, status=flush.status, severity=severity, model=model, labels=common,
        annotations=annotations, runbook=runbook, alerts=[_public(a) for a in alerts],
        url=url, group_key=hashlib.sha256(flush.group_key.encode()).hexdigest()[:32],
        created_at=datetime.fromtimestamp(flush.at, UTC))


def _common(dicts: list[dict[str, str]]) -> dict[str, str]:
    if not dicts:
        return {}
    first, *rest = dicts
    return {k: v for k, v in sorted(first.items()) if all(d.get(k) == v for d in rest)}


def _public(alert: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(alert)
    out["startsAt"] = to_iso(alert["startsAt"])
    out["endsAt"] = None if alert.get("endsAt") is None else to_iso(alert["endsAt"])
    labels = alert["labels"]
    out.setdefault("name", labels.get("alertname") or labels.get("rule"))
    return out
