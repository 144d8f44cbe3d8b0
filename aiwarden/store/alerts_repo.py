"""Stored rules, alert instances with their state, their event timeline, and leases."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from aiwarden.store.tables import alert_events, alert_instances, alert_rules, leases

__all__ = ["Instance", "StoredRule", "acquire_lease", "add_events", "delete_rule",
           "events_of", "fingerprint", "instance", "list_instances", "list_rules", "save_state",
           "upsert_rule"]


@dataclass(frozen=True)
class StoredRule:
    id: int
    model: str
    name: str
    source: str
    spec: dict[str, Any]
    updated_at: float


@dataclass(frozen=True)
class Instance:
    id: int
    rule_id: int
    model_id: int
    fingerprint: str
    labels: dict[str, str]
    state: dict[str, Any]
    updated_at: float


def _rule(r: Any) -> StoredRule:
    return StoredRule(r.id, r.model, r.name, r.source, orjson.loads(r.spec), r.updated_at)


def list_rules(conn: Connection, model: str | None = None) -> list[StoredRule]:
    """Every rule, or those that apply to ``model`` (its own and the ``*`` ones)."""
    q = select(alert_rules).order_by(alert_rules.c.model, alert_rules.c.name)
    if model is not None:
        q = q.where(alert_rules.c.model.in_([model, "*"]))
    return [_rule(r) for r in conn.execute(q)]


def upsert_rule(conn: Connection, model: str, name: str, spec: dict[str, Any],
                source: str) -> str:
    """Create or replace; returns 'created', 'updated' or 'unchanged'."""
    now = time.time()
    body = orjson.dumps(spec, option=orjson.OPT_SORT_KEYS).decode()
    row = conn.execute(select(alert_rules.c.id, alert_rules.c.spec).where(
        alert_rules.c.model == model, alert_rules.c.name == name)).first()
    if row is None:
        conn.execute(alert_rules.insert().values(model=model, name=name, source=source,
                                                 spec=body, created_at=now, updated_at=now))
        return "created"
    if orjson.loads(row.spec) == spec:
        return "unchanged"
    conn.execute(update(alert_rules).where(alert_rules.c.id == row.id).values(
        spec=body, source=source, updated_at=now))
    return "updated"


def delete_rule(conn: Connection, model: str, name: str) -> bool:
    res = conn.execute(delete(alert_rules).where(alert_rules.c.model == model,
                                                 alert_rules.c.name == name))
    return res.rowcount > 0


def fingerprint(labels: dict[str, str]) -> str:
    """Stable id of a label set: one alert instance per distinct set."""
    return hashlib.sha256(orjson.dumps(labels, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def _instance(r: Any) -> Instance:
    return Instance(r.id, r.rule_id, r.model_id, r.fingerprint, orjson.loads(r.labels),
                    orjson.loads(r.state), r.updated_at)


def instance(conn: Connection, rule_id: int, model_id: int,
             labels: dict[str, str]) -> Instance | None:
    fp = fingerprint(labels)
    row = conn.execute(select(alert_instances).where(
        alert_instances.c.rule_id == rule_id, alert_instances.c.model_id == model_id,
        alert_instances.c.fingerprint == fp)).first()
    return None if row is None else _instance(row)


def save_state(conn: Connection, rule_id: int, model_id: int, labels: dict[str, str],
               state: dict[str, Any], existing: Instance | None) -> int:
    now = time.time()
    body = orjson.dumps(state).decode()
    if existing is not None:
        conn.execute(update(alert_instances).where(alert_instances.c.id == existing.id)
                     .values(state=body, updated_at=now))
        return existing.id
    res = conn.execute(alert_instances.insert().values(
        rule_id=rule_id, model_id=model_id, fingerprint=fingerprint(labels),
        labels=orjson.dumps(labels, option=orjson.OPT_SORT_KEYS).decode(), state=body,
        updated_at=now))
    return int(res.inserted_primary_key[0])


def add_events(conn: Connection, instance_id: int, events: list[Any]) -> None:
    if events:
        conn.execute(alert_events.insert(), [
            {"instance_id": instance_id, "kind": e.kind, "at": e.at, "severity": e.severity,
             "value": e.value, "detail": orjson.dumps(e.detail).decode()} for e in events])


def list_instances(conn: Connection, model_id: int | None = None) -> list[Instance]:
    q = select(alert_instances).order_by(alert_instances.c.id)
    if model_id is not None:
        q = q.where(alert_instances.c.model_id == model_id)
    return [_instance(r) for r in conn.execute(q)]


def events_of(conn: Connection, instance_id: int) -> list[dict[str, Any]]:
    q = select(alert_events).where(alert_events.c.instance_id == instance_id).order_by(
        alert_events.c.at, alert_events.c.id)
    return [{"kind": r.kind, "at": r.at, "severity": r.severity, "value": r.value,
             "detail": orjson.loads(r.detail) if r.detail else {}} for r in conn.execute(q)]


def acquire_lease(conn: Connection, name: str, holder: str, ttl: float, now: float, *,
                  create: bool = True) -> bool:
    """Hold (or renew) the named lease for ``ttl`` seconds; False if another holder has it.

    One row per lease; the conditional update is atomic on both databases, so of several
    server processes exactly one evaluates at a time, and a dead holder's lease expires.
    ``create`` False: a missing row is left to whoever holds the lease's session lock
    (:mod:`aiwarden.store.session_lock`), which is about to create it.
    """
    res = conn.execute(update(leases).where(
        leases.c.name == name, (leases.c.holder == holder) | (leases.c.expires_at < now))
        .values(holder=holder, expires_at=now + ttl))
    if res.rowcount:
        return True
    if create and conn.execute(
            select(leases.c.name).where(leases.c.name == name)).first() is None:
        try:
            with conn.begin_nested():
                conn.execute(leases.insert().values(name=name, holder=holder,
                                                    expires_at=now + ttl))
            return True
        except IntegrityError:  # another process created it first: it holds the lease
            return False
    return False


def take_lease(conn: Connection, name: str, holder: str, ttl: float, now: float) -> bool:
    """Take the named lease whoever holds it, expired or not: for the process that just
    took the lease's session lock (PostgreSQL), which proves the holder's session is gone.

    The UPDATE still waits for a holder's :func:`fence` share-lock, so a write of the old
    holder that is under way commits first and its next fence fails.
    """
    res = conn.execute(update(leases).where(leases.c.name == name)
                       .values(holder=holder, expires_at=now + ttl))
    return bool(res.rowcount) or acquire_lease(conn, name, holder, ttl, now)


def holds_lease(conn: Connection, name: str, holder: str, now: float | None = None) -> bool:
    """Whether ``holder`` is the one named on the lease (read-only).

    Without ``now`` an expired lease still counts: nobody else has taken it, so nobody
    else acts on it. With ``now`` the lease must also be unexpired.
    """
    row = conn.execute(select(leases.c.holder, leases.c.expires_at).where(
        leases.c.name == name)).first()
    return row is not None and row.holder == holder and (now is None or row.expires_at >= now)


def fence(conn: Connection, name: str, holder: str) -> bool:
    """Whether the lease still names ``holder``, the row share-locked until this
    transaction ends (PostgreSQL; SQLite writers are serialised anyway).

    A writer that checks this in the transaction it commits cannot interleave with a
    successor: the successor's take-over (an UPDATE of the row) waits for the commit, so
    a process that stalled past its lease writes nothing after another took over. Expiry
    is not checked: a lapsed lease nobody took still keeps everyone else out, and cycles
    evaluated as of another time than now must not fail on the wall clock.
    """
    row = conn.execute(select(leases.c.holder).where(
        leases.c.name == name).with_for_update(read=True)).first()
    return row is not None and row.holder == holder


def last_event_id(conn: Connection) -> int:
    """The newest alert event's id (0 when there is none)."""
    return int(conn.execute(select(func.max(alert_events.c.id))).scalar() or 0)


def events_after(conn: Connection, after: int, limit: int = 10_000
                 ) -> list[tuple[int, dict[str, str], dict[str, Any]]]:
    """Alert events with an id above ``after``, oldest first: ``(id, instance labels, event)``;
    what the notifying process has not yet handed to incidents and notifications."""
    q = (select(alert_events, alert_instances.c.labels)
         .join(alert_instances, alert_instances.c.id == alert_events.c.instance_id)
         .where(alert_events.c.id > after).order_by(alert_events.c.id).limit(limit))
    return [(int(r.id), orjson.loads(r.labels),
             {"kind": r.kind, "at": r.at, "severity": r.severity, "value": r.value,
              "detail": orjson.loads(r.detail) if r.detail else {}}) for r in conn.execute(q)]


__all__ += ["events_after", "fence", "holds_lease", "last_event_id", "take_lease"]
