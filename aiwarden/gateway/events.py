"""The bounded, non-blocking queue between a prediction and monitoring.

A prediction only appends its event to a deque under a lock (no I/O, no waiting, no
wake-up of the worker unless a batch is full). A daemon thread hands batches to a *sink*
(``Monitor.log_predictions`` in the server, ``Client.log_predictions`` in a standalone
gateway). When the sink is slow or down the queue fills and new events are dropped and
counted, never waited for: monitoring must not take the model down with it. The queue and
its thread are :class:`aiwarden._batching.BatchQueue`, shared with the SDK's logger.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiwarden._batching import BatchQueue, SayOnce
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
        ingest is idempotent by prediction id. A refusal that cannot change by retrying
        (an HTTP 4xx other than 408, 425 or 429: a revoked or missing key) is not retried.
    max_queue : int
        Events held (waiting or being sent) at most; beyond that :meth:`put` drops.
    batch_size : int
        Events per sink call at most.
    flush_interval : float
        Seconds an event may wait for its batch to fill.
    max_backoff : float
        While batches keep failing, the worker waits ``backoff`` doubled per failed batch
        in a row (at most this) before the next one; the failure is logged once, then
        summarised every ``summary_every`` seconds, and its end is logged too.
    """

    def __init__(self, sink: Sink, *, max_queue: int = 10_000, batch_size: int = 1000,
                 flush_interval: float = 0.5, max_retries: int = 3, backoff: float = 0.2,
                 max_backoff: float = 60.0, summary_every: float = 300.0,
                 name: str = "events") -> None:
        own = "EventQueue"
        check_param(isinstance(max_queue, int) and max_queue >= 1, "max_queue", own,
                    "an int >= 1", max_queue)
        check_param(isinstance(batch_size, int) and batch_size >= 1, "batch_size", own,
                    "an int >= 1", batch_size)
        check_param(flush_interval > 0, "flush_interval", own, "a number > 0", flush_interval)
        check_param(max_backoff >= backoff >= 0, "max_backoff", own,
                    f"a number >= backoff ({backoff})", max_backoff)
        self.sink, self.name = sink, name
        self.max_queue, self.batch_size, self.flush_interval = max_queue, batch_size, \
            flush_interval
        self.max_retries, self.backoff, self.max_backoff = max_retries, backoff, max_backoff
        self._dropped_by: Counter[str] = Counter()
        self._drop_lock = threading.Lock()
        self._failing = SayOnce(log, f"gateway {name}: events not sent",
                                summary_every=summary_every)
        self._q: BatchQueue[dict[str, Any]] = BatchQueue(
            self._send, name=name, max_queue=max_queue, batch_size=batch_size,
            flush_interval=flush_interval, log=log, counters=("retries",),
            drop_message=f"gateway {name} dropped {{dropped}} events so far: {{max_queue}} are "
                         "waiting or being sent. Is monitoring slow or down? Last error: "
                         "{last_error}")

    # -- the prediction's side: never blocks -------------------------------------------------

    def put(self, row: dict[str, Any]) -> bool:
        """Queue one event; False (and counted in ``dropped``) when the queue is full."""
        if self._q.put(row):
            return True
        with self._drop_lock:
            self._dropped_by[str(row.get("version"))] += 1
        return False

    # -- state -------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """``accepted == sent + failed + queued``; ``dropped`` never entered the queue."""
        return {**self._q.stats(), "max_queue": self.max_queue}

    def take_dropped(self) -> dict[str, int]:
        """Drops per version since the previous call (for resource samples)."""
        with self._drop_lock:
            out, self._dropped_by = dict(self._dropped_by), Counter()
        return out

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued now; True once all of it is sent or failed in time."""
        return self._q.flush(timeout)

    def close(self, timeout: float = 10.0) -> bool:
        """Flush for up to ``timeout`` seconds and stop; later events count as dropped."""
        return self._q.close(timeout)

    # -- the worker ----------------------------------------------------------------------------

    def _send(self, batch: list[dict[str, Any]]) -> None:
        attempt = 0
        while True:
            try:
                result = self.sink(batch)
            except Exception as exc:  # the sink's failure is counted, never raised
                error = f"{type(exc).__name__}: {exc}"
                if attempt < self.max_retries and _retryable(exc) and not self._q.wait(
                        self.backoff * 2 ** attempt):
                    attempt += 1
                    self._q.count("retries", error=error)
                    continue
                self._q.settle(0, len(batch), error)
                self._failing.failed(error)
                self._q.pause(self._failing.backoff(self.backoff, self.max_backoff))
                return
            self._q.settle(len(batch), 0, None, _quarantined(result))
            self._failing.ok()
            return


def _retryable(exc: Exception) -> bool:
    """False for an HTTP refusal that retrying cannot change (401, 403, 404, 422...)."""
    status = getattr(exc, "status", None)
    return not (isinstance(status, int) and 400 <= status < 500 and status not in (408, 425,
                                                                                  429))
