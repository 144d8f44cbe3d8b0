"""From alert transitions to messages: routing, grouping, silences, inhibition, delivery.

The pure pieces (``routing``, ``grouping``, ``silences``, ``notifiers``) are joined here
with the store: the config (route, receivers, inhibit rules), the silences and the
dispatcher's group state are saved after every change, so a restart neither re-pages nor
forgets a group that was waiting. Receiver secrets are stored (they are needed to send)
but never returned: :meth:`NotificationCenter.describe` shows them as ``***``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from aiwarden.alerting.grouping import Dispatcher, Flush, to_notification
from aiwarden.alerting.notifiers import (
    Deliverer,
    Notification,
    Receiver,
    receiver_from_config,
)
from aiwarden.alerting.routing import Router
from aiwarden.alerting.silences import InhibitRule, Silence, Silences
from aiwarden.alerting.state import Transition
from aiwarden.errors import ParameterError
from aiwarden.incidents.lifecycle import EscalationPolicy, EscalationStep
from aiwarden.store import alerts_repo, kv
from aiwarden.store.database import Database

__all__ = ["DEFAULT_CONFIG", "NotificationCenter"]

CONFIG, SILENCES, STATE = "notify.config", "notify.silences", "notify.dispatcher"
# Until someone configures receivers, alerts are grouped and recorded but sent nowhere.
DEFAULT_CONFIG: dict[str, Any] = {"route": {"receiver": "none", "group_by": ["model", "rule"]},
                                  "receivers": [], "inhibit_rules": [
                                      {"source_matchers": ["severity=critical"],
                                       "target_matchers": ["severity=warning"],
                                       "equal": ["model"]}]}
_FIRING = {"firing", "refiring", "escalated", "deescalated"}


class NotificationCenter:
    def __init__(self, db: Database, deliverer: Deliverer | None = None) -> None:
        self.db = db
        self.deliverer = deliverer or Deliverer(on_attempt=self._attempted)
        if deliverer is not None and deliverer.on_attempt is None:
            deliverer.on_attempt = self._attempted
        self._lock = threading.RLock()
        self.attempts: deque[dict[str, Any]] = deque(maxlen=500)
        self.silences = Silences()
        self._build(DEFAULT_CONFIG, None)  # until load() reads the stored ones

    # ----------------------------------------------------------------- config
    def load(self) -> None:
        """Read the stored config, silences and group state (after migrations ran)."""
        with self.db.read() as conn:
            config = kv.get(conn, CONFIG, DEFAULT_CONFIG)
            silences = kv.get(conn, SILENCES, {})
            state = kv.get(conn, STATE)
        self.silences = Silences.from_dict(silences) if silences else Silences()
        self._build(config, state)

    def _build(self, config: Mapping[str, Any], state: Mapping[str, Any] | None) -> None:
        receivers = {}
        for i, spec in enumerate(config.get("receivers") or []):
            try:
                r = receiver_from_config(spec)
            except ParameterError as exc:
                raise ParameterError(f"receivers[{i}]: {exc}", f"receivers[{i}]") from None
            receivers[r.name] = r
        router = Router.from_config({"route": config.get("route") or DEFAULT_CONFIG["route"]})
        rules = [InhibitRule.from_config(r) for r in config.get("inhibit_rules") or []]
        known = set(receivers) | {"none"}
        missing = sorted({r.receiver for r in router.routes()} - known)
        if missing:
            raise ParameterError(f"route: receiver(s) {missing} are not defined under "
                                 "receivers.", "route")
        policies = {}
        for model, spec in (config.get("escalation_policies") or {}).items():
            where = f"escalation_policies.{model}"
            try:
                policy = EscalationPolicy(
                    steps=tuple(EscalationStep(**step) for step in spec.get("steps", [])),
                    repeat=spec.get("repeat", 0), name=str(model))
            except (TypeError, AttributeError) as exc:
                raise ParameterError(f"{where}: {exc}", where) from None
            unknown = sorted({st.receiver for st in policy.steps} - set(receivers))
            if unknown:
                raise ParameterError(f"{where}: receiver(s) {unknown} are not defined.", where)
            policies[str(model)] = policy
        dispatcher = (Dispatcher.from_dict(state, router, silences=self.silences,
                                           inhibit_rules=rules) if state
                      else Dispatcher(router, silences=self.silences, inhibit_rules=rules))
        self.config, self.receivers, self.dispatcher = dict(config), receivers, dispatcher
        self.policies: dict[str, EscalationPolicy] = policies

    def configure(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Validate and store a new config; waiting groups carry over."""
        with self._lock:
            state = self.dispatcher.to_dict()
            self._build(config, state)
            with self.db.write() as conn:
                kv.put(conn, CONFIG, dict(config))
                kv.put(conn, STATE, self.dispatcher.to_dict())
        return self.describe()

    def describe(self) -> dict[str, Any]:
        """The config as the API shows it: receivers described, secrets as ``***``."""
        return {"route": self.config.get("route"),
                "inhibit_rules": self.config.get("inhibit_rules", []),
                "escalation_policies": self.config.get("escalation_policies", {}),
                "receivers": [r.describe() for r in self.receivers.values()]}

    # --------------------------------------------------------------- silences
    def add_silence(self, spec: Mapping[str, Any], actor: str) -> dict[str, Any]:
        now = time.time()
        silence = Silence(matchers=spec.get("matchers"),
                          starts_at=spec.get("starts_at", now), ends_at=spec.get("ends_at"),
                          created_by=actor, comment=spec.get("comment", ""))
        with self._lock:
            self.silences.add(silence)
            self._save_silences()
        return silence.to_dict()

    def expire_silence(self, silence_id: str) -> dict[str, Any]:
        with self._lock:
            s = self.silences.expire(silence_id, time.time())
            self._save_silences()
        return s.to_dict()

    def _save_silences(self) -> None:
        with self.db.write() as conn:
            kv.put(conn, SILENCES, self.silences.to_dict())

    # ------------------------------------------------------------- the flow
    def on_transitions(self, transitions: Iterable[tuple[Mapping[str, str], Transition]],
                       annotations: Mapping[tuple[str, str], Mapping[str, str]] | None = None,
                       ) -> None:
        """Feed firing/resolved transitions to the dispatcher (grouping starts here)."""
        with self._lock:
            for labels, tr in transitions:
                if tr.kind not in _FIRING and tr.kind != "resolved":
                    continue
                alert = {"labels": dict(labels), "fingerprint": alerts_repo.fingerprint(
                    dict(labels)), "status": "resolved" if tr.kind == "resolved" else "firing",
                    "severity": tr.severity or "warning", "startsAt": tr.detail.get(
                        "fired_at") or tr.at,
                    "annotations": dict((annotations or {}).get(
                        (labels.get("model", ""), labels.get("rule", "")), {})),
                    **({"endsAt": tr.at} if tr.kind == "resolved" else {})}
                if tr.value is not None:
                    alert["annotations"].setdefault("value", f"{tr.value:.4g}")
                self.dispatcher.receive(alert, tr.at)
            self._save_state()

    def tick(self, now: float | None = None) -> list[Flush]:
        """Send what is due; a flush to ``none`` or a receiver that does not exist is kept
        on record (``attempts``) instead of silently vanishing."""
        now = time.time() if now is None else now
        with self._lock:
            flushes = self.dispatcher.due(now)
            for flush in flushes:
                receiver = self.receivers.get(flush.receiver)
                if receiver is None:
                    self.attempts.append({"receiver": flush.receiver, "at": now, "ok": False,
                                          "error": "no receiver configured",
                                          "group_key": flush.group_key})
                    continue
                self.deliverer.send(receiver, to_notification(flush))
            if flushes:
                self._save_state()
        return flushes

    def _save_state(self) -> None:
        with self.db.write() as conn:
            kv.put(conn, STATE, self.dispatcher.to_dict())

    def _attempted(self, attempt: Any) -> None:
        self.attempts.append(attempt.to_dict())

    def receiver(self, name: str) -> Receiver | None:
        return self.receivers.get(name)

    def send(self, receiver_name: str, notification: Notification) -> bool:
        """Queue one message outside the grouping (escalations); False: no such receiver."""
        receiver = self.receivers.get(receiver_name)
        if receiver is None:
            self.attempts.append({"receiver": receiver_name, "at": time.time(), "ok": False,
                                  "error": "no receiver configured"})
            return False
        self.deliverer.send(receiver, notification)
        return True
