"""``aiwarden serve NAME``: one model in its own process, talking to a server by URL.

The process loads the version behind the alias through the server's registry API,
answers ``POST /predict`` (also at ``/api/v1/models/NAME/predict``, the server's path),
polls the server for alias and policy changes, logs events through the same bounded
queue (to the server's ingest API) and posts its resource samples. It has no API keys
of its own: put it behind the network boundary that guards the model, like any model
server. A model that answers within a millisecond predicts on the event loop (a thread
hop would cost about as much as the prediction); a slower one on the gateway's own
thread (:meth:`Gateway.predict_async`), so the health check and counters stay responsive.

A ``text_generation`` model is served as its guardrail instead (:func:`create_guardrail_app`):
the server's OpenAI-compatible chat completions route, by the same code
(:mod:`aiwarden.gateway.guardrail_proxy`), its policy read from the server, its events
posted to the server's ``llm-events`` API through the bounded queue, the upstream reached
through this process's egress policy (``AIWARDEN_EGRESS_ALLOW``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aiwarden._json import non_finite
from aiwarden.egress import EgressPolicy
from aiwarden.errors import AiwardenError
from aiwarden.gateway._errors import InvalidRequestError, PredictionError
from aiwarden.gateway.gateway import Gateway
from aiwarden.gateway.guardrail_proxy import GuardrailProxy, caller_meta
from aiwarden.gateway.hub import GatewayHub
from aiwarden.gateway.sources import RemoteSource, client_sink
from aiwarden.registry import ArtifactIntegrityError
from aiwarden.store import models_repo as repo

__all__ = ["create_guardrail_app", "create_serving_app", "remote_guardrails", "remote_hub"]

log = logging.getLogger("aiwarden.gateway")
_JSON = "application/json"


def remote_hub(url: str, api_key: str | None = None, *, resources_every: float = 15.0,
               prices: Any = None, **options: Any) -> GatewayHub:
    """Gateways that read a server's registry and log to it over HTTP (one client per
    role, so a slow ingest never holds up the poll)."""
    from aiwarden.sdk import Client

    def source(name: str) -> RemoteSource:
        return RemoteSource(Client(url, api_key, timeout=10), name)

    def sink(name: str) -> Any:
        return client_sink(Client(url, api_key, timeout=30), name)

    usage = Client(url, api_key, timeout=10)
    return GatewayHub(source, sink, post_usage=usage.log_resources,
                      resources_every=resources_every, prices=prices, **options)


def _answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), status,
                    headers=headers, media_type=_JSON)


def _problem(status: int, kind: str, message: str, field: str | None = None,
             **extra: Any) -> Response:
    return _answer({"detail": {"error": kind, "message": message, "field": field, **extra}},
                   status)


class _Collector(Collector):
    """The gateway's own counters for ``/metrics`` (model metrics live on the server)."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    def collect(self) -> Iterator[Metric]:
        s = self.gw.stats()
        labels = ["model", "alias"]
        base = [s["model"], s["alias"]]
        served = CounterMetricFamily("aiwarden_gateway_predictions", "Rows predicted, by "
                                     "version (shadow copies included).",
                                     labels=[*labels, "version"])
        failed = CounterMetricFamily("aiwarden_gateway_prediction_errors", "Rows whose "
                                     "model raised, by version.", labels=[*labels, "version"])
        for version, v in s["by_version"].items():
            served.add_metric([*base, version], v["requests"])
            failed.add_metric([*base, version], v["errors"])
        events = CounterMetricFamily("aiwarden_gateway_events", "Prediction events by "
                                     "fate: accepted, sent, dropped, failed.",
                                     labels=[*labels, "fate"])
        for fate in ("accepted", "sent", "dropped", "failed"):
            events.add_metric([*base, fate], s["events"][fate])
        shadow = CounterMetricFamily("aiwarden_gateway_shadow_copies", "Shadow copies by "
                                     "fate: ran, dropped, errors.", labels=[*labels, "fate"])
        for fate in ("ran", "dropped", "errors"):
            shadow.add_metric([*base, fate], s["shadow_queue"][fate])
        queued = GaugeMetricFamily("aiwarden_gateway_events_queued", "Events waiting to be "
                                   "logged.", labels=labels)
        queued.add_metric(base, s["events"]["queued"])
        reloads = CounterMetricFamily("aiwarden_gateway_reloads", "Snapshots loaded.",
                                      labels=labels)
        reloads.add_metric(base, s["reloads"])
        yield from (served, failed, events, shadow, queued, reloads)


def create_serving_app(hub: GatewayHub, name: str, alias: str = "champion") -> Starlette:
    """The serving process's HTTP face; the gateway must be loadable already."""
    gw = hub.get(name, alias)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(gw))

    async def predict(request: Request) -> Response:
        if request.path_params.get("name", name) != name:
            return _problem(404, "not_found", f"This process serves {name!r}, not "
                            f"{request.path_params['name']!r}.", "name")
        try:
            doc = orjson.loads(await request.body())
            out = await gw.predict_async(doc)
        except orjson.JSONDecodeError as exc:
            found = non_finite(await request.body())  # a NaN/Infinity: name its field
            if found:
                return _problem(422, "malformed", found[1], found[0])
            return _problem(422, "malformed", f"body: malformed JSON: {exc.msg}.", "body")
        except InvalidRequestError as exc:
            return _problem(422, "malformed", str(exc), exc.field)
        except PredictionError as exc:
            return _problem(exc.status, exc.kind, str(exc), exc.field, version=exc.version)
        headers = {"X-Aiwarden-Events-Dropped": str(gw.events.stats()["dropped"])}
        if isinstance(out, dict):
            headers["X-Aiwarden-Version"] = out["version"]
            return _answer(out, headers=headers)
        return _answer({"predictions": out}, headers=headers)

    async def healthz(_: Request) -> Response:
        return _answer({"status": "ok", "model": name, "version": gw.version})

    async def stats(_: Request) -> Response:
        return _answer(gw.stats())

    def reload(_: Request) -> Response:
        try:
            reloaded = hub.reload(name)
        except ArtifactIntegrityError as exc:  # the server's status for it (docs/registry.md)
            return _problem(409, "artifact_integrity", str(exc), exc.field)
        return _answer({"model": name, "reloaded": reloaded, "version": gw.version})

    def flush(_: Request) -> Response:
        return _answer({"model": name, "flushed": gw.flush(), **gw.stats()})

    def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        hub.close()  # before the process exits: run shadow copies, send queued events

    return Starlette(lifespan=lifespan, routes=[
        Route("/predict", predict, methods=["POST"]),
        Route("/api/v1/models/{name}/predict", predict, methods=["POST"]),
        Route("/healthz", healthz), Route("/readyz", healthz),
        Route("/gateway", stats), Route("/gateway/reload", reload, methods=["POST"]),
        Route("/gateway/flush", flush, methods=["POST"]), Route("/metrics", metrics),
    ])


# ------------------------------------------------------------------------------ guardrails


def remote_guardrails(url: str, api_key: str | None = None, *,
                      egress: EgressPolicy | None = None, policy_ttl: float = 1.0,
                      max_queue: int = 10_000) -> GuardrailProxy:
    """A guardrail proxy that reads policies from a server and posts events to it (one
    client per role, so a slow ingest never holds up a policy read)."""
    from aiwarden.sdk import Client
    from aiwarden.sdk.client import ApiError

    reader = Client(url, api_key, timeout=10)

    def read_policy(name: str) -> dict[str, Any] | None:
        try:
            return reader._json("GET", reader._path(name, "guardrail"))["guardrail"]
        except ApiError as exc:
            if exc.status == 404:
                raise repo.NotFound(exc.message, exc.field or "guardrail") from None
            raise

    def sink(name: str) -> Any:
        client = Client(url, api_key, timeout=30)
        return lambda batch: client.log_llm(name, batch)

    def gauges(name: str) -> Any:
        client = Client(url, api_key, timeout=30)
        return lambda samples: client.log_resources(name, samples)

    return GuardrailProxy(read_policy, sink, gauges,
                          EgressPolicy.from_env() if egress is None else egress,
                          policy_ttl=policy_ttl, max_queue=max_queue,
                          secrets_dir=os.environ.get("AIWARDEN_SECRETS_DIR") or None)


def _domain_problem(exc: AiwardenError) -> Response:
    status = 404 if isinstance(exc, repo.NotFound) else 422
    kind = "not_found" if status == 404 else "malformed"
    return _problem(status, kind, str(exc), exc.field)


def create_guardrail_app(proxy: GuardrailProxy, name: str) -> Starlette:
    """The serving process of a text_generation model: its guardrail's chat completions at
    ``/v1/chat/completions`` (and the server's path), health, stats, flush and metrics.
    The policy is read once here, so a model without one fails at start, not at the first
    request."""
    proxy.guard(name)  # NotFound: no policy (or no such model)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(proxy.counters)

    async def chat(request: Request) -> Response:
        if request.path_params.get("name", name) != name:
            return _problem(404, "not_found", f"This process serves {name!r}, not "
                            f"{request.path_params['name']!r}.", "name")
        raw = await request.body()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            found = non_finite(raw)
            if found:
                return _problem(422, "malformed", found[1], found[0])
            return _problem(422, "malformed", f"body: malformed JSON: {exc.msg}.", "body")
        h = request.headers
        try:
            caller = caller_meta(h.get("x-aiwarden-tags"), h.get("x-aiwarden-version"))
            return await proxy.chat(name, body, h.get("x-request-id"), caller)
        except AiwardenError as exc:
            return _domain_problem(exc)

    def stats() -> dict[str, Any]:
        actions, upstream = proxy.counters.snapshot()
        counts = {f"{a}:{c}": n for (m, a, c), n in actions.items() if m == name}
        return {"model": name, "kind": "guardrail", "events": proxy.queue_stats(name),
                "interventions": counts, "upstream_errors": upstream.get(name, 0)}

    async def healthz(_: Request) -> Response:
        return _answer({"status": "ok", "model": name, "kind": "guardrail"})

    async def gateway(_: Request) -> Response:
        return _answer(stats())

    def flush(_: Request) -> Response:
        flushed = proxy.flush(name)
        return _answer({**stats(), "flushed": flushed})

    def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        proxy.close()  # before the process exits: send the queued events

    return Starlette(lifespan=lifespan, routes=[
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/api/v1/models/{name}/v1/chat/completions", chat, methods=["POST"]),
        Route("/healthz", healthz), Route("/readyz", healthz), Route("/gateway", gateway),
        Route("/gateway/flush", flush, methods=["POST"]), Route("/metrics", metrics),
    ])
