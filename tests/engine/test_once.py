"""``once``: the numba loaders' body runs once even when threads ask together (a server's
first concept-drift feeds in two threads compiled an already compiled function)."""

from __future__ import annotations

import threading
import time

import pytest

from aiwarden.engine._once import once


def test_threads_that_ask_together_run_the_body_once_and_share_its_result() -> None:
    runs: list[int] = []

    @once
    def load() -> object:
        runs.append(1)
        time.sleep(0.05)  # every thread arrives while the first is still inside
        return object()

    start = threading.Barrier(8)
    got: list[object] = []

    def ask() -> None:
        start.wait()
        got.append(load())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(runs) == 1 and len(got) == 8 and len({id(g) for g in got}) == 1
    assert load() is got[0] and len(runs) == 1


def test_a_failed_body_is_run_again_by_the_next_caller() -> None:
    calls: list[int] = []

    @once
    def flaky() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first load failed")
        return 7

    with pytest.raises(RuntimeError, match="first load failed"):
        flaky()
    assert flaky() == 7 and len(calls) == 2
