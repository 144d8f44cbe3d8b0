"""The bounded, non-blocking queue between a prediction and monitoring.

A prediction only appends its event to a deque under a lock (no I/O, no waiting, no
wake-up of the worker unless a batch is full). A daemon thread hands batches to a *sink*
(``Monitor.log_predictions`` in the server, ``Client.log_predictions`` in a standalone
gateway). When the sink is slow or down the queue fills and new events are dropped and
counted, never waited for: monitoring must not take the model down with it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from aiwarden.errors import check_param

__all__ = ["EventQueue", "Sink"]

log = logging.getLogger("aiwarden.gateway")

Sink = Callable[[list[dict[str, Any]]], Any]


def _quarantined(result: Any) -> int:
    """Rows the sink accepted but set aside (an IngestResult, or its dict over HTTP)."""
    value = result.get("quarantined") if isinstance(result, dict) else \
        getattr(result, "quarantined", 0)
    return int(value or 0)


class EventQueue:
    """Queue events; a daemon thread sends them to ``sink`` in batches.

    Parameters
    ----------
    sink : callable
        Takes a list of event rows; may raise (the batch is retried ``max_retries`` times
        with a doubling delay, then counted as ``failed``). Retries are safe because
        ingest is idempotent by prediction id.
    max_queue : int
        Events held (waiting or being sent) at most; beyond that :meth:`put` drops.
    batch_size : int
        Events per sink call at most.
    flush_interval : float
        Seconds an event may wait for its batch to fill.
    """

    def __init__(self, sink: Sink, *, max_queue: int = 10_000, batch_size: int = 1000,
                 flush_interval: float = 0.5, max_retries: int = 3, backoff: float = 0.2,
                 name: str = "events") -> None:
        own = "EventQueue"
        check_param(isinstance(max_queue, int) and max_queue >= 1, "max_queue", own,
                    "an int >= 1", max_queue)
        check_param(isinstance(batch_size, int) and batch_size >= 1, "batch_size", own,
                    "an int >= 1", batch_size)
        check_param(flush_interval > 0, "flush_interval", own, "a number > 0", flush_interval)
        self.sink, self.name = sink, name
        self.max_queue, self.batch_size, self.flush_interval = max_queue, batch_size, \
            flush_interval
        self.max_retries, self.backoff = max_retries, backoff
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._settled = threading.Condition(self._lock)
        self._queue: deque[dict[str, Any]] = deque()
        self._pending = 0  # queued + being sent: what max_queue bounds
        self._flushers = 0
        self._closed = False
        self._counts = dict.fromkeys(("accepted", "sent", "dropped", "failed", "retries",
                                      "quarantined"), 0)
        self._dropped_by: Counter[str] = Counter()
        self._last_error: str | None = None
        self._last_warn = float("-inf")
        self._thread = threading.Thread(target=self._run, name=f"aiwarden-{name}", daemon=True)
        self._thread.start()

    # -- the prediction's side: never blocks -------------------------------------------------

    def put(self, row: dict[str, Any]) -> bool:
        """Queue one event; False (and counted in ``dropped``) when the queue is full."""
        with self._lock:
            if self._pending < self.max_queue and not self._closed:
                self._pending += 1
                self._counts["accepted"] += 1
                self._queue.append(row)
                if len(self._queue) == self.batch_size:
                    self._wake.notify()
                return True
            self._counts["dropped"] += 1
            self._dropped_by[str(row.get("version"))] += 1
            warn = time.monotonic() - self._last_warn > 60
            if warn:
                self._last_warn = time.monotonic()
        if warn:
            log.warning("gateway %s dropped %d events so far: %d are waiting or being sent. "
                        "Is monitoring slow or down? Last error: %s", self.name,
                        self._counts["dropped"], self.max_queue, self._last_error)
        return False

    # -- state -------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """``accepted == sent + failed + queued``; ``dropped`` never entered the queue."""
        with self._lock:
            return {**self._counts, "queued": self._pending, "max_queue": self.max_queue,
                    "last_error": self._last_error}

    def take_dropped(self) -> dict[str, int]:
        """Drops per version since the previous call (for resource samples)."""
        with self._lock:
            out, self._dropped_by = dict(self._dropped_by), Counter()
        return out

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued now; True once all of it is sent or failed in time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._flushers += 1
            self._wake.notify()
            try:
                while self._pending:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return False
                    self._settled.wait(left)
                return True
            finally:
                self._flushers -= 1

    def close(self, timeout: float = 10.0) -> bool:
        """Flush for up to ``timeout`` seconds and stop; later events count as dropped."""
        drained = self.flush(timeout)
        with self._lock:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=max(timeout, 1.0))
        return drained

    # -- the worker ----------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._closed and (not self._queue or (
                        len(self._queue) < self.batch_size and not self._flushers)):
                    self._wake.wait(self.flush_interval)
                take = min(len(self._queue), self.batch_size)
                batch = [self._queue.popleft() for _ in range(take)]
                if not batch and self._closed:
                    return
            if batch:
                self._send(batch)

    def _send(self, batch: list[dict[str, Any]]) -> None:
        attempt = 0
        while True:
            try:
                result = self.sink(batch)
            except Exception as exc:  # the sink's failure is counted, never raised
                error = f"{type(exc).__name__}: {exc}"
                if attempt < self.max_retries and not self._closed:
                    attempt += 1
                    with self._lock:
                        self._counts["retries"] += 1
                        self._last_error = error
                    time.sleep(self.backoff * 2 ** (attempt - 1))
                    continue
                log.warning("gateway %s gave up on %d events: %s", self.name, len(batch), error)
                self._settle(0, len(batch), 0, error)
                return
            self._settle(len(batch), 0, _quarantined(result), None)
            return

    def _settle(self, sent: int, failed: int, quarantined: int, error: str | None) -> None:
        with self._lock:
            self._pending -= sent + failed
            self._counts["sent"] += sent
            self._counts["failed"] += failed
            self._counts["quarantined"] += quarantined
            if error is not None:
                self._last_error = error
            self._settled.notify_all()
