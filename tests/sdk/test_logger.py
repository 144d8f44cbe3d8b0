"""BackgroundLogger against a real local HTTP receiver: batching, retries, drops, shutdown."""

from __future__ import annotations

import logging
import socket
import time
from collections import Counter
from collections.abc import Iterator

import numpy as np
import pytest

from aiwarden.errors import ParameterError
from aiwarden.sdk import BackgroundLogger, Client, LoggerClosedError
from tests.sdk import Receiver

FAST = {"flush_interval": 0.02, "backoff": 0.01, "max_backoff": 0.05}


@pytest.fixture
def client(receiver: Receiver) -> Iterator[Client]:
    with Client(receiver.url, api_key="secret", timeout=5) as c:
        yield c


def test_everything_sent_exactly_once_in_batches(receiver: Receiver, client: Client) -> None:
    with client.logger("fraud", batch_size=100, **FAST) as wl:
        for i in range(1050):
            assert wl.log(f"tx-{i}", {"amount": float(i), "n": np.int64(i)}, prediction=i % 2,
                          scores=0.5, latency_ms=1.5, tags={"region": "eu"})
        for i in range(20):
            assert wl.log_label(f"tx-{i}", 1)
        assert wl.flush(5)
        stats = wl.stats()
    assert stats == {"accepted": 1070, "sent": 1070, "dropped": 0, "failed": 0, "retries": 0,
                     "throttled": 0, "quarantined": 0, "queued": 0, "last_error": None}
    preds = [r for r in receiver.requests if r.path == "/api/v1/models/fraud/predictions"]
    labels = [r for r in receiver.requests if r.path == "/api/v1/models/fraud/labels"]
    assert len(preds) + len(labels) == len(receiver.requests)
    assert all(len(r.json()) <= 100 for r in receiver.requests)
    assert len(preds) >= 11
    ids = Counter(row["prediction_id"] for r in preds for row in r.json())
    assert ids == Counter(f"tx-{i}" for i in range(1050))
    assert sorted(row["prediction_id"] for r in labels for row in r.json()) == sorted(
        f"tx-{i}" for i in range(20))
    first = preds[0].json()[0]
    assert first["features"] == {"amount": 0.0, "n": 0}
    assert first["tags"] == {"region": "eu"} and first["latency_ms"] == 1.5
    assert abs(first["timestamp"] - time.time()) < 60  # stamped when logged, epoch seconds
    assert preds[0].headers["authorization"] == "Bearer secret"
    assert preds[0].headers["content-type"] == "application/json"


def test_a_full_batch_is_sent_without_waiting_for_the_interval(receiver: Receiver,
                                                               client: Client) -> None:
    with client.logger("m", batch_size=10, flush_interval=30) as wl:
        for i in range(10):
            wl.log(i, {"x": i})
        deadline = time.monotonic() + 30
        while wl.stats()["sent"] < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert wl.stats()["sent"] == 10


def test_retries_after_503_deliver_everything(receiver: Receiver, client: Client) -> None:
    receiver.fail_first = 3
    with client.logger("m", batch_size=50, **FAST) as wl:
        for i in range(200):
            wl.log(f"p{i}", {"x": i})
        assert wl.flush(5)
        stats = wl.stats()
    assert stats["retries"] == 3
    assert stats["sent"] == 200 and stats["failed"] == 0 and stats["queued"] == 0
    assert Counter(receiver.prediction_ids()) == Counter(f"p{i}" for i in range(200))
    assert sum(r.status == 503 for r in receiver.requests) == 3
    assert "503 unavailable: busy" in stats["last_error"]


def test_gives_up_after_max_retries(receiver: Receiver, client: Client) -> None:
    receiver.fail_first = 1000
    with client.logger("m", batch_size=10, max_retries=2, **FAST) as wl:
        for i in range(10):
            wl.log(i, {"x": i})
        assert wl.flush(5)
        stats = wl.stats()
    assert len(receiver.requests) == 3  # one try, two retries
    assert (stats["sent"], stats["failed"], stats["retries"]) == (0, 10, 2)


def test_400_is_not_retried_and_counted_failed(receiver: Receiver, client: Client) -> None:
    receiver.status = 400
    receiver.answer = (b'{"detail": {"error": "invalid", "message": "rows must be objects", '
                       b'"field": "rows"}}')
    with client.logger("m", batch_size=25, **FAST) as wl:
        for i in range(25):
            wl.log(i, {"x": i})
        assert wl.flush(5)
        stats = wl.stats()
    assert len(receiver.requests) == 1
    assert (stats["sent"], stats["failed"], stats["retries"]) == (0, 25, 0)
    assert stats["last_error"] == "HTTP 400 invalid: rows must be objects (field: rows)"


def test_log_never_blocks_and_counts_drops(receiver: Receiver, client: Client,
                                          caplog: pytest.LogCaptureFixture) -> None:
    receiver.hang = True
    with client.logger("m", batch_size=10, max_queue=100, **FAST) as wl:
        t0 = time.perf_counter()
        kept = [wl.log(f"id{i}", {"x": i}) for i in range(10_000)]
        elapsed = time.perf_counter() - t0
        stats = wl.stats()
        assert elapsed < 2.0, f"10,000 log calls took {elapsed:.2f}s with the server stuck"
        # max_queue bounds events waiting *or in flight*, so exactly 100 fit.
        assert sum(kept) == 100 and kept[:100] == [True] * 100
        assert stats["accepted"] == 100 and stats["dropped"] == 9_900
        assert stats["sent"] == 0 and stats["queued"] == 100
        drops = [r for r in caplog.records if "dropped" in r.getMessage()]
        assert len(drops) == 1 and drops[0].levelno == logging.WARNING
        receiver.release.set()
        assert wl.flush(5)
        assert wl.stats()["sent"] == 100
    assert sorted(receiver.prediction_ids()) == sorted(f"id{i}" for i in range(100))


def test_close_gives_up_on_a_stuck_server(receiver: Receiver) -> None:
    receiver.hang = True
    with Client(receiver.url, timeout=0.3) as c:
        wl = c.logger("m", batch_size=5, max_retries=100, **FAST)
        for i in range(5):
            wl.log(i, {"x": i})
        assert wl.close(timeout=0.2) is False
        receiver.release.set()
        wl._thread.join(5)
        assert not wl._thread.is_alive()
        stats = wl.stats()
    assert stats["queued"] == 0 and stats["sent"] + stats["failed"] == 5


def test_unreachable_server_is_retried_then_failed() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with Client(f"http://127.0.0.1:{port}", timeout=1) as c, \
            c.logger("m", max_retries=2, **FAST) as wl:
        wl.log("a", {"x": 1})
        assert wl.flush(5)
        stats = wl.stats()
    assert (stats["failed"], stats["retries"]) == (1, 2)
    assert "ConnectError" in stats["last_error"]


def test_one_unserialisable_row_does_not_sink_its_batch(receiver: Receiver,
                                                        client: Client) -> None:
    with client.logger("m", batch_size=3, **FAST) as wl:
        wl.log("ok1", {"x": 1})
        wl.log("bad", {"x": object()})
        wl.log("ok2", {"x": np.datetime64("NaT"), "t": np.datetime64("2026-01-01T00:00")})
        assert wl.flush(5)
        stats = wl.stats()
    assert (stats["sent"], stats["failed"]) == (2, 1)
    assert "'bad'" in stats["last_error"]
    rows = receiver.requests[0].json()
    assert [r["prediction_id"] for r in rows] == ["ok1", "ok2"]
    assert rows[1]["features"] == {"x": None, "t": "2026-01-01T00:00:00Z"}


def test_closed_logger_refuses_and_close_is_idempotent(receiver: Receiver,
                                                       client: Client) -> None:
    wl = BackgroundLogger(client, "m", **FAST)
    wl.log(1, {"x": 1})
    assert wl.close(5) is True
    assert wl.close(5) is True
    assert not wl._thread.is_alive()
    assert wl.stats()["sent"] == 1
    with pytest.raises(LoggerClosedError, match=r"Cannot log to a closed logger\."):
        wl.log(2, {"x": 2})
    with pytest.raises(LoggerClosedError):
        wl.log_label(2, 0)


def test_bad_parameters_use_the_house_message(client: Client) -> None:
    with pytest.raises(ParameterError, match=r"The 'batch_size' parameter of BackgroundLogger "
                                             r"must be an int >= 1. Got 0 instead."):
        BackgroundLogger(client, "m", batch_size=0)
    with client.logger("m", **FAST) as wl, pytest.raises(ParameterError, match="prediction_id"):
        wl.log(None, {})  # type: ignore[arg-type]
