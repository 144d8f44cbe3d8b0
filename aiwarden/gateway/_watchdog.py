"""A time limit on the calls of versions on trial (a canary or A/B arm, the shadow).

Why: a candidate's predict is its own code, and a call that never returns (a custom step
waiting on a lookup, a deadlock) would otherwise hold its request forever, stall the
gateway's one predicting thread (or the event loop, for a quick model) and, in shadow,
stop every later copy without a word. A Python thread cannot be interrupted, so the call
runs in a thread of its own and the caller stops waiting at the limit: the request fails
(504, recorded as an error event of that version, which a rollback policy's ``compare:``
counts), and while that call is still stuck the version is not called again (its requests
fail at once) so stuck threads do not pile up. The champion is not watched: its calls stay
on the fast path, and a stuck champion is not a trial to end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["PredictTimeout", "TrialWatch"]


class PredictTimeout(TimeoutError):
    """A version on trial did not answer within its time limit (HTTP 504)."""


class TrialWatch:
    """Runs ``arm.run(items)`` with a limit of ``timeout`` seconds."""

    def __init__(self, timeout: float = 10.0, name: str = "") -> None:
        self.timeout, self.name = timeout, name
        self._lock = threading.Lock()
        self._stuck: dict[str, float] = {}  # version → when its unanswered call started

    def stuck(self) -> dict[str, float]:
        """Versions with a call past the limit, and for how many seconds it has run."""
        now = time.monotonic()
        with self._lock:
            return {v: now - t for v, t in self._stuck.items()}

    def run(self, arm: Any, items: Sequence[Any]) -> Any:
        version = arm.version
        with self._lock:
            since = self._stuck.get(version)
        if since is not None:
            raise PredictTimeout(
                f"version {version} has not answered a call for {time.monotonic() - since:.0f}"
                f" s (limit {self.timeout:g} s); it is not called again until that call "
                "returns")
        box: list[tuple[bool, Any]] = []
        done = threading.Event()
        started = time.monotonic()

        def call() -> None:
            try:
                box.append((True, arm.run(items)))
            except BaseException as exc:  # handed to the waiting caller
                box.append((False, exc))
            finally:
                done.set()
                with self._lock:  # it answered at last: the version may be called again
                    if self._stuck.get(version) == started:
                        del self._stuck[version]

        threading.Thread(target=call, daemon=True,
                         name=f"aiwarden-trial-{self.name}-{version}").start()
        if not done.wait(self.timeout):
            with self._lock:
                late = done.is_set()  # it answered just now: take the answer
                if not late:
                    self._stuck.setdefault(version, started)
            if not late:
                raise PredictTimeout(f"version {version} did not answer within "
                                     f"{self.timeout:g} s")
        ok, value = box[0]
        if ok:
            return value
        raise value
