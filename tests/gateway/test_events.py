"""The event queue: batches reach the sink, a slow or failing sink costs events (counted),
never a blocked prediction."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from aiwarden.errors import ParameterError
from aiwarden.gateway import EventQueue


class SlowSink:
    """A sink that holds every call until released: monitoring that stopped answering."""

    def __init__(self) -> None:
        self.release, self.entered = threading.Event(), threading.Event()
        self.batches: list[list[dict[str, Any]]] = []

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, int]:
        self.entered.set()
        assert self.release.wait(30), "the test never released the sink"
        self.batches.append(list(rows))
        return {"quarantined": 0}


def test_events_reach_the_sink_in_batches() -> None:
    got: list[list[dict[str, Any]]] = []
    q = EventQueue(lambda rows: got.append(list(rows)), batch_size=10, flush_interval=5)
    for i in range(25):
        assert q.put({"prediction_id": str(i), "version": "1"})
    assert q.flush(timeout=10)
    assert [len(b) for b in got] == [10, 10, 5]
    assert [r["prediction_id"] for b in got for r in b] == [str(i) for i in range(25)]
    stats = q.stats()
    assert (stats["accepted"], stats["sent"], stats["dropped"], stats["queued"]) == (25, 25, 0, 0)
    assert q.close()


def test_a_full_queue_drops_and_counts_instead_of_blocking() -> None:
    sink = SlowSink()
    q = EventQueue(sink, max_queue=20, batch_size=5, flush_interval=0.01)
    assert q.put({"prediction_id": "first", "version": "1"})
    assert sink.entered.wait(10)  # the worker now hangs inside the sink with one event
    results = [q.put({"prediction_id": str(i), "version": "2" if i % 2 else "1"})
               for i in range(100)]
    # every call returned (none waited for the sink): 19 fit beside the one in flight
    assert results.count(True) == 19 and results.count(False) == 81
    stats = q.stats()
    assert (stats["dropped"], stats["queued"], stats["sent"]) == (81, 20, 0)
    assert sum(q.take_dropped().values()) == 81 and q.take_dropped() == {}
    sink.release.set()
    assert q.flush(timeout=10)
    assert sum(len(b) for b in sink.batches) == 20
    assert q.stats()["sent"] == 20 and q.stats()["accepted"] == 20
    assert q.close()


def test_a_failing_sink_is_retried_then_counted() -> None:
    calls: list[int] = []

    def flaky(rows: list[dict[str, Any]]) -> None:
        calls.append(len(rows))
        if len(calls) <= 2:
            raise ConnectionError("monitoring is restarting")

    q = EventQueue(flaky, batch_size=100, max_retries=3, backoff=0.01)
    for i in range(3):
        q.put({"prediction_id": str(i)})
    assert q.flush(timeout=10)
    assert calls == [3, 3, 3]
    stats = q.stats()
    assert (stats["sent"], stats["failed"], stats["retries"]) == (3, 0, 2)

    def down(rows: list[dict[str, Any]]) -> None:
        raise ConnectionError("monitoring is down")

    q2 = EventQueue(down, max_retries=1, backoff=0.01)
    q2.put({"prediction_id": "x"})
    assert q2.flush(timeout=10)
    assert q2.stats()["failed"] == 1 and "monitoring is down" in q2.stats()["last_error"]
    q.close()
    q2.close()


def test_quarantined_rows_are_counted_and_closing_stops_intake() -> None:
    q = EventQueue(lambda rows: {"quarantined": 1}, flush_interval=0.01)
    q.put({"prediction_id": "a"})
    assert q.close()
    assert q.stats()["quarantined"] == 1
    assert not q.put({"prediction_id": "late"})  # after close: dropped, never raised
    assert q.stats()["dropped"] == 1


def test_bad_parameters_use_the_house_message() -> None:
    with pytest.raises(ParameterError, match="The 'max_queue' parameter of EventQueue"):
        EventQueue(lambda rows: None, max_queue=0)
