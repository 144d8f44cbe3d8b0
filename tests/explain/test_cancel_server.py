"""A long explain or importance request stops when its client hangs up (a real server on
SQLite): the work ends Cancelled within seconds of the disconnect instead of running to
its end, and the server answers the next request."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from aiwarden.errors import Cancelled
from tests.explain_seed import explainable
from tests.server.live import ThreadServer, database_url, settings_for

# LIME at its largest sample: ~60 rows x 20,000 model rows each, seconds of work at least
SLOW = {"method": "lime", "lime_samples": 20_000}


class Watched:
    """``app.state.wrap_long_work``: records when the server first told the work to stop,
    how the work ended and when (it does not hold or change the work)."""

    def __init__(self) -> None:
        self.started, self.finished = threading.Event(), threading.Event()
        self.stop_seen: float | None = None
        self.ended: float | None = None
        self.outcome = ""

    def __call__(self, work: Callable[[Callable[[], bool]], Any]
                 ) -> Callable[[Callable[[], bool]], Any]:
        def watched(should_stop: Callable[[], bool]) -> Any:
            self.started.set()

            def asked() -> bool:
                stop = should_stop()
                if stop and self.stop_seen is None:
                    self.stop_seen = time.monotonic()
                return stop
            try:
                out = work(asked)
            except Cancelled:
                self.outcome = "cancelled"
                raise
            except BaseException as e:
                self.outcome = f"{type(e).__name__}: {e}"
                raise
            else:
                self.outcome = "completed"
                return out
            finally:
                self.ended = time.monotonic()
                self.finished.set()
        return watched


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ThreadServer, str]]:
    with database_url("sqlite", tmp_path_factory.mktemp("db")) as url, \
            ThreadServer(settings_for(url, tmp_path_factory.mktemp("data"))) as srv, \
            httpx.Client(base_url=srv.url + "/api/v1", timeout=60) as api:
        yield srv, explainable(api)["name"]


def _hang_up(srv: ThreadServer, method: str, path: str, body: bytes = b"") -> Watched:
    """Send the request on a raw socket, close it once the work has started (no timing
    guess: a loaded host may take seconds to read a body), and watch the work end."""
    app = srv.server.config.app
    watched = app.state.wrap_long_work = Watched()
    port = int(srv.url.rsplit(":", 1)[1])
    head = (f"{method} /api/v1{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    try:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(head.encode() + body)
            assert watched.started.wait(60), "the work never started"
            time.sleep(0.5)  # into the explaining, past loading the model
        gone = time.monotonic()
        assert watched.finished.wait(60), "the work still runs 60 s after the client left"
    finally:
        del app.state.wrap_long_work
    assert watched.outcome == "cancelled", watched.outcome
    assert watched.stop_seen is not None and watched.ended is not None
    # it stopped at the next model call (one LIME row), not after the whole request
    assert watched.ended - gone < 20, watched.ended - gone
    return watched


def test_explain_stops_when_the_client_leaves(served) -> None:
    srv, name = served
    ids = [f"p{i}" for i in range(60)]
    _hang_up(srv, "POST", f"/models/{name}/explain",
             orjson.dumps({"prediction_ids": ids, "options": SLOW}))
    with httpx.Client(base_url=srv.url + "/api/v1", timeout=60) as api:
        r = api.post(f"/models/{name}/explain", json={"prediction_ids": ["p0"]})
    assert r.status_code == 200, r.text
    assert r.json()["explanations"][0]["contributions"][0]["feature"] == "amount"


def test_importance_stops_when_the_client_leaves(served) -> None:
    srv, name = served
    _hang_up(srv, "GET", f"/models/{name}/importance?method=lime&sample_size=200&version=1")
