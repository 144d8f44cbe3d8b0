"""From alert transitions to messages: routing, grouping, silences, inhibition, delivery.

The pure pieces (``routing``, ``grouping``, ``silences``, ``notifiers``) are joined here
with the store: the config (route, receivers, inhibit rules), the silences and the
dispatcher's group state are saved after every change, so a restart neither re-pages nor
forgets a group that was waiting. Receiver secrets are stored (they are needed to send)
but never returned: :meth:`NotificationCenter.describe` shows them as ``***``.

Delivery is durable. A message is written to the outbox (``store/outbox_repo.py``) in the
transaction that records its group as notified, and every attempt moves its row along
(pending → sent / failed) and is logged; :meth:`NotificationCenter.resume` hands the
pending rows back to the in-memory :class:`Deliverer` (FIFO per receiver, backoff carried
on) after a restart or when another process's work is taken over. With several processes
on one database only one delivers (``AlertPipeline`` decides, by the evaluator lease);
the others serve the API and write config and silences to the store, where the
delivering process's :meth:`NotificationCenter.refresh` picks them up.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, select

from aiwarden.alerting.grouping import Dispatcher, Flush, to_notification
from aiwarden.alerting.notifiers import (
    Deliverer,
    DeliveryAttempt,
    Notification,
    Receiver,
    receiver_from_config,
)
from aiwarden.alerting.routing import Router
from aiwarden.alerting.silences import InhibitRule, Silence, Silences
from aiwarden.alerting.state import Transition
from aiwarden.egress import EgressPolicy
from aiwarden.errors import ParameterError
from aiwarden.incidents.lifecycle import EscalationPolicy, EscalationStep
from aiwarden.store import alerts_repo, kv, outbox_repo
from aiwarden.store.database import Database
from aiwarden.store.tables import kv_state

__all__ = ["DEFAULT_CONFIG", "NotificationCenter"]

log = logging.getLogger("aiwarden.alerting")
CONFIG, SILENCES, STATE = "notify.config", "notify.silences", "notify.dispatcher"
NO_RECEIVER = "no receiver configured"
# Until someone configures receivers, alerts are grouped and recorded but sent nowhere.
DEFAULT_CONFIG: dict[str, Any] = {"route": {"receiver": "none", "group_by": ["model", "rule"]},
                                  "receivers": [], "inhibit_rules": [
                                      {"source_matchers": ["severity=critical"],
                                       "target_matchers": ["severity=warning"],
                                       "equal": ["model"]}]}
_FIRING = {"firing", "refiring", "escalated", "deescalated"}


class NotificationCenter:
    """Routing, grouping and silences over stored state, with durable delivery.

    ``history_days``: how long sent or failed messages and the attempt log are kept.
    ``egress``: where receivers may connect (:mod:`aiwarden.egress`; deny-by-default).
    ``secrets_dir``: the folder receivers' ``{file: ...}`` secrets are read from (None:
    such references are refused).
    """

    def __init__(self, db: Database, deliverer: Deliverer | None = None, *,
                 history_days: float = 7.0, egress: EgressPolicy | None = None,
                 secrets_dir: str | Path | None = None) -> None:
        self.db = db
        self.egress = egress if egress is not None else EgressPolicy()
        self.secrets_dir = secrets_dir
        self.deliverer = deliverer or Deliverer(on_attempt=self._attempted)
        if deliverer is not None and deliverer.on_attempt is None:
            deliverer.on_attempt = self._attempted
        self.history_days = history_days
        self._lock = threading.RLock()
        self.silences = Silences()
        self._docs: tuple[Any, Any] = (None, None)  # config, silences as last read/written
        self._pruned_at = 0.0
        self._build(DEFAULT_CONFIG, None)  # until load() reads the stored ones

    # ----------------------------------------------------------------- config
    def load(self) -> None:
        """Read the stored config, silences and group state (after migrations ran)."""
        with self.db.read() as conn:
            config = kv.get(conn, CONFIG, DEFAULT_CONFIG)
            silences = kv.get(conn, SILENCES, {})
            state = kv.get(conn, STATE)
        with self._lock:
            self._set_silences(silences)
            self._build(config, state, strict=False)
            self._docs = (config, silences)

    def refresh(self) -> bool:
        """Take in config and silences that another process stored; groups stay as they are.

        True when something changed. Cheap when nothing did: two small reads.
        """
        with self.db.read() as conn:
            config = kv.get(conn, CONFIG, DEFAULT_CONFIG)
            silences = kv.get(conn, SILENCES, {})
        with self._lock:
            if (config, silences) == self._docs:
                return False
            if silences != self._docs[1]:
                self._set_silences(silences)
            if config != self._docs[0]:
                try:
                    self._build(config, self.dispatcher.to_dict(), strict=False)
                except ParameterError as exc:  # stored configs were validated; be safe
                    log.error("stored notification config is invalid, keeping the old: %s", exc)
            self._docs = (config, silences)
            return True

    def _set_silences(self, doc: Mapping[str, Any] | None) -> None:
        self.silences = Silences.from_dict(doc) if doc else Silences()
        if hasattr(self, "dispatcher"):
            self.dispatcher.silences = self.silences

    def _build(self, config: Mapping[str, Any], state: Mapping[str, Any] | None,
               strict: bool = True, *, dry_run: bool = False) -> dict[str, Receiver]:
        """Make the config live. ``strict`` also refuses targets the egress policy denies
        on their face; a stored config (strict False) loads anyway, since such a target is
        refused on every connect, and an upgrade or a narrower allowlist must not stop the
        server from starting. ``dry_run`` checks all the same and changes nothing."""
        for key, kind in (("receivers", list), ("inhibit_rules", list),
                          ("escalation_policies", Mapping)):  # a rule file's sections come
            value = config.get(key)  # unchecked: null, false, 0, "" or [] mean none
            if not (value in (None, False, 0, "") or value == [] or isinstance(value, kind)):
                raise ParameterError(f"{key}: expected a {'list' if kind is list else 'mapping'}"
                                     f"; got {type(value).__name__}.", key)
        receivers = {}
        for i, spec in enumerate(config.get("receivers") or []):
            try:
                r = receiver_from_config(spec, self.egress, self.secrets_dir)
                if strict:
                    r.check_egress()
                else:
                    try:
                        r.check_egress()
                    except ParameterError as exc:
                        log.warning("receivers[%d]: %s Deliveries to it will fail.", i, exc)
            except ParameterError as exc:
                where = f"receivers[{i}]" + (f".{exc.field}" if exc.field else "")
                raise ParameterError(f"receivers[{i}]: {exc}", where) from None
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
        if dry_run:
            return receivers
        self.config, self.receivers, self.dispatcher = dict(config), receivers, dispatcher
        self.policies: dict[str, EscalationPolicy] = policies
        self.deliverer.rebind(receivers)  # queued messages go to the receiver as now set up
        return receivers

    def configure(self, config: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Validate and store a new config; waiting groups carry over.

        Only the config is written: the group state belongs to the delivering process,
        which maps its groups onto the new routes when it next refreshes. ``dry_run``
        validates exactly as a real call does, writes nothing, and describes the config
        that would be stored.
        """
        with self._lock:
            receivers = self._build(config, self.dispatcher.to_dict(), dry_run=dry_run)
            if dry_run:
                return _described(config, receivers)
            with self.db.write() as conn:
                kv.put(conn, CONFIG, dict(config))
            self._docs = (_as_stored(config), self._docs[1])
        return self.describe()

    def describe(self) -> dict[str, Any]:
        """The config as the API shows it: receivers described, secrets as ``***``."""
        return _described(self.config, self.receivers)

    # --------------------------------------------------------------- silences
    def add_silence(self, spec: Mapping[str, Any], actor: str) -> dict[str, Any]:
        now = time.time()
        silence = Silence(matchers=spec.get("matchers"),
                          starts_at=spec.get("starts_at", now), ends_at=spec.get("ends_at"),
                          created_by=actor, comment=spec.get("comment", ""))
        self._change_silences(lambda s: s.add(silence))
        return silence.to_dict()

    def expire_silence(self, silence_id: str) -> dict[str, Any]:
        return self._change_silences(lambda s: s.expire(silence_id, time.time())).to_dict()

    def _change_silences(self, change: Callable[[Silences], Silence]) -> Silence:
        """Read-modify-write under the row's lock: processes sharing the store lose none."""
        with self._lock:
            with self.db.write() as conn:
                current = _locked(conn, SILENCES)
                silences = Silences.from_dict(current) if current else Silences()
                result = change(silences)
                doc = silences.to_dict()
                kv.put(conn, SILENCES, doc)
            self._set_silences(doc)
            self._docs = (self._docs[0], _as_stored(doc))
        return result

    # ------------------------------------------------------------- the flow
    def on_transitions(self, transitions: Iterable[tuple[Mapping[str, str], Transition]],
                       annotations: Mapping[tuple[str, str], Mapping[str, str]] | None = None,
                       also: Mapping[str, Any] | None = None) -> None:
        """Feed firing/resolved transitions to the dispatcher (grouping starts here).

        ``also``: other stored keys written in the transaction that saves the groups (the
        pipeline's mark of the alert events handed over, so a crash neither loses nor
        repeats them)."""
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
            self._save_state(also)

    def tick(self, now: float | None = None) -> list[Flush]:
        """Queue what is due. Each message enters the outbox in the transaction that saves
        its group as notified, so a crash can neither lose it nor send it twice; a flush
        to ``none`` or to a receiver that does not exist is logged as an attempt."""
        now = time.time() if now is None else now
        with self._lock:
            due_at = self.dispatcher.next_due()
            if due_at is None or due_at > now:
                self._prune()
                return []
            before = self.dispatcher.to_dict()
            flushes = self.dispatcher.due(now)
            if flushes:
                try:
                    queued = self._enqueue(flushes)
                except Exception:  # nothing was stored: nothing counts as notified
                    self._build(self.config, before)
                    raise
                for receiver, note, outbox_id in queued:
                    self.deliverer.send(receiver, note, outbox_id=outbox_id)
        self._prune()
        return flushes

    def _enqueue(self, flushes: list[Flush]) -> list[tuple[Receiver, Notification, int]]:
        queued, at = [], time.time()
        with self.db.write() as conn:
            for flush in flushes:
                note = to_notification(flush)
                receiver = self._queue(conn, flush.receiver, note, at,
                                       {"group_key": flush.group_key})
                if receiver is not None:
                    queued.append(receiver)
            kv.put(conn, STATE, self.dispatcher.to_dict())
        return queued

    def _queue(self, conn: Connection, name: str, note: Notification, at: float,
               detail: Mapping[str, Any] | None = None
               ) -> tuple[Receiver, Notification, int] | None:
        receiver = self.receivers.get(name)
        if receiver is None:
            outbox_repo.record_attempt(conn, receiver=name, at=at, ok=False, error=NO_RECEIVER,
                                       notification_id=note.id, detail=detail)
            return None
        if not receiver.wants(note):
            return None
        return receiver, note, outbox_repo.enqueue(conn, name, note.to_dict(), at)

    def _save_state(self, also: Mapping[str, Any] | None = None) -> None:
        with self.db.write() as conn:
            kv.put(conn, STATE, self.dispatcher.to_dict())
            for key, value in (also or {}).items():
                kv.put(conn, key, value)

    def receiver(self, name: str) -> Receiver | None:
        return self.receivers.get(name)

    def send(self, receiver_name: str, notification: Notification) -> bool:
        """Queue one message outside the grouping (escalations); False: no such receiver."""
        with self.db.write() as conn:
            queued = self._queue(conn, receiver_name, notification, time.time())
        if queued is None:
            return receiver_name in self.receivers  # a receiver that skips it is no failure
        receiver, note, outbox_id = queued
        self.deliverer.send(receiver, note, outbox_id=outbox_id)
        return True

    # --------------------------------------------------- durable delivery
    def resume(self) -> int:
        """Hand every pending outbox message back to the deliverer, oldest first; return
        how many. Messages for receivers no longer configured are marked failed."""
        with self.db.read() as conn:
            rows = outbox_repo.pending(conn)
        resumed, orphans = 0, []
        for row in rows:
            receiver = self.receivers.get(row.receiver)
            try:
                note = Notification.from_dict(row.notification)
            except (ParameterError, TypeError) as exc:
                orphans.append((row, f"the stored message cannot be read: {exc}"))
                continue
            if receiver is None or not receiver.wants(note):
                orphans.append((row, f"receiver {row.receiver!r} is no longer configured"
                                if receiver is None else "the receiver no longer takes it"))
                continue
            resumed += self.deliverer.send(
                receiver, note, outbox_id=row.id, attempts=row.attempts,
                queued_at=row.queued_at, next_attempt_at=row.next_attempt_at)
        if orphans:
            at = time.time()
            with self.db.write() as conn:
                for row, error in orphans:
                    outbox_repo.record_attempt(
                        conn, receiver=row.receiver, at=at, ok=False, attempt=row.attempts,
                        outbox_id=row.id, notification_id=row.notification.get("id"),
                        error=error)
        return resumed

    def take_over(self) -> int:
        """Become the delivering process: reload the stored state, resume the outbox."""
        self.deliverer.clear()
        self.load()
        return self.resume()

    def stand_down(self) -> int:
        """Stop delivering (another process took over); the outbox keeps what is owed."""
        return self.deliverer.clear()

    def _attempted(self, attempt: DeliveryAttempt) -> None:
        receiver = self.receivers.get(attempt.receiver)
        error = attempt.error
        if error is not None and receiver is not None:
            error = receiver.scrub(error)  # already scrubbed by the sender; belt and braces
        with self.db.write() as conn:
            outbox_repo.record_attempt(
                conn, receiver=attempt.receiver, at=attempt.at.timestamp(), ok=attempt.ok,
                attempt=attempt.attempt, final=attempt.final, outbox_id=attempt.outbox_id,
                notification_id=attempt.notification_id, status=attempt.status, error=error,
                retry_in=attempt.retry_in)

    def recent_attempts(self, limit: int = 500) -> list[dict[str, Any]]:
        """The latest delivery attempts of every process, oldest first; no secrets."""
        with self.db.read() as conn:
            rows = outbox_repo.attempts(conn, limit)
        return [r | {"at": _iso(r["at"]), "error": shown_error(r["error"])} for r in rows]

    def queue(self) -> list[dict[str, Any]]:
        """Messages still owed, oldest first, as stored (so any process can answer)."""
        with self.db.read() as conn:
            rows = outbox_repo.pending(conn)
        return [r.to_dict() | {"queued_at": _iso(r.queued_at),
                               "next_attempt_at": _iso(r.next_attempt_at),
                               "last_error": shown_error(r.last_error)} for r in rows]

    def _prune(self) -> None:
        now = time.time()
        if now - self._pruned_at < 3600:
            return
        self._pruned_at = now
        with self.db.write() as conn:
            outbox_repo.prune(conn, now - self.history_days * 86400)


def _described(config: Mapping[str, Any], receivers: Mapping[str, Receiver]
               ) -> dict[str, Any]:
    return {"route": config.get("route"),
            "inhibit_rules": config.get("inhibit_rules", []),
            "escalation_policies": config.get("escalation_policies", {}),
            "receivers": [r.describe() for r in receivers.values()]}


_OLD_REPLY = re.compile(r"(HTTP|SMTP) (\d{3})(?! from receiver)(.*?)"
                        r"(?P<gave_up> \(gave up after \d+ tries in \d+s\))?", re.S)


def shown_error(error: str | None) -> str | None:
    """An attempt's error as the API shows it. Versions before the egress policy stored
    the first 200 characters of the far end's reply ("HTTP 500: <body>", "SMTP 550:
    <reply>"); those rows may still be in the log, so the reply is cut off on the way out.
    """
    m = _OLD_REPLY.fullmatch(error or "")
    if m is None:
        return error
    return f"{m[1]} {m[2]} from receiver{m['gave_up'] or ''}"


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def _as_stored(doc: Mapping[str, Any]) -> Any:
    """``doc`` as it reads back from the store, so refresh() can compare like with like."""
    return orjson.loads(orjson.dumps(doc))


def _locked(conn: Connection, key: str) -> Any:
    """The stored document, its row locked until commit (PostgreSQL; SQLite writers are
    serialised anyway)."""
    kv.put_if_absent(conn, key, {})
    value = conn.execute(select(kv_state.c.value).where(kv_state.c.key == key)
                         .with_for_update()).scalar()
    return orjson.loads(value) if value else {}
