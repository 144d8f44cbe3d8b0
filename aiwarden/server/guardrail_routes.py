"""Guardrails in the gateway (docs/guardrails.md): an OpenAI-compatible
``POST /api/v1/models/{name}/v1/chat/completions`` that forwards to the model's configured
upstream through the server's egress policy, checks the prompt before and the answer after
(streamed answers as they flow), and blocks, redacts or flags per the model's policy.

The proxy itself (checks, upstream call, streaming, events, counters) is
:mod:`aiwarden.gateway.guardrail_proxy`, shared with the standalone ``aiwarden serve``: here
are the policy's storage and REST, and the route that hands requests to it. Every call is
logged as an LLM event of the model (tags ``guardrail_action``: ``pass``, ``flag``,
``redact`` or ``block``; ``guardrail_categories``; the caller's own tags and version from
the ``x-aiwarden-tags`` and ``x-aiwarden-version`` headers) through a non-blocking event
queue, and every intervention counts in ``aiwarden_guardrail_actions_total{model, action,
category}`` (this process's count since it started, as Prometheus counters are).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from prometheus_client.core import Metric
from pydantic import Field

from aiwarden.egress import EgressDenied, EgressPolicy
from aiwarden.errors import DataError, ParameterError
from aiwarden.gateway.guardrail_policy import GuardrailPolicy, file_refused
from aiwarden.gateway.guardrail_proxy import (
    PASSED_STATUSES,
    GuardrailCounters,
    GuardrailProxy,
    caller_meta,
)
from aiwarden.monitoring.llm_ingest import ingest_llm_events
from aiwarden.server.access import requires
from aiwarden.server.api_models import Open, answers, body_doc
from aiwarden.server.errors import Malformed
from aiwarden.server.jsonbody import loads
from aiwarden.server.spec_models import GuardrailSpec
from aiwarden.store import kv
from aiwarden.store import models_repo as repo

__all__ = ["GuardrailCollector", "apply_policies", "check_policies", "close_guardrails",
           "get_policy", "guardrails_for", "router", "set_policy"]

router = APIRouter(tags=["guardrails"])
_KEY = "guardrail."  # + model id
_LOCK = threading.Lock()


def get_policy(conn: Any, model_id: int) -> dict[str, Any] | None:
    return kv.get(conn, f"{_KEY}{model_id}")


def set_policy(conn: Any, model_id: int, doc: Any, egress: EgressPolicy,
               secrets_dir: str | Path | None = None) -> dict[str, Any]:
    """Check ``doc`` (fields named), its upstream against the egress policy and its key file
    against the secrets folder, then store it."""
    out = _checked(doc, egress, "guardrail", secrets_dir)
    kv.put(conn, f"{_KEY}{model_id}", out)
    return out


def _checked(doc: Any, egress: EgressPolicy, where: str,
             secrets_dir: str | Path | None) -> dict[str, Any]:
    policy = GuardrailPolicy.from_dict(doc, where)
    key_file = policy.upstream.api_key_file
    why = key_file and file_refused(key_file, secrets_dir)
    if why:
        raise ParameterError(f"{where}.upstream.api_key_file: {why}",
                             f"{where}.upstream.api_key_file")
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
    g, mon = guardrails_for(app), app.state.monitor
    out = {}
    for name, spec in doc.items():
        where = f"guardrails.{name}"
        policy = _checked(spec, g.egress, where, g.secrets_dir)
        try:  # a file's content names the model: 422 as pipelines, not the path's 404
            if "\0" in str(name):  # no stored name holds one (PostgreSQL cannot compare it)
                raise repo.NotFound(str(name))
            model_id = mon.model(str(name)).id
        except repo.NotFound:
            raise ParameterError(f"{where}: no model {str(name)!r}; register it first.",
                                 where) from None
        out[(str(name), model_id)] = policy
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


def _reader(monitor: Any) -> Any:
    def read(name: str) -> dict[str, Any] | None:
        m = monitor.model(name)
        with monitor.db.read() as conn:
            return get_policy(conn, m.id)

    return read


def guardrails_for(app: Any) -> GuardrailProxy:
    """This process's guardrail proxy (aiwarden.gateway.guardrail_proxy): policies from the
    database, events into the ``Monitor``, the upstream through the egress policy."""
    g = getattr(app.state, "guardrails", None)
    if g is None:
        with _LOCK:
            g = getattr(app.state, "guardrails", None)
            if g is None:
                mon = app.state.monitor

                def sink(name: str) -> Any:
                    return lambda batch: ingest_llm_events(mon, name, batch)

                def gauges(name: str) -> Any:
                    return lambda samples: mon.log_resources(name, samples)

                settings = app.state.settings
                g = app.state.guardrails = GuardrailProxy(
                    _reader(mon), sink, gauges, EgressPolicy(settings.egress_allow),
                    secrets_dir=settings.secrets_folder,
                    max_upstream=settings.guardrail_max_upstream)
    return g


def close_guardrails(app: Any, timeout: float = 10.0) -> None:
    g = getattr(app.state, "guardrails", None)
    if g is not None:
        g.close(timeout)


class GuardrailCollector:
    """``aiwarden_guardrail_actions_total{model, action, category}`` and
    ``aiwarden_guardrail_upstream_errors_total{model}`` of this process."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        g = getattr(self.app.state, "guardrails", None)
        yield from (g.counters if g is not None else GuardrailCounters()).collect()


# ------------------------------------------------------------------------------- REST


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


# the upstream's own 4xx pass through (PASSED_STATUSES); every other upstream failure is a 502
_CHAT_ANSWERS = answers(ChatCompletion, *PASSED_STATUSES, 502)
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
            out = set_policy(conn, m.id, doc, g.egress, g.secrets_dir)
        g.forget(name)
        return out

    return {"model": name, "guardrail": await run_in_threadpool(store)}


@router.post("/models/{name}/guardrail/flush", dependencies=[requires("ingest")],
             responses=answers(GuardrailFlushed))
def flush_guardrail(request: Request, name: str, timeout: float = 30.0) -> dict[str, Any]:
    """Wait until this process's queued guardrail events of the model were ingested."""
    g = guardrails_for(request.app)
    flushed = g.flush(name, min(max(timeout, 0.1), 300))
    return {"model": name, "flushed": flushed, "events": g.queue_stats(name)}


@router.post("/models/{name}/v1/chat/completions", dependencies=[requires("ingest")],
             responses=_CHAT_ANSWERS, openapi_extra=body_doc(json=ChatRequest))
async def chat_completions(request: Request, name: str) -> Any:
    """An OpenAI chat completion through the model's guardrail policy: point an OpenAI
    client's ``base_url`` at ``<server>/api/v1/models/{name}/v1``."""
    body = loads(await request.body())
    h = request.headers
    try:
        caller = caller_meta(h.get("x-aiwarden-tags"), h.get("x-aiwarden-version"))
        return await guardrails_for(request.app).chat(name, body, h.get("x-request-id"),
                                                      caller)
    except DataError as exc:
        raise Malformed(str(exc), exc.field) from None
