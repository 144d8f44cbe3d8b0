"""Durable delivery and multi-process safety on real databases (SQLite and PostgreSQL):
the outbox survives a restart, FIFO order and secrets hold, and of two processes sharing
one database only the lease holder notifies; a takeover resumes what the other owed."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from aiwarden.alerting.evaluator import LEASE
from aiwarden.alerting.notifiers import Deliverer, DeliveryAttempt, Notification
from aiwarden.alerting.notify import NotificationCenter
from aiwarden.alerting.pipeline import AlertPipeline, Leadership
from aiwarden.alerting.state import Transition
from aiwarden.incidents import IncidentService
from aiwarden.monitoring.service import Monitor
from aiwarden.store import alerts_repo, outbox_repo
from aiwarden.store.database import Database
from aiwarden.store.tables import leases
from tests.alerting.receivers import LOOPBACK, WebhookServer
from tests.server.live import database_url, migrated_database

TOKEN, HMAC_KEY = "T0KEN-in-the-url-42", "hmac-key-secret-77"
LABELS = {"model": "fraud", "rule": "drift", "version": "v1"}


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A fresh database per test, migrated to head."""
    with migrated_database(request.param, tmp_path) as database:
        yield database


def center(db: Database) -> NotificationCenter:
    """A process's notification centre; its deliverer is driven by the test (no threads)."""
    c = NotificationCenter(db, Deliverer(base_delay=0.05, max_delay=0.2, seed=0),
                           egress=LOOPBACK)
    c.load()
    return c


def config(hook: WebhookServer) -> dict[str, Any]:
    return {"receivers": [{"type": "webhook", "name": "ops", "secret": HMAC_KEY,
                           "url": hook.url(f"/hook/{TOKEN}")}],
            "route": {"receiver": "ops", "group_by": ["model", "rule"], "group_wait": "1s",
                      "group_interval": "1s"}}


def transition(kind: str, at: float) -> tuple[dict[str, str], Transition]:
    return dict(LABELS), Transition(kind, at, "critical", 1.5, {"fired_at": at - 1})


def note(i: int) -> dict[str, Any]:
    return Notification(title=f"n{i}", created_at=datetime(2026, 1, 1, tzinfo=UTC)).to_dict()


def test_outbox_rows_move_from_pending_to_sent_or_failed(db: Database) -> None:
    with db.write() as conn:
        ids = [outbox_repo.enqueue(conn, r, note(i), 100.0 + i)
               for i, r in enumerate(["a", "b", "a"])]
    with db.read() as conn:
        assert [(r.id, r.receiver) for r in outbox_repo.pending(conn)] == list(
            zip(ids, ["a", "b", "a"], strict=True))
    with db.write() as conn:
        outbox_repo.record_attempt(conn, receiver="a", at=200.0, ok=False, final=False,
                                   outbox_id=ids[0], error="HTTP 503", retry_in=30.0)
        outbox_repo.record_attempt(conn, receiver="b", at=201.0, ok=False, final=True,
                                   outbox_id=ids[1], error="HTTP 400", status=400)
        outbox_repo.record_attempt(conn, receiver="zz", at=202.0, ok=False,
                                   error="no receiver configured", detail={"group_key": "g"})
    with db.read() as conn:
        first = outbox_repo.get(conn, ids[0])
        assert first is not None and (first.state, first.attempts, first.next_attempt_at,
                                      first.last_error) == ("pending", 1, 230.0, "HTTP 503")
        assert outbox_repo.get(conn, ids[1]).state == "failed"  # type: ignore[union-attr]
        assert [r.id for r in outbox_repo.pending(conn)] == [ids[0], ids[2]]
        log = outbox_repo.attempts(conn)
        assert [(a["receiver"], a["ok"], a["final"]) for a in log] == [
            ("a", False, False), ("b", False, True), ("zz", False, True)]
        assert log[2]["group_key"] == "g" and log[2]["outbox_id"] is None
        assert outbox_repo.attempts(conn, limit=1)[0]["receiver"] == "zz"  # the latest
    with db.write() as conn:
        outbox_repo.record_attempt(conn, receiver="a", at=240.0, ok=True, attempt=2,
                                   outbox_id=ids[0], status=200)
        assert outbox_repo.counts(conn) == {"sent": 1, "failed": 1, "pending": 1}
        assert outbox_repo.prune(conn, before=250.0) == 2 + 4  # finished rows, attempts
    with db.read() as conn:
        assert [r.id for r in outbox_repo.pending(conn)] == [ids[2]]  # pending stays
        assert outbox_repo.attempts(conn) == []


def test_a_restart_resumes_the_outbox_in_order_with_no_secret_stored(
        db: Database, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with WebhookServer() as hook:
        first = center(db)
        first.configure(config(hook))
        hook.stop()  # the receiver is down
        t = time.time()
        first.on_transitions([transition("firing", t)])
        assert len(first.tick(t + 1)) == 1  # group_wait
        first.on_transitions([transition("resolved", t + 2)])
        assert len(first.tick(t + 3)) == 1  # the resolved waits behind the firing
        assert not first.deliverer.flush(timeout=0.5)  # tries, fails, retries
        with db.read() as conn:
            owed = outbox_repo.pending(conn)
            failed = outbox_repo.attempts(conn)
        assert [r.notification["status"] for r in owed] == ["firing", "resolved"]
        assert owed[0].attempts >= 2 and owed[1].attempts == 0  # only the head is tried
        assert failed and all(not a["ok"] and a["error"] == "connection refused" for a in failed)
        del first  # the process dies; nothing of it is used again

        second = center(db)  # a new process on the same database
        assert second.resume() == 2 and second.resume() == 2  # idempotent
        assert second.deliverer.pending() == 2
        hook.start()  # same port
        assert second.deliverer.flush(timeout=10)
        got = [r.json() for r in hook.delivered]
        assert [g["status"] for g in got] == ["firing", "resolved"]
        assert [g["id"] for g in got] == [r.notification["id"] for r in owed]
        with db.read() as conn:
            assert outbox_repo.pending(conn) == []
            assert outbox_repo.counts(conn) == {"sent": 2}
            log = outbox_repo.attempts(conn)
        assert [a["ok"] for a in log].count(True) == 2 and not log[0]["ok"]
        assert [a["notification_id"] for a in log if a["ok"]] == [g["id"] for g in got]

        # An error text holding a secret (e.g. echoed by a proxy) is masked before storing.
        with db.write() as conn:
            oid = outbox_repo.enqueue(conn, "ops", note(9), time.time())
        second._attempted(DeliveryAttempt(
            receiver="ops", at=datetime.now(UTC), ok=False, final=False, retry_in=1.0,
            error=f"HTTP 502: bad gateway for /hook/{TOKEN} key {HMAC_KEY}", outbox_id=oid))
        with db.read() as conn:
            stored = outbox_repo.get(conn, oid)
            everything = str(outbox_repo.attempts(conn)) + str(outbox_repo.pending(conn))
        assert stored is not None and stored.last_error is not None
        assert "***" in stored.last_error
        for secret in (TOKEN, HMAC_KEY):
            assert secret not in everything and secret not in caplog.text
            assert secret not in str(second.recent_attempts()) + str(second.queue())


def test_a_pending_message_for_a_removed_receiver_is_failed_not_lost(db: Database) -> None:
    with db.write() as conn:
        oid = outbox_repo.enqueue(conn, "gone", note(1), time.time())
    c = center(db)
    assert c.resume() == 0
    with db.read() as conn:
        row = outbox_repo.get(conn, oid)
    assert row is not None and row.state == "failed"
    assert row.last_error == "receiver 'gone' is no longer configured"
    assert c.recent_attempts()[-1]["error"] == row.last_error


def test_holds_lease_names_the_holder(db: Database) -> None:
    with db.write() as conn:
        assert not alerts_repo.holds_lease(conn, LEASE, "a")
        assert alerts_repo.acquire_lease(conn, LEASE, "a", 10.0, now=100.0)
        assert alerts_repo.holds_lease(conn, LEASE, "a")
        assert alerts_repo.holds_lease(conn, LEASE, "a", now=105.0)
        assert not alerts_repo.holds_lease(conn, LEASE, "a", now=111.0)  # expired...
        assert alerts_repo.holds_lease(conn, LEASE, "a")  # ...but nobody has taken it
        assert not alerts_repo.holds_lease(conn, LEASE, "b")
        assert alerts_repo.acquire_lease(conn, LEASE, "b", 10.0, now=111.0)
        assert not alerts_repo.holds_lease(conn, LEASE, "a")


def process(db: Database, holder: str, ttl: float = 1.0, take: bool = True) -> AlertPipeline:
    """What one server process runs: its own centre and pipeline on the shared database."""
    mon = Monitor(db)
    return AlertPipeline(mon, IncidentService(db), center(db),
                         leadership=Leadership(db, holder, ttl, take=take))


def test_only_the_lease_holder_notifies_and_a_takeover_resumes(db: Database) -> None:
    with WebhookServer() as hook:
        a, b = process(db, "proc-a"), process(db, "proc-b")
        assert a.lead() and not b.lead()
        assert b.notifications is not None and a.notifications is not None
        b.notifications.configure(config(hook))  # through the other process's API
        b.notifications.add_silence({"matchers": ["rule=quiet"], "ends_at": time.time() + 600},
                                    "carol")
        t = time.time()
        a.tick()  # a takes in the config and the silence stored by b
        assert "ops" in a.notifications.receivers and len(a.notifications.silences) == 1
        a.notifications.on_transitions([transition("firing", t),
                                        ({**LABELS, "rule": "quiet"},
                                         Transition("firing", t, "critical", 2.0))])
        for p in (a, b, a, b):
            p.tick(t + 1.5)  # after group_wait
            p.notifications.deliverer.flush(timeout=5)  # type: ignore[union-attr]
        assert [r.json()["status"] for r in hook.delivered] == ["firing"]  # once, unsilenced
        assert b.notifications.deliverer.pending() == 0 and not b.leading

        hook.stop()
        a.notifications.on_transitions([transition("resolved", t + 2)])
        a.tick(t + 3)  # after group_interval
        assert not a.notifications.deliverer.flush(timeout=0.3)  # the receiver is down
        # a dies here; its lease (1 s) expires and b takes over.
        time.sleep(1.1)
        assert b.lead() and b.leading
        assert b.notifications.deliverer.pending() == 1  # resumed from the outbox
        assert b.notifications.dispatcher.groups()  # and the groups from the stored state
        hook.start()
        assert b.notifications.deliverer.flush(timeout=10)
        assert [r.json()["status"] for r in hook.delivered] == ["firing", "resolved"]

        assert not a.lead() and not a.leading  # a wakes up: it stands down
        assert a.notifications.deliverer.pending() == 0
        b.release()  # a clean shutdown hands over at once
        assert not b.leading and a.lead()


def test_a_process_without_an_evaluation_loop_does_not_take_the_lease(db: Database) -> None:
    idle = process(db, "api-only", take=False)
    assert not idle.lead()
    with db.write() as conn:  # it evaluated on request (as of a past time): its lease now
        assert alerts_repo.acquire_lease(conn, LEASE, "api-only", 1.0, now=time.time() - 60)
    assert idle.lead()  # still named on the lease: nobody else took it
    with db.write() as conn:
        before = conn.execute(select(leases.c.expires_at)).scalar()
    assert idle.lead()
    with db.write() as conn:  # never renewed by a check, so a looping process can take it
        assert conn.execute(select(leases.c.expires_at)).scalar() \
            == before
    loop = process(db, "looping")
    assert loop.lead() and not idle.lead()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_migration_0010_removes_stored_reply_texts(kind: str, tmp_path: Path) -> None:
    """Rows written before the egress policy held the receiver's body; the upgrade keeps
    the status and the fixed reason only."""
    from alembic import command

    from aiwarden.store.database import _alembic_config

    secret = "body-from-the-far-end-99"
    with database_url(kind, tmp_path) as url:
        database = Database(url)
        cfg = _alembic_config()
        with database.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0009")
        with database.write() as conn:
            box = outbox_repo.enqueue(conn, "ops", {"id": "n1", "title": "t"}, 1.0)
            for error in (f"HTTP 500: {secret}", f"SMTP 550: 5.1.1 {secret} (gave up after "
                          "3 tries in 9s)", "connection refused", "HTTP 503"):
                outbox_repo.record_attempt(conn, receiver="ops", at=2.0, ok=False,
                                           outbox_id=box, final=False, error=error,
                                           status=int(error[5:8]) if error[0] in "HS" else None)
        database.migrate()
        with database.read() as conn:
            errors = [a["error"] for a in outbox_repo.attempts(conn)]
            last = outbox_repo.get(conn, box)
        assert errors == ["HTTP 500 from receiver",
                          "SMTP 550 from receiver (gave up after 3 tries in 9s)",
                          "connection refused", "HTTP 503 from receiver"]
        assert last is not None and last.last_error == "HTTP 503 from receiver"
        database.dispose()
