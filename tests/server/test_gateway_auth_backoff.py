"""A standalone gateway whose key the server refuses (revoked, or missing) says so once and
backs off, instead of logging the same 401 four times a second: against a real keyed server
(SQLite and PostgreSQL), the gateway's remote source and event sink as ``aiwarden serve``
builds them."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiwarden._batching import SayOnce
from aiwarden.gateway import EventQueue
from aiwarden.gateway.gateway import Gateway
from aiwarden.gateway.sources import RemoteSource, client_sink
from aiwarden.sdk import Client
from aiwarden.store import keys
from aiwarden.store.database import Database
from tests.gateway.models import fitted
from tests.server.live import ThreadServer, settings_for

BAD_KEY = "aw_000000000000_not-a-key-the-server-knows"


@pytest.fixture(scope="module")
def keyed(db_url: str, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[ThreadServer, str]]:
    db = Database(db_url)
    db.migrate()
    with db.write() as conn:
        key, _ = keys.create_key(conn, "gateway", ["read", "ingest", "admin"])
    db.dispose()
    with ThreadServer(settings_for(db_url, Path(tmp_path_factory.mktemp("data")))) as srv:
        yield srv, key


def _warnings(caplog: pytest.LogCaptureFixture, words: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and words in r.getMessage()]


def test_refused_events_are_not_retried_and_said_once(keyed, caplog) -> None:
    srv, _ = keyed
    caplog.set_level(logging.WARNING, "aiwarden.gateway")
    with Client(srv.url, BAD_KEY) as refused:
        q = EventQueue(client_sink(refused, "m"), batch_size=2, flush_interval=0.01,
                       max_retries=3, backoff=0.001, max_backoff=0.002, name="events-m")
        for i in range(10):  # five batches, each refused with a real 401
            assert q.put({"prediction_id": str(i), "features": {"x": i}})
            if i % 2:
                assert q.flush(timeout=30)
        stats = q.stats()
        assert q.close()
    assert (stats["failed"], stats["sent"], stats["retries"]) == (10, 0, 0)  # 401: no retry
    assert "401" in stats["last_error"]
    said = _warnings(caplog, "events not sent")
    assert len(said) == 1 and "401" in said[0], said


def test_a_gateway_whose_key_is_refused_backs_off_and_says_it_once(keyed, caplog) -> None:
    srv, key = keyed
    name = f"bo-{uuid.uuid4().hex[:6]}"
    with Client(srv.url, key) as admin:
        admin.register_version(name, fitted(seed=0))
        admin.promote(name, "1", reason="first release")

    class Counting(RemoteSource):
        checks = 0

        def stamp(self):  # the real request, counted
            Counting.checks += 1
            return super().stamp()

    caplog.set_level(logging.WARNING, "aiwarden.gateway")
    with Client(srv.url, key) as good, Client(srv.url, BAD_KEY) as refused:
        source = Counting(good, name)
        gw = Gateway(name, source, client_sink(good, name), poll=0.01, max_poll_backoff=0.5)
        try:
            assert gw.version == "1"
            source.client = refused  # the server stops accepting the gateway's key
            Counting.checks = 0
            time.sleep(1.5)  # 150 checks at the poll interval without backing off
            checks, error = Counting.checks, gw.last_error
            source.client = good  # the key works again: the recovery is said once too
            deadline = time.monotonic() + 30
            while not _warnings(caplog, "works again"):
                assert time.monotonic() < deadline, caplog.text
                time.sleep(0.05)
        finally:
            gw.close(5)
    assert 3 <= checks <= 15, checks  # 0.02, 0.04, ... 0.5 s between checks
    assert "401" in error or "429" in error  # refused, then rate-limited as a failing key
    said = _warnings(caplog, "checking for changes failed")
    assert 1 <= len(said) <= 2, said  # once per distinct error (401, then perhaps 429)


def test_say_once_summarises_on_a_clock_and_backs_off_exponentially(caplog) -> None:
    now = [0.0]
    say = SayOnce(logging.getLogger("aiwarden.test"), "events not sent", summary_every=300,
                  clock=lambda: now[0])
    caplog.set_level(logging.WARNING, "aiwarden.test")
    logged = []
    for _ in range(240):  # four a second for a minute: one line
        logged.append(say.failed("HTTP 401 unauthorized"))
        now[0] += 0.25
    assert logged.count(True) == 1
    assert [say.backoff(0.25, 60) for _ in range(1)] == [60]  # capped
    now[0] = 300.0
    assert say.failed("HTTP 401 unauthorized")  # five minutes on: a summary
    assert say.failed("HTTP 429 too many failed authentications")  # a new error: said
    assert say.ok() and not say.ok()  # the end, once
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 4 and "still failing, 240 more time(s)" in msgs[1], msgs
    assert "works again after 242 failure(s)" in msgs[3]
    fresh = SayOnce(logging.getLogger("aiwarden.test"), "x")
    assert [fresh.backoff(1, 60) for _ in range(1)] == [1]
    fresh.failed("e")
    fresh.failed("e")
    fresh.failed("e")
    assert fresh.backoff(1, 60) == 4


def test_batching_docstring_examples_run() -> None:
    import doctest

    import aiwarden._batching as batching

    result = doctest.testmod(batching)
    assert result.attempted > 0 and result.failed == 0
