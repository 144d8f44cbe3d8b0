"""Admission control on the write paths, through a real server on SQLite and PostgreSQL.

The server admits at most two writes at once and one per model, with no waiting room, so a
write that finds its model's slot taken is refused at once. A slot is held on purpose by a
raw request whose body is still being sent (the route waits for it, inside the slot): what
is refused is then certain, not a matter of timing.
"""

from __future__ import annotations

import asyncio
import io
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import httpx
import orjson
import pyarrow.parquet as pq
import pytest

from aiwarden.sdk import Client
from aiwarden.server.admission import Admission
from tests.server.conftest import json_rows, register_model, scored_frame
from tests.server.live import ThreadServer, settings_for

TINY = {"ingest_max_inflight": 2, "ingest_max_per_model": 1, "ingest_max_queue": 0,
        "ingest_max_wait_ms": 0.0}


@pytest.fixture(scope="module")
def tiny(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    settings = settings_for(db_url, tmp_path_factory.mktemp("data"), **TINY)
    with ThreadServer(settings) as srv:
        yield srv


@pytest.fixture
def api(tiny: ThreadServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=tiny.url + "/api/v1", timeout=60) as c:
        yield c


def _admission(srv: ThreadServer) -> dict:
    return srv.server.config.app.state.admission.stats()


def _wait_inflight(srv: ThreadServer, n: int) -> None:
    deadline = time.monotonic() + 30
    while _admission(srv)["inflight"] != n:
        assert time.monotonic() < deadline, _admission(srv)
        time.sleep(0.01)


@contextmanager
def held_slot(srv: ThreadServer, name: str, rows: list[dict]) -> Iterator[dict]:
    """A prediction write to ``name`` that is admitted and then waits for the rest of its
    body; on exit the body is finished and its answer put in the yielded dict."""
    before = _admission(srv)["inflight"]
    body = orjson.dumps(rows)
    host = urlsplit(srv.url).netloc
    sock = socket.create_connection(("127.0.0.1", srv.settings.port), timeout=60)
    sock.sendall((f"POST /api/v1/models/{name}/predictions HTTP/1.1\r\nHost: {host}\r\n"
                  f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                  "Connection: close\r\n\r\n").encode() + body[:1])
    _wait_inflight(srv, before + 1)
    answer: dict = {}
    try:
        yield answer
    finally:
        sock.sendall(body[1:])
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
        sock.close()
        head, _, payload = raw.partition(b"\r\n\r\n")
        answer["status"] = int(head.split(b" ", 2)[1])
        answer["body"] = orjson.loads(payload)


def _new_model(api: httpx.Client, prefix: str) -> str:
    return register_model(api, f"{prefix}-{uuid.uuid4().hex[:6]}", scored_frame(500))


def _stored_ids(api: httpx.Client, name: str) -> list[str]:
    r = api.get(f"/models/{name}/events", params={"start": "2000-01-01T00:00:00Z"})
    r.raise_for_status()
    return pq.read_table(io.BytesIO(r.content)).column("prediction_id").to_pylist()


def test_a_write_beyond_the_bound_gets_429_with_retry_after_and_stores_nothing(
        tiny: ThreadServer, api: httpx.Client) -> None:
    name, other = _new_model(api, "busy"), _new_model(api, "calm")
    now = time.time() - 600
    held_rows = json_rows(scored_frame(30, seed=1), now, prefix="held-")
    refused_rows = json_rows(scored_frame(40, seed=2), now, prefix="refused-")
    with held_slot(tiny, name, held_rows) as held:
        for path, payload in ((f"/models/{name}/predictions", refused_rows),
                              (f"/models/{name}/labels", [{"prediction_id": "held-0",
                                                            "label": 1}]),
                              (f"/models/{name}/resources", [{"cpu_percent": 50.0}])):
            r = api.post(path, json=payload)
            assert r.status_code == 429, (path, r.text)
            assert int(r.headers["Retry-After"]) >= 1
            assert r.json() == {"detail": {"error": "overloaded", "field": None,
                                           "message": r.json()["detail"]["message"]}}
            assert "nothing of it was stored" in r.json()["detail"]["message"]
        # another model still has room (per-model bound 1, global 2); reads are never bounded
        ok = api.post(f"/models/{other}/predictions",
                      json=json_rows(scored_frame(5, seed=3), now, prefix="o-"))
        assert ok.status_code == 200 and ok.json()["accepted"] == 5
        assert api.get(f"/models/{name}").status_code == 200
    assert held["status"] == 200 and held["body"]["accepted"] == 30
    model = api.get(f"/models/{name}").json()
    assert model["predictions"] == 30 and model["labels_pending"] == 0
    assert sorted(_stored_ids(api, name)) == sorted(r["prediction_id"] for r in held_rows)
    # the refused request, sent again as it was, is stored in full
    again = api.post(f"/models/{name}/predictions", json=refused_rows)
    assert again.status_code == 200 and again.json()["accepted"] == 40
    assert api.get(f"/models/{name}").json()["predictions"] == 70
    stats = _admission(tiny)
    assert stats["refused"] >= 3 and stats["inflight"] == 0


def test_concurrent_writers_get_429s_and_every_acknowledged_row_is_stored(
        tiny: ThreadServer, api: httpx.Client) -> None:
    names = [_new_model(api, "race"), _new_model(api, "race")]
    now = time.time() - 600
    acked: dict[str, list[str]] = {n: [] for n in names}
    refused, statuses, lock = [0], set(), threading.Lock()
    start = threading.Barrier(8)

    def writer(w: int) -> None:
        name = names[w % 2]
        with httpx.Client(base_url=api.base_url, timeout=60) as c:
            start.wait()
            for b in range(6):
                rows = json_rows(scored_frame(200, seed=w * 10 + b), now,
                                 prefix=f"w{w}-b{b}-")
                r = c.post(f"/models/{name}/predictions", json=rows)
                with lock:
                    statuses.add(r.status_code)
                    if r.status_code == 200:
                        assert r.json()["accepted"] == 200
                        acked[name].extend(row["prediction_id"] for row in rows)
                    else:
                        assert r.status_code == 429 and "Retry-After" in r.headers
                        refused[0] += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert statuses <= {200, 429}
    assert refused[0] > 0, "eight writers on two one-slot models never collided"
    assert sum(map(len, acked.values())) > 0
    for name in names:
        assert api.get(f"/models/{name}").json()["predictions"] == len(acked[name])
        assert sorted(_stored_ids(api, name)) == sorted(acked[name])


def test_the_sdk_waits_out_429s_and_loses_nothing(tiny: ThreadServer,
                                                  api: httpx.Client) -> None:
    name = _new_model(api, "sdk")
    now = time.time() - 600
    held_rows = json_rows(scored_frame(10, seed=4), now, prefix="held-")
    client = Client(tiny.url, overload_wait=120)
    with held_slot(tiny, name, held_rows) as held:
        refused_before = _admission(tiny)["refused"]
        wl = client.logger(name, batch_size=25, flush_interval=0.02, max_retries=0,
                           backoff=0.01, max_backoff=0.05)
        for i in range(100):
            assert wl.log(f"log-{i}", {"x": float(i), "c": "a"}, prediction=i % 2,
                          scores=0.5, timestamp=now)
        # the held slot refuses every attempt: the logger keeps the batch and waits
        deadline = time.monotonic() + 30
        while wl.stats()["throttled"] < 3:
            assert time.monotonic() < deadline, wl.stats()
            time.sleep(0.01)
        assert not wl.flush(0.01)
        assert wl.stats()["sent"] == 0 and wl.stats()["failed"] == 0
        assert _admission(tiny)["refused"] > refused_before
        # the plain client retries the same way, in the caller's thread, while the slot is
        # still held; released below, so its call returns once admitted
        result: dict = {}
        rows = json_rows(scored_frame(20, seed=5), now, prefix="cli-")
        caller = threading.Thread(target=lambda: result.update(
            client.log_predictions(name, rows)))
        caller.start()
        while client.throttled == 0:
            assert time.monotonic() < deadline + 30
            time.sleep(0.01)
    assert held["status"] == 200
    caller.join(120)
    assert result["accepted"] == 20
    assert wl.flush(60)
    stats = wl.stats()
    wl.close()
    client.close()
    assert stats["sent"] == 100 and stats["failed"] == 0 and stats["dropped"] == 0
    assert stats["retries"] == 0 and stats["throttled"] >= 3
    ids = _stored_ids(api, name)
    assert sorted(ids) == sorted([r["prediction_id"] for r in held_rows]
                                 + [r["prediction_id"] for r in rows]
                                 + [f"log-{i}" for i in range(100)])


def test_admission_off_admits_everything(db_url: str,
                                         tmp_path_factory: pytest.TempPathFactory) -> None:
    """``AIWARDEN_INGEST_MAX_INFLIGHT=0`` (the benchmark's baseline): no slot is counted."""
    settings = settings_for(db_url, tmp_path_factory.mktemp("off"), ingest_max_inflight=0,
                            ingest_max_queue=0, ingest_max_wait_ms=0.0)
    with ThreadServer(settings) as srv, \
            httpx.Client(base_url=srv.url + "/api/v1", timeout=60) as c:
        name = _new_model(c, "open")
        now = time.time() - 600
        codes: list[int] = []

        def writer(w: int) -> None:
            with httpx.Client(base_url=c.base_url, timeout=60) as mine:
                for b in range(3):
                    rows = json_rows(scored_frame(100, seed=w * 10 + b), now, f"w{w}b{b}-")
                    codes.append(mine.post(f"/models/{name}/predictions",
                                           json=rows).status_code)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert codes == [200] * 12
        assert c.get(f"/models/{name}").json()["predictions"] == 1200
        assert _admission(srv)["admitted"] == 0


def _in_own_loop(coro_fn: Callable[[], Awaitable[None]]) -> None:
    """asyncio.run in a thread of its own (the browser tests leave a loop in the main one)."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(coro_fn())
        except BaseException as exc:  # handed to the test's thread
            failure.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join(60)
    if failure:
        raise failure[0]


def test_waiting_writes_get_freed_slots_first_come_first_served() -> None:
    async def scenario() -> None:
        adm = Admission(1, 0, max_queue=2, max_wait=60)
        assert await adm.acquire("a")
        order: list[str] = []

        async def wait(model: str) -> bool:
            ok = await adm.acquire(model)
            order.append(model)
            return ok

        first = asyncio.create_task(wait("b"))
        await asyncio.sleep(0)
        second = asyncio.create_task(wait("c"))
        await asyncio.sleep(0)
        assert not await adm.acquire("d")  # two already wait: refused at once
        assert adm.stats()["waiting"] == 2
        adm.release("a", 0.5)
        assert await first and order == ["b"]
        adm.release("b", 0.5)
        assert await second and order == ["b", "c"]
        adm.release("c")
        assert adm.stats() | {"max_wait": None} == {
            "admitted": 3, "refused": 1, "waited": 2, "inflight": 0, "waiting": 0,
            "max_inflight": 1, "max_per_model": 0, "max_queue": 2, "max_wait": None}

    _in_own_loop(scenario)


def test_a_model_at_its_bound_waits_while_others_pass() -> None:
    async def scenario() -> None:
        adm = Admission(3, 1, max_queue=5, max_wait=60)
        assert await adm.acquire("a")
        second_a = asyncio.create_task(adm.acquire("a"))
        await asyncio.sleep(0)
        assert await adm.acquire("b")  # the waiting "a" does not block "b"
        adm.release("b")
        await asyncio.sleep(0)
        assert not second_a.done()  # a free global slot is no use to a full model
        adm.release("a")
        assert await second_a
        assert adm.stats()["inflight"] == 1

    _in_own_loop(scenario)


def test_a_write_that_waits_too_long_is_refused_and_leaves_the_queue() -> None:
    async def scenario() -> None:
        adm = Admission(1, 0, max_queue=4, max_wait=0.01)
        assert await adm.acquire("a")
        assert not await adm.acquire("b")
        assert adm.stats()["waiting"] == 0 and adm.stats()["refused"] == 1
        assert adm.retry_after() == 1
        adm.release("a", 90.0)  # a slow write: the next refusal asks for longer
        assert adm.stats()["inflight"] == 0
        assert await adm.acquire("c")
        assert adm.retry_after() == 60  # capped

    _in_own_loop(scenario)
