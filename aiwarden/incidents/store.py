"""Incidents in the database: rows in, domain objects out, every function on a Connection.

The caller owns the transaction (``Database.write()``), so one alert transition's
incident, alert row and timeline entries commit together or not at all. Reads meant for
a read-modify-write take ``for_update`` (a row lock on PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` already serialises writers).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Select, select, update
from sqlalchemy.exc import IntegrityError

from aiwarden.incidents.lifecycle import (
    Comment,
    EscalationPolicy,
    Incident,
    IncidentAlert,
    Progress,
    Status,
    TimelineEntry,
)
from aiwarden.store.models_repo import NotFound
from aiwarden.store.tables import (
    escalation_progress,
    incident_alerts,
    incident_events,
    incidents,
)

__all__ = [
    "active_holders", "add_events", "advance_progress", "due_progress", "find_open", "get",
    "insert_incident", "list_incidents", "open_holding", "postmortem", "progress_of",
    "recently_resolved",
    "restart_escalation", "save", "set_postmortem",
    "start_escalation", "stop_escalation", "timeline", "upsert_alert",
]


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def insert_incident(conn: Connection, *, model: str, key: str, title: str,
                    severity: str | None, created_at: float, runbooks: Sequence[str]) -> int | None:
    """A new triggered incident's id, or ``None`` if the key already has an open one."""
    try:
        with conn.begin_nested():
            res = conn.execute(incidents.insert().values(
                model=model, dedup_key=key, open_key=key, title=title, severity=severity,
                status=Status.TRIGGERED.value, created_at=created_at, held_open=False,
                runbooks=_json(list(runbooks))))
    except IntegrityError:  # another writer opened it first; the caller joins that one
        return None
    return int(res.inserted_primary_key[0])


def _alerts(conn: Connection, ids: list[int]) -> dict[int, list[IncidentAlert]]:
    out: dict[int, list[IncidentAlert]] = {i: [] for i in ids}
    if not ids:
        return out
    q = select(incident_alerts).where(incident_alerts.c.incident_id.in_(ids)).order_by(
        incident_alerts.c.id)
    for r in conn.execute(q):
        out[r.incident_id].append(IncidentAlert(
            r.fingerprint, r.rule, orjson.loads(r.labels), orjson.loads(r.annotations),
            r.severity, r.state, r.fired_at, r.resolved_at))
    return out


def _comments(conn: Connection, ids: list[int]) -> dict[int, list[Comment]]:
    out: dict[int, list[Comment]] = {i: [] for i in ids}
    if not ids:
        return out
    q = select(incident_events).where(incident_events.c.incident_id.in_(ids),
                                      incident_events.c.kind == "comment").order_by(
        incident_events.c.at, incident_events.c.id)
    for r in conn.execute(q):
        out[r.incident_id].append(Comment(r.at, r.actor, orjson.loads(r.detail).get("text", "")))
    return out


def _load(conn: Connection, q: Select[Any]) -> list[Incident]:
    rows = list(conn.execute(q))
    ids = [r.id for r in rows]
    alerts, comments = _alerts(conn, ids), _comments(conn, ids)
    return [Incident(
        id=r.id, model=r.model, key=r.dedup_key, title=r.title, severity=r.severity,
        status=Status(r.status), created_at=r.created_at, assignee=r.assignee,
        acknowledged_at=r.acknowledged_at, mitigated_at=r.mitigated_at,
        resolved_at=r.resolved_at, declined_at=r.declined_at, held_open=bool(r.held_open),
        runbooks=tuple(orjson.loads(r.runbooks)), alerts=tuple(alerts[r.id]),
        comments=tuple(comments[r.id])) for r in rows]


def get(conn: Connection, incident_id: int, *, for_update: bool = False) -> Incident:
    q = select(incidents).where(incidents.c.id == incident_id)
    found = _load(conn, q.with_for_update() if for_update else q)
    if not found:
        raise NotFound(f"No incident {incident_id}.", "incident_id")
    return found[0]


def find_open(conn: Connection, model: str, key: str, *,
              for_update: bool = False) -> Incident | None:
    q = select(incidents).where(incidents.c.model == model, incidents.c.open_key == key)
    found = _load(conn, q.with_for_update() if for_update else q)
    return found[0] if found else None


def open_holding(conn: Connection, model: str, fingerprint: str) -> Incident | None:
    """The newest open incident of ``model`` that has held the alert ``fingerprint`` (it
    joined it under another rule's key), locked for update."""
    holding = select(incident_alerts.c.incident_id).where(
        incident_alerts.c.fingerprint == fingerprint)
    q = select(incidents).where(incidents.c.model == model, incidents.c.open_key.is_not(None),
                                incidents.c.id.in_(holding)).order_by(
        incidents.c.id.desc()).limit(1)
    found = _load(conn, q.with_for_update())
    return found[0] if found else None


def recently_resolved(conn: Connection, model: str, key: str, fingerprint: str,
                      since: float) -> Incident | None:
    """The latest incident of ``model`` resolved at or after ``since`` whose key is ``key``
    or which holds the alert ``fingerprint`` (it may have joined under another rule's key),
    locked for update."""
    holding = select(incident_alerts.c.incident_id).where(
        incident_alerts.c.fingerprint == fingerprint)
    q = select(incidents).where(
        incidents.c.model == model, incidents.c.status == Status.RESOLVED.value,
        incidents.c.resolved_at >= since,
        (incidents.c.dedup_key == key) | incidents.c.id.in_(holding)).order_by(
        incidents.c.resolved_at.desc(), incidents.c.id.desc()).limit(1)
    found = _load(conn, q.with_for_update())
    return found[0] if found else None


def list_incidents(conn: Connection, *, model: str | None = None,
                   status: Iterable[Status | str] | None = None, open_only: bool = False,
                   created_from: float | None = None, created_to: float | None = None,
                   limit: int | None = None) -> list[Incident]:
    """Newest first; ``created_from``/``created_to`` bound ``created_at`` as ``[from, to)``."""
    q = select(incidents).order_by(incidents.c.created_at.desc(), incidents.c.id.desc())
    if model is not None:
        q = q.where(incidents.c.model == model)
    if status is not None:
        q = q.where(incidents.c.status.in_([Status(s).value for s in status]))
    if open_only:
        q = q.where(incidents.c.open_key.is_not(None))
    if created_from is not None:
        q = q.where(incidents.c.created_at >= created_from)
    if created_to is not None:
        q = q.where(incidents.c.created_at < created_to)
    if limit is not None:
        q = q.limit(limit)
    return _load(conn, q)


def save(conn: Connection, inc: Incident) -> None:
    """Write the incident's own fields (its alerts and comments have their own calls)."""
    conn.execute(update(incidents).where(incidents.c.id == inc.id).values(
        open_key=None if inc.status.closed else inc.key, title=inc.title,
        severity=inc.severity, status=inc.status.value, assignee=inc.assignee,
        acknowledged_at=inc.acknowledged_at, mitigated_at=inc.mitigated_at,
        resolved_at=inc.resolved_at, declined_at=inc.declined_at, held_open=inc.held_open,
        runbooks=_json(list(inc.runbooks))))


def upsert_alert(conn: Connection, incident_id: int, alert: IncidentAlert) -> None:
    values = {"rule": alert.rule, "labels": _json(alert.labels),
              "annotations": _json(alert.annotations), "severity": alert.severity,
              "state": alert.state, "fired_at": alert.fired_at,
              "resolved_at": alert.resolved_at}
    res = conn.execute(update(incident_alerts).where(
        incident_alerts.c.incident_id == incident_id,
        incident_alerts.c.fingerprint == alert.fingerprint).values(**values))
    if not res.rowcount:
        conn.execute(incident_alerts.insert().values(
            incident_id=incident_id, fingerprint=alert.fingerprint, **values))


def active_holders(conn: Connection, fingerprint: str) -> list[int]:
    """Incidents (oldest first) in which this alert has not resolved yet."""
    q = select(incident_alerts.c.incident_id).where(
        incident_alerts.c.fingerprint == fingerprint,
        incident_alerts.c.state != "resolved").order_by(incident_alerts.c.incident_id)
    return [r.incident_id for r in conn.execute(q)]


def add_events(conn: Connection, incident_id: int, entries: Sequence[TimelineEntry]) -> None:
    if entries:
        conn.execute(incident_events.insert(), [
            {"incident_id": incident_id, "at": e.at, "actor": e.actor, "kind": e.kind,
             "detail": _json(e.detail)} for e in entries])


def timeline(conn: Connection, incident_id: int) -> list[TimelineEntry]:
    """In time order; entries at the same time in the order they were written."""
    q = select(incident_events).where(incident_events.c.incident_id == incident_id).order_by(
        incident_events.c.at, incident_events.c.id)
    return [TimelineEntry(r.at, r.actor, r.kind, orjson.loads(r.detail))
            for r in conn.execute(q)]


# -- escalation progress ----------------------------------------------------------------


def start_escalation(conn: Connection, incident_id: int, policy: EscalationPolicy,
                     progress: Progress) -> None:
    conn.execute(escalation_progress.insert().values(
        incident_id=incident_id, policy=_json(policy.to_dict()), step=progress.step,
        cycle=progress.round, since=progress.since, next_at=progress.due_at(policy)))


def stop_escalation(conn: Connection, incident_id: int) -> None:
    conn.execute(update(escalation_progress).where(
        escalation_progress.c.incident_id == incident_id).values(next_at=None))


def due_progress(conn: Connection, now: float) -> list[tuple[Incident, EscalationPolicy,
                                                              Progress]]:
    """Triggered incidents with a step due by ``now``, their rows locked until commit.

    On PostgreSQL another process's claim is skipped rather than waited for, so two
    evaluators never send the same step.
    """
    q = (select(escalation_progress).join(
        incidents, incidents.c.id == escalation_progress.c.incident_id).where(
        escalation_progress.c.next_at <= now,
        incidents.c.status == Status.TRIGGERED.value).order_by(
        escalation_progress.c.next_at, escalation_progress.c.incident_id)
        .with_for_update(of=escalation_progress, skip_locked=True))
    rows = list(conn.execute(q))
    found = {i.id: i for i in _load(conn, select(incidents).where(
        incidents.c.id.in_([r.incident_id for r in rows])))}
    return [(found[r.incident_id], EscalationPolicy.from_dict(orjson.loads(r.policy)),
             Progress(r.step, r.cycle, r.since)) for r in rows]


def advance_progress(conn: Connection, incident_id: int, policy: EscalationPolicy,
                     progress: Progress | None) -> None:
    """Store the progress after the steps just sent; ``None``: the policy is exhausted."""
    values: dict[str, Any] = {"next_at": None}
    if progress is not None:
        values = {"step": progress.step, "cycle": progress.round, "since": progress.since,
                  "next_at": progress.due_at(policy)}
    conn.execute(update(escalation_progress).where(
        escalation_progress.c.incident_id == incident_id).values(**values))


def restart_escalation(conn: Connection, incident_id: int, at: float) -> bool:
    """Page again from the policy's first step, counted from ``at``; False: no policy."""
    found = progress_of(conn, incident_id)
    if found is None:
        return False
    advance_progress(conn, incident_id, found[0], Progress(0, 0, at))
    return True


def progress_of(conn: Connection, incident_id: int
                ) -> tuple[EscalationPolicy, Progress | None] | None:
    """The incident's policy and where it stands (``None`` progress: stopped or done)."""
    r = conn.execute(select(escalation_progress).where(
        escalation_progress.c.incident_id == incident_id)).first()
    if r is None:
        return None
    prog = None if r.next_at is None else Progress(r.step, r.cycle, r.since)
    return EscalationPolicy.from_dict(orjson.loads(r.policy)), prog


# -- postmortem -------------------------------------------------------------------------


def set_postmortem(conn: Connection, incident_id: int, text: str, by: str | None,
                   at: float) -> None:
    """Store the text; ``by=None`` marks it as the system's draft (redrafting may replace)."""
    conn.execute(update(incidents).where(incidents.c.id == incident_id).values(
        postmortem=text, postmortem_by=by, postmortem_at=at))


def postmortem(conn: Connection, incident_id: int) -> tuple[str | None, str | None,
                                                            float | None]:
    """(text, edited by, when): ``edited by`` is ``None`` while it is the draft."""
    r = conn.execute(select(incidents.c.postmortem, incidents.c.postmortem_by,
                            incidents.c.postmortem_at).where(
        incidents.c.id == incident_id)).first()
    if r is None:
        raise NotFound(f"No incident {incident_id}.", "incident_id")
    return r.postmortem, r.postmortem_by, r.postmortem_at
