"""Guardrails in the gateway (docs/guardrails.md): an OpenAI-compatible
``POST /api/v1/models/{name}/v1/chat/completions`` that forwards to the model's configured
upstream through the server's egress policy, checks the prompt before and the answer after
(streamed answers as they flow), and blocks, redacts or flags per the model's policy.

Every call is logged as an LLM event of the model (tag ``guardrail_action``: ``pass``,
``flag``, ``redact`` or ``block``; ``guardrail_categories``) through a non-blocking event
queue, and every intervention counts in ``aiwarden_guardrail_actions_total{model, action,
category}`` (this process's count since it started, as Prometheus counters are).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from prometheus_client.core import CounterMetricFamily
from pydantic import Field

from aiwarden.egress import EgressDenied, EgressPolicy
from aiwarden.errors import ParameterError
from aiwarden.gateway.events import EventQueue
from aiwarden.gateway.guardrail import Guard, StreamGuard, Verdict
from aiwarden.gateway.guardrail_policy import GuardrailPolicy
from aiwarden.monitoring.llm_ingest import ingest_llm_events
from aiwarden.server.access import requires
from aiwarden.server.api_models import Open, answers, body_doc
from aiwarden.server.errors import Malformed
from aiwarden.server.jsonbody import loads
from aiwarden.server.responses import JSONResponse
from aiwarden.store import kv
from aiwarden.store import models_repo as repo

__all__ = ["GuardrailCollector", "apply_policies", "check_policies", "get_policy", "router",
           "set_policy"]

router = APIRouter(tags=["guardrails"])
_KEY = "guardrail."  # + model id
_LOCK = threading.Lock()
_POLICY_TTL = 1.0  # seconds a process keeps a model's policy before reading it again


def get_policy(conn: Any, model_id: int) -> dict[str, Any] | None:
    return kv.get(conn, f"{_KEY}{model_id}")


def set_policy(conn: Any, model_id: int, doc: Any, egress: EgressPolicy) -> dict[str, Any]:
    """Check ``doc`` (fields named), its upstream against the egress policy, then store it."""
    out = _checked(doc, egress, "guardrail")
    kv.put(conn, f"{_KEY}{model_id}", out)
    return out


def _checked(doc: Any, egress: EgressPolicy, where: str) -> dict[str, Any]:
    policy = GuardrailPolicy.from_dict(doc, where)
    try:
        egress.check_url(policy.upstream.base_url)
    except EgressDenied as exc:
        raise ParameterError(f"{where}.upstream.base_url: the egress policy refuses it "
                             f"({exc}); allow it with AIWARDEN_EGRESS_ALLOW.",
                             f"{where}.upstream.base_url") from None
    return policy.to_dict()


def check_policies(app: Any, doc: Any) -> dict[tuple[str, int], dict[str, Any]]:
    """``guardrails:`` of an ``aiwarden apply`` file (model → policy), each checked and its
    model found, before anything is written."""
    if not isinstance(doc, dict):
        raise ParameterError("guardrails: expected a mapping of model name to policy.",
                             "guardrails")
    egress, mon = guardrails_for(app).egress, app.state.monitor
    out = {}
    for name, spec in doc.items():
        out[(str(name), mon.model(str(name)).id)] = _checked(spec, egress,
                                                             f"guardrails.{name}")
    return out


def apply_policies(conn: Any, policies: dict[tuple[str, int], dict[str, Any]],
                   dry_run: bool) -> list[dict[str, Any]]:
    """Store the checked policies (unless ``dry_run``); the diff against the stored ones."""
    from aiwarden.alerting.apply import field_changes

    diff = []
    for (name, model_id), policy in policies.items():
        old = get_policy(conn, model_id)
        fields = field_changes(old or {}, policy)
        if fields:
            diff.append({"kind": "guardrail", "name": name,
                         "action": "create" if old is None else "update", "fields": fields})
            if not dry_run:
                kv.put(conn, f"{_KEY}{model_id}", policy)
    return diff


class _Guardrails:
    """This process's guardrail state: policies (briefly cached), event queues, counters,
    and one HTTP client whose transport is the egress policy."""

    def __init__(self, app: Any) -> None:
        self.monitor = app.state.monitor
        self.egress = EgressPolicy(app.state.settings.egress_allow)
        self.client = httpx.Client(transport=self.egress.http_transport(),
                                   follow_redirects=False)
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self.upstream_errors: Counter[str] = Counter()
        self._policies: dict[str, tuple[float, str, Guard | None]] = {}
        self._queues: dict[str, EventQueue] = {}
        self._lock = threading.Lock()

    def cached(self, name: str) -> Guard | None:
        """The model's guard when read less than a second ago (no database read)."""
        hit = self._policies.get(name)
        return hit[2] if hit is not None and time.monotonic() - hit[0] < _POLICY_TTL else None

    def guard(self, name: str) -> Guard:
        """The model's guard, its policy read again (kept while it did not change)."""
        now = time.monotonic()
        hit = self._policies.get(name)
        m = self.monitor.model(name)
        with self.monitor.db.read() as conn:
            doc = get_policy(conn, m.id)
        if doc is None:
            raise repo.NotFound(f"Model {name!r} has no guardrail policy: PUT one to "
                                f"/api/v1/models/{name}/guardrail.", "guardrail")
        raw = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode()
        guard = hit[2] if hit is not None and hit[1] == raw else \
            Guard(GuardrailPolicy.from_dict(doc))
        self._policies[name] = (now, raw, guard)
        return guard

    def queue(self, name: str) -> EventQueue:
        q = self._queues.get(name)
        if q is None:
            with self._lock:
                q = self._queues.get(name)
                if q is None:
                    q = self._queues[name] = EventQueue(
                        lambda batch: ingest_llm_events(self.monitor, name, batch),
                        max_queue=10_000, batch_size=500, flush_interval=0.5,
                        name=f"guardrail-{name}")
        return q

    def record(self, name: str, guard: Guard, rid: str, messages: list[Any], output: str,
               verdict: Verdict, stage: str, ms: float, usage: Any, model: Any) -> None:
        for action, cats in verdict.categories.items():
            for c in cats:
                self.counts[(name, action, c)] += 1
        action = verdict.action or "pass"
        tags = {"guardrail_action": action,
                "guardrail_categories": ",".join(sorted(
                    {c for cats in verdict.categories.values() for c in cats})) or "none",
                "guardrail_stage": stage}
        event: dict[str, Any] = {
            "request_id": rid, "timestamp": time.time(), "input": messages, "output": output,
            "provider": guard.policy.provider, "latency_ms": ms, "tags": tags}
        if guard.policy.version:
            event["version"] = guard.policy.version
        if isinstance(model, str) and model:
            event["model"] = model
        if isinstance(usage, dict):
            for k, src in (("tokens_in", "prompt_tokens"), ("tokens_out", "completion_tokens")):
                if isinstance(usage.get(src), int):
                    event[k] = usage[src]
        self.queue(name).put(event)

    def flush(self, name: str, timeout: float) -> bool:
        q = self._queues.get(name)
        return True if q is None else q.flush(timeout)

    def close(self, timeout: float = 10.0) -> None:
        for q in list(self._queues.values()):
            q.close(timeout)
        self.client.close()


def guardrails_for(app: Any) -> _Guardrails:
    g = getattr(app.state, "guardrails", None)
    if g is None:
        with _LOCK:
            g = getattr(app.state, "guardrails", None)
            if g is None:
                g = app.state.guardrails = _Guardrails(app)
    return g


def close_guardrails(app: Any, timeout: float = 10.0) -> None:
    g = getattr(app.state, "guardrails", None)
    if g is not None:
        g.close(timeout)


class GuardrailCollector:
    """``aiwarden_guardrail_actions_total{model, action, category}``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def collect(self) -> Iterator[CounterMetricFamily]:
        g = getattr(self.app.state, "guardrails", None)
        fam = CounterMetricFamily("aiwarden_guardrail_actions", "Guardrail interventions "
                                  "(block, redact, flag) by finding category, this process "
                                  "since it started.", labels=["model", "action", "category"])
        for (model, action, cat), n in sorted((g.counts if g else {}).items()):
            fam.add_metric([model, action, cat], n)
        yield fam


# ------------------------------------------------------------------------------- REST


class GuardrailSpec(Open):
    """``{"upstream": {"base_url", "api_key_env" | "api_key_file", "timeout"}, "block":
    [categories], "redact": [...], "flag": [...], "fallback", "version", "provider",
    "max_hold_chars"}`` (docs/guardrails.md)."""

    upstream: dict[str, Any]
    block: list[str] = Field(default_factory=list)
    redact: list[str] = Field(default_factory=list)
    flag: list[str] = Field(default_factory=list)


class GuardrailOut(Open):
    model: str
    guardrail: dict[str, Any]


class GuardrailFlushed(Open):
    model: str
    flushed: bool
    events: dict[str, Any] | None


class ChatRequest(Open):
    """An OpenAI chat completion request; ``stream: true`` answers Server-Sent Events."""

    model: str | None = None
    messages: list[dict[str, Any]] = Field(min_length=1)
    stream: bool = False


class ChatCompletion(Open):
    """The upstream's answer (``chat.completion``), or the fallback with
    ``finish_reason: content_filter``; ``aiwarden`` says what was blocked or redacted and
    why (categories only)."""

    id: str | None = None
    object: str
    created: int | None = None
    model: str | None = None
    choices: list[dict[str, Any]]
    usage: dict[str, Any] | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None
    aiwarden: dict[str, Any] | None = Field(None, description="what the guardrail did: "
                                            "action, categories per action, stage, "
                                            "request_id")


_CHAT_ANSWERS = answers(ChatCompletion, 404, 502)
_CHAT_ANSWERS[200]["content"] = {"text/event-stream": {"schema": {"type": "string"}}}


@router.get("/models/{name}/guardrail", dependencies=[requires("read")],
            responses=answers(GuardrailOut, 404))
def read_guardrail(request: Request, name: str) -> dict[str, Any]:
    mon = request.app.state.monitor
    m = mon.model(name)
    with mon.db.read() as conn:
        doc = get_policy(conn, m.id)
    if doc is None:
        raise repo.NotFound(f"Model {name!r} has no guardrail policy.", "guardrail")
    return {"model": name, "guardrail": doc}


@router.put("/models/{name}/guardrail", dependencies=[requires("admin")],
            responses=answers(GuardrailOut, 404), openapi_extra=body_doc(json=GuardrailSpec))
async def put_guardrail(request: Request, name: str) -> dict[str, Any]:
    """The model's guardrail policy (docs/guardrails.md); errors name the field."""
    doc = loads(await request.body())
    mon, g = request.app.state.monitor, guardrails_for(request.app)

    def store() -> dict[str, Any]:
        m = mon.model(name)
        with mon.db.write(m.id) as conn:
            out = set_policy(conn, m.id, doc, g.egress)
        g._policies.pop(name, None)
        return out

    return {"model": name, "guardrail": await run_in_threadpool(store)}


@router.post("/models/{name}/guardrail/flush", dependencies=[requires("ingest")],
             responses=answers(GuardrailFlushed))
def flush_guardrail(request: Request, name: str, timeout: float = 30.0) -> dict[str, Any]:
    """Wait until this process's queued guardrail events of the model were ingested."""
    g = guardrails_for(request.app)
    q = g._queues.get(name)
    return {"model": name, "flushed": g.flush(name, min(max(timeout, 0.1), 300)),
            "events": None if q is None else q.stats()}


def _oai_error(status: int, message: str, kind: str) -> JSONResponse:
    """The house error body, with OpenAI's ``error`` object beside it (what its clients
    read)."""
    return JSONResponse({"detail": {"error": kind, "message": message, "field": "upstream"},
                         "error": {"message": message, "type": kind, "code": kind}}, status)


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


def _info(verdict: Verdict, stage: str, rid: str) -> dict[str, Any]:
    return {**verdict.to_dict(), "stage": stage, "request_id": rid}


def _sse(doc: Any) -> bytes:
    return b"data: " + (doc if isinstance(doc, bytes) else orjson.dumps(doc)) + b"\n\n"


@router.post("/models/{name}/v1/chat/completions", dependencies=[requires("ingest")],
             responses=_CHAT_ANSWERS, openapi_extra=body_doc(json=ChatRequest))
async def chat_completions(request: Request, name: str) -> Any:
    """An OpenAI chat completion through the model's guardrail policy: point an OpenAI
    client's ``base_url`` at ``<server>/api/v1/models/{name}/v1``."""
    body = loads(await request.body())
    if not isinstance(body, dict):
        raise Malformed("Expected a chat completion request object.", "body")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Malformed("messages: expected a non-empty list of {role, content}.", "messages")
    g = guardrails_for(request.app)
    guard = g.cached(name) or await run_in_threadpool(g.guard, name)
    rid = request.headers.get("x-request-id") or f"gw-{uuid.uuid4().hex}"
    t0 = time.perf_counter()
    verdict, forward = guard.check_input(messages)
    stream = bool(body.get("stream"))
    if verdict.action == "block":  # never reaches the upstream
        info = _info(verdict, "input", rid)
        g.record(name, guard, rid, messages, guard.policy.fallback, verdict, "input",
                 (time.perf_counter() - t0) * 1000, None, body.get("model"))
        if stream:
            chunk = {"id": f"chatcmpl-aw-{rid}", "object": "chat.completion.chunk",
                     "created": int(time.time()), "model": body.get("model"),
                     "choices": [{"index": 0, "delta": {"role": "assistant",
                                                        "content": guard.policy.fallback},
                                  "finish_reason": "content_filter"}], "aiwarden": info}
            return StreamingResponse(iter([_sse(chunk), b"data: [DONE]\n\n"]),
                                     media_type="text/event-stream")
        return JSONResponse(_completion({"model": body.get("model")}, guard.policy.fallback,
                                        "content_filter", info))
    up = guard.policy.upstream
    headers = {"content-type": "application/json", "accept": "application/json"}
    key = up.api_key()
    if key:
        headers["authorization"] = f"Bearer {key}"
    req = g.client.build_request("POST", up.base_url + "/chat/completions",
                                 content=orjson.dumps({**body, "messages": forward}),
                                 headers=headers, timeout=up.timeout)
    try:
        resp = await run_in_threadpool(g.client.send, req, stream=True)
    except (httpx.HTTPError, EgressDenied) as exc:
        g.upstream_errors[name] += 1
        return _oai_error(502, f"The upstream {up.base_url} could not be reached: "
                          f"{type(exc).__name__}: {exc}", "upstream_unreachable")
    if resp.status_code != 200:  # the upstream's own error, as it said it
        data = await run_in_threadpool(resp.read)
        resp.close()
        g.upstream_errors[name] += 1
        return JSONResponse(orjson.loads(data) if data[:1] == b"{" else
                            {"error": {"message": data.decode(errors="replace")[:500],
                                       "type": "upstream_error"}}, resp.status_code)
    if stream:
        return StreamingResponse(_stream(g, name, guard, rid, messages, verdict, resp, t0,
                                         body.get("model")),
                                 media_type="text/event-stream")
    try:
        data = await run_in_threadpool(resp.read)
    finally:
        resp.close()
    return _answer(g, name, guard, rid, messages, verdict, data, t0, body.get("model"))


def _answer(g: _Guardrails, name: str, guard: Guard, rid: str, messages: list[Any],
            verdict: Verdict, data: bytes, t0: float, model: Any) -> Any:
    try:
        doc = orjson.loads(data)
        text = doc["choices"][0]["message"]["content"] or ""
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        return _oai_error(502, "The upstream's answer is not a chat completion.",
                          "upstream_malformed")
    out = guard.check_output(text)
    verdict.merge(out)
    g.record(name, guard, rid, messages, text, verdict, "output",
             (time.perf_counter() - t0) * 1000, doc.get("usage"), model or doc.get("model"))
    if verdict.action == "block":
        return JSONResponse(_completion(doc, guard.policy.fallback, "content_filter",
                                        _info(verdict, "output", rid)))
    if out.text is not None or verdict.action == "redact":
        fixed = dict(doc, aiwarden=_info(verdict, "output", rid))
        if out.text is not None:
            choice = dict(doc["choices"][0], message=dict(doc["choices"][0]["message"],
                                                          content=out.text))
            fixed["choices"] = [choice, *doc["choices"][1:]]
        return JSONResponse(fixed)
    headers = {"x-aiwarden-guardrail": verdict.action or "pass", "x-aiwarden-request-id": rid}
    return JSONResponse(doc, headers=headers) if verdict.action else \
        _raw(data, headers)


def _raw(data: bytes, headers: dict[str, str]) -> Any:
    from fastapi import Response

    return Response(data, media_type="application/json", headers=headers)


def _stream(g: _Guardrails, name: str, guard: Guard, rid: str, messages: list[Any],
            verdict: Verdict, resp: httpx.Response, t0: float, model: Any) -> Iterator[bytes]:
    """Relay the upstream's SSE chunks with their text checked and held back to sentence
    boundaries; on a block: one last chunk with the fallback, ``content_filter``, [DONE]."""
    sg = StreamGuard(guard)
    env: dict[str, Any] = {}
    finish: dict[str, Any] | None = None
    broke: list[str] = []

    def lines() -> Iterator[str]:
        try:
            yield from resp.iter_lines()
        except httpx.HTTPError as exc:  # timed out or cut mid-stream
            broke.append(f"{type(exc).__name__}: {exc}")

    try:
        for line in lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            try:
                chunk = orjson.loads(data)
                choice = chunk["choices"][0]
            except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
                continue  # not a chunk we understand: nothing of it is passed on unchecked
            env = {k: chunk.get(k) for k in ("id", "object", "created", "model")}
            delta = choice.get("delta") or {}
            text = delta.get("content") or ""
            if choice.get("finish_reason"):
                finish = chunk
            released = sg.feed(text) if text else ""
            if released is None:
                break
            rest = {k: v for k, v in delta.items() if k != "content"}
            if released or rest:
                out = dict(chunk, choices=[dict(choice, finish_reason=None,
                                                delta={**rest, **({"content": released}
                                                                  if released else {})})])
                yield _sse(out)
            if finish is not None:
                break
        if broke:  # what is held back was never checked whole: it is not sent
            g.upstream_errors[name] += 1
            yield _sse({"error": {"message": f"The upstream's stream broke off ({broke[0]}); "
                                  "the text not yet checked was not sent.",
                                  "type": "upstream_error", "code": "upstream_stream_broken"}})
            yield b"data: [DONE]\n\n"
            return
        tail = sg.finish()
        if sg.blocked or tail is None:
            verdict.merge(sg.verdict)
            last = {**env, "choices": [{"index": 0, "delta": {
                "content": guard.policy.fallback}, "finish_reason": "content_filter"}],
                "aiwarden": _info(verdict, "output", rid)}
            yield _sse(last)
        else:
            verdict.merge(sg.verdict)
            if tail:
                yield _sse({**env, "choices": [{"index": 0, "delta": {"content": tail},
                                                "finish_reason": None}]})
            end = finish or {**env, "choices": [{"index": 0, "delta": {},
                                                 "finish_reason": "stop"}]}
            if verdict.action:
                end = dict(end, aiwarden=_info(verdict, "output", rid))
            yield _sse(end)
        yield b"data: [DONE]\n\n"
    finally:
        resp.close()
        g.record(name, guard, rid, messages, sg.text, verdict, "output",
                 (time.perf_counter() - t0) * 1000, None, model or env.get("model"))
