"""Whether a lease holder's process is alive (PostgreSQL): a session-level advisory lock
held on a connection of its own, outside the pool.

The lease row (:func:`aiwarden.store.alerts_repo.acquire_lease`) says who leads; this lock
says whether that process still has a session. When a process dies (``kill -9``, a crash)
the kernel closes its socket, its backend ends and PostgreSQL releases the lock at once,
so another process's ``pg_try_advisory_lock`` succeeds on its next heartbeat instead of
after the lease's TTL. A peer that vanished without closing its socket (a network
partition) keeps its backend until TCP keepalive gives up: the session asks for keepalive
probes after 10 s idle, every 2 s, 3 of them, so such a lock is released about 16 s
later; the lease's TTL meanwhile still hands the row over the old way.
"""

from __future__ import annotations

import logging
import threading
import zlib
from typing import Literal

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.pool import NullPool

__all__ = ["Hold", "SessionLock", "lock_key"]

log = logging.getLogger("aiwarden.store")
KEY_CLASS = 0x6C656173  # "leas": the first of the two int4 keys, for every lease
Hold = Literal["new", "held", "none"]


def lock_key(name: str) -> int:
    """The lease's second int4 key. Two-key advisory locks live apart from the one-bigint
    keys (per-model write locks, the migrator), so lease locks never collide with those."""
    k = zlib.crc32(name.encode())
    return k - 2**32 if k >= 2**31 else k


class SessionLock:
    """The named lease's advisory lock, held by this process on a dedicated connection.

    Thread-safe; never waits for the lock. Released by closing the connection (the same
    thing a dying process does), so there is one way it is let go."""

    def __init__(self, url: str, name: str) -> None:
        self.url, self.name, self.key = url, name, lock_key(name)
        self._engine: Engine | None = None
        self._conn: Connection | None = None
        self.held = False
        self._mutex = threading.Lock()

    def hold(self) -> Hold:
        """``'held'``: this process had it and its session answered; ``'new'``: just taken,
        so no live session held it; ``'none'``: another session holds it, or the database
        did not answer (logged)."""
        with self._mutex:
            if self.held and self._conn is not None:
                try:
                    self._conn.execute(text("SELECT 1"))
                    return "held"
                except Exception as exc:  # the session ended, and the lock with it
                    log.warning("the %s session lock's connection broke: %s", self.name,
                                type(exc).__name__)
                    self._close()
            try:
                got = bool(self._connection().execute(
                    text("SELECT pg_try_advisory_lock(:c, :k)"),
                    {"c": KEY_CLASS, "k": self.key}).scalar())
            except Exception as exc:
                log.warning("could not try the %s session lock: %s", self.name,
                            type(exc).__name__)
                self._close()
                return "none"
            self.held = got
            return "new" if got else "none"

    def release(self) -> None:
        """Let the lock go (end the session); the next :meth:`hold` reconnects."""
        with self._mutex:
            self._close()

    def close(self) -> None:
        """Release, and drop the engine (at shutdown)."""
        with self._mutex:
            self._close()
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    def _connection(self) -> Connection:
        if self._conn is None:
            if self._engine is None:
                self._engine = create_engine(self.url, poolclass=NullPool)
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:  # a partitioned peer's backend gives the lock up in ~16 s, not hours
                conn.execute(text(
                    "SELECT set_config('tcp_keepalives_idle', '10', false),"
                    " set_config('tcp_keepalives_interval', '2', false),"
                    " set_config('tcp_keepalives_count', '3', false)"))
            except Exception:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _close(self) -> None:
        self.held = False
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # already broken: the server has ended the session
                log.debug("closing the %s session lock's connection failed", self.name,
                          exc_info=True)
