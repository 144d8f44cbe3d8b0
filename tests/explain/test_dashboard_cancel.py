"""The dashboard's explanation pages (importance panel, prediction page) stop computing when
their tab is closed or the server shuts down, as the API does (outside review, finding 14):
both explanation slots are free again and the next page is not refused as busy. Also the
importance panel's ``where=`` slice. A real server on SQLite."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from aiwarden.errors import Cancelled
from aiwarden.server.explain_routes import _CORES
from tests.explain_seed import explainable
from tests.server.live import ThreadServer, database_url, settings_for


class Held:
    """``app.state.wrap_long_work``: holds each work until the server tells it to stop (so
    the hang-up provably lands while it runs), then lets it run and records how it ended."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.lock = threading.Lock()
        self.started: list[int] = []
        self.all_started, self.all_finished = threading.Event(), threading.Event()
        self.outcomes: list[str] = []
        self.saw_stop: list[bool] = []

    def __call__(self, work: Callable[[Callable[[], bool]], Any]
                 ) -> Callable[[Callable[[], bool]], Any]:
        def held(should_stop: Callable[[], bool]) -> Any:
            with self.lock:
                self.started.append(1)
                if len(self.started) >= self.expected:
                    self.all_started.set()
            deadline = time.monotonic() + 60
            while not should_stop() and time.monotonic() < deadline:
                time.sleep(0.01)
            outcome = "completed"
            try:
                return work(should_stop)
            except Cancelled:
                outcome = "cancelled"
                raise
            except BaseException as e:
                outcome = type(e).__name__
                raise
            finally:
                with self.lock:
                    self.saw_stop.append(should_stop())
                    self.outcomes.append(outcome)
                    if len(self.outcomes) >= self.expected:
                        self.all_finished.set()
        return held


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ThreadServer, str]]:
    with database_url("sqlite", tmp_path_factory.mktemp("db")) as url, \
            ThreadServer(settings_for(url, tmp_path_factory.mktemp("data"))) as srv, \
            httpx.Client(base_url=srv.url + "/api/v1", timeout=60) as api:
        yield srv, explainable(api)["name"]


def _open(port: int, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    return sock


def _free_slots(app: Any) -> int:
    slots = app.state.explain_slots
    return int(slots._value)  # BoundedSemaphore's counter: no public reader


def test_closed_tabs_free_both_explanation_slots(served) -> None:
    srv, name = served
    app = srv.server.config.app
    port = int(srv.url.rsplit(":", 1)[1])
    paths = [f"/models/{name}/explain/importance?version=1&range=24h",
             f"/models/{name}/predictions/p0"]
    held = app.state.wrap_long_work = Held(len(paths))
    try:
        socks = [_open(port, p) for p in paths]
        try:
            assert held.all_started.wait(60), "the pages never started explaining"
            assert _free_slots(app) == _CORES - min(len(paths), _CORES)
        finally:
            for s in socks:
                s.close()
        assert held.all_finished.wait(60), "an explanation still runs after its tab closed"
    finally:
        del app.state.wrap_long_work
    assert all(held.saw_stop), held.saw_stop
    assert held.outcomes == ["cancelled"] * len(paths), held.outcomes
    deadline = time.monotonic() + 30  # the request task releases the slot after the thread
    while _free_slots(app) < _CORES and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _free_slots(app) == _CORES
    with httpx.Client(base_url=srv.url, timeout=120) as web:
        r = web.get(f"/models/{name}/explain/importance", params={"version": "1",
                                                                   "range": "24h"})
    assert r.status_code == 200, r.text
    assert "explanations are running" not in r.text
    assert 'id="importance-table"' in r.text, r.text[:500]


def test_importance_panel_honours_where(served) -> None:
    srv, name = served
    with httpx.Client(base_url=srv.url, timeout=120) as web:
        r = web.get(f"/models/{name}/explain/importance",
                    params={"version": "1", "range": "24h", "where": "amount<20"})
        assert r.status_code == 200, r.text
        assert 'id="importance-slice"' in r.text, r.text[:800]
        assert "amount &lt; 20" in r.text or "amount<20" in r.text or "amount &lt;20" in r.text
        bad = web.get(f"/models/{name}/explain/importance",
                      params={"version": "1", "range": "24h", "where": "amount~~3"})
    assert bad.status_code == 422, bad.text[:300]
    assert "where" in bad.text


def test_server_shutdown_stops_a_dashboard_explanation(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    with database_url("sqlite", tmp_path_factory.mktemp("db2")) as url:
        srv = ThreadServer(settings_for(url, tmp_path_factory.mktemp("data2")))
        srv.server.config.timeout_graceful_shutdown = 1  # as `aiwarden server` (10 s)
        with srv:
            app = srv.server.config.app
            port = int(srv.url.rsplit(":", 1)[1])
            held = app.state.wrap_long_work = Held(1)
            sock = _open(port, "/models/nobody/explain/importance")
            try:
                assert held.all_started.wait(60), "the page never started explaining"
                srv.server.should_exit = True  # the tab stays open
                assert held.all_finished.wait(60), "shutdown did not stop the explanation"
            finally:
                sock.close()
    assert held.saw_stop == [True]
    assert held.outcomes != ["completed"]
