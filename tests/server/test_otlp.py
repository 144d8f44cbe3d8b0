"""OTLP/HTTP traces into a real server on SQLite and PostgreSQL: the real opentelemetry-sdk
span exporter (protobuf) exporting GenAI spans, OTLP JSON with gzip, a mixed batch answered
with partial success, malformed bodies refused with 400 naming the field."""

from __future__ import annotations

import gzip
import time

import httpx
import orjson
import pytest

from tests.llm.test_otlp import GENAI as _GENAI
from tests.llm.test_otlp import as_json, span
from tests.server.test_llm_events import _events

GENAI = _GENAI | {"aiwarden.version": "v1"}

pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")


@pytest.fixture(scope="module")
def root(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def bot(root) -> str:
    api = "/api/v1"
    root.post(f"{api}/models", json={"name": "otbot", "task": "text_generation",
                                     "segments": ["locale"]}).raise_for_status()
    ref = [dict(e, tags={"locale": "fr" if i % 2 else "en"})
           for i, e in enumerate(_events(300, "ref-", version=None))]
    r = root.put(f"{api}/models/otbot/versions/v1/llm-reference", json=ref)
    assert r.status_code == 201, r.text
    return "otbot"


def _event(root, model: str, rid: str) -> dict:
    r = root.get(f"/api/v1/models/{model}/llm-events/{rid}")
    assert r.status_code == 200, r.text
    return r.json()


def test_real_sdk_exporter_spans_arrive_as_llm_events(server, root, bot) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    captured = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": bot,
                                                        "aiwarden.tag.locale": "fr"}))
    provider.add_span_processor(SimpleSpanProcessor(captured))
    tracer = provider.get_tracer("test")
    ids = []
    with tracer.start_as_current_span("POST /chat"):  # an HTTP server span: skipped
        for i in range(3):
            with tracer.start_as_current_span("chat gpt-4o") as s:
                s.set_attributes({
                    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 10 + i,
                    "gen_ai.usage.output_tokens": 20 + i, "gen_ai.conversation.id": "c1",
                    "gen_ai.input.messages": orjson.dumps([{"role": "user", "parts": [
                        {"type": "text", "content": f"where is order {i}?"}]}]).decode(),
                    "gen_ai.output.messages": orjson.dumps([{"role": "assistant", "parts": [
                        {"type": "text", "content": "It ships tomorrow."}]}]).decode()})
                time.sleep(0.02)
                ids.append(format(s.get_span_context().span_id, "016x"))
    exporter = OTLPSpanExporter(endpoint=f"{server.url}/v1/traces", timeout=30)
    try:
        assert exporter.export(captured.get_finished_spans()) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    spans = {format(s.context.span_id, "016x"): s for s in captured.get_finished_spans()}
    for i, rid in enumerate(ids):
        ev = _event(root, bot, rid)
        d = ev["detail"]
        assert (d["tokens_in"], d["tokens_out"], d["provider"], d["model"]) == (
            10 + i, 20 + i, "openai", "gpt-4o")
        s = spans[rid]
        assert d["latency_ms"] == pytest.approx((s.end_time - s.start_time) / 1e6)
        assert d["latency_ms"] >= 20
        assert ev["timestamp"] == pytest.approx(s.end_time / 1e9)
        assert ev["input"] == [{"role": "user", "content": f"where is order {i}?"}]
        assert ev["output"] == "It ships tomorrow."
        # no aiwarden.version: the serving version (v1) takes the event and its descriptor row
        assert (ev["session_id"], ev["tags"], ev["version"]) == ("c1", {"locale": "fr"}, "v1")
    listed = root.get(f"/api/v1/models/{bot}/llm-events", params={"session_id": "c1"}).json()
    assert len(listed["events"]) == 3  # the HTTP span made no event
    m = root.get(f"/api/v1/models/{bot}/metrics", params={"metric": "llm", "start": "-1h"})
    point = m.json()["points"][0]  # the descriptor rows went through the tabular ingest
    assert (point["rows"], point["value"]["tokens_out_mean"]) == (3, pytest.approx(21.0))


def test_json_gzip_and_a_mixed_batch_answers_partial_success(root, bot) -> None:
    bad = GENAI | {"gen_ai.usage.output_tokens": -3}
    body = as_json([span("0000000000000a01", GENAI), span("0000000000000a02", bad),
                    span("0000000000000a03", {"http.route": "/x"})], {"service.name": bot})
    r = root.post("/v1/traces", content=gzip.compress(body),
                  headers={"content-type": "application/json", "content-encoding": "gzip"})
    assert r.status_code == 200, r.text
    part = r.json()["partialSuccess"]
    assert part["rejectedSpans"] == "1"
    assert ("resourceSpans[0].scopeSpans[0].spans[1].attributes[gen_ai.usage.output_tokens]: "
            "expected int >= 0, got -3") in part["errorMessage"]
    assert "1 spans are not LLM calls" in part["errorMessage"]
    ev = _event(root, bot, "0000000000000a01")
    assert (ev["version"], ev["detail"]["tokens_in"], ev["output"]) == (
        "v1", 12, "It ships tomorrow.")
    assert root.get(f"/api/v1/models/{bot}/llm-events/0000000000000a02").status_code == 404
    again = root.post("/v1/traces", content=as_json([span("0000000000000a01", GENAI)],
                                                     {"service.name": bot}),
                      headers={"content-type": "application/json"})
    assert again.status_code == 200 and again.json() == {}  # a retried export: no error


def test_malformed_bodies_are_400_naming_the_field(root, bot) -> None:
    js = {"content-type": "application/json"}
    cases = [
        (b"{nope", js, "body"),
        (b'{"resourceSpans": {}}', js, "resourceSpans"),
        (as_json([span("0000000000000b01", GENAI | {"gen_ai.usage.input_tokens": "x"})],
                 {"service.name": bot}), js,
         "resourceSpans[0].scopeSpans[0].spans[0].attributes[gen_ai.usage.input_tokens]"),
        (b"\xff\xfe garbage", {"content-type": "application/x-protobuf"}, "body"),
        (b"not gzip", js | {"content-encoding": "gzip"}, "content-encoding"),
        (as_json([span("0000000000000b02", GENAI)], {"service.name": "no-such-model"}), js,
         "resourceSpans[0].scopeSpans[0].spans[0]"),
    ]
    for body, headers, field in cases:
        r = root.post("/v1/traces", content=body, headers=headers)
        assert r.status_code == 400, (field, r.text)
        assert r.json()["detail"]["field"] == field, r.text
    for media in ("application/json", "application/x-protobuf"):  # empty: a success (OTLP)
        r = root.post("/v1/traces", content=b"", headers={"content-type": media})
        assert r.status_code == 200 and r.headers["content-type"].startswith(media), r.text
    r = root.post("/v1/traces", content=b"x", headers={"content-type": "text/plain"})
    assert r.status_code == 415 and r.json()["detail"]["field"] == "content-type"
    r = root.post("/v1/traces", content=as_json([span("0000000000000b03", GENAI)]),
                  headers=js | {"origin": "https://evil.example"})
    assert r.status_code == 403  # a foreign page may not post spans; exporters send no Origin


def _export(url: str, build, headers: dict | None = None, **kw):
    """Spans made by the real SDK in ``build(tracer)``, sent by the real OTLP/HTTP
    exporter; (export result, finished spans)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    captured = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "otbot"}))
    provider.add_span_processor(SimpleSpanProcessor(captured))
    build(provider.get_tracer("test"))
    exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", headers=headers, timeout=30,
                                **kw)
    try:
        return exporter.export(captured.get_finished_spans()), captured.get_finished_spans()
    finally:
        exporter.shutdown()


def test_openinference_spans_from_the_sdk_carry_retrieved_context(server, root, bot) -> None:
    from opentelemetry.sdk.trace.export import SpanExportResult

    def build(tracer) -> None:
        with tracer.start_as_current_span("rag", attributes={
                "openinference.span.kind": "CHAIN"}):
            with tracer.start_as_current_span("retrieve", attributes={
                    "openinference.span.kind": "RETRIEVER",
                    "retrieval.documents.0.document.content": "Refunds take five days.",
                    "retrieval.documents.1.document.content": "Shipping is free."}):
                pass
            with tracer.start_as_current_span("llm", attributes={
                    "openinference.span.kind": "LLM", "llm.model_name": "claude-3-5-haiku",
                    "llm.provider": "anthropic", "llm.token_count.prompt": 31,
                    "llm.token_count.completion": 6, "session.id": "oi-1",
                    "aiwarden.version": "v1",
                    "llm.input_messages.0.message.role": "user",
                    "llm.input_messages.0.message.content": "How long do refunds take?",
                    "llm.output_messages.0.message.role": "assistant",
                    "llm.output_messages.0.message.content": "Refunds take five days."}):
                pass

    from opentelemetry.exporter.otlp.proto.http import Compression

    result, spans = _export(server.url, build, compression=Compression.Gzip)
    assert result == SpanExportResult.SUCCESS
    llm = next(s for s in spans if s.name == "llm")
    ev = _event(root, bot, format(llm.context.span_id, "016x"))
    assert ev["context"] == ["Refunds take five days.", "Shipping is free."]
    assert (ev["detail"]["tokens_in"], ev["detail"]["provider"]) == (31, "anthropic")
    assert ev["input"] == [{"role": "user", "content": "How long do refunds take?"}]
    assert (ev["output"], ev["session_id"]) == ("Refunds take five days.", "oi-1")


@pytest.fixture(scope="module")
def keyed(db_url, tmp_path_factory):
    """A second server on its own database, with an ingest key and a read key."""
    from aiwarden.store import keys
    from aiwarden.store.database import Database
    from tests.server.live import ThreadServer, database_url, settings_for

    tmp = tmp_path_factory.mktemp("otlp-keyed")
    with database_url("postgresql" if db_url.startswith("postgresql") else "sqlite",
                      tmp) as url:
        db = Database(url)
        db.migrate()
        with db.write() as conn:
            admin = keys.create_key(conn, "otlp-admin", ["admin"])[0]
            ingest = keys.create_key(conn, "otlp-ingest", ["ingest"])[0]
            reader = keys.create_key(conn, "otlp-reader", ["read"])[0]
        db.dispose()
        with ThreadServer(settings_for(url, tmp)) as srv:
            with httpx.Client(base_url=srv.url + "/api/v1", timeout=60,
                              headers={"Authorization": f"Bearer {admin}"}) as c:
                c.post("/models", json={"name": "otbot", "task": "text_generation"}
                       ).raise_for_status()
                c.put("/models/otbot/versions/v1/llm-reference",
                      json=_events(100, "k", version=None)).raise_for_status()
            yield srv, admin, ingest, reader


def test_the_exporter_authenticates_with_its_headers(keyed) -> None:
    from opentelemetry.sdk.trace.export import SpanExportResult

    srv, admin, ingest, reader = keyed

    def build(tracer) -> None:
        with tracer.start_as_current_span("chat", attributes=GENAI):
            pass

    assert _export(srv.url, build)[0] == SpanExportResult.FAILURE  # no key: 401
    r = httpx.post(f"{srv.url}/v1/traces", content=as_json([span("0000000000000d01", GENAI)]),
                   headers={"content-type": "application/json",
                            "authorization": f"Bearer {reader}"})
    assert r.status_code == 403  # a read key may not ingest
    result, spans = _export(srv.url, build, {"Authorization": f"Bearer {ingest}"})
    assert result == SpanExportResult.SUCCESS
    rid = format(spans[0].context.span_id, "016x")
    got = httpx.get(f"{srv.url}/api/v1/models/otbot/llm-events/{rid}",
                    headers={"Authorization": f"Bearer {admin}"})
    assert got.status_code == 200 and got.json()["output"] == "It ships tomorrow."


def test_exports_take_an_ingest_slot_and_get_429_beyond_it(db_url, tmp_path) -> None:
    import socket

    from tests.server.live import ThreadServer, settings_for

    settings = settings_for(db_url, tmp_path, ingest_max_inflight=1, ingest_max_queue=0,
                            ingest_max_wait_ms=0.0)
    with ThreadServer(settings) as srv:
        body = as_json([span("0000000000000e01", GENAI)], {"service.name": "nobody"})
        sock = socket.create_connection(("127.0.0.1", settings.port), timeout=30)
        sock.sendall((f"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                      f"application/json\r\nContent-Length: {len(body)}\r\nConnection: close"
                      "\r\n\r\n").encode() + body[:1])  # admitted, waiting for its body
        with sock:
            admission = srv.server.config.app.state.admission
            deadline = time.monotonic() + 30
            while admission.stats()["inflight"] < 1:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            r = httpx.post(f"{srv.url}/v1/traces", content=body,
                           headers={"content-type": "application/json"})
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
            sock.sendall(body[1:])
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 400")  # ran once admitted: model 'nobody' unknown
