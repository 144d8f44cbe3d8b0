"""Compaction runs in the worker holding the lease only (issue 17.1): with
`aiwarden server --workers 2` on PostgreSQL, every partial key the workers' ingest split
gets merged, and every merge was made by the lease holder."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import create_engine, func, select

from tests.server.conftest import json_rows, register_model, scored_frame
from tests.server.live import ProcessServer, database_url
from tests.server.test_workers import _holder_pid

ROUNDS = 6


def _split_keys(engine, name: str) -> int:
    """Keys (level, start) of ``name`` still held by more than one partial."""
    from aiwarden.store.tables import bucket_profiles as bp
    from aiwarden.store.tables import models

    with engine.connect() as conn:
        model_id = conn.execute(select(models.c.id).where(models.c.name == name)).scalar_one()
        keys = (select(bp.c.level, bp.c.start).where(bp.c.model_id == model_id)
                .group_by(bp.c.version_id, bp.c.level, bp.c.start)
                .having(func.count() > 1).subquery())
        return conn.execute(select(func.count()).select_from(keys)).scalar_one()


def test_only_the_lease_holder_compacts(tmp_path: Path) -> None:
    # a long lease: the leader does not change during the test, so "made by the holder"
    # is one pid; compaction every 0.2 s, so a follower that compacted would show up
    env = {"AIWARDEN_EVALUATE_EVERY": "5", "AIWARDEN_LEASE_TTL": "60",
           "AIWARDEN_COMPACT_EVERY": "0.2", "AIWARDEN_LOG_LEVEL": "debug"}
    with database_url("postgresql", tmp_path) as url:
        srv = ProcessServer(url, tmp_path, extra_env=env,
                            args=["--host", "127.0.0.1", "--workers", "2"]).start()
        engine = create_engine(url)
        try:
            with httpx.Client(base_url=f"{srv.url}/api/v1", timeout=60) as http:
                name = register_model(http, f"cl-{uuid.uuid4().hex[:6]}")
                deadline = time.monotonic() + 60
                while (leader := _holder_pid(engine)) is None:
                    assert time.monotonic() < deadline, "no worker took the lease"
                    time.sleep(0.1)
                for r in range(ROUNDS):
                    # two requests into the same minutes: two partials a key, whichever
                    # worker took each request (new sockets, so both workers ingest)
                    ts = time.time() - 3600 * (r + 1)
                    for half in range(2):
                        with httpx.Client(base_url=f"{srv.url}/api/v1", timeout=60) as fresh:
                            got = fresh.post(f"/models/{name}/predictions", json=json_rows(
                                scored_frame(60, seed=10 * r + half), ts,
                                prefix=f"r{r}h{half}-"))
                            assert got.status_code == 200, got.text
                    deadline = time.monotonic() + 60
                    while _split_keys(engine, name):
                        assert time.monotonic() < deadline, "the partials were never merged"
                        time.sleep(0.1)
                assert _holder_pid(engine) == leader  # one leader all along
        finally:
            engine.dispose()
            srv.stop()
    pids = {int(p) for p in re.findall(r"compacted \d+ partial key\(s\) \(pid (\d+)\)",
                                       srv.log())}
    assert pids == {leader}, (pids, leader)
    assert "Traceback" not in srv.log(), srv.log()[-3000:]
