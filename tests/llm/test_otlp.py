"""OTLP trace exports → LLM events: both encodings (hand-built, no exporter), GenAI and
OpenInference attributes, partial rejection with field paths, gzip."""

from __future__ import annotations

import gzip
import time
from typing import Any

import orjson
import pytest

from aiwarden.llm import otlp
from aiwarden.llm.events import parse_events

# ns, a whole minute an hour ago: spans a server stores must be inside its retention (30 d);
# a fixed date aged out of it a year later and the maintenance pass deleted them mid-test
T0 = (int(time.time()) // 60 * 60 - 3600) * 1_000_000_000
TRACE = "0af7651916cd43dd8448eb211c80319c"


def _any_json(v: Any) -> dict:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}  # int64 as a string, as OTLP JSON says
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, list):
        return {"arrayValue": {"values": [_any_json(x) for x in v]}}
    if isinstance(v, dict):
        return {"kvlistValue": {"values": _kv_json(v)}}
    return {"stringValue": v}


def _kv_json(d: dict) -> list[dict]:
    return [{"key": k, "value": _any_json(v)} for k, v in d.items()]


def span(span_id: str, attrs: dict, *, start: int = T0, ms: float = 250.0,
         events: list[tuple[str, dict]] = (), trace: str = TRACE) -> dict:
    return {"trace_id": trace, "span_id": span_id, "start": start,
            "end": start + int(ms * 1e6), "attrs": attrs, "events": list(events)}


def as_json(spans: list[dict], resource: dict | None = None) -> bytes:
    return orjson.dumps({"resourceSpans": [{
        "resource": {"attributes": _kv_json(resource or {"service.name": "bot"})},
        "scopeSpans": [{"scope": {"name": "t"}, "spans": [{
            "traceId": s["trace_id"], "spanId": s["span_id"], "name": "chat",
            "kind": 3, "startTimeUnixNano": str(s["start"]), "endTimeUnixNano": str(s["end"]),
            "attributes": _kv_json(s["attrs"]),
            "events": [{"name": n, "timeUnixNano": str(s["start"]), "attributes": _kv_json(a)}
                       for n, a in s["events"]]} for s in spans]}]}]})


def as_protobuf(spans: list[dict], resource: dict | None = None) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    def anyv(v: Any) -> AnyValue:
        if isinstance(v, bool):
            return AnyValue(bool_value=v)
        if isinstance(v, int):
            return AnyValue(int_value=v)
        if isinstance(v, float):
            return AnyValue(double_value=v)
        if isinstance(v, list):
            out = AnyValue()
            out.array_value.values.extend(anyv(x) for x in v)
            return out
        if isinstance(v, dict):
            out = AnyValue()
            out.kvlist_value.values.extend(kvs(v))
            return out
        return AnyValue(string_value=v)

    def kvs(d: dict) -> list[KeyValue]:
        return [KeyValue(key=k, value=anyv(v)) for k, v in d.items()]

    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(kvs(resource or {"service.name": "bot"}))
    ss = rs.scope_spans.add()
    for s in spans:
        p = ss.spans.add(trace_id=bytes.fromhex(s["trace_id"]), span_id=bytes.fromhex(
            s["span_id"]), name="chat", start_time_unix_nano=s["start"],
            end_time_unix_nano=s["end"])
        p.attributes.extend(kvs(s["attrs"]))
        for n, a in s["events"]:
            e = p.events.add(name=n, time_unix_nano=s["start"])
            e.attributes.extend(kvs(a))
    return req.SerializeToString()


ENCODINGS = {"json": (as_json, otlp.JSON), "protobuf": (as_protobuf, otlp.PROTOBUF)}

GENAI = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
         "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-08-06",
         "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 30,
         "gen_ai.response.finish_reasons": ["stop"], "gen_ai.conversation.id": "conv-1",
         "gen_ai.input.messages": orjson.dumps([
             {"role": "system", "parts": [{"type": "text", "content": "Be kind."}]},
             {"role": "user", "parts": [{"type": "text", "content": "Where is my order?"}]},
         ]).decode(),
         "gen_ai.output.messages": orjson.dumps([
             {"role": "assistant", "finish_reason": "stop",
              "parts": [{"type": "text", "content": "It ships "},
                        {"type": "tool_call", "name": "x"},
                        {"type": "text", "content": "tomorrow."}]},
             {"role": "assistant", "parts": [{"type": "text", "content": "second choice"}]},
         ]).decode(),
         "aiwarden.version": "v2", "aiwarden.tag.locale": "fr"}

OPENINFERENCE = {"openinference.span.kind": "LLM", "llm.model_name": "claude-3-5-sonnet",
                 "llm.provider": "anthropic", "llm.token_count.prompt": 40,
                 "llm.token_count.completion": 9, "session.id": "sess-9",
                 "llm.input_messages.0.message.role": "system",
                 "llm.input_messages.0.message.content": "You help.",
                 "llm.input_messages.1.message.role": "user",
                 "llm.input_messages.1.message.content": "What is the refund policy?",
                 "llm.output_messages.0.message.role": "assistant",
                 "llm.output_messages.0.message.content": "Refunds take 5 days.",
                 "input.value": "ignored when messages exist", "output.value": "ignored"}

RETRIEVER = {"openinference.span.kind": "RETRIEVER",
             "retrieval.documents.1.document.content": "Second passage.",
             "retrieval.documents.0.document.content": "Refunds are paid within 5 days."}


def _map(enc: str, spans: list[dict], resource: dict | None = None, **kw: Any) -> otlp.Mapped:
    build, media = ENCODINGS[enc]
    found, bad = otlp.decode(build(spans, resource), media)
    out = otlp.map_spans(found, **kw)
    out.rejected[:0] = bad
    return out


@pytest.mark.parametrize("enc", ENCODINGS)
def test_genai_span_becomes_an_event(enc: str) -> None:
    out = _map(enc, [span("00f067aa0ba902b7", GENAI, ms=812.5)])
    assert (out.skipped, out.rejected) == (0, [])
    model, path, row = out.events[0]
    assert (model, path) == ("bot", "resourceSpans[0].scopeSpans[0].spans[0]")
    assert row == {
        "request_id": "00f067aa0ba902b7", "timestamp": (T0 + 812_500_000) / 1e9,
        "latency_ms": 812.5, "version": "v2", "provider": "openai",
        "model": "gpt-4o-2024-08-06", "tokens_in": 12, "tokens_out": 30,
        "session_id": "conv-1", "tags": {"locale": "fr"}, "finish_reason": "stop",
        "input": [{"role": "system", "content": "Be kind."},
                  {"role": "user", "content": "Where is my order?"}],
        "output": "It ships tomorrow."}
    good, bad = parse_events([row])  # the core's own check takes it as it is
    assert bad == [] and good[0][1].tokens_out == 30


@pytest.mark.parametrize("enc", ENCODINGS)
def test_finish_reason_from_the_response_attribute_or_the_output_message(enc: str) -> None:
    listed = dict(GENAI, **{"gen_ai.response.finish_reasons": ["length", "stop"]})
    in_message = {k: v for k, v in GENAI.items() if k != "gen_ai.response.finish_reasons"}
    in_message["gen_ai.output.messages"] = orjson.dumps([
        {"role": "assistant", "finish_reason": "content_filter",
         "parts": [{"type": "text", "content": "I cannot"}]}]).decode()
    none = {k: v for k, v in OPENINFERENCE.items()}
    out = _map(enc, [span("00f067aa0ba902b1", listed), span("00f067aa0ba902b2", in_message),
                     span("00f067aa0ba902b3", none)])
    assert [row.get("finish_reason") for _, _, row in out.events] == [
        "length", "content_filter", None]  # the first choice's
    good, bad = parse_events([row for _, _, row in out.events])
    assert bad == [] and [e.finish_reason for _, e in good] == ["length", "content_filter",
                                                                None]
    bad_type = dict(GENAI, **{"gen_ai.response.finish_reasons": [3]})
    out = _map(enc, [span("00f067aa0ba902b4", bad_type)])
    assert out.events == [] and "gen_ai.response.finish_reasons" in str(out.rejected[0])


@pytest.mark.parametrize("enc", ENCODINGS)
def test_openinference_llm_span_with_retrieved_context(enc: str) -> None:
    out = _map(enc, [span("1111111111111111", RETRIEVER),
                     span("2222222222222222", OPENINFERENCE),
                     span("3333333333333333", {"openinference.span.kind": "CHAIN"}),
                     span("4444444444444444", OPENINFERENCE | {"session.id": "other"},
                          trace="1" * 32)])
    assert out.skipped == 2 and out.rejected == []
    rows = {r["request_id"]: r for _, _, r in out.events}
    row = rows["2222222222222222"]
    assert row["model"] == "claude-3-5-sonnet" and row["provider"] == "anthropic"
    assert (row["tokens_in"], row["tokens_out"], row["session_id"]) == (40, 9, "sess-9")
    assert row["input"] == [{"role": "system", "content": "You help."},
                            {"role": "user", "content": "What is the refund policy?"}]
    assert row["output"] == "Refunds take 5 days."
    assert row["context"] == ["Refunds are paid within 5 days.", "Second passage."]
    assert "context" not in rows["4444444444444444"]  # another trace's retriever is not its


@pytest.mark.parametrize("enc", ENCODINGS)
def test_older_genai_forms_events_and_prompt_token_names(enc: str) -> None:
    attrs = {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-3.5-turbo",
             "gen_ai.usage.prompt_tokens": 5, "gen_ai.usage.completion_tokens": 7}
    events = [("gen_ai.system.message", {"content": "Be brief."}),
              ("gen_ai.user.message", {"content": "hi"}),
              ("gen_ai.choice", {"index": 0, "finish_reason": "stop",
                                 "message": '{"role": "assistant", "content": "Hello!"}'})]
    flat = {"gen_ai.operation.name": "chat", "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": "ping", "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.content": "pong"}
    oi_values = {"openinference.span.kind": "LLM", "input.value": "q?", "output.value": "a."}
    out = _map(enc, [span("5555555555555555", attrs, events=events),
                     span("6666666666666666", flat), span("7777777777777777", oi_values)])
    assert out.rejected == []
    r1, r2, r3 = (r for _, _, r in out.events)
    assert (r1["provider"], r1["tokens_in"], r1["tokens_out"]) == ("openai", 5, 7)
    assert r1["input"] == [{"role": "system", "content": "Be brief."},
                           {"role": "user", "content": "hi"}]
    assert r1["output"] == "Hello!"
    assert (r2["input"], r2["output"]) == ([{"role": "user", "content": "ping"}], "pong")
    assert (r3["input"], r3["output"]) == ([{"role": "user", "content": "q?"}], "a.")


@pytest.mark.parametrize("enc", ENCODINGS)
def test_non_llm_spans_are_skipped_and_counted(enc: str) -> None:
    out = _map(enc, [span("8888888888888888", {"http.method": "GET"}),
                     span("9999999999999999", {"gen_ai.operation.name": "embeddings",
                                               "gen_ai.request.model": "text-emb"}),
                     span("aaaaaaaaaaaaaaaa", {"gen_ai.operation.name": "execute_tool"})])
    assert (out.events, out.rejected, out.skipped, out.spans) == ([], [], 3, 3)


@pytest.mark.parametrize("enc", ENCODINGS)
def test_bad_spans_are_rejected_by_path_and_the_rest_kept(enc: str) -> None:
    bad_tokens = GENAI | {"gen_ai.usage.input_tokens": "twelve"}
    no_output = {k: v for k, v in GENAI.items() if k != "gen_ai.output.messages"}
    bad_role = GENAI | {"gen_ai.input.messages": '[{"role": "wizard", "parts": []}]'}
    out = _map(enc, [span("0000000000000001", GENAI), span("0000000000000002", bad_tokens),
                     span("0000000000000003", no_output), span("0000000000000004", bad_role)])
    assert [r["request_id"] for _, _, r in out.events] == ["0000000000000001"]
    base = "resourceSpans[0].scopeSpans[0].spans"
    paths = dict(out.rejected)
    assert paths[f"{base}[1].attributes[gen_ai.usage.input_tokens]"] == \
        "expected int, got 'twelve'"
    assert "content capture" in paths[f"{base}[2].attributes[gen_ai.output.messages]"]
    assert "wizard" in paths[f"{base}[3].attributes[gen_ai.input.messages][0].role"]


def test_json_specifics_hex_ids_string_ints_and_field_paths() -> None:
    doc = orjson.loads(as_json([span("0000000000000001", GENAI)]))
    s = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    s["spanId"] = "AAECAwQFBgc="  # base64, as protobuf's generic JSON would write it
    found, bad = otlp.decode(orjson.dumps(doc), "application/json; charset=utf-8")
    assert found == [] and bad[0][0] == "resourceSpans[0].scopeSpans[0].spans[0].spanId"
    s["spanId"] = "0000000000000001"
    s["attributes"][0]["value"] = {"intValue": "1.5"}
    _, bad = otlp.decode(orjson.dumps(doc), otlp.JSON)
    assert bad[0][0] == "resourceSpans[0].scopeSpans[0].spans[0].attributes[" \
        "gen_ai.operation.name]" and "intValue" in bad[0][1]
    s["attributes"][0]["value"] = {"stringValue": "chat"}
    s["startTimeUnixNano"] = T0  # a number is fine as well as a string
    found, bad = otlp.decode(orjson.dumps(doc), otlp.JSON)
    assert bad == [] and found[0].start_ns == T0
    s["events"] = 5  # a shape no check foresaw still names the span, never raises
    _, bad = otlp.decode(orjson.dumps(doc), otlp.JSON)
    assert bad[0][0] == "resourceSpans[0].scopeSpans[0].spans[0]"
    assert otlp.decode(b'{"resourceSpans": null}', otlp.JSON) == ([], [])  # proto3 JSON null
    assert otlp.decode(b"", otlp.JSON) == otlp.decode(b"", otlp.PROTOBUF) == ([], [])
    for body, field in [(b"{not json", "body"), (b"[]", "body"),
                        (b'{"resourceSpans": 3}', "resourceSpans"),
                        (b'{"resourceSpans": [null]}', "resourceSpans[0]"),
                        (b'{"resourceSpans": [{"scopeSpans": [7]}]}',
                         "resourceSpans[0].scopeSpans[0]")]:
        with pytest.raises(otlp.OTLPError) as exc:
            otlp.decode(body, otlp.JSON)
        assert exc.value.field == field


def test_gzip_protobuf_garbage_and_content_types() -> None:
    body = as_protobuf([span("00f067aa0ba902b7", GENAI)])
    found, _ = otlp.decode(gzip.compress(body), otlp.PROTOBUF, "gzip")
    assert found[0].span_id == "00f067aa0ba902b7"
    with pytest.raises(otlp.OTLPError, match="once decompressed"):
        otlp.decode(gzip.compress(b"\0" * 10_000), otlp.PROTOBUF, "gzip", max_bytes=1000)
    with pytest.raises(otlp.OTLPError, match="not valid gzip"):
        otlp.decode(b"plain", otlp.PROTOBUF, "gzip")
    with pytest.raises(otlp.OTLPError, match="not an ExportTraceServiceRequest"):
        otlp.decode(b"\xff\xff\xff\xff", otlp.PROTOBUF)
    with pytest.raises(otlp.OTLPError) as exc:
        otlp.decode(body, "text/plain")
    assert exc.value.field == "content-type"
    with pytest.raises(otlp.OTLPError) as exc:
        otlp.decode(body, otlp.PROTOBUF, "br")
    assert exc.value.field == "content-encoding"


def test_model_and_version_resolution() -> None:
    spans = [span("0000000000000001", {k: v for k, v in GENAI.items()
                                       if k != "aiwarden.version"}),
             span("0000000000000002", GENAI | {"aiwarden.model": "other",
                                               "aiwarden.request_id": "req-7"})]
    resource = {"service.name": "svc", "aiwarden.model": "res", "aiwarden.version": "v9",
                "aiwarden.tag.channel": "web"}
    out = _map("json", spans, resource)
    (m1, _, r1), (m2, _, r2) = out.events
    assert (m1, r1["version"], r1["tags"]) == ("res", "v9", {"locale": "fr", "channel": "web"})
    assert (m2, r2["version"], r2["request_id"]) == ("other", "v2", "req-7")
    out = _map("json", spans[:1], {"service.name": "svc"}, default_model="q")
    assert out.events[0][0] == "q" and "version" not in out.events[0][2]  # serving version
    out = _map("json", spans[:1], {"host.name": "h"})
    assert out.rejected[0][0].endswith("attributes[aiwarden.model]")


def test_export_response_both_encodings() -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    assert otlp.export_response(0, "", otlp.JSON) == b"{}"
    assert orjson.loads(otlp.export_response(2, "x: y", otlp.JSON)) == {
        "partialSuccess": {"rejectedSpans": "2", "errorMessage": "x: y"}}
    resp = ExportTraceServiceResponse.FromString(otlp.export_response(3, "m", otlp.PROTOBUF))
    assert (resp.partial_success.rejected_spans, resp.partial_success.error_message) == (3, "m")


def test_protobuf_without_the_otel_extra_names_the_install(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "opentelemetry.proto.collector.trace.v1", None)
    with pytest.raises(otlp.OTLPUnavailable) as exc:
        otlp.decode(b"", otlp.PROTOBUF)
    assert "pip install 'aiwarden[otel]'" in str(exc.value) and "\n" not in str(exc.value)
    found, _ = otlp.decode(as_json([span("00f067aa0ba902b7", GENAI)]), otlp.JSON)
    assert len(found) == 1  # JSON needs no extra


@pytest.mark.parametrize("enc", ENCODINGS)
def test_structured_message_attributes_as_otlp_arrays_and_kvlists(enc: str) -> None:
    structured = GENAI | {
        "gen_ai.system_instructions": [{"type": "text", "content": "Be kind."}],
        "gen_ai.input.messages": [{"role": "user", "parts": [
            {"type": "text", "content": "Where is my order?"}]}],
        "gen_ai.output.messages": [{"role": "assistant", "finish_reason": "stop", "parts": [
            {"type": "text", "content": "Tomorrow."}]}]}
    (_, _, row), = _map(enc, [span("00f067aa0ba902b7", structured)]).events
    assert row["input"] == [{"role": "system", "content": "Be kind."},
                            {"role": "user", "content": "Where is my order?"}]
    assert row["output"] == "Tomorrow."


def test_a_failed_llm_call_without_output_is_skipped_not_rejected() -> None:
    failed = {k: v for k, v in GENAI.items() if k != "gen_ai.output.messages"}
    out = _map("json", [span("0000000000000f01", failed | {"error.type": "timeout"}),
                        span("0000000000000f02", GENAI)])
    assert (out.failed, out.rejected, len(out.events), out.spans) == (1, [], 1, 2)
