"""LLM events from Python: ``client.log_llm(...)`` and a wrapper for OpenAI-compatible clients.

::

    from openai import OpenAI
    from aiwarden.sdk import Client
    from aiwarden.sdk.llm import wrap_openai

    monitor = Client("http://monitor:8000", api_key="...")
    chat = wrap_openai(OpenAI(), monitor, model="support-bot", version="prompt-v3",
                       tags={"channel": "web"})
    reply = chat.chat.completions.create(model="gpt-4o-mini", messages=[...])

The wrapper calls the wrapped client unchanged, measures the call's latency, reads the
usage tokens, and logs one event per call (a streamed call when its stream ends). Logging
never breaks the application: a failed log is reported through ``on_error`` (default: a
warning on the ``aiwarden.sdk.llm`` logger naming the request id and the error, never the
texts).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any

__all__ = ["LLMMixin", "wrap_openai"]

log = logging.getLogger("aiwarden.sdk.llm")

_EVENT_KEYS = ("request_id", "timestamp", "version", "input", "output", "provider", "model",
               "tokens_in", "tokens_out", "latency_ms", "cost", "session_id", "tags",
               "context", "embedding", "finish_reason")


class LLMMixin:
    """The LLM routes of :class:`aiwarden.sdk.Client` (docs/llm.md)."""

    def log_llm(self, name: str, events: Sequence[Mapping[str, Any]] | None = None,
                **event: Any) -> dict[str, Any]:
        """Log LLM events: a list of event objects, or one event as keyword arguments
        (``request_id=``, ``output=``, ``input=``, ``tokens_in=``...). Bad events come back
        in ``errors`` naming the row and the field."""
        if events is None:
            unknown = sorted(set(event) - set(_EVENT_KEYS))
            if unknown:
                from aiwarden.errors import ParameterError

                raise ParameterError(f"log_llm: unknown event field(s) {unknown}; an event "
                                     f"has {list(_EVENT_KEYS)}.", unknown[0])
            events = [{k: v for k, v in event.items() if v is not None}]
        return self._json("POST", self._path(name, "llm-events"),  # type: ignore[attr-defined]
                          json=[dict(e) for e in events])

    def log_llm_feedback(self, name: str, request_id: str | None = None,
                         score: float | None = None, comment: str | None = None, *,
                         rows: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
        """User feedback on one event (or ``rows`` of ``{request_id, score, comment}``),
        joined by its request id (held if it comes first)."""
        if rows is None:
            row: dict[str, Any] = {"request_id": request_id, "score": score}
            if comment is not None:
                row["comment"] = comment
            rows = [row]
        return self._json("POST", self._path(name, "llm-feedback"),  # type: ignore[attr-defined]
                          json=[dict(r) for r in rows])

    def upload_llm_reference(self, name: str, version: str,
                             events: Sequence[Mapping[str, Any]],
                             tags: Sequence[str] | None = None) -> dict[str, Any]:
        """Register ``version`` and fit its reference on these events' descriptors."""
        return self._json(  # type: ignore[attr-defined]
            "PUT", self._path(name, "versions", version, "llm-reference"),  # type: ignore[attr-defined]
            json=[dict(e) for e in events], params={"tags": ",".join(tags) if tags else None})

    def set_llm_privacy(self, name: str, pii: str) -> dict[str, Any]:
        """``store``, ``redact`` (default) or ``hash``: applied before anything is written."""
        return self._json("PUT", self._path(name, "llm-privacy"),  # type: ignore[attr-defined]
                          json={"pii": pii})

    def llm_events(self, name: str, **filters: Any) -> list[dict[str, Any]]:
        """Stored events, newest first (``flagged=True``, ``category="self_harm"``,
        ``version=``, ``session_id=``, ``limit=``)."""
        params = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in filters.items()}
        return self._json("GET", self._path(name, "llm-events"),  # type: ignore[attr-defined]
                          params=params)["events"]


def _get(obj: Any, key: str, default: Any = None) -> Any:
    """An attribute of an SDK object, or a key of the same answer as a dict."""
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


class _Completions:
    def __init__(self, inner: Any, log_event: Callable[[dict[str, Any]], None],
                 provider: str) -> None:
        self._inner, self._log, self._provider = inner, log_event, provider

    def __getattr__(self, item: str) -> Any:
        return getattr(self._inner, item)

    def create(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        response = self._inner.create(*args, **kwargs)
        base = {"input": kwargs.get("messages"), "provider": self._provider,
                "model": kwargs.get("model")}
        if inspect.isawaitable(response):  # AsyncOpenAI: the answer comes when awaited
            return self._later(response, started, base, bool(kwargs.get("stream")))
        if kwargs.get("stream"):
            return _Stream(response, started, base, self._log)
        self._log(_answer_event(response, started, base))
        return response

    async def _later(self, pending: Any, started: float, base: dict[str, Any],
                     stream: bool) -> Any:
        response = await pending
        if stream:
            return _AsyncStream(response, started, base, self._log)
        # the monitor's client is synchronous: off the event loop
        await asyncio.to_thread(self._log, _answer_event(response, started, base))
        return response


def _answer_event(response: Any, started: float, base: dict[str, Any]) -> dict[str, Any]:
    """The event of a whole (not streamed) completion."""
    latency = (time.perf_counter() - started) * 1000
    choices = _get(response, "choices") or []
    message = _get(choices[0], "message") if choices else None
    usage = _get(response, "usage")
    return {**base, "request_id": _get(response, "id") or uuid.uuid4().hex,
            "model": _get(response, "model") or base["model"],
            "output": (_get(message, "content") if message is not None else None) or "",
            "tokens_in": _get(usage, "prompt_tokens") if usage is not None else None,
            "tokens_out": _get(usage, "completion_tokens") if usage is not None else None,
            "latency_ms": latency,
            "finish_reason": _get(choices[0], "finish_reason") if choices else None}


class _Stream:
    """The wrapped stream, chunk for chunk; logs the joined text when it ends."""

    def __init__(self, inner: Any, started: float, base: dict[str, Any],
                 log_event: Callable[[dict[str, Any]], None]) -> None:
        self._inner, self._started, self._base, self._log = inner, started, base, log_event
        self._parts: list[str] = []
        self._id: str | None = None
        self._usage: Any = None
        self._done = False
        self._finish_reason: str | None = None

    def __iter__(self) -> Iterator[Any]:
        for chunk in self._inner:
            self._read(chunk)
            yield chunk
        self._finish()

    def __enter__(self) -> _Stream:
        """``with client.chat.completions.create(stream=True) as s:`` as the SDK's own
        stream allows; leaving the block early logs what arrived until then."""
        enter = getattr(self._inner, "__enter__", None)
        if enter is not None:
            enter()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            leave = getattr(self._inner, "__exit__", None)
            if leave is not None:
                leave(*exc)
        finally:
            self._finish()

    def close(self) -> None:
        try:
            closing = getattr(self._inner, "close", None)
            if closing is not None:
                closing()
        finally:
            self._finish()

    def __getattr__(self, item: str) -> Any:
        return getattr(self._inner, item)

    def _read(self, chunk: Any) -> None:
        self._id = self._id or _get(chunk, "id")
        self._usage = _get(chunk, "usage") or self._usage
        for choice in _get(chunk, "choices") or []:
            if _get(choice, "index", 0) == 0:
                self._finish_reason = _get(choice, "finish_reason") or self._finish_reason
            delta = _get(choice, "delta")
            text = _get(delta, "content") if delta is not None else None
            if text:
                self._parts.append(text)

    def _event(self) -> dict[str, Any] | None:
        """The event once (None after): the joined text and what the chunks said."""
        if self._done:
            return None
        self._done = True
        u = self._usage
        return {**self._base, "request_id": self._id or uuid.uuid4().hex,
                "output": "".join(self._parts),
                "tokens_in": _get(u, "prompt_tokens") if u is not None else None,
                "tokens_out": _get(u, "completion_tokens") if u is not None else None,
                "latency_ms": (time.perf_counter() - self._started) * 1000,
                "finish_reason": self._finish_reason}

    def _finish(self) -> None:
        ev = self._event()
        if ev is not None:
            self._log(ev)


class _AsyncStream(_Stream):
    """An ``AsyncOpenAI`` stream: ``async for`` and ``async with``; the event is logged off
    the event loop."""

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[Any]:
        async for chunk in self._inner:
            self._read(chunk)
            yield chunk
        await self._afinish()

    async def __aenter__(self) -> _AsyncStream:
        enter = getattr(self._inner, "__aenter__", None)
        if enter is not None:
            await enter()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            leave = getattr(self._inner, "__aexit__", None)
            if leave is not None:
                await leave(*exc)
        finally:
            await self._afinish()

    async def close(self) -> None:  # type: ignore[override]
        try:
            closing = getattr(self._inner, "close", None)
            if closing is not None:
                result = closing()
                if inspect.isawaitable(result):
                    await result
        finally:
            await self._afinish()

    async def _afinish(self) -> None:
        ev = self._event()
        if ev is not None:
            await asyncio.to_thread(self._log, ev)


class _Chat:
    def __init__(self, inner: Any, completions: _Completions) -> None:
        self._inner, self.completions = inner, completions

    def __getattr__(self, item: str) -> Any:
        return getattr(self._inner, item)


class _Wrapped:
    def __init__(self, inner: Any, completions: _Completions) -> None:
        self._inner = inner
        self.chat = _Chat(inner.chat, completions)

    def __getattr__(self, item: str) -> Any:
        return getattr(self._inner, item)


def _warn(request_id: str, exc: Exception) -> None:
    log.warning("could not log LLM event %s: %s", request_id, exc)


def wrap_openai(client: Any, monitor: Any, *, model: str, version: str | None = None,
                tags: Mapping[str, Any] | None = None, session_id: str | None = None,
                provider: str = "openai",
                on_error: Callable[[str, Exception], Any] = _warn) -> Any:
    """``client`` (anything with ``chat.completions.create``) whose completions are logged
    to the aiwarden model ``model`` (a text_generation model) as events of ``version``.

    Everything else of ``client`` passes through untouched; the call's answer is returned
    as the wrapped client gave it."""

    def log_event(ev: dict[str, Any]) -> None:
        ev = {**ev, "version": version, "tags": dict(tags or {}) or None,
              "session_id": session_id, "timestamp": time.time()}
        ev = {k: v for k, v in ev.items() if v is not None}
        try:
            out = monitor.log_llm(model, [ev])
            if out.get("errors"):
                e = out["errors"][0]
                raise ValueError(f"{e['field']}: {e['reason']}")
        except Exception as exc:  # the application's call succeeded: never break it
            on_error(ev["request_id"], exc)

    return _Wrapped(client, _Completions(client.chat.completions, log_event, provider))
