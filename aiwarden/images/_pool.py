"""Decode and measure images in worker processes, so a server's other work keeps its core.

Why: decoding and measuring an image is Python and numpy between Pillow's C calls, and
holds the GIL most of the time; in the server process it slowed every tabular request
answered meanwhile (bench/image_ingest.py). Here a request's images are cut into chunks of
64 and measured by ``workers`` spawned processes (no fork of a threaded server), niced so
the server's own threads come first when the cores are busy. What comes back is exactly
what :func:`measure` computes in the calling process (the same function runs there): the
property table and, if asked, a small JPEG thumbnail per decodable image.

Bounded: at most ``max_inflight`` requests are measured at once, a request waits at most
``max_wait`` seconds for its turn, then :class:`PoolBusy` (a server answers 429 with
``Retry-After``). The pool starts on first use; until its workers are up, and if a worker
dies or the pool breaks, the batch is measured in the calling process instead (the same
results), so an accepted image is never lost to the pool.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from aiwarden._spawned_pool import SpawnedPool, cores, exit_with_parent, workers_from_env
from aiwarden.errors import AiwardenError
from aiwarden.images._decode import Decoded, decode
from aiwarden.images._properties import PropertyTable, compute_properties, concat

__all__ = [
    "CHUNK",
    "MeasurePool",
    "Measured",
    "PoolBusy",
    "auto_workers",
    "measure",
    "shared",
    "thumbnail_jpeg",
    "write_atomic",
]

CHUNK = 64  # images per task: memory of a worker is bounded by a chunk's decoded pixels
NICE = 10  # workers yield to the server's threads when the cores are busy


class PoolBusy(AiwardenError):
    """Every measuring slot is taken and none came free within ``max_wait``."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Measured:
    """Properties of a batch, and a thumbnail (JPEG bytes, None if not decodable or not
    asked for, or written to its ``keep_at`` path instead) per image; ``kept``: how many
    thumbnails were written to ``keep_at`` paths."""

    table: PropertyTable
    thumbnails: list[bytes | None]
    kept: int = 0


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """``data`` at ``path``, whole or not at all: a reader sees the old file or the new."""
    tmp = f"{os.fspath(path)}.{os.getpid()}.{time.monotonic_ns()}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def thumbnail_jpeg(image: Any, side: int) -> bytes:
    """A JPEG (quality 80) of ``image`` fitted into ``side`` x ``side``."""
    thumb = image.copy()
    thumb.thumbnail((side, side))
    buf = io.BytesIO()
    thumb.convert("RGB").save(buf, "JPEG", quality=80)
    return buf.getvalue()


def measure(items: Sequence[Any], thumb_side: int | None = None,
            decode_options: dict[str, Any] | None = None,
            keep_at: Sequence[str | None] | None = None) -> Measured:
    """Decode, measure and thumbnail ``items`` in this process, a chunk at a time.

    ``keep_at[i]``: where item i's thumbnail is written (None: returned instead). Why
    here: creating a file per image cost the server process more CPU than the rest of an
    image batch's ingest; a worker that made the thumbnail writes it, at its lower priority.
    """
    tables, thumbs, kept, made = [], [], 0, set()
    for s in range(0, max(len(items), 1), CHUNK):
        decoded = [decode(it, **(decode_options or {})) for it in items[s:s + CHUNK]]
        tables.append(compute_properties(decoded))
        for i, d in enumerate(decoded, start=s):
            data = (thumbnail_jpeg(d.image, thumb_side)
                    if thumb_side and isinstance(d, Decoded) else None)
            path = keep_at[i] if keep_at is not None else None
            if data is not None and path is not None:
                folder = os.path.dirname(path)
                if folder not in made:
                    os.makedirs(folder, exist_ok=True)
                    made.add(folder)
                write_atomic(path, data)
                kept, data = kept + 1, None
            thumbs.append(data)
        del decoded
    return Measured(concat(tables), thumbs, kept)


def auto_workers() -> int:
    """``AIWARDEN_IMAGE_WORKERS`` when set, else half the cores (at least one): image
    clients cannot take every core from the rest of the server."""
    return workers_from_env("AIWARDEN_IMAGE_WORKERS", max(1, cores() // 2))


class MeasurePool(SpawnedPool):
    """:func:`measure` on ``workers`` processes, ``max_inflight`` requests at once.

    Parameters
    ----------
    workers : int
        Worker processes; 0 measures in the calling process (still bounded by the slots).
    max_inflight : int
        Requests measured at once; None: twice the workers (at least 2), so one request's
        chunks are queued while another's run and the workers never idle between requests.
    max_wait : float
        Seconds a request waits for a slot before :class:`PoolBusy`.
    """

    def __init__(self, workers: int, max_inflight: int | None = None,
                 max_wait: float = 0.25) -> None:
        super().__init__(workers, _start_worker, "image measuring workers",
                         "measuring in the server process")
        self.max_wait = max_wait
        self.max_inflight = max_inflight or max(2, 2 * workers)
        self._slots = threading.BoundedSemaphore(self.max_inflight)
        self._seconds = 0.0  # moving average of a request's measuring time
        self.counts = dict.fromkeys(("requests", "refused", "in_process", "failed"), 0)

    def measure(self, items: Sequence[Any], thumb_side: int | None = None,
                keep_at: Sequence[str | None] | None = None, **decode_options: Any
                ) -> Measured:
        """What :func:`measure` returns, computed in the workers; raises :class:`PoolBusy`."""
        with self.slot():
            return self._run(list(items), thumb_side, decode_options,
                             None if keep_at is None else list(keep_at))

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the ``max_inflight`` slots, waiting at most ``max_wait``; else
        :class:`PoolBusy` with a retry delay from recent requests' measuring time."""
        got = (self._slots.acquire(timeout=self.max_wait) if self.max_wait > 0
               else self._slots.acquire(blocking=False))
        if not got:
            self.counts["refused"] += 1
            wait = int(min(60, max(1, math.ceil(self._seconds))))
            raise PoolBusy(f"{self.max_inflight} image batches are being measured; none "
                           f"finished within {self.max_wait:g} s. Nothing of this request "
                           f"was stored: retry in {wait} s.", wait)
        began = time.monotonic()
        self.counts["requests"] += 1
        try:
            yield
        finally:
            took = time.monotonic() - began
            self._seconds = took if not self._seconds else 0.8 * self._seconds + 0.2 * took
            self._slots.release()

    def _run(self, items: list[Any], thumb_side: int | None, options: dict[str, Any],
             keep_at: list[str | None] | None) -> Measured:
        pool = self._started() if self.workers else None
        if pool is None or not items:
            self.counts["in_process"] += 1
            return measure(items, thumb_side, options, keep_at)
        try:
            parts = [pool.submit(measure, items[s:s + CHUNK], thumb_side, options,
                                 None if keep_at is None else keep_at[s:s + CHUNK])
                     for s in range(0, len(items), CHUNK)]
            done = [f.result() for f in parts]
        except Exception as exc:  # a worker died, the pool broke: measure here
            self.counts["failed"] += 1
            self._broke(pool, exc)
            return measure(items, thumb_side, options, keep_at)
        return Measured(concat([m.table for m in done]),
                        [t for m in done for t in m.thumbnails], sum(m.kept for m in done))


def _start_worker() -> None:
    """Worker initializer: exit with the parent (even one killed with SIGKILL), lower the
    priority, and load Pillow and numpy once by measuring a small image."""
    exit_with_parent()
    with contextlib.suppress(OSError):  # not permitted here: the parent's priority
        os.nice(NICE)
    import numpy as np

    measure([np.zeros((16, 16, 3), np.uint8)], 8)


_SHARED: dict[int, MeasurePool] = {}
_SHARED_LOCK = threading.Lock()


def shared(workers: int | None = None, max_wait: float = 0.25) -> MeasurePool:
    """The process's pool of ``workers`` workers (servers of one process share it, as they
    share the cores); None: :func:`auto_workers`."""
    workers = auto_workers() if workers is None else workers
    with _SHARED_LOCK:
        pool = _SHARED.get(workers)
        if pool is None:
            pool = _SHARED[workers] = MeasurePool(workers, max_wait=max_wait)
        return pool
