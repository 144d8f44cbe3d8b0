"""Connecting to the store: SQLite (WAL, the zero-setup default) or PostgreSQL.

Writers to one model serialise on a per-model lock (``BEGIN IMMEDIATE`` on SQLite,
a transaction-scoped advisory lock on PostgreSQL), so deduplication, label joins and
profile folding see a consistent state without lost updates.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text

__all__ = ["Database", "default_url"]

_MIGRATIONS = Path(__file__).with_name("migrations")


def default_url(data_dir: str | Path) -> str:
    return f"sqlite:///{Path(data_dir).resolve() / 'aiwarden.db'}"


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


class Database:
    """An engine plus the dialect-specific bits the repositories need."""

    def __init__(self, url: str, *, synchronous: str = "FULL") -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(
                url, connect_args={"timeout": 60, "check_same_thread": False},
                pool_size=8, max_overflow=8)
            _sqlite_pragmas(self.engine, synchronous)
        else:
            self.engine = create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True)

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
        with self.engine.begin() as conn:
            if model_id is not None and not self.is_sqlite:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": int(model_id)})
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reading: on SQLite it does not take the write lock."""
        with self.engine.connect() as conn:
            yield conn.execution_options(aiwarden_read=True)

    def dispose(self) -> None:
        self.engine.dispose()


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
