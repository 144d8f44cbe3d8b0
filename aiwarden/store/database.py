"""Connecting to the store: SQLite (WAL, the zero-setup default) or PostgreSQL.

Writers to one model serialise on a per-model lock (``BEGIN IMMEDIATE`` on SQLite,
a transaction-scoped advisory lock on PostgreSQL), so deduplication, label joins and
profile folding see a consistent state without lost updates.

On PostgreSQL every round trip wakes a backend and costs both sides CPU; a 1,000-row
ingest request made about 24 of them, most of them bookkeeping: a ``SELECT 1`` per
checkout (pool pre-ping), ``BEGIN`` and ``ROLLBACK`` around each pair of small reads,
``BEGIN`` before the model's lock. Now a checkout pings only a connection that sat idle
long or whose socket has something to say (a closing server's last message), small reads
go through :meth:`Database.peek` in autocommit, and a write sends ``BEGIN`` and its lock
as one message.
"""

from __future__ import annotations

import select
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, exc, text
from sqlalchemy.pool import NullPool

__all__ = ["Database", "default_url"]

_MIGRATIONS = Path(__file__).with_name("migrations")
PING_AFTER_IDLE = 10.0  # seconds a pooled PostgreSQL connection may sit before a real ping


def default_url(data_dir: str | Path) -> str:
    return f"sqlite:///{Path(data_dir).resolve() / 'aiwarden.db'}"


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


class Database:
    """An engine plus the dialect-specific bits the repositories need."""

    def __init__(self, url: str, *, synchronous: str = "FULL") -> None:
        self.url, self._synchronous = url, synchronous
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = self._engine(pool_size=8, max_overflow=8)

    def _engine(self, **pool: Any) -> Engine:
        if self.is_sqlite:
            engine = create_engine(
                self.url, connect_args={"timeout": 60, "check_same_thread": False}, **pool)
            _sqlite_pragmas(engine, self._synchronous)
        else:
            engine = create_engine(self.url, **pool)
            _pg_liveness(engine)
        return engine

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent; run at every start)."""
        cfg = _alembic_config()
        with self.engine.begin() as conn:
            if not self.is_sqlite:
                conn.execute(text("SELECT pg_advisory_xact_lock(7061776)"))  # one migrator
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def at_head(self) -> bool:
        head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision() == head

    @contextmanager
    def write(self, model_id: int | None = None) -> Iterator[Connection]:
        """A write transaction holding the model's lock until commit."""
        if model_id is None or self.is_sqlite:
            with self.engine.begin() as conn:
                yield conn
            return
        with self.engine.connect() as plain:
            # Autocommit, so psycopg sends no BEGIN of its own before the first statement;
            # ours travels with the lock, one round trip, and psycopg still commits or
            # rolls back (it reads the server's transaction status, not the flag).
            conn = plain.execution_options(isolation_level="AUTOCOMMIT")
            with conn.begin():
                conn.connection.driver_connection.execute(  # no parameters: one simple query
                    f"BEGIN; SELECT pg_advisory_xact_lock({int(model_id)})")
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reading: on SQLite it does not take the write lock."""
        with self.engine.connect() as conn:
            yield conn.execution_options(aiwarden_read=True)

    @contextmanager
    def peek(self) -> Iterator[Connection]:
        """A connection for a few independent small reads (a model's row, its versions).

        On PostgreSQL each statement is its own transaction: no ``BEGIN`` and
        ``ROLLBACK`` round trips, and, as under READ COMMITTED anyway, each statement sees
        the latest commits. So nothing that needs a transaction goes through it: no
        writes, row locks or temporary tables (``ids.locate`` stages ids in one).
        """
        if self.is_sqlite:
            with self.read() as conn:
                yield conn
            return
        with self.engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")

    def dispose(self) -> None:
        """Close the pooled connections; later use still works, one connection per use.

        Why not the same engine: after ``Engine.dispose()`` a thread still at work (one
        that outlived its server's shutdown) checked a new connection into a new pool that
        nobody disposed, and it stayed open until the garbage collector found it."""
        self.engine.dispose()
        self.engine = self._engine(poolclass=NullPool)


def _sqlite_pragmas(engine: Engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        # Writers: IMMEDIATE takes the write lock up front (no deadlock-prone lock
        # upgrades). Readers: a deferred BEGIN, so WAL lets them run beside a writer.
        read = conn.get_execution_options().get("aiwarden_read", False)
        conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")


def _pg_liveness(engine: Engine) -> None:
    """What ``pool_pre_ping`` checked, without its round trip on every checkout.

    A server that ends a connection (restart, ``pg_terminate_backend``, idle timeout)
    sends a last message and closes the socket, so an idle connection with a readable
    socket is pinged; so is one idle for more than ``PING_AFTER_IDLE`` seconds (a peer
    that vanished without a word). A failed ping raises ``DisconnectionError``: the pool
    drops that connection and checks out another, as with pre-ping.
    """

    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def _idle(dbapi_conn, record):  # type: ignore[no-untyped-def]
        record.info["aiwarden_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn, record, proxy):  # type: ignore[no-untyped-def]
        raw = getattr(dbapi_conn, "driver_connection", dbapi_conn)
        since = record.info.get("aiwarden_idle_since")
        if raw.closed:
            raise exc.DisconnectionError("connection closed")
        if since is not None and time.monotonic() - since < PING_AFTER_IDLE:
            try:
                quiet = not select.select([raw.fileno()], [], [], 0)[0]
            except (OSError, ValueError):
                quiet = False
            if quiet:
                return
        try:
            raw.autocommit = True  # one round trip: no BEGIN, no ROLLBACK
            raw.execute("SELECT 1")
            raw.autocommit = False
        except Exception as e:
            raise exc.DisconnectionError(f"ping failed: {e}") from e
