"""Runs in the database on SQLite and PostgreSQL: dedupe, claim once, end once, cancel."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiwarden.store.database import Database
from aiwarden.training import store
from tests.server.live import database_url


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path):
    with database_url(request.param, tmp_path) as url:
        database = Database(url)
        database.migrate()
        yield database
        database.dispose()


def test_a_pipeline_is_stored_replaced_and_keeps_its_trigger_state(db) -> None:
    with db.write() as conn:
        store.put_pipeline(conn, 1, {"model": "fraud", "entry": "a.b:c"}, "alice", 10.0)
        store.save_pipeline_state(conn, 1, {"labels_seen": 500})
        store.put_pipeline(conn, 1, {"model": "fraud", "entry": "a.b:d"}, "bob", 20.0)
    with db.read() as conn:
        p = store.get_pipeline(conn, 1)
    assert p.spec["entry"] == "a.b:d" and p.updated_by == "bob"
    assert p.state == {"labels_seen": 500}


def test_alerts_at_once_queue_one_run_and_one_process_claims_it(db) -> None:
    with db.write() as conn:
        runs = [store.enqueue(conn, 1, trigger="alert", detail={"rule": f"drift-{i}"},
                              spec={"model": "fraud"}, now=100.0 + i, dedupe_key="alert")
                for i in range(10)]
    assert runs[0] is not None and runs[1:] == [None] * 9
    run = runs[0]
    with db.write() as conn:
        assert store.claim(conn, run.id, "proc-a", 200.0, "/tmp/r1")
        assert not store.claim(conn, run.id, "proc-b", 200.5, "/tmp/r1")
        # while it runs, the key still dedupes; a manual run has its own
        assert store.enqueue(conn, 1, trigger="alert", detail={}, spec={}, now=201.0,
                             dedupe_key="alert") is None
        assert store.enqueue(conn, 1, trigger="manual", detail={}, spec={}, now=201.0)
        assert store.running_count(conn, 1) == 1
        assert store.last_started(conn, 1, ["alert"]) == 100.0


def test_a_run_ends_once_and_only_by_its_holder(db) -> None:
    with db.write() as conn:
        run = store.enqueue(conn, 2, trigger="manual", detail={}, spec={}, now=1.0)
        store.claim(conn, run.id, "proc-a", 2.0, "/tmp/r")
        assert store.heartbeat(conn, run.id, "proc-a", 3.0, data={"rows": 10})
        assert not store.heartbeat(conn, run.id, "proc-b", 3.0)
        assert not store.finish(conn, run.id, "proc-b", "failed", "not mine", 4.0)
        assert store.finish(conn, run.id, "proc-a", "succeeded", "trained", 5.0,
                            gates=[{"gate": "data", "passed": True}], version="3")
        assert not store.finish(conn, run.id, "proc-a", "failed", "again", 6.0)
        done = store.get_run(conn, run.id)
    assert (done.state, done.reason, done.version, done.seconds) == ("succeeded", "trained",
                                                                      "3", 3.0)
    assert done.data == {"rows": 10} and done.gates[0]["gate"] == "data"


def test_cancel_ends_a_queued_run_and_flags_a_running_one(db) -> None:
    with db.write() as conn:
        queued = store.enqueue(conn, 3, trigger="manual", detail={}, spec={}, now=1.0)
        running = store.enqueue(conn, 3, trigger="manual", detail={}, spec={}, now=1.0)
        store.claim(conn, running.id, "proc-a", 2.0, "/tmp/r")
        done = store.request_cancel(conn, queued.id, 3.0, "olga")
        assert (done.state, done.reason) == ("cancelled", "cancelled by olga before it started")
        flagged = store.request_cancel(conn, running.id, 3.0, "olga")
        assert flagged.state == "running" and flagged.cancel_requested
        assert flagged.reason == "cancelled by olga while it ran"
        assert store.cancel_requested(conn, running.id)
        assert store.request_cancel(conn, 999, 3.0) is None


def test_a_run_whose_process_died_is_found_by_its_heartbeat(db) -> None:
    with db.write() as conn:
        run = store.enqueue(conn, 4, trigger="manual", detail={}, spec={}, now=1.0)
        store.claim(conn, run.id, "dead-proc", 2.0, "/tmp/r")
        assert store.stale_running(conn, before=1.5) == []
        (stale,) = store.stale_running(conn, before=60.0)
    assert stale.id == run.id and stale.holder == "dead-proc"
