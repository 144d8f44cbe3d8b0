"""Logging predictions from inside a serving process without ever slowing it down.

The caller's thread only builds a dict and appends it to a bounded in-memory queue;
a daemon thread batches, serialises and POSTs. When the server is slow or away the
queue fills and new events are dropped and counted, never waited for: monitoring
must not take the model down with it.
"""

from __future__ import annotations

import atexit
import logging
import random
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from aiwarden._batching import BatchQueue, Every
from aiwarden.errors import AiwardenError, check_param
from aiwarden.sdk import _payload as P
from aiwarden.sdk._errors import ApiError, overload_delay

if TYPE_CHECKING:
    from aiwarden.sdk.client import Client

__all__ = ["BackgroundLogger", "LoggerClosedError"]

log = logging.getLogger("aiwarden.sdk")

_PRED, _LABEL = 0, 1
_TRANSIENT = frozenset({408, 425})


class LoggerClosedError(AiwardenError, RuntimeError):
    """``log`` was called after ``close``."""


class BackgroundLogger:
    """Queue predictions and labels; a daemon thread sends them in batches.

    Retries are safe: the server is idempotent by ``prediction_id``, so a batch
    retried after a lost answer is counted as duplicates, never twice. Transient
    failures (connection errors, timeouts, 408/425, 5xx) are retried with
    exponential backoff and jitter; other 4xx are permanent and counted in
    ``failed`` with the error kept in ``stats()["last_error"]``.

    ``429 Too Many Requests`` is not a failure: the server is up, stored nothing of the
    batch and said when to come back. The batch waits its ``Retry-After`` (at most
    ``max_backoff``, with jitter) and is sent again, as often as it takes, without using
    up ``max_retries``; each such answer is counted in ``stats()["throttled"]``. While it
    waits, new events queue up to ``max_queue`` and beyond that are dropped and counted
    in ``dropped`` (with a warning), so memory stays bounded; ``close`` gives up on what
    is still queued after its timeout and counts it in ``failed``.

    Parameters
    ----------
    client : Client
        Where to send; the logger opens its own connection pool with the same settings.
    name : str
        The model.
    batch_size : int
        Events per request at most.
    flush_interval : float
        Seconds an event may wait for its batch to fill.
    max_queue : int
        Events held (waiting or in flight) at most; beyond that ``log`` drops and counts.
    max_retries : int
        Retries of one batch after the first attempt.
    backoff : float
        First retry delay in seconds, doubled each retry, capped at ``max_backoff``.
    max_backoff : float
        Longest delay between retries (a 429's ``Retry-After`` is honoured up to it).
    warn_interval : float
        Seconds between two warnings about drops or failures.

    Feature dicts are not copied: do not change one after logging it. Create the
    logger after a server forks its workers (threads do not survive ``fork``).
    """

    def __init__(self, client: Client, name: str, *, batch_size: int = 1000,
                 flush_interval: float = 1.0, max_queue: int = 100_000, max_retries: int = 5,
                 backoff: float = 0.2, max_backoff: float = 30.0,
                 warn_interval: float = 60.0) -> None:
        own = "BackgroundLogger"
        check_param(isinstance(batch_size, int) and batch_size >= 1, "batch_size", own,
                    "an int >= 1", batch_size)
        check_param(flush_interval > 0, "flush_interval", own, "a number > 0", flush_interval)
        check_param(isinstance(max_queue, int) and max_queue >= 1, "max_queue", own,
                    "an int >= 1", max_queue)
        check_param(isinstance(max_retries, int) and max_retries >= 0, "max_retries", own,
                    "an int >= 0", max_retries)
        check_param(backoff >= 0, "backoff", own, "a number >= 0", backoff)
        check_param(max_backoff >= backoff, "max_backoff", own, f"a number >= backoff "
                    f"({backoff})", max_backoff)
        self.name = name
        self.batch_size, self.flush_interval, self.max_queue = batch_size, flush_interval, max_queue
        self.max_retries, self.backoff, self.max_backoff = max_retries, backoff, max_backoff
        self._paths = (client._path(name, "predictions"), client._path(name, "labels"))
        self._http = client._new_http()
        self._warn_fail = Every(warn_interval)
        self._q: BatchQueue[tuple[int, dict[str, Any]]] = BatchQueue(
            self._deliver, name=f"logger-{name}", max_queue=max_queue, batch_size=batch_size,
            flush_interval=flush_interval, log=log, counters=("retries", "throttled"),
            closed_error=lambda: LoggerClosedError("Cannot log to a closed logger."),
            warn_interval=warn_interval,
            drop_message=f"aiwarden logger for {name!r} dropped {{dropped}} events so far: "
                         "max_queue={max_queue} events are waiting or in flight. Is the "
                         "server slow or down? Last error: {last_error}")
        self._abort = self._q.abort
        atexit.register(self.close)

    @property
    def _thread(self) -> threading.Thread:
        return self._q.thread

    @property
    def _pending(self) -> int:
        return self._q.pending

    def __repr__(self) -> str:
        return f"BackgroundLogger({self.name!r}, pending={self._pending})"

    # -- caller side: cheap, never blocks ------------------------------------------------------

    def log(self, prediction_id: str | int, features: dict[str, Any], prediction: Any = None,
            scores: Any = None, timestamp: Any = None, latency_ms: float | None = None,
            tags: dict[str, Any] | None = None, version: str | None = None) -> bool:
        """Queue one prediction; False if it was dropped because the queue is full.

        ``timestamp`` defaults to now (epoch seconds), taken here rather than on
        arrival, which may be seconds later.
        """
        if not isinstance(prediction_id, str | int):
            check_param(False, "prediction_id", "BackgroundLogger.log", "a str or an int",
                        prediction_id)
        row: dict[str, Any] = {"prediction_id": prediction_id, "features": features,
                               "timestamp": time.time() if timestamp is None else timestamp}
        if prediction is not None:
            row["prediction"] = prediction
        if scores is not None:
            row["scores"] = scores
        if latency_ms is not None:
            row["latency_ms"] = latency_ms
        if tags is not None:
            row["tags"] = tags
        if version is not None:
            row["version"] = version
        return self._put(_PRED, row)

    def log_label(self, prediction_id: str | int, label: Any) -> bool:
        """Queue the ground truth for a logged (or not yet logged) prediction."""
        return self._put(_LABEL, {"prediction_id": prediction_id, "label": label})

    def _put(self, kind: int, row: dict[str, Any]) -> bool:
        return self._q.put((kind, row))

    # -- state ---------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters: ``accepted == sent + failed + queued``; ``dropped`` never entered.

        ``queued`` counts events waiting or in flight; ``quarantined`` is what the
        server accepted but set aside (see ``Client.quarantine``).
        """
        return self._q.stats()

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued now; True once all of it is sent or failed in time."""
        return self._q.flush(timeout)

    def close(self, timeout: float = 10.0) -> bool:
        """Flush (up to ``timeout`` s), stop the thread; True if nothing was left behind.

        Events still queued after ``timeout`` are given up and counted in ``failed``.
        Closing twice is harmless; ``log`` after ``close`` raises LoggerClosedError.
        """
        drained = self._q.close(timeout)
        if not self._q.thread.is_alive():
            self._http.close()
        atexit.unregister(self.close)
        return drained

    def __enter__(self) -> BackgroundLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- worker --------------------------------------------------------------------------------

    def _deliver(self, batch: list[tuple[int, dict[str, Any]]]) -> None:
        for kind, path in enumerate(self._paths):
            rows = [row for k, row in batch if k == kind]
            if rows:
                try:
                    self._post(path, rows)
                except Exception as exc:  # never let the thread die with events pending
                    log.exception("aiwarden logger for %r: unexpected error", self.name)
                    self._settle(0, len(rows), f"{type(exc).__name__}: {exc}")

    def _encode(self, rows: list[dict[str, Any]]) -> tuple[bytes | None, int]:
        """JSON for the batch; rows that cannot be serialised are failed alone, not all."""
        try:
            return P.dumps(rows), len(rows)
        except (orjson.JSONEncodeError, TypeError):
            pass
        good = []
        for row in rows:
            try:
                P.dumps(row)
            except (orjson.JSONEncodeError, TypeError) as exc:
                self._settle(0, 1, f"prediction_id {row.get('prediction_id')!r}: {exc}")
            else:
                good.append(row)
        return (P.dumps(good) if good else None), len(good)

    def _post(self, path: str, rows: list[dict[str, Any]]) -> None:
        body, n = self._encode(rows)
        if body is None:
            return
        attempt = 0
        while True:
            retry_after = None
            try:
                response = self._http.post(path, content=body,
                                           headers={"Content-Type": P.JSON})
            except httpx.TransportError as exc:
                error, transient = f"{type(exc).__name__}: {exc}", True
            else:
                if response.is_success:
                    try:
                        quarantined = int(orjson.loads(response.content).get("quarantined", 0))
                    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
                        quarantined = 0
                    self._settle(n, 0, None, quarantined)
                    return
                status = response.status_code
                error = str(ApiError.from_response(response))
                if status == 429:  # overloaded: nothing stored; wait as asked, then again
                    self._q.count("throttled", error=error)
                    if self._abort.wait(overload_delay(response, self.max_backoff)):
                        self._settle(0, n, "Closed before these events could be sent.")
                        return
                    continue
                transient = status >= 500 or status in _TRANSIENT
                if "Retry-After" in response.headers:  # e.g. a 503 that says how long
                    retry_after = overload_delay(response, self.max_backoff)
            if not transient or attempt >= self.max_retries or self._abort.is_set():
                self._settle(0, n, error)
                return
            attempt += 1
            self._q.count("retries", error=error)
            delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
            delay = delay / 2 + random.uniform(0, delay / 2)  # jitter: spread retrying workers
            if retry_after is not None:
                delay = max(delay, retry_after)
            if self._abort.wait(delay):
                self._settle(0, n, "Closed before these events could be sent.")
                return

    def _settle(self, sent: int, failed: int, error: str | None, quarantined: int = 0) -> None:
        self._q.settle(sent, failed, error, quarantined)
        if failed and self._warn_fail():
            log.warning("aiwarden logger for %r gave up on %d events so far; last error: %s",
                        self.name, self._q.stats()["failed"], error)
