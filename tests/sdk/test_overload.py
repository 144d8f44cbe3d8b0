"""The SDK against a real local HTTP receiver that answers 429 first: nothing is lost."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from aiwarden.errors import ParameterError
from aiwarden.sdk import Client
from aiwarden.sdk.client import ApiError, overload_delay
from tests.sdk import Receiver

FAST = {"flush_interval": 0.02, "backoff": 0.01, "max_backoff": 0.05}


@pytest.fixture
def client(receiver: Receiver) -> Iterator[Client]:
    with Client(receiver.url, timeout=5, overload_wait=30) as c:
        yield c


def _throttle(receiver: Receiver, times: int) -> None:
    receiver.fail_first, receiver.fail_status, receiver.retry_after = times, 429, "0"


def test_logger_waits_out_429s_beyond_max_retries_and_sends_each_row_once(
        receiver: Receiver, client: Client) -> None:
    _throttle(receiver, 7)
    with client.logger("m", batch_size=40, max_retries=1, **FAST) as wl:
        for i in range(120):
            assert wl.log(f"p{i}", {"x": i})
        assert wl.flush(10)
        stats = wl.stats()
    # seven refusals, more than max_retries=1 allows for failures: none of them is one
    assert stats["throttled"] == 7 and stats["retries"] == 0
    assert (stats["sent"], stats["failed"], stats["dropped"], stats["queued"]) == (120, 0, 0, 0)
    assert "429 overloaded: busy" in stats["last_error"]
    assert sum(r.status == 429 for r in receiver.requests) == 7
    assert Counter(receiver.prediction_ids()) == Counter(f"p{i}" for i in range(120))


def test_logger_under_429s_keeps_its_queue_bounded_and_counts_drops(
        receiver: Receiver, client: Client) -> None:
    _throttle(receiver, 10**6)
    wl = client.logger("m", batch_size=10, max_queue=50, **FAST)
    accepted = sum(wl.log(f"p{i}", {"x": i}) for i in range(200))
    stats = wl.stats()
    assert accepted == 50 and stats["dropped"] == 150 and stats["queued"] == 50
    receiver.fail_first = 0  # the server has room again: what was accepted goes through
    assert wl.flush(10)
    wl.close()
    assert wl.stats()["sent"] == 50 and wl.stats()["failed"] == 0
    assert sorted(receiver.prediction_ids(), key=lambda p: int(p[1:])) == \
        [f"p{i}" for i in range(50)]


def test_logger_closed_while_throttled_counts_what_it_gave_up(receiver: Receiver,
                                                              client: Client) -> None:
    _throttle(receiver, 10**6)
    wl = client.logger("m", batch_size=10, **FAST)
    for i in range(30):
        wl.log(f"p{i}", {"x": i})
    assert not wl.close(timeout=0.5)
    wl._thread.join(5)  # close gives the thread its abort; it settles within one round trip
    assert not wl._thread.is_alive()
    stats = wl.stats()
    assert stats["sent"] == 0 and stats["failed"] == 30 and stats["throttled"] > 0
    assert receiver.prediction_ids() == []


def test_client_retries_a_429_and_returns_the_answer(receiver: Receiver,
                                                      client: Client) -> None:
    _throttle(receiver, 3)
    rows = [{"prediction_id": f"p{i}", "features": {"x": i}} for i in range(25)]
    assert client.log_predictions("m", rows)["accepted"] == 25
    assert client.throttled == 3
    assert [r.status for r in receiver.requests] == [429, 429, 429, 200]
    assert len({r.body for r in receiver.requests}) == 1  # the same body each time


def test_client_without_overload_wait_raises_the_429(receiver: Receiver) -> None:
    _throttle(receiver, 1)
    with Client(receiver.url, timeout=5, overload_wait=0) as c, \
            pytest.raises(ApiError) as err:
        c.log_predictions("m", [{"prediction_id": "p", "features": {"x": 1}}])
    assert (err.value.status, err.value.kind) == (429, "overloaded")
    assert len(receiver.requests) == 1


def test_a_non_429_error_is_not_retried(receiver: Receiver, client: Client) -> None:
    receiver.fail_first, receiver.retry_after = 1, "0"  # a 503
    with pytest.raises(ApiError) as err:
        client.log_predictions("m", [{"prediction_id": "p", "features": {"x": 1}}])
    assert err.value.status == 503 and len(receiver.requests) == 1


def test_overload_delay_honours_retry_after_within_the_cap_with_jitter() -> None:
    def asked(value: str | None, cap: float) -> list[float]:
        headers = {} if value is None else {"Retry-After": value}
        return [overload_delay(httpx.Response(429, headers=headers), cap) for _ in range(200)]

    two = asked("2", 10)
    assert all(2.0 <= d <= 2.5 for d in two) and len(set(two)) > 1  # spread, not in step
    assert asked("30", 5) == [5.0] * 200
    assert all(1.0 <= d <= 1.25 for d in asked(None, 10))
    assert all(1.0 <= d <= 1.25 for d in asked("Wed, 21 Oct 2026 07:28:00 GMT", 10))
    assert asked("0", 10) == [0.0] * 200


def test_bad_overload_wait_uses_the_house_message() -> None:
    with pytest.raises(ParameterError, match="The 'overload_wait' parameter of Client must "
                                             r"be a number >= 0\. Got -1 instead\."):
        Client("http://127.0.0.1:9", overload_wait=-1)
