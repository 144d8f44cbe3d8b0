"""otlp.read (the route's path, which leaves out protobuf spans that cannot be LLM calls
before reading them) answers exactly as decode + map_spans, in both encodings."""

from __future__ import annotations

import pytest

from aiwarden.llm import otlp
from aiwarden.llm._otlp_decode import decode_relevant
from tests.llm.test_otlp import GENAI, as_json, as_protobuf, span

OTHER_TRACE = "1" * 32


def _mixed() -> list[dict]:
    retriever = {"openinference.span.kind": "RETRIEVER",
                 "retrieval.documents.0.document.content": "Orders ship within a day."}
    return [
        span("00000000000000a1", {"http.request.method": "POST", "http.route": "/chat"}),
        span("00000000000000a2", retriever),
        span("00000000000000a3", GENAI),
        span("00000000000000a4", {"gen_ai.operation.name": "execute_tool",
                                  "gen_ai.tool.name": "lookup"}),
        span("00000000000000a5", {"db.system.name": "postgresql", "db.query.text": "x"}),
        span("0000000000000000", {"http.route": "/zero-id"}),  # rejected: all-zero id
        span("00000000000000a6", {"http.route": "/short-trace"}, trace="ab" * 4),
        span("00000000000000a7", {"gen_ai.request.model": "m", "gen_ai.system": "openai",
                                  "gen_ai.output.messages": '[{"role": "assistant", '
                                  '"parts": [{"type": "text", "content": "ok"}]}]'},
             trace=OTHER_TRACE),
        span("00000000000000a8", {"llm.request.type": "chat",
                                  "gen_ai.completion.0.content": "fine"}),
        span("00000000000000a9", {"gen_ai.operation.name": "chat"}),  # rejected: no output
        span("00000000000000aa", {"gen_ai.request.model": "m", "peer.service": "x"}),
        span("00000000000000ab", {}),
    ]


@pytest.mark.parametrize("encode,media", [(as_protobuf, otlp.PROTOBUF), (as_json, otlp.JSON)])
def test_read_answers_as_decode_then_map(encode, media) -> None:
    body = encode(_mixed(), {"service.name": "bot", "aiwarden.tag.channel": "web"})
    spans, bad = otlp.decode(body, media)
    mapped = otlp.map_spans(spans, default_model="dflt")
    total, rejected, lean = otlp.read(body, media, default_model="dflt")
    assert total == len(spans) + len(bad) == 12
    assert rejected == bad + mapped.rejected and len(rejected) == 3
    assert lean.events == mapped.events and len(lean.events) == 3
    assert (lean.skipped, lean.failed) == (mapped.skipped, mapped.failed) == (6, 0)
    assert lean.spans == mapped.spans == total - len(bad)
    # the retriever's passage reached the LLM span of its trace, not the other trace's
    ctx = {row["request_id"]: row.get("context") for _, _, row in lean.events}
    assert ctx["00000000000000a3"] == ["Orders ship within a day."]
    assert ctx["00000000000000a7"] is None


def test_protobuf_spans_without_a_deciding_attribute_are_not_read() -> None:
    body = as_protobuf(_mixed())
    spans, bad, left_out = decode_relevant(body, otlp.PROTOBUF)
    assert left_out == 3  # HTTP, database, no attributes; the retriever and tool are read
    assert len(spans) == 12 - 3 - len(bad) and len(bad) == 2
    assert all(otlp.DECIDING.intersection(s.attributes) for s in spans)
    _, _, none = decode_relevant(as_json(_mixed()), otlp.JSON)
    assert none == 0  # JSON values are all checked, so every span is read
