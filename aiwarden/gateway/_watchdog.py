"""Time limits on model calls: versions on trial (a canary or A/B arm, the shadow) and the
served version (the champion).

Why: a version's predict is its own code, and a call that never returns (a custom step
waiting on a lookup, a deadlock) would otherwise hold its request forever, stall the
gateway's one predicting thread (or the event loop, for a quick model) and, in shadow,
stop every later copy without a word. A Python thread cannot be interrupted, so the call
runs on a worker thread and the caller stops waiting at the limit: the request fails
(504 naming the version and the limit, recorded as an error event of that version), and
once ``max_stuck`` calls of a version are still stuck the version is not called again
(its requests fail at once) until one returns, so stuck threads do not pile up.

What follows differs by role, not here: a trial's errors are what a rollback policy's
``compare:`` counts, so a candidate that hangs is rolled back; the champion has nothing to
be rolled back to by its own timeout, so its timeouts are counted (``timeouts`` in the
gateway's stats, ``errors`` in monitoring, where a rule alerts on them). Worker threads are
reused: a call costs a queue hand-off, not a thread start, because the champion's calls are
the hot path (docs/gateway.md has the figures).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from queue import SimpleQueue
from typing import Any

__all__ = ["PredictTimeout", "Watch"]

_IDLE_THREADS = 4  # worker threads kept waiting for the next call, per watch


class PredictTimeout(TimeoutError):
    """A watched version did not answer within its time limit (HTTP 504)."""


class _Workers:
    """Daemon threads that run one call at a time and wait for the next: a stuck call keeps
    its thread, the next call takes an idle one or starts another."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._idle: list[SimpleQueue[Callable[[], None] | None]] = []
        self._closed = False

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = SimpleQueue()
            threading.Thread(target=self._serve, args=(inbox,), daemon=True,
                             name=self.name).start()
        inbox.put(job)

    def close(self) -> None:
        """Idle threads end now, busy ones when their call returns (a closed watch still
        runs calls, each on a thread of its own)."""
        with self._lock:
            self._closed, idle, self._idle = True, self._idle, []
        for inbox in idle:
            inbox.put(None)

    def _serve(self, inbox: SimpleQueue[Callable[[], None] | None]) -> None:
        while (job := inbox.get()) is not None:
            job()
            with self._lock:
                if self._closed or len(self._idle) >= _IDLE_THREADS:
                    return
                self._idle.append(inbox)


class Watch:
    """Runs ``arm.run(items)`` with a limit of ``timeout`` seconds; a version with
    ``max_stuck`` calls past the limit and still running is refused at once."""

    def __init__(self, timeout: float = 10.0, name: str = "", *, max_stuck: int = 1,
                 role: str = "trial") -> None:
        if not timeout > 0 or max_stuck < 1:
            raise ValueError(f"timeout must be > 0 and max_stuck >= 1; got {timeout!r}, "
                             f"{max_stuck!r}")
        self.timeout, self.name, self.max_stuck = timeout, name, max_stuck
        self._workers = _Workers(f"aiwarden-{role}-{name}")
        self._lock = threading.Lock()
        self._stuck: dict[str, dict[int, float]] = {}  # version → call → when it started
        self._timeouts: dict[str, int] = {}
        self._calls = 0

    def close(self) -> None:
        """Let the idle worker threads end (the gateway closes)."""
        self._workers.close()

    def stuck(self) -> dict[str, float]:
        """Versions with a call past the limit, and for how many seconds the oldest has run."""
        now = time.monotonic()
        with self._lock:
            return {v: now - min(calls.values()) for v, calls in self._stuck.items()}

    def timeouts(self) -> dict[str, int]:
        """Requests failed by the limit per version (refused-at-once ones included)."""
        with self._lock:
            return dict(self._timeouts)

    def run(self, arm: Any, items: Sequence[Any]) -> Any:
        version = arm.version
        with self._lock:
            stuck = self._stuck.get(version, {})
            if len(stuck) >= self.max_stuck:
                self._timeouts[version] = self._timeouts.get(version, 0) + 1
                raise PredictTimeout(self._refusal(version, stuck))
            self._calls += 1
            call_id = self._calls
        box: list[tuple[bool, Any]] = []
        done = threading.Event()
        started = time.monotonic()

        def call() -> None:
            try:
                box.append((True, arm.run(items)))
            except BaseException as exc:  # handed to the waiting caller
                box.append((False, exc))
            finally:
                with self._lock:  # it answered at last: the version may be called again
                    done.set()
                    calls = self._stuck.get(version)
                    if calls is not None:
                        calls.pop(call_id, None)
                        if not calls:
                            del self._stuck[version]

        self._workers.submit(call)
        if not done.wait(self.timeout):
            with self._lock:
                late = done.is_set()  # it answered just now: take the answer
                if not late:
                    self._stuck.setdefault(version, {})[call_id] = started
                    self._timeouts[version] = self._timeouts.get(version, 0) + 1
            if not late:
                raise PredictTimeout(f"version {version} did not answer within "
                                     f"{self.timeout:g} s")
        ok, value = box[0]
        if ok:
            return value
        raise value

    def _refusal(self, version: str, stuck: dict[int, float]) -> str:
        oldest = time.monotonic() - min(stuck.values())
        if self.max_stuck == 1:
            return (f"version {version} has not answered a call for {oldest:.0f} s (limit "
                    f"{self.timeout:g} s); it is not called again until that call returns")
        return (f"version {version} has {len(stuck)} calls unanswered, the oldest for "
                f"{oldest:.0f} s (limit {self.timeout:g} s); it is not called again until "
                "one returns")
