"""Bad OTLP input into a real server (SQLite and PostgreSQL): truncated protobuf, wrong
content types, JSON with wrong types (4xx naming the field), a 5 MB answer (cut, flagged,
accepted), OTLP partial success counted exactly with nothing accepted lost, and mutated
bodies that never get a 5xx."""

from __future__ import annotations

import gzip
import random

import httpx
import orjson
import pytest

from tests.llm.test_otlp import GENAI as _GENAI
from tests.llm.test_otlp import as_json, as_protobuf, span
from tests.server.test_llm_events import _events

pytest.importorskip("opentelemetry.proto.collector.trace.v1.trace_service_pb2")

GENAI = _GENAI | {"aiwarden.version": "v1"}
MODEL = "otbad"
PB = {"content-type": "application/x-protobuf"}
JS = {"content-type": "application/json"}
S0 = "resourceSpans[0].scopeSpans[0].spans[0]"
MAX_TEXT = 32_768  # aiwarden.llm.events.MAX_TEXT_CHARS


@pytest.fixture(scope="module")
def root(server):
    with httpx.Client(base_url=server.url, timeout=120) as c:
        api = "/api/v1"
        c.post(f"{api}/models", json={"name": MODEL, "task": "text_generation"}
               ).raise_for_status()
        r = c.put(f"{api}/models/{MODEL}/versions/v1/llm-reference",
                  json=_events(200, "ref-", version=None))
        assert r.status_code == 201, r.text
        yield c


def _post(root, body: bytes, headers: dict) -> httpx.Response:
    r = root.post("/v1/traces", content=body, headers=headers)
    assert r.status_code < 500, r.text
    return r


def _pb_answer(r: httpx.Response):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    assert r.headers["content-type"] == "application/x-protobuf"
    out = ExportTraceServiceResponse()
    out.ParseFromString(r.content)
    return out.partial_success


def _stored(root, rid: str) -> dict | None:
    r = root.get(f"/api/v1/models/{MODEL}/llm-events/{rid}")
    assert r.status_code in (200, 404), r.text
    return r.json() if r.status_code == 200 else None


def test_truncated_protobuf_is_400_body(root) -> None:
    body = as_protobuf([span(f"00000000000c{i:04x}", GENAI) for i in range(1, 4)],
                       {"service.name": MODEL})
    for cut in (1, 7, len(body) // 3, len(body) // 2, len(body) - 1):
        r = _post(root, body[:cut], PB)
        assert r.status_code == 400, (cut, r.text)
        assert r.json()["detail"]["field"] == "body"
        assert "ExportTraceServiceRequest" in r.json()["detail"]["message"]
    assert _stored(root, "00000000000c0001") is None  # nothing of a refused body is kept


def test_wrong_content_types(root) -> None:
    js = as_json([span("00000000000d0001", GENAI)], {"service.name": MODEL})
    pb = as_protobuf([span("00000000000d0002", GENAI)], {"service.name": MODEL})
    for body, headers, code, field in [
            (js, {"content-type": "text/plain"}, 415, "content-type"),
            (js, {}, 415, "content-type"),
            (js, {"content-type": "application/x-www-form-urlencoded"}, 415, "content-type"),
            (js, PB, 400, "body"),  # JSON sent as protobuf
            (pb, JS, 400, "body"),  # protobuf sent as JSON
            (js, JS | {"content-encoding": "br"}, 400, "content-encoding")]:
        r = _post(root, body, headers)
        assert r.status_code == code, (headers, r.text)
        assert r.json()["detail"]["field"] == field, r.text
    r = _post(root, js, {"content-type": "application/json; charset=utf-8"})
    assert r.status_code == 200 and r.json() == {}, r.text
    assert _stored(root, "00000000000d0001")["output"] == "It ships tomorrow."


def _json_span(**over) -> dict:
    doc = orjson.loads(as_json([span("00000000000e0001", GENAI)], {"service.name": MODEL}))
    s = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    for k, v in over.items():
        s[k] = v
    return doc


def _with_attr(key: str, value: dict) -> dict:
    doc = _json_span()
    attrs = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"]
    for kv in attrs:
        if kv["key"] == key:
            kv["value"] = value
            break
    else:
        attrs.append({"key": key, "value": value})
    return doc


def test_json_with_wrong_types_is_400_naming_the_field(root) -> None:
    attr = f"{S0}.attributes"
    cases = [
        (_json_span(spanId="not-hex-at-all!!"), f"{S0}.spanId", "hex digits"),
        (_json_span(spanId="AAECAwQFBgc="), f"{S0}.spanId", "not base64"),
        (_json_span(traceId=12), f"{S0}.traceId", "hex digits"),
        (_json_span(startTimeUnixNano="soon"), f"{S0}.startTimeUnixNano", "64-bit"),
        (_json_span(endTimeUnixNano=-5), f"{S0}.endTimeUnixNano", "64-bit"),
        (_json_span(attributes={"a": 1}), attr, "list"),
        (_json_span(attributes=[{"value": {"stringValue": "x"}}]), f"{attr}[0]", "key"),
        (_json_span(events=[7]), f"{S0}.events[0]", "event object"),
        (_with_attr("gen_ai.usage.input_tokens", {"intValue": "12.5"}),
         f"{attr}[gen_ai.usage.input_tokens]", "64-bit integer"),
        (_with_attr("gen_ai.usage.input_tokens", {"stringValue": "twelve"}),
         f"{attr}[gen_ai.usage.input_tokens]", "expected int"),
        (_with_attr("gen_ai.usage.output_tokens", {"doubleValue": "lots"}),
         f"{attr}[gen_ai.usage.output_tokens]", "doubleValue"),
        (_with_attr("gen_ai.request.model", {"stringValue": 5}),
         f"{attr}[gen_ai.request.model]", "not a valid AnyValue"),
        (_with_attr("gen_ai.request.model", "gpt"), f"{attr}[gen_ai.request.model]",
         "AnyValue object"),
        (_with_attr("gen_ai.input.messages", {"stringValue": "not json ["}),
         f"{attr}[gen_ai.input.messages]", "expected JSON"),
        (_with_attr("gen_ai.output.messages", {"stringValue": "[1, 2]"}),
         f"{attr}[gen_ai.output.messages]", "message objects"),
        (_with_attr("gen_ai.input.messages", {"stringValue": orjson.dumps(
            [{"role": "wizard", "content": "hi"}]).decode()}),
         f"{attr}[gen_ai.input.messages][0].role", "role must be one of"),
        (_with_attr("gen_ai.response.finish_reasons", {"arrayValue": {"values": [
            {"intValue": "3"}]}}), f"{attr}[gen_ai.response.finish_reasons]", "string array"),
        (_with_attr("aiwarden.tag.locale", {"stringValue": "x" * 500}),
         S0, "tags.locale: at most 200 characters"),
        ({"resourceSpans": [5]}, "resourceSpans[0]", "ResourceSpans object"),
        ({"resourceSpans": [{"scopeSpans": "x"}]}, "resourceSpans[0].scopeSpans", "list"),
        ({"resourceSpans": [{"scopeSpans": [{"spans": {}}]}]},
         "resourceSpans[0].scopeSpans[0].spans", "list"),
        ({"resourceSpans": [{"scopeSpans": [{"spans": [3]}]}]}, S0, "span object"),
        ([1, 2], "body", "ExportTraceServiceRequest"),
    ]
    for doc, field, words in cases:
        r = _post(root, orjson.dumps(doc), JS)
        assert r.status_code == 400, (field, r.text)
        detail = r.json()["detail"]
        assert detail["field"] == field, (field, detail)
        assert words in detail["message"], (words, detail)
    assert _stored(root, "00000000000e0001") is None


def test_a_5_mb_answer_is_cut_flagged_and_accepted(root) -> None:
    big = "All fine here. " * (5 * 2**20 // 15)
    prompt = "Summarise this: " + "lorem ipsum " * (5 * 2**20 // 12)
    attrs = GENAI | {
        "gen_ai.output.messages": orjson.dumps([{"role": "assistant", "parts": [
            {"type": "text", "content": big}]}]).decode(),
        "gen_ai.input.messages": orjson.dumps([{"role": "user", "parts": [
            {"type": "text", "content": prompt}]}]).decode()}
    pb = as_protobuf([span("00000000000f0001", attrs)], {"service.name": MODEL})
    assert len(pb) > 10 * 2**20
    r = _post(root, pb, PB)
    assert r.status_code == 200, r.text
    assert _pb_answer(r).rejected_spans == 0
    js = gzip.compress(as_json([span("00000000000f0002", attrs)], {"service.name": MODEL}))
    r = _post(root, js, JS | {"content-encoding": "gzip"})
    assert r.status_code == 200 and r.json() == {}, r.text
    for rid in ("00000000000f0001", "00000000000f0002"):
        ev = _stored(root, rid)
        assert ev is not None
        assert ev["output"] == big[:MAX_TEXT]
        assert len(ev["input"][0]["content"]) <= MAX_TEXT
        assert ev["input"][0]["content"] == prompt[-len(ev["input"][0]["content"]):]
        d = ev["detail"]
        assert (d["truncated_output"], d["truncated_input"]) == (True, True)
        assert (d["output_chars"], d["input_chars"]) == (len(big), len(prompt))


def test_partial_success_counts_every_rejected_span_and_loses_no_accepted_one(root) -> None:
    spans, bad, good, skipped = [], [], [], 0
    for i in range(600):
        sid = f"00000000001{i:05x}"
        if i % 7 == 3:
            spans.append(span(sid, GENAI | {"gen_ai.usage.input_tokens": "twelve"}))
            bad.append(i)
        elif i % 11 == 5:
            spans.append(span(sid, {"http.route": "/chat"}))  # not an LLM call: skipped
            skipped += 1
        else:
            spans.append(span(sid, GENAI | {"gen_ai.output.messages": orjson.dumps([
                {"role": "assistant", "parts": [{"type": "text",
                                                 "content": f"Answer {i}."}]}]).decode()}))
            good.append(sid)
    for _attempt in range(2):  # the retry of the same export changes nothing
        r = _post(root, as_protobuf(spans, {"service.name": MODEL}), PB)
        assert r.status_code == 200, r.text
        part = _pb_answer(r)
        assert part.rejected_spans == len(bad) == 86
        msg = part.error_message
        assert msg.startswith(f"resourceSpans[0].scopeSpans[0].spans[{bad[0]}].attributes"
                              "[gen_ai.usage.input_tokens]: expected int, got 'twelve'")
        assert f"... and {len(bad) - 20} more" in msg
        assert f"{skipped} spans are not LLM calls and were skipped" in msg
    listed = root.get(f"/api/v1/models/{MODEL}/llm-events", params={"limit": 1000}).json()
    stored = {e["request_id"] for e in listed["events"] if e["request_id"].startswith(
        "00000000001")}
    assert stored == set(good)  # every accepted span is stored, once; no rejected one
    last = int(good[-1][-5:], 16)
    assert _stored(root, good[-1])["output"] == f"Answer {last}."


def test_mutated_bodies_never_get_a_5xx(root) -> None:
    rnd = random.Random(13)
    spans = [span(f"0000000000200{i:03x}", GENAI) for i in range(1, 6)]
    seeds = [(as_protobuf(spans, {"service.name": MODEL}), PB),
             (as_json(spans, {"service.name": MODEL}), JS)]
    codes = set()
    for n in range(160):
        body, headers = seeds[n % 2]
        b = bytearray(body)
        kind = n % 4
        if kind == 0:
            b = b[:rnd.randrange(len(b))]
        elif kind == 1:
            for _ in range(rnd.randint(1, 8)):
                b[rnd.randrange(len(b))] = rnd.randrange(256)
        elif kind == 2:
            at = rnd.randrange(len(b))
            b[at:at] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 16)))
        else:
            at = rnd.randrange(len(b))
            del b[at:at + rnd.randint(1, 32)]
        r = root.post("/v1/traces", content=bytes(b), headers=headers)
        assert r.status_code in (200, 400), (n, r.status_code, r.text[:500])
        if r.status_code == 400:
            assert r.json()["detail"]["field"], r.text
        codes.add(r.status_code)
    assert codes == {200, 400}  # some mutations still read, most do not
