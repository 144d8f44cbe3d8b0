"""Shadow copies: the challenger predicts on the same rows after the caller has its answer.

A bounded queue and one daemon thread (started on the first copy): a shadow never delays
or fails the served prediction; when it falls behind, copies are dropped and counted.
Its events carry its own version and latency, under ids derived from the caller's
(:func:`~aiwarden.gateway._rows.shadow_id`), so monitoring compares both versions on the
same traffic.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from aiwarden.gateway._rows import Item, event, failure, shadow_id
from aiwarden.gateway.events import EventQueue

__all__ = ["ShadowWorker"]

log = logging.getLogger("aiwarden.gateway")


class ShadowWorker:
    """Runs copies of served requests on the shadow version; ``on_done(version, rows,
    milliseconds, failed, served=False)`` lets the gateway count the shadow's model time."""

    def __init__(self, events: EventQueue, *, max_queue: int = 1000, name: str = "",
                 on_done: Callable[[str, int, float, bool, bool], None] | None = None,
                 call: Callable[[Any, list[Item]], Any] | None = None) -> None:
        self.events, self.max_queue, self.name, self.on_done = events, max_queue, name, on_done
        # how a copy is predicted: the gateway's time limit for versions on trial (a shadow
        # that never answered would stop every later copy without a word)
        self.call = call or (lambda arm, items: arm.run(items))
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)
        self._queue: deque[tuple[Any, list[Item], float]] = deque()
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._counts = dict.fromkeys(("submitted", "ran", "dropped", "errors"), 0)

    def submit(self, arm: Any, items: list[Item], ts: float) -> bool:
        """Queue a copy of a served request; False (counted) when the shadow is behind."""
        with self._lock:
            if self._closed or len(self._queue) >= self.max_queue:
                self._counts["dropped"] += 1
                return False
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name=f"aiwarden-shadow-{self.name}")
                self._thread.start()
            self._counts["submitted"] += 1
            self._queue.append((arm, items, ts))
            self._wake.notify()
            return True

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {**self._counts, "queued": len(self._queue) + self._busy}

    def drain(self, timeout: float | None = None) -> bool:
        """True once every queued copy has run (within ``timeout`` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._queue or self._busy:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self, timeout: float = 10.0) -> None:
        self.drain(timeout)
        with self._lock:
            self._closed = True
            self._queue.clear()
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout=max(timeout, 1.0))

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    self._busy = False
                    self._idle.notify_all()
                    self._wake.wait()
                if self._closed:
                    self._busy = False
                    self._idle.notify_all()
                    return
                arm, items, ts = self._queue.popleft()
                self._busy = True
            try:
                self._copy(arm, items, ts)
            except Exception:  # never let the thread die: the next copy may work
                log.exception("shadow of %s failed", self.name)

    def _copy(self, arm: Any, items: list[Item], ts: float) -> None:
        items = [replace(it, prediction_id=shadow_id(it.prediction_id, arm.version))
                 for it in items]
        t0 = time.perf_counter()
        try:
            preds, scores = self.call(arm, items)
        except Exception as exc:  # the caller never sees it; monitoring counts it
            ms = (time.perf_counter() - t0) * 1000
            message = str(failure(exc, self.name, arm.version))
            for it in items:
                self.events.put(event(it, arm.version, ts, ms, error=message))
            self._done(arm.version, len(items), ms, True)
            return
        ms = (time.perf_counter() - t0) * 1000
        for i, it in enumerate(items):
            self.events.put(event(it, arm.version, ts, ms, preds[i],
                                  None if scores is None else scores[i]))
        self._done(arm.version, len(items), ms, False)

    def _done(self, version: str, n: int, ms: float, failed: bool) -> None:
        with self._lock:
            self._counts["ran"] += 1
            self._counts["errors"] += failed
        if self.on_done is not None:
            self.on_done(version, n, ms, failed, False)
