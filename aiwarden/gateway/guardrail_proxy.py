"""The guardrail's OpenAI-compatible chat completions proxy, one implementation for the
server's route and the standalone ``aiwarden serve`` process (docs/guardrails.md).

:class:`GuardrailProxy` holds one process's guardrail state: the models' guards (their
policies re-read at most once a ``policy_ttl``), one event queue per model, the
intervention counters, and one HTTP client whose transport is the egress policy. Where
policies come from and where events go is all that differs between the two hosts:

* the server reads the policy from its database and ingests events through the ``Monitor``;
* ``aiwarden serve`` asks the server (``GET .../guardrail``) and posts the events to its
  ``llm-events`` API.

Every call is logged as an LLM event of the model (tags ``guardrail_action``: ``pass``,
``flag``, ``redact`` or ``block``, ``guardrail_categories``, ``guardrail_stage``;
``finish_reason``: the upstream's, or ``content_filter`` when the guardrail blocked).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
from prometheus_client.core import CounterMetricFamily
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from aiwarden.egress import EgressDenied, EgressPolicy
from aiwarden.errors import DataError
from aiwarden.gateway.events import EventQueue, Sink
from aiwarden.gateway.guardrail import Guard, Verdict
from aiwarden.gateway.guardrail_policy import GuardrailPolicy, KeyUnavailable
from aiwarden.gateway.guardrail_stream import open_stream, relay, settle
from aiwarden.llm.events import parse_events
from aiwarden.monitoring import llm_guardrail
from aiwarden.store.models_repo import NotFound

__all__ = ["GuardrailCounters", "GuardrailProxy", "PolicyReader", "caller_meta",
           "chat_messages"]

log = logging.getLogger("aiwarden.gateway")

#: ``name`` → the model's stored policy document, None when it has none (NotFound for an
#: unknown model).
PolicyReader = Callable[[str], "dict[str, Any] | None"]
FALLBACK_FINISH = "content_filter"


def chat_messages(body: Any) -> list[Any]:
    """The request's messages; DataError naming the field when it is not a chat request."""
    if not isinstance(body, dict):
        raise DataError("Expected a chat completion request object.", "body")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise DataError("messages: expected a non-empty list of {role, content}.", "messages")
    return messages


def _check_sizes(messages: list[Any], most: int) -> None:
    """DataError naming ``messages[i].content`` when a message's text is longer than the
    policy's ``max_message_chars``."""
    for i, m in enumerate(messages):
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list):
            n = sum(len(v) for p in content if isinstance(p, dict)
                    for v in (p.get("text"), p.get("refusal")) if isinstance(v, str))
        else:
            n = len(content) if isinstance(content, str) else 0
        if n > most:
            raise DataError(f"messages[{i}].content: {n} characters, more than the "
                            f"guardrail's max_message_chars ({most}).",
                            f"messages[{i}].content")


def caller_meta(tags: str | None, version: str | None) -> tuple[dict[str, str], str | None]:
    """The caller's own event tags and version, from the ``x-aiwarden-tags`` header (a JSON
    object, or ``name=value,name=value``) and ``x-aiwarden-version``; DataError naming the
    header when they are not what an LLM event accepts (docs/llm.md)."""
    doc: Any = None
    if tags:
        text = tags.strip()
        if text.startswith("{"):
            try:
                doc = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise DataError(f"x-aiwarden-tags: malformed JSON ({exc.msg}); send a JSON "
                                "object or name=value,name=value.", "x-aiwarden-tags") from None
        else:
            doc = {}
            for part in filter(None, (p.strip() for p in text.split(","))):
                k, eq, v = part.partition("=")
                if not eq or not k.strip():
                    raise DataError(f"x-aiwarden-tags: expected name=value, got {part!r}.",
                                    "x-aiwarden-tags")
                doc[k.strip()] = v.strip()
    if doc is None and version is None:
        return {}, None
    _, bad = parse_events([{"request_id": "probe", "output": "", "tags": doc,
                            "version": version}])
    if bad:
        where = "x-aiwarden-version" if bad[0].field == "version" else "x-aiwarden-tags"
        raise DataError(f"{where}: {bad[0].field}: {bad[0].reason}.", where)
    return {str(k): str(v) for k, v in (doc or {}).items()}, version


def _json(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(doc), status, headers=headers, media_type="application/json")


def _oai_error(status: int, message: str, kind: str) -> Response:
    """The house error body, with OpenAI's ``error`` object beside it (what its clients
    read)."""
    return _json({"detail": {"error": kind, "message": message, "field": "upstream"},
                  "error": {"message": message, "type": kind, "code": kind}}, status)


#: The upstream's own error statuses passed on (the request's fault, as it said it); any
#: other status, or a body that is not a JSON object, is a 502.
PASSED_STATUSES = (400, 401, 403, 404, 409, 413, 422, 429)


def _upstream_error(name: str, status: int, data: bytes) -> Response:
    """The answer to an upstream's non-200: a passed-on 4xx keeps its status and OpenAI
    ``error`` object (beside the house ``detail``); a 5xx is a 502 with a fixed reason (its
    body may hold the provider's internals, never passed on); anything else, or a body that
    is not a JSON object, a 502 ``upstream_malformed``."""
    said: Any = None
    if status in PASSED_STATUSES:
        try:
            said = orjson.loads(data)
        except orjson.JSONDecodeError:
            said = None
    if isinstance(said, dict):
        err = said.get("error")
        msg = err.get("message") if isinstance(err, dict) else None
        message = msg[:500] if isinstance(msg, str) and msg else f"The upstream answered {status}."
        return _json({**said, "detail": {"error": "upstream_error", "message": message,
                                         "field": "upstream"},
                      "error": err if isinstance(err, dict) else
                      {"message": message, "type": "upstream_error", "code": None}}, status)
    log.warning("guardrail %s: the upstream answered %d (%d bytes, not passed on)", name,
                status, len(data))
    if status >= 500:
        return _oai_error(502, f"The upstream answered {status}; see its status page or "
                          "retry.", "upstream_error")
    return _oai_error(502, f"The upstream answered {status} with what is not an OpenAI error "
                      "object.", "upstream_malformed")


def _completion(base: dict[str, Any], text: str, finish: str,
                info: dict[str, Any] | None) -> dict[str, Any]:
    out = {"id": base.get("id") or f"chatcmpl-aw-{uuid.uuid4().hex[:12]}",
           "object": "chat.completion", "created": base.get("created") or int(time.time()),
           "model": base.get("model"),
           "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                        "finish_reason": finish}]}
    if base.get("usage") is not None:
        out["usage"] = base["usage"]
    if info is not None:
        out["aiwarden"] = info
    return out


def info_of(verdict: Verdict, stage: str, rid: str) -> dict[str, Any]:
    return {**verdict.to_dict(), "stage": stage, "request_id": rid}


def sse(doc: Any) -> bytes:
    return b"data: " + (doc if isinstance(doc, bytes) else orjson.dumps(doc)) + b"\n\n"


class GuardrailCounters:
    """Interventions ``(model, action, category) → n`` and upstream failures per model,
    since the process started (Prometheus counters)."""

    def __init__(self) -> None:
        self.actions: Counter[tuple[str, str, str]] = Counter()
        self.upstream_errors: Counter[str] = Counter()

    def snapshot(self) -> tuple[dict[tuple[str, str, str], int], dict[str, int]]:
        """Copies of both (a dict copy is one step for the interpreter: safe while the
        event loop counts on; iterating the live counters from another thread is not)."""
        return dict(self.actions), dict(self.upstream_errors)

    def collect(self) -> Iterator[CounterMetricFamily]:
        actions, upstream = self.snapshot()
        fam = CounterMetricFamily("aiwarden_guardrail_actions", "Guardrail interventions "
                                  "(block, redact, flag) by finding category, this process "
                                  "since it started.", labels=["model", "action", "category"])
        for (model, action, cat), n in sorted(actions.items()):
            fam.add_metric([model, action, cat], n)
        yield fam
        up = CounterMetricFamily("aiwarden_guardrail_upstream_errors", "Chat completions "
                                 "whose upstream could not be reached, answered an error or "
                                 "broke off its stream, this process since it started.",
                                 labels=["model"])
        for model, n in sorted(upstream.items()):
            up.add_metric([model], n)
        yield up


class GuardrailProxy:
    """See the module docstring.

    Parameters
    ----------
    read_policy : callable
        ``name`` → the stored policy document (None: the model has none).
    sink : callable
        ``name`` → the sink its events are sent to (through a bounded queue).
    gauges : callable
        ``name`` → where a sent batch's intervention gauges go (resource samples,
        :mod:`aiwarden.monitoring.llm_guardrail`): the ``llm`` metric's
        ``guardrail_block_rate``... read them. Sent after the events, so a batch retried
        because its events failed is not counted twice.
    egress : EgressPolicy
        The only way out to the upstream (redirects are not followed).
    policy_ttl : float
        Seconds a process keeps a model's policy before reading it again. A policy that
        cannot be read again (the server is unreachable) is kept until it can.
    secrets_dir : str or Path, optional
        The folder ``upstream.api_key_file`` names a file in (None: key files are refused).
    max_upstream : int
        Chat completions waiting on an upstream at once (a stream for as long as it lasts);
        one more is answered 429 with ``Retry-After``.
    """

    def __init__(self, read_policy: PolicyReader, sink: Callable[[str], Sink],
                 gauges: Callable[[str], Sink], egress: EgressPolicy, *,
                 policy_ttl: float = 1.0, max_queue: int = 10_000,
                 secrets_dir: str | Path | None = None, max_upstream: int = 32) -> None:
        self.read_policy, self.sink, self.gauges = read_policy, sink, gauges
        self.egress, self.secrets_dir = egress, secrets_dir
        self.policy_ttl, self.max_queue = policy_ttl, max_queue
        self.client = httpx.Client(transport=egress.http_transport(), follow_redirects=False)
        # upstream calls wait on their own threads, at most max_upstream at once (more: 429):
        # a slow upstream never holds the server's worker threads (its /healthz, its checks)
        self.max_upstream = max(1, max_upstream)
        self._pool = ThreadPoolExecutor(self.max_upstream,
                                        thread_name_prefix="guardrail-upstream")
        self.busy = 0  # chat completions holding an upstream slot (the event loop counts)
        self.counters = GuardrailCounters()
        self._policies: dict[str, tuple[float, bytes, Guard]] = {}
        self._refreshing: set[str] = set()
        self._queues: dict[str, EventQueue] = {}
        self._lock = threading.Lock()

    # -- policies ---------------------------------------------------------------------------

    def cached(self, name: str) -> Guard | None:
        """The model's guard as last read (None: never read, or forgotten). Once it is older
        than ``policy_ttl`` it is read again on a thread of its own, so no request waits
        for the database or the server while a policy is known."""
        hit = self._policies.get(name)
        if hit is None:
            return None
        if time.monotonic() - hit[0] >= self.policy_ttl and name not in self._refreshing:
            self._refreshing.add(name)
            threading.Thread(target=self._refresh, args=(name,), daemon=True,
                             name=f"guardrail-policy-{name}").start()
        return hit[2]

    def _refresh(self, name: str) -> None:
        try:
            self.guard(name)
        except Exception as exc:  # the next request reads it again and says why
            log.debug("guardrail %s: policy refresh failed: %s", name, exc)
        finally:
            self._refreshing.discard(name)

    def forget(self, name: str) -> None:
        """Read the model's policy again at its next request (it was just changed)."""
        self._policies.pop(name, None)

    def guard(self, name: str) -> Guard:
        """The model's guard, its policy read again (the guard kept while it did not
        change); NotFound when the model has no policy."""
        hit = self._policies.get(name)
        try:
            doc = self.read_policy(name)
        except NotFound:
            self._policies.pop(name, None)
            raise
        except Exception as exc:  # the policy's home is unreachable: keep what we have
            if hit is None:
                raise
            log.warning("guardrail %s: the policy could not be read again (%s: %s); "
                        "keeping the one read before", name, type(exc).__name__, exc)
            self._policies[name] = (time.monotonic(), hit[1], hit[2])
            return hit[2]
        if doc is None:
            self._policies.pop(name, None)
            raise NotFound(f"Model {name!r} has no guardrail policy: PUT one to "
                           f"/api/v1/models/{name}/guardrail.", "guardrail")
        raw = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
        guard = hit[2] if hit is not None and hit[1] == raw else \
            Guard(GuardrailPolicy.from_dict(doc))
        self._policies[name] = (time.monotonic(), raw, guard)
        return guard

    # -- events -----------------------------------------------------------------------------

    def queue(self, name: str) -> EventQueue:
        q = self._queues.get(name)
        if q is None:
            with self._lock:
                q = self._queues.get(name)
                if q is None:
                    q = self._queues[name] = EventQueue(
                        self._send(name), max_queue=self.max_queue, batch_size=500,
                        flush_interval=0.5, name=f"guardrail-{name}")
        return q

    def _send(self, name: str) -> Sink:
        events, gauges = self.sink(name), self.gauges(name)

        def send(batch: list[dict[str, Any]]) -> Any:
            out = events(batch)
            found = llm_guardrail.samples(batch)
            if found:
                gauges(found)
            return out

        return send

    def record(self, name: str, guard: Guard, rid: str, messages: list[Any], output: str,
               verdict: Verdict, stage: str, t0: float, *, usage: Any = None,
               model: Any = None, finish_reason: Any = None,
               caller: tuple[dict[str, str], str | None] = ({}, None)) -> None:
        """Count the verdict's interventions and queue the call's LLM event (with the
        caller's tags and version, see :func:`caller_meta`)."""
        for action, cats in verdict.categories.items():
            for c in cats:
                self.counters.actions[(name, action, c)] += 1
        tags = {**caller[0], "guardrail_action": verdict.action or "pass",
                "guardrail_categories": ",".join(sorted(
                    {c for cats in verdict.categories.values() for c in cats})) or "none",
                "guardrail_stage": stage}
        event: dict[str, Any] = {
            "request_id": rid, "timestamp": time.time(), "input": messages, "output": output,
            "provider": guard.policy.provider, "latency_ms": (time.perf_counter() - t0) * 1000,
            "tags": tags}
        if verdict.action == "block":
            finish_reason = FALLBACK_FINISH
        if isinstance(finish_reason, str) and finish_reason.strip():
            event["finish_reason"] = finish_reason[:40]
        if caller[1] or guard.policy.version:
            event["version"] = caller[1] or guard.policy.version
        if isinstance(model, str) and model:
            event["model"] = model
        if isinstance(usage, dict):
            for k, src in (("tokens_in", "prompt_tokens"), ("tokens_out", "completion_tokens")):
                if isinstance(usage.get(src), int) and not isinstance(usage[src], bool):
                    event[k] = usage[src]
        self.queue(name).put(event)

    def queue_stats(self, name: str) -> dict[str, Any] | None:
        q = self._queues.get(name)
        return None if q is None else q.stats()

    def flush(self, name: str | None = None, timeout: float = 30.0) -> bool:
        """Wait until the queued events (of ``name``, or all) were sent or failed."""
        qs = list(self._queues.values()) if name is None else \
            [q for q in (self._queues.get(name),) if q is not None]
        return all([q.flush(timeout) for q in qs])

    def close(self, timeout: float = 10.0) -> None:
        for q in list(self._queues.values()):
            q.close(timeout)
        self.client.close()
        self._pool.shutdown(wait=False)

    async def run(self, slot: Slot, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on an upstream thread, for ``slot``'s call. The slot is held until
        the thread is done, even when the awaiting request is cancelled (a client gone)."""
        loop = asyncio.get_running_loop()
        slot.enter()

        def done(_: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to count
                loop.call_soon_threadsafe(slot.exit)

        cf = self._pool.submit(fn, *args)
        slot.running = cf
        cf.add_done_callback(done)
        return await asyncio.wrap_future(cf)

    # -- the route --------------------------------------------------------------------------

    async def chat(self, name: str, body: Any, request_id: str | None = None,
                   caller: tuple[dict[str, str], str | None] = ({}, None)) -> Response:
        """One chat completion through the model's policy (``body`` parsed JSON;
        ``caller``: the event's own tags and version, :func:`caller_meta`).

        The event's request id is made here, never the client's ``request_id`` (a reused
        one would make a blocked call a duplicate, dropped from the audit): the client's
        goes on the event as the ``client_request_id`` tag, and the event's id back in the
        ``x-aiwarden-request-id`` header.

        Raises DataError for a body that is not a chat request and NotFound for a model
        without a policy; everything the upstream does wrong is an answer (502 or its own
        status)."""
        rid = f"gw-{uuid.uuid4().hex}"
        if request_id:
            caller = ({**caller[0], "client_request_id": request_id[:200]}, caller[1])
        resp = await self._chat(name, body, rid, caller)
        resp.headers["x-aiwarden-request-id"] = rid
        return resp

    async def _chat(self, name: str, body: Any, rid: str,
                    caller: tuple[dict[str, str], str | None]) -> Response:
        messages = chat_messages(body)
        stream = bool(body.get("stream"))
        if stream and body.get("n") not in (None, 1):
            raise DataError("n: a streamed answer is checked as one text; ask for one choice "
                            "(n: 1) or do not stream.", "n")
        guard = self.cached(name) or await run_in_threadpool(self.guard, name)
        call = Call(self, name, guard, rid, messages, body.get("model"), caller)
        _check_sizes(messages, guard.policy.max_message_chars)
        # the checks are CPU work (milliseconds, more for a long prompt): off the event loop
        verdict, forward = await run_in_threadpool(guard.check_input, messages)
        call.verdict = verdict
        if verdict.action == "block":  # never reaches the upstream
            return self._input_block(call, stream)
        up = guard.policy.upstream
        headers = {"content-type": "application/json", "accept": "application/json"}
        try:  # a file read: off the event loop
            key = await run_in_threadpool(up.api_key, self.secrets_dir)
        except KeyUnavailable as exc:  # names the variable or file, never the value
            log.warning("guardrail %s: %s", name, exc)
            self.counters.upstream_errors[name] += 1
            return _oai_error(502, "The upstream key could not be read (the server's log "
                              "says why).", "upstream_key_unavailable")
        if key:
            headers["authorization"] = f"Bearer {key}"
        try:
            req = self.client.build_request("POST", up.base_url + "/chat/completions",
                                            content=orjson.dumps({**body, "messages": forward}),
                                            headers=headers, timeout=up.timeout)
        except httpx.InvalidURL as exc:  # a host httpx cannot encode (IDNA): a policy stored
            # before the check below existed; the long fuzz's 500
            self.counters.upstream_errors[name] += 1
            log.warning("guardrail %s: the upstream URL cannot be used: %s", name, exc)
            return _oai_error(502, f"The upstream URL of this guardrail cannot be used "
                              f"({exc}).", "upstream_unreachable")
        if self.busy >= self.max_upstream:  # every upstream thread is waiting on one
            self.counters.upstream_errors[name] += 1
            return _json({"detail": {"error": "upstream_busy", "field": "upstream",
                                     "message": "Too many chat completions are waiting on "
                                     "the upstream; retry shortly."},
                          "error": {"message": "Too many chat completions are waiting on "
                                    "the upstream; retry shortly.", "type": "upstream_busy",
                                    "code": "upstream_busy"}}, 429, {"retry-after": "1"})
        slot, handed, relay_ = Slot(self), False, None
        try:
            try:  # a whole answer (a stream's start) is read in one upstream thread
                if stream:
                    resp, relay_, first = await self.run(slot, open_stream, call,
                                                         self.client, req)
                else:
                    resp = await self.run(slot, self.client.send, req)
            except (httpx.HTTPError, EgressDenied) as exc:
                self.counters.upstream_errors[name] += 1
                detail = str(exc).replace(key, "***") if key else str(exc)
                log.warning("guardrail %s: the upstream %s could not be reached: %s: %s",
                            name, up.base_url, type(exc).__name__, detail[:300])
                return _oai_error(502, f"The upstream {up.base_url} could not be reached "
                                  f"({type(exc).__name__}).", "upstream_unreachable")
            if resp.status_code != 200:
                data = await self.run(slot, resp.read) if stream else resp.content
                resp.close()
                self.counters.upstream_errors[name] += 1
                return _upstream_error(name, resp.status_code, data)
            if relay_ is not None:
                handed = True  # the stream gives the slot back when it ends
                body = relay(relay_, first, slot)
                weakref.finalize(body, settle, relay_, slot, False)  # never iterated
                return StreamingResponse(body, media_type="text/event-stream")
        finally:
            if not handed:
                slot.exit()
        return await self._answer(call, resp.content)

    def _input_block(self, call: Call, stream: bool) -> Response:
        info = info_of(call.verdict, "input", call.rid)
        fallback = call.guard.policy.fallback
        call.record(fallback, "input")
        if stream:
            chunk = {"id": f"chatcmpl-aw-{call.rid}", "object": "chat.completion.chunk",
                     "created": int(time.time()), "model": call.model,
                     "choices": [{"index": 0, "delta": {"role": "assistant",
                                                        "content": fallback},
                                  "finish_reason": FALLBACK_FINISH}], "aiwarden": info}
            return StreamingResponse(iter([sse(chunk), b"data: [DONE]\n\n"]),
                                     media_type="text/event-stream")
        return _json(_completion({"model": call.model}, fallback, FALLBACK_FINISH, info))

    async def _answer(self, call: Call, data: bytes) -> Response:
        """The upstream's whole answer, every choice checked (``n`` > 1: one blocked
        choice blocks the answer, each redacted one is redacted)."""
        try:
            doc = orjson.loads(data)
            choices = doc["choices"]
            if not isinstance(choices, list) or not choices:
                raise TypeError
            texts = [_answer_text(c["message"].get("content")) for c in choices]
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
            self.counters.upstream_errors[call.name] += 1
            return _oai_error(502, "The upstream's answer is not a chat completion.",
                              "upstream_malformed")
        outs = await run_in_threadpool(lambda: [call.guard.check_output(t) for t in texts])
        verdict = call.verdict
        for out in outs:
            verdict.merge(out)
        choice = choices[0]
        call.record(texts[0] if len(texts) == 1 else "\n\n".join(texts), "output",
                    usage=doc.get("usage"), model=doc.get("model"),
                    finish_reason=choice.get("finish_reason"))
        if verdict.action == "block":
            return _json(_completion(doc, call.guard.policy.fallback, FALLBACK_FINISH,
                                     info_of(verdict, "output", call.rid)))
        if any(o.text is not None for o in outs) or verdict.action == "redact":
            fixed = dict(doc, aiwarden=info_of(verdict, "output", call.rid))
            fixed["choices"] = [
                c if o.text is None else dict(c, message=dict(c["message"], content=o.text))
                for c, o in zip(choices, outs, strict=True)]
            return _json(fixed)
        headers = {"x-aiwarden-guardrail": verdict.action or "pass",
                   "x-aiwarden-request-id": call.rid}
        return Response(data, media_type="application/json", headers=headers)


def _answer_text(content: Any) -> str:
    """A choice's text: its content, or the text of its content parts; TypeError for a
    shape that is not one (answered as a malformed upstream answer, never passed on)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        return "".join(p["text"] for p in content if isinstance(p.get("text"), str))
    raise TypeError("not a chat completion content")


class Slot:
    """One chat completion's hold on the proxy's upstream threads (see
    :meth:`GuardrailProxy.run`): taken when made, given back when the request and every
    thread it started are done. Counted on the event loop only."""

    def __init__(self, proxy: GuardrailProxy) -> None:
        self.proxy, self.holds = proxy, 1
        self.running: Future[Any] | None = None  # the last upstream thread's work
        proxy.busy += 1

    def enter(self) -> None:
        self.holds += 1

    def exit(self) -> None:
        self.holds -= 1
        if self.holds == 0:
            self.proxy.busy -= 1


class Call:
    """One chat completion on its way: what its event is recorded from."""

    def __init__(self, proxy: GuardrailProxy, name: str, guard: Guard, rid: str,
                 messages: list[Any], model: Any,
                 caller: tuple[dict[str, str], str | None]) -> None:
        self.proxy, self.name, self.guard, self.rid = proxy, name, guard, rid
        self.messages, self.model, self.caller = messages, model, caller
        self.verdict = Verdict()
        self.t0 = time.perf_counter()

    def record(self, output: str, stage: str, *, usage: Any = None, model: Any = None,
               finish_reason: Any = None) -> None:
        self.proxy.record(self.name, self.guard, self.rid, self.messages, output,
                          self.verdict, stage, self.t0, usage=usage,
                          model=self.model or model, finish_reason=finish_reason,
                          caller=self.caller)
