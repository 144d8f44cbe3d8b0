"""The notification outbox and the delivery-attempt log.

A message is written here in the transaction that decides to send it, and leaves the
``pending`` state only when a delivery attempt ends it (``sent``, or ``failed`` for good).
So a restart, or another process taking over, resumes exactly the messages still owed,
oldest first per receiver. Rows hold the receiver's name, never its config: secrets stay
in the notification config, and error texts arrive here already scrubbed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, delete, func, select, update

from aiwarden.store.tables import notification_attempts as attempts_t
from aiwarden.store.tables import notification_outbox as outbox_t

__all__ = ["FAILED", "PENDING", "SENT", "OutboxRow", "attempts", "counts", "enqueue", "get",
           "mark", "pending", "prune", "record_attempt"]

PENDING, SENT, FAILED = "pending", "sent", "failed"


@dataclass(frozen=True)
class OutboxRow:
    id: int
    receiver: str
    notification: dict[str, Any]
    queued_at: float
    next_attempt_at: float
    attempts: int
    state: str
    last_error: str | None

    def to_dict(self) -> dict[str, Any]:
        n = self.notification
        return {"id": self.id, "receiver": self.receiver, "notification_id": n.get("id"),
                "title": n.get("title"), "status": n.get("status"), "state": self.state,
                "queued_at": self.queued_at, "next_attempt_at": self.next_attempt_at,
                "attempts": self.attempts, "last_error": self.last_error}


def _row(r: Any) -> OutboxRow:
    return OutboxRow(int(r.id), r.receiver, orjson.loads(r.notification), r.queued_at,
                     r.next_attempt_at, r.attempts, r.state, r.last_error)


def enqueue(conn: Connection, receiver: str, notification: Mapping[str, Any],
            now: float) -> int:
    """Queue one message for ``receiver``; returns its outbox id (FIFO order per receiver)."""
    res = conn.execute(outbox_t.insert().values(
        receiver=receiver, notification_id=str(notification.get("id", "")),
        notification=orjson.dumps(dict(notification)).decode(), queued_at=now,
        next_attempt_at=now, attempts=0, state=PENDING, updated_at=now))
    return int(res.inserted_primary_key[0])


def pending(conn: Connection) -> list[OutboxRow]:
    """Every message still owed, oldest first: the order to resume them in."""
    q = select(outbox_t).where(outbox_t.c.state == PENDING).order_by(outbox_t.c.id)
    return [_row(r) for r in conn.execute(q)]


def get(conn: Connection, outbox_id: int) -> OutboxRow | None:
    r = conn.execute(select(outbox_t).where(outbox_t.c.id == outbox_id)).first()
    return None if r is None else _row(r)


def counts(conn: Connection) -> dict[str, int]:
    """How many messages are in each state."""
    q = select(outbox_t.c.state, func.count()).group_by(outbox_t.c.state)
    return {state: int(n) for state, n in conn.execute(q)}


def mark(conn: Connection, outbox_id: int, *, state: str, attempts: int, now: float,
         next_attempt_at: float | None = None, error: str | None = None) -> None:
    """Record where one message stands after an attempt (or after being given up)."""
    values: dict[str, Any] = {"state": state, "attempts": attempts, "last_error": error,
                              "updated_at": now}
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    conn.execute(update(outbox_t).where(outbox_t.c.id == outbox_id).values(**values))


def record_attempt(conn: Connection, *, receiver: str, at: float, ok: bool,
                   attempt: int = 1, final: bool = True, outbox_id: int | None = None,
                   notification_id: str | None = None, status: int | None = None,
                   error: str | None = None, retry_in: float | None = None,
                   detail: Mapping[str, Any] | None = None) -> None:
    """Log one attempt and, for a queued message, move its outbox row along with it."""
    conn.execute(attempts_t.insert().values(
        outbox_id=outbox_id, receiver=receiver, notification_id=notification_id, at=at,
        ok=ok, status=status, error=error, attempt=attempt, final=final, retry_in=retry_in,
        detail=orjson.dumps(dict(detail)).decode() if detail else None))
    if outbox_id is not None:
        state = SENT if ok else (FAILED if final else PENDING)
        mark(conn, outbox_id, state=state, attempts=attempt, now=at, error=error,
             next_attempt_at=None if final else at + (retry_in or 0.0))


def attempts(conn: Connection, limit: int = 500) -> list[dict[str, Any]]:
    """The latest ``limit`` attempts, oldest first."""
    q = select(attempts_t).order_by(attempts_t.c.at.desc(), attempts_t.c.id.desc()).limit(limit)
    rows = list(conn.execute(q))[::-1]
    return [{"receiver": r.receiver, "at": r.at, "ok": bool(r.ok), "status": r.status,
             "error": r.error, "attempt": r.attempt, "notification_id": r.notification_id,
             "final": bool(r.final), "retry_in": r.retry_in, "outbox_id": r.outbox_id,
             **(orjson.loads(r.detail) if r.detail else {})} for r in rows]


def prune(conn: Connection, before: float) -> int:
    """Forget finished messages and attempts older than ``before``; pending ones stay."""
    n = conn.execute(delete(outbox_t).where(outbox_t.c.state != PENDING,
                                            outbox_t.c.updated_at < before)).rowcount
    n += conn.execute(delete(attempts_t).where(attempts_t.c.at < before)).rowcount
    return int(n)
