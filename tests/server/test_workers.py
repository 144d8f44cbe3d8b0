"""Several server processes on one PostgreSQL (issue 17.1): `aiwarden server --workers 2`,
the leader killed (-9) right after an alert's data arrived, its successor takes the lease
within a heartbeat (its session lock died with it; the TTL is the default 10 s) and the
alert pages exactly once; a leader that dies between recording a transition and
handing it over leaves it to its successor; a stalled ex-leader cannot write after a
takeover; SQLite refuses several workers in one line."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from sqlalchemy import create_engine, select

from aiwarden.alerting.evaluator import LEASE, Evaluator
from aiwarden.alerting.pipeline import AlertPipeline, Leadership
from aiwarden.cli import main
from aiwarden.incidents import IncidentService
from aiwarden.monitoring.service import Monitor
from aiwarden.store import alerts_repo
from aiwarden.store.database import Database
from aiwarden.store.tables import leases
from tests.alerting.receivers import WebhookServer
from tests.alerting.test_outbox import center, config
from tests.fencing import waiting_successor
from tests.server.conftest import HINTS, json_rows, register_model, scored_frame
from tests.server.live import ProcessServer, database_url, migrated_database

RULE = {"metric": "drift", "column": "x", "critical": 1.0}


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with migrated_database(request.param, tmp_path) as database:
        yield database


def _firing(hook: WebhookServer, model: str) -> list[dict[str, Any]]:
    """Firing messages the receiver got for ``model``'s x-drift alert."""
    out = []
    for r in hook.delivered:
        body = r.json()
        if body.get("status") == "firing" and any(
                a["labels"].get("model") == model and a["labels"].get("rule") == "x-drift"
                for a in body.get("alerts", [])):
            out.append(body)
    return out


class _Process:
    """What one server process runs for alerting, on the shared database."""

    def __init__(self, db: Database, holder: str, ttl: float) -> None:
        mon = Monitor(db)
        self.ev = Evaluator(mon, holder=holder, lease_ttl=ttl)
        self.pipe = AlertPipeline(mon, IncidentService(db), center(db), lock=self.ev.lock,
                                  leadership=Leadership(db, holder, ttl))
        self.pipe.start()

    def flush(self) -> None:
        assert self.pipe.notifications is not None
        self.pipe.tick(time.time() + 1.5)  # past group_wait
        self.pipe.notifications.deliverer.flush(timeout=10)


def test_a_leader_dead_between_recording_and_grouping_leaves_the_page_to_its_successor(
        db: Database) -> None:
    name = f"w-{uuid.uuid4().hex[:6]}"
    mon = Monitor(db)
    mon.create_model(name, task="binary")
    mon.upload_reference(name, "v1", pa.Table.from_pandas(scored_frame(3000),
                                                          preserve_index=False), HINTS)
    mon.log_predictions(name, json_rows(scored_frame(500, seed=9, shift=1.2),
                                        time.time() - 1600))
    with db.write() as conn:
        alerts_repo.upsert_rule(conn, name, "x-drift", {"model": name, "name": "x-drift",
                                                        **RULE}, "api")
    with WebhookServer() as hook:
        # b's lease outlives the test however slow the machine; a's lapses in 1 s
        a, b = _Process(db, "proc-a", 1.0), _Process(db, "proc-b", 60.0)
        assert a.pipe.notifications is not None
        a.pipe.notifications.configure(config(hook))
        report = a.ev.evaluate_once()
        assert "firing" in [t.kind for labels, t in report.transitions
                            if labels["rule"] == "x-drift"]
        # a is killed here: the transition is recorded, never handed over
        with db.read() as conn:  # its lease (1 s) lapses
            expires = conn.execute(select(leases.c.expires_at)).scalar()
        time.sleep(max(0.0, expires - time.time()) + 0.1)
        assert b.pipe.beat() and b.pipe.leading  # b takes over and hands it over
        assert len(IncidentService(db).list_incidents(model=name)) == 1
        b.flush()
        assert len(_firing(hook, name)) == 1
        # a wakes up: it is no longer the leader, hands nothing to notifications...
        a.pipe.after_cycle(report)
        assert not a.pipe.leading
        # ...and may not evaluate (its save would be fenced off anyway)
        assert not a.ev.evaluate_once().evaluated
        b.pipe.beat()
        b.flush()
        assert len(_firing(hook, name)) == 1, "paged twice"
        assert len(IncidentService(db).list_incidents(model=name)) == 1


def test_a_stalled_leader_blocks_its_successor_until_its_write_ends(tmp_path: Path) -> None:
    """PostgreSQL: the fence share-locks the lease row, so a successor's take-over waits
    for the stalled leader's transaction; after that the ex-leader's fence fails."""
    with database_url("postgresql", tmp_path) as url:
        db = Database(url)
        db.migrate()
        try:
            with db.write() as conn:
                assert alerts_repo.acquire_lease(conn, LEASE, "a", 0.3, time.time())
            with db.write() as conn:  # a's cycle writes; it stalls past its lease
                assert alerts_repo.fence(conn, LEASE, "a")
                time.sleep(0.4)
                finished = waiting_successor(db, lambda c2: alerts_repo.acquire_lease(
                    c2, LEASE, "b", 5.0, time.time()), LEASE, "a", "b")
            finished()
        finally:
            db.dispose()


def test_several_workers_on_sqlite_are_refused_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["server", "--workers", "2", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "--workers 2 needs PostgreSQL" in err, err


def test_more_workers_than_the_cores_can_hold_are_refused_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--workers 500 once spawned 500 processes and took the machine's memory."""
    code = main(["server", "--workers", "500", "--data-dir", str(tmp_path),
                 "--database-url", "postgresql+psycopg://postgres@127.0.0.1:5432/test"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "--workers 500 is more than" in err, err
    assert "per core" in err


def _holder_pid(engine: Any) -> int | None:
    with engine.connect() as conn:
        holder = conn.execute(select(leases.c.holder).where(leases.c.name == LEASE)).scalar()
    return int(holder.split(":")[1]) if holder else None


def test_kill_9_of_the_leading_worker_pages_once_and_misses_nothing(tmp_path: Path) -> None:
    """With the default lease TTL (10 s): the leader's session lock goes with its process,
    so a survivor takes the lease at its next heartbeat (1 s), well before the TTL."""
    env = {"AIWARDEN_EVALUATE_EVERY": "0.3", "AIWARDEN_COMPACT_EVERY": "0.5",
           "AIWARDEN_EGRESS_ALLOW": "127.0.0.1"}
    with database_url("postgresql", tmp_path) as url, WebhookServer() as hook:
        srv = ProcessServer(url, tmp_path, extra_env=env,
                            args=["--host", "127.0.0.1", "--workers", "2"]).start()
        engine = create_engine(url)
        try:
            with httpx.Client(base_url=f"{srv.url}/api/v1", timeout=60) as http:
                http.put("/notifications/config", json=config(hook)).raise_for_status()
                name = register_model(http, f"w-{uuid.uuid4().hex[:6]}")
                http.put(f"/rules/{name}/x-drift", json=RULE).raise_for_status()
                deadline = time.monotonic() + 60
                while (leader := _holder_pid(engine)) is None:
                    assert time.monotonic() < deadline, "no worker took the lease"
                    time.sleep(0.1)
                assert leader != srv.proc.pid  # a worker leads, not the supervisor
                r = http.post(f"/models/{name}/predictions", json=json_rows(
                    scored_frame(500, seed=9, shift=1.2), time.time() - 1600))
                assert r.status_code == 200, r.text
                os.kill(leader, 9)  # mid-cycle: the loop evaluates every 0.3 s
                killed_at = time.monotonic()
                while (now := _holder_pid(engine)) in (leader, None):
                    assert time.monotonic() - killed_at < 60, "nobody took over"
                    time.sleep(0.05)
                took = time.monotonic() - killed_at
                print(f"takeover after {took:.2f} s by pid {now}")
                # the TTL (10 s) would be the bound without the lock; one beat is 1 s
                assert took < 5, f"takeover took {took:.2f} s: the TTL, not the session lock"
                while not _firing(hook, name):
                    assert time.monotonic() - killed_at < 90, "the alert never paged"
                    time.sleep(0.1)
                time.sleep(3)  # several more cycles, ticks and group intervals
                assert len(_firing(hook, name)) == 1, "paged twice"
                # every worker left serves ingest, reads and the dashboard
                for _ in range(6):
                    with httpx.Client(base_url=srv.url, timeout=60) as fresh:  # new sockets
                        assert fresh.get(f"/api/v1/models/{name}").status_code == 200
                        assert fresh.get("/").status_code == 200
                        assert fresh.post(f"/api/v1/models/{name}/predictions", json=json_rows(
                            scored_frame(5, seed=1), time.time())).status_code == 200
                incidents = http.get("/incidents", params={"model": name}).json()
                assert len(incidents) == 1
        finally:
            engine.dispose()
            srv.stop()
    assert "Traceback" not in srv.log(), srv.log()[-3000:]
