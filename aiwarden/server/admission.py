"""Admission control for the write paths: bounded work in flight, 429 with Retry-After beyond.

A server that admits every write under saturation answers every write late: requests queue
on the model's write lock (``BEGIN IMMEDIATE`` / the PostgreSQL advisory lock) and latency
grows to seconds for everyone. Instead, ``POST /api/v1/models/{name}/predictions``,
``/labels`` and ``/resources``, and OTLP's ``POST /v1/traces`` (its models are named in the
body: all its exports count as one model here) take a slot first:

* at most ``max_inflight`` such requests run at once (all models), and at most
  ``max_per_model`` for one model (its writes serialise on its lock anyway, so more only
  wait there, and one hot model cannot take every slot);
* a request without a free slot waits for one, first come first served, at most
  ``max_wait`` seconds and behind at most ``max_queue`` others;
* beyond that it is answered ``429`` with ``Retry-After`` and the usual error body.

The check runs before the route (pure ASGI, like the body limit): a refused request's body
is never read and nothing of it is stored, so the client can retry it as it is (ingest is
idempotent by prediction id anyway). An admitted request runs to its end as before, so an
acknowledged write is never lost. The serving gateway inside the server writes through the
monitoring service directly, one batch at a time per model from its own bounded queue
(docs/gateway.md), and takes no slot.

Slots are per process: with several server processes each admits its own share.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from collections import Counter, deque
from typing import Any

import orjson

__all__ = ["Admission", "IngestAdmission"]

_WRITE_PATH = re.compile(r"^/api/v1/models/([^/]+)/(?:predictions|labels|resources)/?$")
# OTLP trace exports name their models inside the body: one shared bucket (a name no
# model can have), so they wait or get a 429 that exporters retry after Retry-After.
_OTLP_PATH, _OTLP_BUCKET = "/v1/traces", " otlp"


class Admission:
    """Slots for ingest requests, granted first come first served on the event loop.

    Parameters
    ----------
    max_inflight : int
        Requests running at once, all models; 0 turns admission control off.
    max_per_model : int
        Requests of one model running at once; 0 for no per-model bound.
    max_queue : int
        Requests waiting for a slot at most; one more is refused at once.
    max_wait : float
        Seconds a request may wait for a slot before it is refused.

    Only ever used from the server's event loop (no locks needed).
    """

    def __init__(self, max_inflight: int, max_per_model: int = 0, max_queue: int = 64,
                 max_wait: float = 0.25) -> None:
        self.max_inflight, self.max_per_model = max_inflight, max_per_model
        self.max_queue, self.max_wait = max_queue, max_wait
        self._inflight = 0
        self._by_model: Counter[str] = Counter()
        self._waiters: deque[tuple[str, asyncio.Future[None]]] = deque()
        self._service = 0.0  # moving average of an admitted request's seconds
        self.counts = dict.fromkeys(("admitted", "refused", "waited"), 0)

    @property
    def enabled(self) -> bool:
        return self.max_inflight > 0

    def _room(self, model: str) -> bool:
        return self._inflight < self.max_inflight and (
            self.max_per_model <= 0 or self._by_model[model] < self.max_per_model)

    def _take(self, model: str) -> None:
        self._inflight += 1
        self._by_model[model] += 1
        self.counts["admitted"] += 1

    async def acquire(self, model: str) -> bool:
        """True once ``model`` holds a slot; False (counted) when it would wait too long."""
        if self._room(model):
            self._take(model)
            return True
        if len(self._waiters) >= self.max_queue or self.max_wait <= 0:
            self.counts["refused"] += 1
            return False
        slot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (model, slot)
        self._waiters.append(entry)
        self.counts["waited"] += 1
        try:
            await asyncio.wait({slot}, timeout=self.max_wait)
        except asyncio.CancelledError:
            self._abandon(entry)
            raise
        if slot.done():  # granted (the slot was taken for us in release)
            return True
        self._abandon(entry)
        self.counts["refused"] += 1
        return False

    def _abandon(self, entry: tuple[str, asyncio.Future[None]]) -> None:
        model, slot = entry
        if slot.done():  # granted just as we gave up: hand it on
            self.release(model)
            return
        slot.cancel()
        with contextlib.suppress(ValueError):
            self._waiters.remove(entry)

    def release(self, model: str, seconds: float | None = None) -> None:
        """Give the slot back and grant it to the first waiters that fit."""
        self._inflight -= 1
        self._by_model[model] -= 1
        if self._by_model[model] <= 0:
            del self._by_model[model]
        if seconds is not None:
            self._service = seconds if not self._service else 0.8 * self._service + 0.2 * seconds
        for entry in list(self._waiters):
            if self._inflight >= self.max_inflight:
                break
            waiting_model, slot = entry
            if self._room(waiting_model):
                self._waiters.remove(entry)
                self._take(waiting_model)
                slot.set_result(None)

    def retry_after(self) -> int:
        """Whole seconds until the work ahead has likely drained (1 to 60)."""
        ahead = self._inflight + len(self._waiters)
        estimate = self._service * ahead / max(1, self.max_inflight)
        return int(min(60, max(1, math.ceil(estimate))))

    def stats(self) -> dict[str, Any]:
        return {**self.counts, "inflight": self._inflight, "waiting": len(self._waiters),
                "max_inflight": self.max_inflight, "max_per_model": self.max_per_model,
                "max_queue": self.max_queue, "max_wait": self.max_wait}


class IngestAdmission:
    """ASGI middleware: the write paths take an :class:`Admission` slot or get a 429."""

    def __init__(self, app: Any, admission: Admission) -> None:
        self.app, self.admission = app, admission

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        model = None
        if scope["type"] == "http" and scope.get("method") == "POST" and self.admission.enabled:
            path = scope.get("path", "")
            match = _WRITE_PATH.match(path)
            model = match.group(1) if match else (
                _OTLP_BUCKET if path.rstrip("/") == _OTLP_PATH else None)
        if model is None:
            await self.app(scope, receive, send)
            return
        if not await self.admission.acquire(model):
            await self._refuse(send)
            return
        began = time.monotonic()
        try:
            await self.app(scope, receive, send)
        finally:
            self.admission.release(model, time.monotonic() - began)

    async def _refuse(self, send: Any) -> None:
        wait = self.admission.retry_after()
        body = orjson.dumps({"detail": {
            "error": "overloaded", "field": None,
            "message": "The server is writing as fast as it can and this request was not "
                       f"admitted; nothing of it was stored. Retry in {wait} s."}})
        await send({"type": "http.response.start", "status": 429,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"retry-after", str(wait).encode())]})
        await send({"type": "http.response.body", "body": body})
