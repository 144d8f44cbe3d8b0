"""Queue-and-flush, written once: a bounded queue drained in batches by a daemon thread.

The gateway's event queue (:class:`aiwarden.gateway.EventQueue`) and the SDK's background
logger (:class:`aiwarden.sdk.BackgroundLogger`) both need the same thing: the caller's thread
only appends to a bounded deque under a lock (no I/O, never waiting), a daemon thread hands
batches to a ``deliver`` function, ``flush`` waits until what was queued is settled, and
``close`` flushes for a while and gives up on the rest. Each keeps its own delivery rules
(what is retried, how a batch is encoded); this module keeps the counting and the threads.

:class:`SayOnce` keeps a failure that repeats from flooding a log: the first occurrence (and
a new error) is logged, then one summary every ``summary_every`` seconds while it lasts, and
one line when it ends; its :meth:`SayOnce.backoff` grows exponentially with the failures in a
row, so a revoked key is not retried four times a second.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

__all__ = ["BatchQueue", "Every", "SayOnce"]

T = TypeVar("T")
CLOSED = "Closed before these events could be sent."


class Every:
    """True at most once per ``interval`` seconds (keeps warnings from flooding logs)."""

    def __init__(self, interval: float) -> None:
        self.interval, self.last = interval, float("-inf")

    def __call__(self) -> bool:
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            return True
        return False


class SayOnce:
    """Log a repeated failure once, then a summary every ``summary_every`` seconds.

    >>> import logging
    >>> say = SayOnce(logging.getLogger("doc"), "events of fraud not sent", clock=lambda: 0)
    >>> say.failed("HTTP 401 unauthorized"), say.failed("HTTP 401 unauthorized")
    (True, False)
    >>> say.failures, say.backoff(0.25, 60)
    (2, 0.5)
    >>> say.ok(), say.failures
    (True, 0)
    """

    def __init__(self, log: logging.Logger, what: str, *, summary_every: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.log, self.what, self.summary_every, self.clock = log, what, summary_every, clock
        self.failures, self.error = 0, None
        self._lock = threading.Lock()
        self._since = self._said = 0.0
        self._said_failures = 0

    def failed(self, error: str) -> bool:
        """Count one failure; True when it was logged (first, new error, or a summary)."""
        with self._lock:
            now = self.clock()
            self.failures += 1
            if self.failures == 1:
                self._since = now
            new = error != self.error
            self.error = error
            summary = not new and now - self._said >= self.summary_every
            if not (new or summary):
                return False
            since, count = self._since, self.failures - self._said_failures
            self._said, self._said_failures = now, self.failures
        if new:
            self.log.warning("%s: %s (said once; a summary follows every %.0f min while it "
                             "lasts)", self.what, error, self.summary_every / 60)
        else:
            self.log.warning("%s: still failing, %d more time(s) since the last message, "
                             "%d in %.0f min: %s", self.what, count, self.failures,
                             (now - since) / 60, error)
        return True

    def ok(self) -> bool:
        """The failure ended; True when that was said (there had been failures)."""
        with self._lock:
            failures, self.failures, self.error, self._said_failures = self.failures, 0, None, 0
        if failures:
            self.log.warning("%s: works again after %d failure(s).", self.what, failures)
        return bool(failures)

    def backoff(self, base: float, cap: float) -> float:
        """``base`` doubled for each failure in a row after the first, at most ``cap``."""
        return min(cap, base * 2 ** max(self.failures - 1, 0))


class BatchQueue(Generic[T]):
    """Bounded, non-blocking queue; a daemon thread calls ``deliver(batch)``.

    ``deliver`` must settle every item of its batch (:meth:`settle`); if it raises, the
    batch is settled as failed. ``counters`` adds counters beside ``accepted``, ``sent``,
    ``dropped``, ``failed`` and ``quarantined`` (see :meth:`count`).
    """

    def __init__(self, deliver: Callable[[list[T]], None], *, name: str, max_queue: int,
                 batch_size: int, flush_interval: float, log: logging.Logger,
                 drop_message: str, counters: Iterable[str] = (),
                 closed_error: Callable[[], Exception] | None = None,
                 warn_interval: float = 60.0) -> None:
        self.deliver, self.name, self.log = deliver, name, log
        self.max_queue, self.batch_size, self.flush_interval = max_queue, batch_size, \
            flush_interval
        self.drop_message, self.closed_error = drop_message, closed_error
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)      # worker: batch full, flush, close
        self._settled = threading.Condition(self._lock)   # flushers: pending went down
        self._queue: deque[T] = deque()
        self._pending = 0  # accepted and not yet sent or failed: what max_queue bounds
        self._flushers = 0
        self._closed = self._stopping = False
        self.abort = threading.Event()      # close gave up: settle what is left as failed
        self.interrupt = threading.Event()  # closing: waits between attempts end now
        self.counts = dict.fromkeys(("accepted", "sent", "dropped", "failed", *counters,
                                     "quarantined"), 0)
        self.last_error: str | None = None
        self._warn_drop = Every(warn_interval)
        self.thread = threading.Thread(target=self._run, name=f"aiwarden-{name}", daemon=True)
        self.thread.start()

    # -- the caller's side: never blocks ---------------------------------------------------

    def put(self, item: T) -> bool:
        """Queue one item; False (counted in ``dropped``) when full or, without
        ``closed_error``, closed."""
        with self._lock:
            if self._closed and self.closed_error is not None:
                raise self.closed_error()
            if self._pending < self.max_queue and not self._closed:
                self._pending += 1
                self.counts["accepted"] += 1
                self._queue.append(item)
                if len(self._queue) == self.batch_size:
                    self._wake.notify()
                return True
            self.counts["dropped"] += 1
            dropped, warn = self.counts["dropped"], self._warn_drop()
        if warn:
            self.log.warning(self.drop_message.format(
                dropped=dropped, max_queue=self.max_queue, last_error=self.last_error))
        return False

    # -- state --------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        return self._pending

    def stats(self) -> dict[str, Any]:
        """Counters: ``accepted == sent + failed + queued``; ``dropped`` never entered."""
        with self._lock:
            return {**self.counts, "queued": self._pending, "last_error": self.last_error}

    def count(self, counter: str, n: int = 1, error: str | None = None) -> None:
        """Add to a counter (e.g. ``retries``), keeping ``error`` as the last one."""
        with self._lock:
            self.counts[counter] += n
            if error is not None:
                self.last_error = error

    def settle(self, sent: int, failed: int, error: str | None = None,
               quarantined: int = 0) -> None:
        with self._lock:
            self._pending -= sent + failed
            self.counts["sent"] += sent
            self.counts["failed"] += failed
            self.counts["quarantined"] += quarantined
            if failed and error is not None:
                self.last_error = error
            self._settled.notify_all()

    def wait(self, seconds: float) -> bool:
        """Sleep between attempts; True (at once) when closing gave up on the queue."""
        return self.abort.wait(seconds)

    def pause(self, seconds: float) -> None:
        """Sleep between batches (backing off a failing sink); closing ends it at once."""
        self.interrupt.wait(seconds)

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
        """Stop intake, flush for up to ``timeout`` s and stop the thread; True if nothing
        was left behind (what was is settled as failed)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._closed = True
        drained = self.flush(timeout)
        with self._lock:
            self._stopping = True
            self._wake.notify()
        self.interrupt.set()
        if not drained:
            self.abort.set()
        self.thread.join(max(0.0, deadline - time.monotonic(), 1.0 if drained else 0.0))
        return drained

    # -- the worker -----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._lock:
                if (len(self._queue) < self.batch_size and not self._stopping
                        and not self._flushers):
                    self._wake.wait(self.flush_interval)
                if self.abort.is_set():
                    batch = list(self._queue)
                    self._queue.clear()
                else:
                    take = min(len(self._queue), self.batch_size)
                    batch = [self._queue.popleft() for _ in range(take)]
                if not batch and self._stopping:
                    return
            if not batch:
                continue
            if self.abort.is_set():
                self.settle(0, len(batch), CLOSED)
                continue
            try:
                self.deliver(batch)
            except Exception as exc:  # never let the thread die with items pending
                self.log.exception("%s: unexpected error", self.name)
                self.settle(0, len(batch), f"{type(exc).__name__}: {exc}")
