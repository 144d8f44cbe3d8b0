"""The store's connections on a real PostgreSQL (and SQLite where it applies): a write
holds the model's lock and is atomic although ``BEGIN`` travels with the lock, ``peek``
reads committed state without a transaction, and a pooled connection that the server
ended is replaced without an error although checkouts no longer ping every time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from aiwarden.store.database import Database
from aiwarden.store.tables import kv_state
from tests.server.live import PG_ADMIN, database_url, migrated_database


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with migrated_database(request.param, tmp_path) as database:
        yield database


def _value(db: Database, key: str) -> str | None:
    with db.peek() as conn:
        return conn.execute(select(kv_state.c.value).where(kv_state.c.key == key)).scalar()


def test_a_model_write_commits_and_a_failed_one_leaves_nothing(db: Database) -> None:
    with db.write(7) as conn:
        conn.execute(kv_state.insert().values(key="kept", value="1", updated_at=0.0))
    with pytest.raises(RuntimeError), db.write(7) as conn:
        conn.execute(kv_state.insert().values(key="undone", value="1", updated_at=0.0))
        raise RuntimeError("fails after writing")
    assert _value(db, "kept") == "1"
    assert _value(db, "undone") is None
    with db.write(7) as conn:  # the connection went back clean: writes go on
        conn.execute(kv_state.insert().values(key="after", value="1", updated_at=0.0))
    assert _value(db, "after") == "1"


def test_a_model_write_holds_the_models_lock_until_commit(tmp_path: Path) -> None:
    with database_url("postgresql", tmp_path) as url:
        db = Database(url)
        db.migrate()
        other = create_engine(url)
        try:
            def free(key: int) -> bool:
                with other.connect() as c:
                    got = c.execute(text("SELECT pg_try_advisory_xact_lock(:k)"),
                                    {"k": key}).scalar()
                    c.rollback()
                    return bool(got)

            with db.write(42) as conn:
                conn.execute(kv_state.insert().values(key="k", value="v", updated_at=0.0))
                assert not free(42)  # held by the open write
                assert free(43)  # another model's is not
                assert _value(db, "k") is None  # not committed yet: peek does not see it
            assert free(42)
            assert _value(db, "k") == "v"
        finally:
            other.dispose()
            db.dispose()


def test_connections_the_server_ended_are_replaced_without_an_error(tmp_path: Path) -> None:
    with database_url("postgresql", tmp_path) as url:
        db = Database(url)
        db.migrate()
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        try:
            with db.write(1) as conn:
                conn.execute(kv_state.insert().values(key="a", value="1", updated_at=0.0))
            # several connections in the pool, all idle
            conns = [db.engine.connect() for _ in range(3)]
            for c in conns:
                c.execute(text("SELECT 1"))
                c.close()
            name = url.rsplit("/", 1)[1]
            with admin.connect() as a:
                # The timeout makes each call wait until its backend has exited (and sent
                # its last message): without it the signal may still be on its way when
                # the next query goes out, a race no pool can close.
                ended = a.execute(text(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 10000)) "
                    "FROM pg_stat_activity "
                    "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": name}).scalar()
            assert ended >= 3
            assert _value(db, "a") == "1"  # a read on a fresh connection
            with db.write(1) as conn:
                conn.execute(kv_state.insert().values(key="b", value="2", updated_at=0.0))
            with db.read() as conn:
                assert conn.execute(select(kv_state.c.value).where(
                    kv_state.c.key == "b")).scalar() == "2"
        finally:
            admin.dispose()
            db.dispose()


def test_a_savepoint_inside_a_model_write_rolls_back_alone(db: Database) -> None:
    """``kv.create`` inserts in a savepoint and answers False on a duplicate key: the failed
    insert is undone, the rest of the model's transaction commits."""
    from aiwarden.store import kv

    with db.write(3) as conn:
        assert kv.create(conn, "first", {"n": 1})
        assert not kv.create(conn, "first", {"n": 2})  # duplicate: its savepoint rolls back
        kv.put(conn, "second", {"n": 3})
    with db.peek() as conn:
        assert kv.get(conn, "first") == {"n": 1}
        assert kv.get(conn, "second") == {"n": 3}


def test_use_after_dispose_leaves_no_connection_open(tmp_path: Path) -> None:
    """A thread that outlives its server's shutdown still reads and writes, and leaves no
    connection behind: one left in a fresh pool once failed a later, unrelated test when
    the garbage collector closed it (psycopg's ResourceWarning)."""
    with migrated_database("postgresql", tmp_path) as database:
        name = database.url.rsplit("/", 1)[-1]
        admin = create_engine(PG_ADMIN)
        try:
            def backends(settled: int | None = None) -> int:
                """Backends of the database; with ``settled``, waits (up to 10 s) for that
                count: a closed connection's backend leaves pg_stat_activity a moment later
                (seen under load), while a pooled one would stay for good."""
                deadline = time.monotonic() + 10
                while True:
                    with admin.connect() as c:
                        n = c.execute(text("SELECT count(*) FROM pg_stat_activity WHERE "
                                           "datname = :n"), {"n": name}).scalar_one()
                    if settled is None or n == settled or time.monotonic() > deadline:
                        return n
                    time.sleep(0.05)

            with database.read() as conn:
                conn.execute(text("SELECT 1"))
            assert backends() == 1  # pooled
            database.dispose()
            assert backends(settled=0) == 0
            with database.write(3) as conn:  # a straggler after the shutdown
                conn.execute(kv_state.insert().values(key="late", value="1", updated_at=0.0))
            assert _value(database, "late") == "1"
            assert backends(settled=0) == 0  # closed on return, not pooled
        finally:
            admin.dispose()
