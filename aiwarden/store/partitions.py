"""Raw events by day on PostgreSQL: ``event_batches`` is range-partitioned on ``max_ts``.

Retention then drops a day's partition (its blobs go at once, no dead tuples to vacuum)
instead of deleting rows. Migration 0015 made the table partitioned: the rows stored before
it form one partition (``event_batches_legacy``, every ``max_ts`` below its upper bound)
dropped when that bound passes retention; a ``DEFAULT`` partition takes rows of days that
have none (far-future clocks, backfills older than the first day partition) and is pruned
by row deletes like SQLite. Day partitions are made a few days ahead by the retention pass.
SQLite keeps one table and row deletes.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, text

__all__ = ["AHEAD_DAYS", "Partition", "droppable", "ensure_days", "list_partitions"]

DAY = 86400
AHEAD_DAYS = 3  # day partitions made ahead of today
PARENT = "event_batches"
DEFAULT = "event_batches_default"
_BOUND = re.compile(r"FROM \((MINVALUE|'?[-\d.e+]+'?)\) TO \((MAXVALUE|'?[-\d.e+]+'?)\)")


@dataclass(frozen=True)
class Partition:
    name: str
    lo: float  # -inf for MINVALUE
    hi: float  # inf for the default partition


def _num(v: str) -> float:
    v = v.strip("'")
    return -float("inf") if v == "MINVALUE" else float("inf") if v == "MAXVALUE" else float(v)


def list_partitions(conn: Connection) -> list[Partition]:
    """The partitions of ``event_batches`` with their ``max_ts`` bounds (empty: the table is
    not partitioned, e.g. SQLite)."""
    if conn.dialect.name != "postgresql":
        return []
    rows = conn.execute(text(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
        "WHERE p.relname = :parent"), {"parent": PARENT}).all()
    out = []
    for name, bound in rows:
        m = _BOUND.search(bound or "")
        out.append(Partition(name, _num(m.group(1)), _num(m.group(2))) if m
                   else Partition(name, -float("inf"), float("inf")))  # DEFAULT
    return sorted(out, key=lambda p: (p.lo, p.hi))


def droppable(conn: Connection, cutoff: float) -> list[Partition]:
    """Partitions whose every row has ``max_ts`` below ``cutoff`` (never the default)."""
    return [p for p in list_partitions(conn) if p.name != DEFAULT and p.hi <= cutoff]


def ensure_days(conn: Connection, now: float | None = None, ahead: int = AHEAD_DAYS) -> int:
    """Create the day partitions from today to ``ahead`` days on that no partition covers
    yet; rows the default partition holds for such a day move into it. Returns how many
    were made. Call it in a transaction (creation takes the parent's lock)."""
    parts = list_partitions(conn)
    if not parts:
        return 0
    today = int((time.time() if now is None else now) // DAY * DAY)
    made = 0
    for day in range(today, today + (ahead + 1) * DAY, DAY):
        if any(p.lo < day + DAY and day < p.hi for p in parts if p.name != DEFAULT):
            continue
        name = f"{PARENT}_p{datetime.fromtimestamp(day, UTC):%Y%m%d}"
        bounds = {"lo": float(day), "hi": float(day + DAY)}
        # a day the default partition has rows of cannot be created beside them: move them
        conn.execute(text(
            "CREATE TEMP TABLE aiwarden_moved ON COMMIT DROP AS WITH m AS (DELETE FROM "
            f"{DEFAULT} WHERE max_ts >= :lo AND max_ts < :hi RETURNING *) SELECT * FROM m"),
            bounds)
        conn.execute(text(f"CREATE TABLE {name} PARTITION OF {PARENT} FOR VALUES FROM "
                          f"({day}) TO ({day + DAY})"))
        conn.execute(text(f"INSERT INTO {PARENT} SELECT * FROM aiwarden_moved"))
        conn.execute(text("DROP TABLE aiwarden_moved"))
        parts.append(Partition(name, day, day + DAY))
        made += 1
    return made
