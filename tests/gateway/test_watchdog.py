"""The time limit on model calls (aiwarden/gateway/_watchdog.py), in process: stuck calls are
counted per version up to ``max_stuck``, a call that returns frees its version, worker
threads are reused and end when the watch closes. The calls block on events the test
releases, so nothing depends on how fast the machine is; the HTTP side is
tests/training/test_serve_watchdog.py and test_trial_watchdog.py."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from aiwarden.gateway._watchdog import PredictTimeout, Watch


class _Arm:
    """A version whose calls wait for ``release`` (set: they answer at once)."""

    def __init__(self, version: str = "1") -> None:
        self.version = version
        self.release = threading.Event()
        self.threads: list[int] = []

    def run(self, items: Any) -> Any:
        self.threads.append(threading.get_ident())
        self.release.wait()
        return [len(items)], None


def test_answers_come_back_and_worker_threads_are_reused() -> None:
    watch, arm = Watch(30.0, "m", role="serve"), _Arm()
    arm.release.set()
    assert [watch.run(arm, [1, 2]) for _ in range(3)] == [([2], None)] * 3
    (worker,) = {t for t in threading.enumerate() if t.ident in arm.threads}
    assert worker.name == "aiwarden-serve-m" and arm.threads == [worker.ident] * 3
    watch.close()
    worker.join(5)
    assert not worker.is_alive()
    assert watch.run(arm, [1]) == ([1], None)  # a closed watch still answers


def test_a_version_is_refused_at_once_only_after_max_stuck_calls() -> None:
    watch, arm, other = Watch(0.05, "m", max_stuck=2), _Arm("1"), _Arm("2")
    other.release.set()
    for _ in range(2):
        with pytest.raises(PredictTimeout, match=r"version 1 did not answer within 0\.05 s"):
            watch.run(arm, [1])
    with pytest.raises(PredictTimeout, match="has 2 calls unanswered") as refused:
        watch.run(arm, [1])
    assert "it is not called again until one returns" in str(refused.value)
    assert len(arm.threads) == 2  # the refused call never reached the model
    assert watch.run(other, [1]) == ([1], None)  # other versions are not held up
    assert set(watch.stuck()) == {"1"} and watch.timeouts() == {"1": 3}
    arm.release.set()  # the stuck calls return: the version may be called again
    for _ in range(100):
        if not watch.stuck():
            break
        threading.Event().wait(0.05)
    assert watch.stuck() == {}
    assert watch.run(arm, [1, 2, 3]) == ([3], None)
    assert watch.timeouts() == {"1": 3}


def test_one_stuck_call_refuses_a_trial_with_the_old_message() -> None:
    watch, arm = Watch(0.05, "m"), _Arm()
    with pytest.raises(PredictTimeout):
        watch.run(arm, [1])
    with pytest.raises(PredictTimeout, match=r"has not answered a call for \d+ s \(limit "
                       r"0\.05 s\); it is not called again until that call returns"):
        watch.run(arm, [1])
    arm.release.set()


def test_a_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timeout must be > 0"):
        Watch(0.0)
