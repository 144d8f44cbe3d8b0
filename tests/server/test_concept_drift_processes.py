"""Two server processes on one database, both running the evaluation loop, while labelled
outcomes stream in live; one is killed (-9) mid-stream. The change points are exactly the
engine's on the whole stream in one pass: no outcome fed twice or skipped (SQLite and
PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import register_model
from tests.server.live import ProcessServer, database_url
from tests.server.test_concept_drift import ALL, CHANGE, N, engine, found, outcomes

BATCH = 100
DELAY = 4  # label_delay (whole seconds): live labels arrive well within it
SPACING = 0.01  # seconds between predictions (logged about as fast)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as url:
        yield url


def _fed(http: httpx.Client, name: str, at_least: int, within: float = 60) -> int:
    """Outcomes fed so far, once at least ``at_least`` were (fails after ``within`` s)."""
    deadline = time.monotonic() + within
    while True:
        status = http.get(f"/models/{name}/concept-drift").json()
        fed = status["versions"].get("v1", {}).get("outcomes", 0)
        if fed >= at_least:
            return int(fed)
        assert time.monotonic() < deadline, status
        time.sleep(0.2)


def test_two_processes_and_a_kill_feed_each_outcome_once(db_url: str, tmp_path: Path) -> None:
    errors = outcomes(seed=0, change=CHANGE)
    want = engine(errors, ALL)
    env = {"AIWARDEN_EVALUATE_EVERY": "0.3", "AIWARDEN_LEASE_TTL": "1"}
    a = ProcessServer(db_url, tmp_path, extra_env=env).start()
    b = ProcessServer(db_url, tmp_path, extra_env=env).start()
    try:
        with httpx.Client(base_url=a.url + "/api/v1", timeout=60) as http:
            name = register_model(http, "live")
            r = http.put(f"/models/{name}/concept-drift",
                         json={"label_delay": DELAY, "detectors": ALL})
            assert r.status_code == 200, r.text
            start = time.time() + 1  # live: prediction times ahead of the watermark
            for k in range(0, N, BATCH):
                if k == N // 2:  # once part of the stream was fed: kill, mid-stream
                    assert _fed(http, name, at_least=1) < N
                    a.kill()  # whichever held the lease
                    http = httpx.Client(base_url=b.url + "/api/v1", timeout=60)
                idx = range(k, k + BATCH)
                r = http.post(f"/models/{name}/labels", json=[
                    {"prediction_id": f"p{i}", "label": int(1 - errors[i])} for i in idx])
                assert r.status_code == 200, r.text
                r = http.post(f"/models/{name}/predictions", json=[
                    {"prediction_id": f"p{i}", "timestamp": start + i * SPACING,
                     "features": {"x": 0.5, "c": "a"}, "prediction": 1, "scores": 0.8}
                    for i in idx])
                assert r.status_code == 200 and r.json()["accepted"] == BATCH, r.text
                time.sleep(0.05)
            assert _fed(http, name, at_least=N) == N
            assert found(http, name) == want
            http.close()
    finally:
        for srv in (a, b):
            if srv.proc is not None and srv.proc.poll() is None:
                srv.stop()
    assert "Traceback" not in b.log(), b.log()[-3000:]
