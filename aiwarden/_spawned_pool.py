"""A pool of spawned worker processes that is used only once every worker is up.

Why one base: the LLM evaluators and the image measuring both move GIL-bound work out of
the server process, and both need the same care. Workers are ``spawn``-ed (no fork of a
threaded server), started on first use and pinged once each so they all start now rather
than in the middle of a later batch; until they are up, and after a worker dies or the
pool breaks, :meth:`SpawnedPool._started` answers None and the caller does the work itself
(the same function, the same result), so nothing accepted is lost to the pool. A worker
exits with its parent, even one killed with SIGKILL, which runs no cleanup.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor

from aiwarden.errors import ParameterError

__all__ = ["SpawnedPool", "cores", "exit_with_parent", "workers_from_env"]

log = logging.getLogger(__name__)


def workers_from_env(name: str, default: int) -> int:
    """The whole number in environment variable ``name``, else ``default``."""
    env = os.environ.get(name, "").strip()
    if not env:
        return default
    if not env.isdigit():
        raise ParameterError(f"{name}={env!r}: expected a whole number >= 0 (0: work in the "
                             "server process)", name)
    return int(env)


def cores() -> int:
    """Cores this process may run on."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return n or 1


class SpawnedPool:
    """``workers`` spawned processes running ``initializer`` once each.

    ``what`` names the workers and ``fallback`` what happens instead, in the one warning
    logged when they cannot start or break.
    """

    def __init__(self, workers: int, initializer: Callable[[], None], what: str,
                 fallback: str) -> None:
        if workers < 0:
            raise ParameterError(f"workers must be >= 0. Got {workers} instead.", "workers")
        self.workers = workers
        self._initializer, self._what, self._fallback = initializer, what, fallback
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._ready: Future[None] | None = None

    def worker_pids(self) -> list[int]:
        """The live workers' process ids (for tests and CPU accounting)."""
        procs = getattr(self._pool, "_processes", None) or {}
        return sorted(p.pid for p in list(procs.values()) if p.pid and p.is_alive())

    def ready(self, timeout: float = 60.0) -> bool:
        """Start the workers (if not yet) and wait until they are up."""
        if not self.workers:
            return False
        self._started()
        ready = self._ready
        if ready is None:
            return False
        try:
            ready.result(timeout)
        except Exception:
            return False
        return self._started() is not None

    def close(self) -> None:
        with self._lock:
            pool, self._pool, self._ready = self._pool, None, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _started(self) -> ProcessPoolExecutor | None:
        """The pool once its workers are up; None (work here) while they start."""
        with self._lock:
            if self._pool is None:
                ctx = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx,
                                                 initializer=self._initializer)
                self._ready = _all_done([self._pool.submit(_ping)
                                         for _ in range(self.workers)])
            ready, pool = self._ready, self._pool
        if ready is None or not ready.done():
            return None
        if ready.exception() is not None:  # cannot start here (e.g. no main-module guard)
            log.warning("%s did not start (%s); %s", self._what, ready.exception(),
                        self._fallback)
            self.workers = 0
            self._discard(pool)
            return None
        return pool

    def _broke(self, pool: ProcessPoolExecutor, exc: BaseException) -> None:
        """A worker died or the pool broke: drop it (the next batch starts a new one)."""
        log.warning("%s failed (%s: %s); %s", self._what, type(exc).__name__, exc,
                    self._fallback)
        self._discard(pool)

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = self._ready = None
        pool.shutdown(wait=False, cancel_futures=True)


def exit_with_parent() -> None:
    """In a worker: exit as soon as the parent process ends."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()


def _all_done(futures: list[Future[None]]) -> Future[None]:
    """A future done when all of ``futures`` are, failed if one failed."""
    out: Future[None] = Future()
    left = [len(futures)]
    lock = threading.Lock()

    def one(f: Future[None]) -> None:
        with lock:
            left[0] -= 1
            if out.done():
                return
            if f.exception() is not None:
                out.set_exception(f.exception())  # type: ignore[arg-type]
            elif left[0] == 0:
                out.set_result(None)

    for f in futures:
        f.add_done_callback(one)
    return out


def _exit_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])  # ready when the parent process ends
    os._exit(0)


def _ping() -> None:
    return None
