"""The evaluator lease's liveness signal on a real PostgreSQL (issue 17.1): a holder whose
process dies loses its session lock at once, so another process takes the lease though its
TTL has not run out; a live holder is never displaced and two live processes do not take
it in turns; a stalled holder's write still fences its successor out."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from aiwarden.alerting.evaluator import LEASE
from aiwarden.alerting.pipeline import Leadership
from aiwarden.store import alerts_repo
from aiwarden.store.database import Database
from aiwarden.store.session_lock import SessionLock
from aiwarden.store.tables import leases
from tests.fencing import waiting_successor
from tests.server.live import migrated_database

# a process that takes the lock and the row for a minute, says so, and waits to be killed
HOLDER = """
import sys, time
from aiwarden.store import alerts_repo
from aiwarden.store.database import Database
from aiwarden.store.session_lock import SessionLock
db = Database(sys.argv[1])
assert SessionLock(sys.argv[1], sys.argv[2]).hold() == "new"
with db.write() as conn:
    assert alerts_repo.take_lease(conn, sys.argv[2], "dead", 60.0, time.time())
print("holding", flush=True)
time.sleep(600)
"""


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with migrated_database("postgresql", tmp_path) as database:
        yield database


def _holder(db: Database) -> tuple[str, float] | None:
    with db.read() as conn:
        row = conn.execute(select(leases.c.holder, leases.c.expires_at)
                           .where(leases.c.name == LEASE)).first()
    return None if row is None else (row.holder, row.expires_at)


def test_a_killed_holders_lease_is_taken_at_once_though_its_ttl_runs(db: Database) -> None:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, db.url, LEASE],
                            stdout=subprocess.PIPE, text=True)
    other = SessionLock(db.url, LEASE)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
        assert other.hold() == "none"  # the holder's session has it
        with db.write() as conn:  # neither renewable nor lapsed: not taken
            assert not alerts_repo.acquire_lease(conn, LEASE, "b", 60.0, time.time(),
                                                 create=False)
        proc.kill()  # kill -9: the kernel closes its socket, its backend ends
        killed = time.monotonic()
        proc.wait(30)
        while (hold := other.hold()) != "new":
            assert time.monotonic() - killed < 30, "the dead holder's lock was never released"
            time.sleep(0.02)
        freed = time.monotonic() - killed
        print(f"lock free {freed:.3f} s after the kill")
        holder = _holder(db)
        assert holder is not None and holder[0] == "dead" and holder[1] > time.time() + 50
        with db.write() as conn:
            assert alerts_repo.take_lease(conn, LEASE, "b", 60.0, time.time())
        assert _holder(db)[0] == "b"  # type: ignore[index]
        # the backend ends as soon as it reads the closed socket: far below any TTL
        assert freed < 5, f"lock released {freed:.2f} s after the kill"
        assert hold == "new" and other.hold() == "held"
    finally:
        proc.kill()
        proc.wait(30)
        proc.stdout.close()  # type: ignore[union-attr]
        other.close()


def test_a_live_holder_is_never_displaced_and_nobody_takes_turns(db: Database) -> None:
    a, b = Leadership(db, "a", 60.0), Leadership(db, "b", 60.0)
    try:
        assert a.check()
        assert a.alive is not None and a.alive.held
        for _ in range(20):
            assert not b.check() and a.check()
        assert b.alive is not None and not b.alive.held
        assert _holder(db)[0] == "a"  # type: ignore[index]
        a.release()  # a clean stop: lock and row both let go
        assert b.check() and not a.check()
        assert b.alive.held and not a.alive.held
    finally:
        a.release()
        b.release()


def test_a_stalled_holder_is_replaced_by_ttl_and_does_not_take_the_lease_back(
        db: Database) -> None:
    """The TTL fallback: a holder whose session lives on but who stopped renewing (a stall)
    loses the row when the TTL lapses; on waking it lets its lock go to the new holder
    instead of using it to take the row back."""
    a, b = Leadership(db, "a", 2.0), Leadership(db, "b", 2.0)
    try:
        assert a.check() and not b.check()
        time.sleep(2.1)  # a stalls past its TTL, its lock still held
        assert b.check()  # taken the old way, the lock held elsewhere
        assert b.alive is not None and not b.alive.held
        assert not a.check()  # a wakes: the row names b, a's lock goes
        assert a.alive is not None and not a.alive.held
        for _ in range(5):  # b renews and picks the lock up; a stays out
            assert b.check() and not a.check()
            time.sleep(0.05)
        assert b.alive.held and _holder(db)[0] == "b"  # type: ignore[index]
    finally:
        a.release()
        b.release()


def test_a_broken_lock_connection_hands_the_lease_over_and_the_old_holder_stands_down(
        db: Database) -> None:
    a, b = Leadership(db, "a", 60.0), Leadership(db, "b", 60.0)
    admin = create_engine(db.url, isolation_level="AUTOCOMMIT")
    try:
        assert a.check() and not b.check()
        with admin.connect() as conn:  # a's dedicated session ends (a network drop, say)
            assert conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                " AND objsubid = 2 AND granted AND database = (SELECT oid FROM pg_database"
                " WHERE datname = current_database())")).scalars().all() == [True]
        deadline = time.monotonic() + 30
        while not b.check():
            assert time.monotonic() < deadline, "b never took the lock over"
            time.sleep(0.02)
        assert not a.check()  # a's next beat: the row names b, whatever a believed
        assert _holder(db)[0] == "b"  # type: ignore[index]
    finally:
        admin.dispose()
        a.release()
        b.release()


def test_a_stalled_writer_still_fences_out_a_successor_that_took_the_lock(
        db: Database) -> None:
    """The lock says the holder's session is gone; a write of its that is under way on
    another connection (a zombie transaction) still commits before the take, and the
    holder's next fence fails."""
    a, b = SessionLock(db.url, LEASE), SessionLock(db.url, LEASE)
    try:
        assert a.hold() == "new"
        with db.write() as conn:
            assert alerts_repo.take_lease(conn, LEASE, "a", 60.0, time.time())
        with db.write() as conn:  # a's cycle writes...
            assert alerts_repo.fence(conn, LEASE, "a")
            a.release()  # ...when its lock session ends
            assert b.hold() == "new"
            finished = waiting_successor(
                db, lambda c2: alerts_repo.take_lease(c2, LEASE, "b", 60.0, time.time()),
                LEASE, "a", "b")
        finished()
    finally:
        a.close()
        b.close()
