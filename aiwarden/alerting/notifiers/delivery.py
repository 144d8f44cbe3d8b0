"""Delivery with retries: a receiver that is down delays notifications but does not lose them.

Each receiver has its own FIFO lane. Only the head of a lane is tried; later messages wait
behind it, so a ``resolved`` never overtakes its ``firing`` (PagerDuty would keep an
incident open forever) and a receiver that is down is not hammered once per queued message.
A failed head is retried with exponential backoff and jitter while the failure is
transient (connection error, timeout, 408, 429, 5xx, SMTP 4xx) until it succeeds,
``max_attempts`` is reached or ``give_up_after`` seconds have passed since it was queued.
Permanent failures (other 4xx, SMTP 5xx, bad TLS certificate) are not retried.

Every try is reported to ``on_attempt`` as a :class:`DeliveryAttempt`, which is how the
attempts reach the database and the UI. The queue itself lives in memory: a caller that
needs it to survive restarts writes each message to a durable outbox first and passes the
row's id as ``outbox_id`` (it comes back on every attempt); after a restart it sends the
still-pending rows again with their attempt count and times, and the lanes, order and
backoff carry on where they stopped (``aiwarden.alerting.notify`` does this).

Examples
--------
>>> from aiwarden.alerting.notifiers import Deliverer, Notification, WebhookReceiver
>>> d = Deliverer(max_attempts=1)
>>> r = WebhookReceiver(name="ops", url="http://127.0.0.1:9/hook")  # nothing listens on 9
>>> d.send(r, Notification(title="Drift on fraud", model="fraud"))
True
>>> d.pending()
1
>>> [a.ok for a in d.process_due()], d.pending()
([False], 0)
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Self

from aiwarden.alerting.notifiers.base import DeliveryError, Notification, Receiver
from aiwarden.errors import check_param

__all__ = ["Deliverer", "DeliveryAttempt"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryAttempt:
    """One try at sending one notification to one receiver, as shown to users.

    ``final`` is True when no further try will follow (success, permanent failure or given
    up); otherwise ``retry_in`` says when the next one is due. ``error`` holds no secret.
    """

    receiver: str
    at: datetime
    ok: bool
    status: int | None = None
    error: str | None = None
    attempt: int = 1
    notification_id: str = ""
    final: bool = True
    retry_in: float | None = None
    outbox_id: int | None = None  # the durable row this message came from, if any

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "at": self.at.isoformat()}


@dataclass(eq=False)
class _Job:
    receiver: Receiver
    notification: Notification
    queued: float  # monotonic seconds
    due: float
    attempts: int = 0
    outbox_id: int | None = None


class Deliverer:
    """Sends notifications to receivers, retrying transient failures with backoff.

    Parameters
    ----------
    max_attempts : tries per notification; None means "until ``give_up_after``".
    base_delay, max_delay : the n-th retry waits ``min(max_delay, base_delay * 2**(n-1))``
        seconds, shortened by up to ``jitter`` (a fraction) so that many senders do not
        retry in step; a ``Retry-After`` from the receiver lengthens it (up to max_delay).
    give_up_after : seconds after queueing when a notification is dropped (default 24 h).
    on_attempt : called with every :class:`DeliveryAttempt`, in the delivering thread.
    workers : threads in background mode, so one slow receiver does not hold up others.
    seed : seeds the jitter, for reproducible tests.
    """

    def __init__(self, *, max_attempts: int | None = None, base_delay: float = 1.0,
                 max_delay: float = 300.0, jitter: float = 0.5,
                 give_up_after: float = 24 * 3600.0,
                 on_attempt: Callable[[DeliveryAttempt], None] | None = None,
                 workers: int = 4, seed: int | None = None) -> None:
        owner = "Deliverer"
        check_param(max_attempts is None or (isinstance(max_attempts, int) and max_attempts >= 1),
                    "max_attempts", owner, "None or an int >= 1", max_attempts)
        check_param(_positive(base_delay), "base_delay", owner, "a number > 0", base_delay)
        check_param(_positive(max_delay) and max_delay >= base_delay, "max_delay", owner,
                    "a number >= base_delay", max_delay)
        check_param(isinstance(jitter, int | float) and 0 <= jitter <= 1, "jitter", owner,
                    "a number in [0, 1]", jitter)
        check_param(_positive(give_up_after), "give_up_after", owner, "a number > 0",
                    give_up_after)
        check_param(isinstance(workers, int) and workers >= 1, "workers", owner,
                    "an int >= 1", workers)
        self.max_attempts = max_attempts
        self.base_delay = float(base_delay)
        self.max_delay = float(max_delay)
        self.jitter = float(jitter)
        self.give_up_after = float(give_up_after)
        self.on_attempt = on_attempt
        self.workers = workers
        self._rng = random.Random(seed)
        self._cond = threading.Condition()
        self._lanes: dict[str, deque[_Job]] = {}
        self._busy: set[str] = set()
        self._threads: list[threading.Thread] = []
        self._stopping = False

    # -- queue ------------------------------------------------------------------------------

    def send(self, receiver: Receiver, notification: Notification, *,
             outbox_id: int | None = None, attempts: int = 0, queued_at: float | None = None,
             next_attempt_at: float | None = None) -> bool:
        """Queue ``notification`` for ``receiver``; False when the receiver does not want it.

        Lanes are keyed by receiver name, so names must be unique within one deliverer.
        A message resumed from an outbox passes its row id, the tries it already had and
        when (epoch seconds) it was queued and is next due, so backoff and ``give_up_after``
        continue rather than restart; an ``outbox_id`` already queued is not queued twice.
        """
        if not receiver.wants(notification):
            return False
        with self._cond:
            mono, wall = time.monotonic(), time.time()
            if outbox_id is not None and any(job.outbox_id == outbox_id
                                             for lane in self._lanes.values() for job in lane):
                return True
            queued = mono if queued_at is None else mono - max(0.0, wall - queued_at)
            due = mono if next_attempt_at is None else mono + (next_attempt_at - wall)
            self._lanes.setdefault(receiver.name, deque()).append(
                _Job(receiver, notification, queued=queued, due=due, attempts=attempts,
                     outbox_id=outbox_id))
            self._cond.notify()
        return True

    def clear(self) -> int:
        """Drop every queued message; return how many. A send already under way finishes
        (and is reported) but is not retried.

        For a process that stops being the one that delivers: its outbox rows stay pending
        for the process that takes over.
        """
        with self._cond:
            dropped = sum(len(lane) for lane in self._lanes.values())
            self._lanes.clear()
            self._cond.notify_all()
            return dropped

    def rebind(self, receivers: Mapping[str, Receiver]) -> None:
        """Queued messages for these names go to these receivers from now on: a corrected
        URL or password applies to what is already waiting."""
        with self._cond:
            for name, lane in self._lanes.items():
                if name in receivers:
                    for job in lane:
                        job.receiver = receivers[name]

    def pending(self) -> int:
        """Notifications queued or being sent, not yet delivered or given up."""
        with self._cond:
            return sum(len(lane) for lane in self._lanes.values())

    def pending_jobs(self) -> list[dict[str, Any]]:
        """The queue, oldest first per receiver, for display or persisting across restarts."""
        now = time.monotonic()
        with self._cond:
            return [{"receiver": name, "notification": job.notification.to_dict(),
                     "attempts": job.attempts, "queued_for": now - job.queued,
                     "next_in": max(0.0, job.due - now) if i == 0 else None,
                     "outbox_id": job.outbox_id}
                    for name, lane in self._lanes.items() for i, job in enumerate(lane)]

    def process_due(self) -> list[DeliveryAttempt]:
        """Try, in the calling thread, every lane head that is due now; return the attempts.

        This is the whole engine without threads: call it on a timer, or in tests.
        """
        attempts = []
        failed: set[str] = set()  # a lane that failed waits for the next call, however soon
        while True:
            with self._cond:
                job, _ = self._claim(time.monotonic(), skip=failed)
            if job is None:
                return attempts
            attempt = self._run(job)
            self._finish(job, attempt)
            attempts.append(attempt)
            if not attempt.ok:
                failed.add(attempt.receiver)

    def flush(self, timeout: float) -> bool:
        """Wait until the queue is empty (driving it when no thread runs); False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                self.process_due()
            with self._cond:
                if not self._lanes:
                    return True
                now = time.monotonic()
                if now >= deadline:
                    return False
                wait = deadline - now
                if not self.running:
                    heads = [lane[0].due for lane in self._lanes.values()]
                    wait = min(wait, max(0.0, min(heads) - now))
                self._cond.wait(wait)

    def deliver_now(self, receiver: Receiver, notification: Notification
                    ) -> list[DeliveryAttempt]:
        """Send in the calling thread, sleeping between retries; return every attempt.

        Bypasses the queue (and so its ordering); meant for tests and one-off sends.
        """
        if not receiver.wants(notification):
            return []
        now = time.monotonic()
        job = _Job(receiver, notification, queued=now, due=now)
        attempts = [self._run(job)]
        while not attempts[-1].final:
            time.sleep(attempts[-1].retry_in or 0.0)
            attempts.append(self._run(job))
        return attempts

    # -- background mode --------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return bool(self._threads)

    def start(self) -> Self:
        """Deliver in ``workers`` daemon threads until :meth:`stop`; a no-op if running."""
        if self.running:
            return self
        self._stopping = False
        self._threads = [threading.Thread(target=self._work, name=f"aiwarden-deliver-{i}",
                                          daemon=True) for i in range(self.workers)]
        for t in self._threads:
            t.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the threads after their current send; queued notifications stay queued."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout)
        self._threads = []

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _work(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopping:
                        return
                    job, wait = self._claim(time.monotonic())
                    if job is not None:
                        break
                    self._cond.wait(wait)
            attempt = self._run(job)
            self._finish(job, attempt)

    # -- one attempt ------------------------------------------------------------------------

    def _claim(self, now: float, skip: set[str] | frozenset[str] = frozenset()
               ) -> tuple[_Job | None, float | None]:
        """The first due head of an idle lane (marked busy), else seconds to the next one."""
        wait: float | None = None
        for name, lane in self._lanes.items():
            if name in self._busy or name in skip or not lane:
                continue
            if lane[0].due <= now:
                self._busy.add(name)
                return lane[0], None
            wait = lane[0].due - now if wait is None else min(wait, lane[0].due - now)
        return None, wait

    def _finish(self, job: _Job, attempt: DeliveryAttempt) -> None:
        name = job.receiver.name
        with self._cond:
            lane = self._lanes.get(name)
            if lane and lane[0] is job:  # else cleared while it was being sent
                if attempt.final:
                    lane.popleft()
                    if not lane:
                        del self._lanes[name]
                else:
                    job.due = time.monotonic() + (attempt.retry_in or 0.0)
            self._busy.discard(name)
            self._cond.notify_all()

    def _backoff(self, n: int, retry_after: float | None) -> float:
        delay = min(self.max_delay, self.base_delay * 2.0 ** min(n - 1, 60))
        delay *= 1.0 - self.jitter * self._rng.random()
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_delay))
        return delay

    def _run(self, job: _Job) -> DeliveryAttempt:
        """Send once, decide whether and when to retry, report; never raises."""
        r, n = job.receiver, job.notification
        job.attempts += 1
        at = datetime.now(UTC)
        status: int | None = None
        error: str | None = None
        retryable, retry_after = False, None
        try:
            status = r.send(n)
        except DeliveryError as e:
            status, error, retryable, retry_after = e.status, str(e), e.retryable, e.retry_after
        except Exception as e:  # a bug must not kill the worker, nor be retried for a day
            error = r.scrub(f"{type(e).__name__}: {e}")
        elapsed = time.monotonic() - job.queued
        retry_in = None
        if error is not None and retryable:
            out_of_tries = self.max_attempts is not None and job.attempts >= self.max_attempts
            if out_of_tries or elapsed >= self.give_up_after:
                error += f" (gave up after {job.attempts} tries in {elapsed:.0f}s)"
            else:
                retry_in = min(self._backoff(job.attempts, retry_after),
                               self.give_up_after - elapsed)
        attempt = DeliveryAttempt(receiver=r.name, at=at, ok=error is None, status=status,
                                  error=error, attempt=job.attempts, notification_id=n.id,
                                  final=retry_in is None, retry_in=retry_in,
                                  outbox_id=job.outbox_id)
        self._log(r, attempt)
        if self.on_attempt is not None:
            try:
                self.on_attempt(attempt)
            except Exception:
                logger.exception("on_attempt callback failed for %s receiver %r",
                                 r.kind, r.name)
        return attempt

    @staticmethod
    def _log(r: Receiver, a: DeliveryAttempt) -> None:
        if a.ok:
            logger.debug("Notification %s delivered to %s receiver %r (status %s, attempt %d).",
                         a.notification_id, r.kind, r.name, a.status, a.attempt)
        elif not a.final:
            logger.warning("Notification %s to %s receiver %r failed (attempt %d): %s; "
                           "retrying in %.1fs.", a.notification_id, r.kind, r.name, a.attempt,
                           a.error, a.retry_in)
        else:
            logger.error("Notification %s to %s receiver %r failed for good (attempt %d): %s",
                         a.notification_id, r.kind, r.name, a.attempt, a.error)


def _positive(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and x > 0
