"""Relaying an upstream's Server-Sent Events through the guardrail (docs/guardrails.md).

The upstream's stream is read in a worker thread (the event loop never waits on it): every
chunk is parsed and its text added to the :class:`StreamGuard`; the text is checked and
released when nothing more of the stream is waiting on the connection. Against checking at
every chunk or sentence this gives the same guarantee — nothing unchecked reaches the
client, a blocked sentence never does — with one evaluator run for everything that arrived
while the previous run worked, and no added wait: text is held only while more is there.
"""

from __future__ import annotations

import contextlib
import select
import socket
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from aiwarden.gateway.guardrail import StreamGuard, Verdict

if TYPE_CHECKING:
    from aiwarden.gateway.guardrail_proxy import Call, Slot

__all__ = ["open_stream", "relay", "settle"]

_DONE = b"data: [DONE]\n\n"
BROKEN = "upstream_stream_broken"


class _Relay:
    """The state of one relayed stream; :meth:`next` is what goes to the client next."""

    def __init__(self, call: Call, resp: httpx.Response) -> None:
        self.call, self.guard, self.resp = call, call.guard, resp
        self.sg = StreamGuard(call.guard)
        self.raw: Iterator[bytes] = resp.iter_bytes()
        self.buf = b""
        self.env: dict[str, Any] = {}
        self.finish: dict[str, Any] | None = None  # the upstream's chunk with finish_reason
        self.broke: str | None = None
        self.done = False  # the upstream's stream ended (or broke, or was blocked)
        self.finished = False  # and the last chunks were made
        self.last: dict[str, Any] | None = None  # the last chunk read (an envelope)
        self.sock: Any = None  # the upstream connection's socket (False: not known)
        self.settled = False  # closed, slot given back, event written (:func:`settle`)

    def _chunks(self, lines: list[bytes]) -> Iterator[dict[str, Any]]:
        for line in lines:
            line = line.rstrip(b"\r")
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                self.done = True
                return
            try:
                chunk = orjson.loads(data)
                ok = isinstance(chunk["choices"][0], dict) and \
                    isinstance(chunk["choices"][0].get("delta") or {}, dict)
            except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
                ok = False
            if not ok:
                continue  # not a chunk we understand: nothing of it is passed on unchecked
            yield chunk
            if self.finish is not None:
                self.done = True
                return

    def step(self) -> list[bytes]:
        """Read from the upstream until something may go to the client or the stream
        ended. The text is checked only when no more of the stream is waiting to be read:
        an upstream faster than the checks gets its sentences checked together (an
        evaluator run costs mostly per call, not per character), a slower one each
        sentence as it completes; a read that completes no sentence does not go back to
        the event loop (one thread hop per sentence at most, not per chunk)."""
        out: list[bytes] = []
        while not out and not self.done:
            out += self._read()
            if self.done or self._waiting():  # at the end :meth:`end` checks the rest
                continue
            released = self.sg.release()
            if self.sg.blocked:
                self.done = True
            if released and self.last is not None:
                out.append(_sse(dict(self.last, choices=[{
                    "index": 0, "delta": {"content": released}, "finish_reason": None}])))
        return out

    def abort(self) -> None:
        """Shut the upstream connection down under a read in progress (another thread's):
        the read returns at once instead of at the upstream's timeout."""
        self._waiting()  # finds the socket
        if self.sock:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)

    def _waiting(self) -> bool:
        """More of the upstream's answer is already here (its socket reads without
        waiting)."""
        if self.sock is None:
            stream = self.resp.extensions.get("network_stream")
            self.sock = getattr(stream, "get_extra_info", lambda _: None)("socket") or False
        if not self.sock:
            return False
        try:
            return bool(select.select([self.sock], [], [], 0)[0])
        except (OSError, ValueError):  # closed meanwhile
            return False

    def _read(self) -> list[bytes]:
        """Read once from the upstream and take its chunks' text (checked later by
        :meth:`step`); the role and tool-call deltas, which go out as they come."""
        try:
            data = next(self.raw)
        except StopIteration:
            data, self.done = b"", True
        except httpx.HTTPError as exc:  # timed out or cut mid-stream
            self.broke, self.done = f"{type(exc).__name__}: {exc}", True
            return []
        lines = (self.buf + data).split(b"\n")
        self.buf = lines.pop() if not self.done else b""
        if self.done and lines[-1:] == [b""]:
            lines.pop()
        out: list[bytes] = []
        for chunk in self._chunks(lines):
            choice = chunk["choices"][0]
            self.env = {k: chunk.get(k) for k in ("id", "object", "created", "model")}
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                self.sg.add(text)
            if choice.get("finish_reason"):
                self.finish = chunk
            rest = {k: v for k, v in delta.items() if k != "content"}
            if rest:  # the role, tool calls: passed on as they come, without the text
                out.append(_sse(dict(chunk, choices=[dict(choice, finish_reason=None,
                                                          delta=rest)])))
            self.last = chunk
        return out

    def next(self) -> bytes:
        """What goes to the client next (read until there is some); once the upstream's
        stream ended, the last chunks with it (one thread hop, not two)."""
        out = self.step()
        if self.done and not self.finished:
            self.finished = True
            out += self.end(self.call.verdict, self.call.rid)
        return b"".join(out)

    def end(self, verdict: Verdict, rid: str) -> list[bytes]:
        """The last chunks: the held-back text and the finish, the fallback on a block, an
        error when the upstream broke off."""
        from aiwarden.gateway.guardrail_proxy import info_of

        if self.broke is not None:  # what is held back was never checked whole: not sent
            return [_sse({"error": {"message": f"The upstream's stream broke off "
                                    f"({self.broke}); the text not yet checked was not "
                                    "sent.", "type": "upstream_error", "code": BROKEN}}),
                    _DONE]
        tail = self.sg.finish()
        verdict.merge(self.sg.verdict)
        out = []
        if tail:  # on a block: the sentences before the blocked one
            out.append(_sse({**self.env, "choices": [{"index": 0, "delta": {"content": tail},
                                                      "finish_reason": None}]}))
        if self.sg.blocked:
            last = {**self.env, "choices": [{"index": 0, "delta": {
                "content": self.guard.policy.fallback}, "finish_reason": "content_filter"}],
                "aiwarden": info_of(verdict, "output", rid)}
            return [*out, _sse(last), _DONE]
        end = self.finish or {**self.env, "choices": [{"index": 0, "delta": {},
                                                       "finish_reason": "stop"}]}
        if verdict.action:
            end = dict(end, aiwarden=info_of(verdict, "output", rid))
        return [*out, _sse(end), _DONE]

    def finish_reason(self) -> str | None:
        if self.broke is not None:
            return BROKEN
        if self.finish is None:
            return None
        return self.finish["choices"][0].get("finish_reason")


def _sse(doc: Any) -> bytes:
    return b"data: " + orjson.dumps(doc) + b"\n\n"


def open_stream(call: Call, client: httpx.Client, req: httpx.Request
                ) -> tuple[httpx.Response, _Relay | None, bytes]:
    """Send the request and, when the upstream answers 200, read its stream up to the first
    thing that may go to the client, in the same worker thread (a hop saved)."""
    resp = client.send(req, stream=True)
    if resp.status_code != 200:
        return resp, None, b""
    r = _Relay(call, resp)
    try:
        return resp, r, r.next()
    except BaseException:
        resp.close()
        raise


async def relay(r: _Relay, first: bytes, slot: Slot) -> AsyncIterator[bytes]:
    """The client's SSE stream: the upstream's chunks with their text checked and held back
    to sentence boundaries; on a block, one last chunk with the fallback and
    ``finish_reason: content_filter``, then ``[DONE]``.

    A client that goes away mid-stream cancels the wait on the upstream: the upstream
    connection is shut down at once (a read in progress wakes up, not at the upstream's
    timeout), closed once its thread is done, and the call's event is still written."""
    call, ended = r.call, False
    try:
        if first:
            yield first
        while not r.finished:
            out = await call.proxy.run(slot, r.next)
            if out:
                yield out
        ended = True
    finally:
        settle(r, slot, ended)


def settle(r: _Relay, slot: Slot, ended: bool) -> None:
    """Once per stream: close the upstream response, give the slot back, write the event.
    Also run when the client's stream was never started (a client gone before the first
    byte: the generator's ``finally`` never runs), from the generator's finalizer."""
    if r.settled:
        return
    r.settled = True
    call, running = r.call, slot.running
    if ended or running is None or running.done():
        r.resp.close()
    else:  # a thread still reads: wake it, and close when it is done (not under it)
        r.abort()
        running.add_done_callback(lambda _: r.resp.close())
    slot.exit()
    if r.broke is not None and ended:
        call.proxy.counters.upstream_errors[call.name] += 1
    call.verdict.merge(r.sg.verdict)
    call.record(r.sg.text, "output", model=r.env.get("model"),
                finish_reason=r.finish_reason() if ended else "client_closed")
