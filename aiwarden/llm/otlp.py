"""OTLP/HTTP trace exports → LLM events, so existing instrumentations export unchanged.

An ``ExportTraceServiceRequest`` arrives as protobuf (``application/x-protobuf``, needs the
``otel`` extra) or in the OTLP JSON encoding (``application/json``: hex ids, 64-bit integers
as strings, ``AnyValue`` oneofs), gzip-compressed or not. :func:`decode` turns either into
:class:`Span` objects; :func:`map_spans` turns the spans that are LLM calls into event rows
of docs/llm.md, read from two conventions:

* OpenTelemetry GenAI: ``gen_ai.operation.name`` (chat, text_completion,
  generate_content), ``gen_ai.provider.name`` / ``gen_ai.system``, ``gen_ai.request.model``
  / ``gen_ai.response.model``, ``gen_ai.usage.input_tokens`` / ``output_tokens`` (or the
  older ``prompt_tokens`` / ``completion_tokens``), ``gen_ai.conversation.id``, messages
  from ``gen_ai.input.messages`` / ``gen_ai.output.messages`` (and
  ``gen_ai.system_instructions``), the ``gen_ai.<role>.message`` / ``gen_ai.choice`` span
  events, or the flattened ``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*`` attributes;
* OpenInference: ``openinference.span.kind`` = LLM, ``llm.model_name``, ``llm.provider``,
  ``llm.token_count.prompt`` / ``completion``, ``llm.input_messages.N.message.*``,
  ``llm.output_messages.N.message.*``, ``input.value`` / ``output.value``, ``session.id``;
  the ``retrieval.documents.N.document.content`` of RETRIEVER spans of the same trace (in
  the same export) become the LLM spans' retrieved context.

The request id is the span id (16 hex digits) unless the span sets ``aiwarden.request_id``;
the timestamp is the span's end, the latency its duration. The aiwarden model is the
``aiwarden.model`` attribute (span, then resource), else the route's default, else the
resource's ``service.name``; the version is ``aiwarden.version`` (span, then resource), else
the model's serving version. ``aiwarden.tag.<name>`` attributes become the event's tags.

Spans that are not LLM calls, and LLM calls that failed (``error.type`` set, no output),
are skipped and counted. A span that cannot be read is rejected
with the path of what is wrong (``resourceSpans[0].scopeSpans[1].spans[3].attributes[
gen_ai.usage.input_tokens]: expected int``), the others go on (OTLP partial success);
a body that cannot be read at all raises :class:`OTLPError`.
"""

from __future__ import annotations

import base64
import contextlib
import math
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from aiwarden.errors import AiwardenError

__all__ = ["INSTALL_HINT", "LLM_OPERATIONS", "Mapped", "OTLPError", "OTLPUnavailable", "Span",
           "decode", "export_response", "map_spans"]

INSTALL_HINT = "pip install 'aiwarden[otel]'"
#: ``gen_ai.operation.name`` values that are one model call producing text.
LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "completion"})
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_MAX_CONTEXT = 50  # passages kept per event (aiwarden.llm.events.MAX_CONTEXT_ITEMS)
_ROLE_ALIASES = {"human": "user", "ai": "assistant", "model": "assistant", "bot": "assistant"}
_ROLES = frozenset({"system", "user", "assistant", "tool", "function", "developer"})
_INDEXED = re.compile(r"^(llm\.input_messages|llm\.output_messages|gen_ai\.prompt|"
                      r"gen_ai\.completion|retrieval\.documents)\.(\d+)\.(.+)$")


class OTLPError(AiwardenError):
    """The request as a whole cannot be read (not protobuf/JSON, wrong shape): a 400."""


class OTLPUnavailable(AiwardenError):
    """A protobuf body arrived but the ``otel`` extra is not installed."""


@dataclass(slots=True)
class Span:
    """One span as read from either encoding; attribute values are plain Python."""

    path: str  # resourceSpans[i].scopeSpans[j].spans[k]
    trace_id: str  # hex
    span_id: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@dataclass
class Mapped:
    """What :func:`map_spans` made of a request."""

    events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    """``(aiwarden model, span path, event row)`` of each LLM span."""
    skipped: int = 0  # spans that are not LLM calls (retrievers, tools, HTTP, ...)
    failed: int = 0  # LLM calls that failed (``error.type`` set) with no output: no answer
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    @property
    def spans(self) -> int:
        return len(self.events) + self.skipped + self.failed + len(self.rejected)


class _Failed(Exception):
    """An LLM span whose call failed before any output."""


class _Bad(Exception):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


# ---------------------------------------------------------------------------- decoding

def decode(body: bytes, content_type: str | None, content_encoding: str | None = None, *,
           max_bytes: int = 64 * 2**20) -> tuple[list[Span], list[tuple[str, str]]]:
    """The spans of an export request and ``(path, reason)`` of those that cannot be read.

    ``max_bytes`` bounds the body after gzip (a small bomb must not fill the memory).
    """
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "gzip":
        body = _gunzip(body, max_bytes)
    elif encoding not in ("identity", ""):
        raise OTLPError(f"Content-Encoding {encoding!r} is not supported: send gzip or none.",
                        "content-encoding")
    media = (content_type or "").split(";")[0].strip().lower()
    if media == PROTOBUF:
        return _from_protobuf(body)
    if media == JSON:
        return _from_json(body)
    raise OTLPError(f"OTLP/HTTP bodies are {PROTOBUF} or {JSON}, got "
                    f"{media or 'no Content-Type'}.", "content-type")


def _gunzip(body: bytes, max_bytes: int) -> bytes:
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise OTLPError(f"The body is not valid gzip ({exc}).", "content-encoding") from None
    if len(out) > max_bytes:
        raise OTLPError(f"The body is over {max_bytes} bytes once decompressed.", "body")
    if not d.eof:
        raise OTLPError("The gzip body is cut short.", "content-encoding")
    return out


def _pb() -> Any:
    try:
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
    except ImportError:
        raise OTLPUnavailable(f"Protobuf OTLP needs the otel extra: {INSTALL_HINT} "
                              f"(or export {JSON}).", "content-type") from None
    return trace_service_pb2


def _from_protobuf(body: bytes) -> tuple[list[Span], list[tuple[str, str]]]:
    req = _pb().ExportTraceServiceRequest()
    try:
        req.ParseFromString(body)
    except Exception as exc:  # protobuf's DecodeError (its module is not ours to import)
        raise OTLPError(f"The body is not an ExportTraceServiceRequest in protobuf ({exc}).",
                        "body") from None
    spans, bad = [], []
    for i, rs in enumerate(req.resource_spans):
        rpath = f"resourceSpans[{i}]"
        resource = _pb_attrs(rs.resource.attributes)
        for j, ss in enumerate(rs.scope_spans):
            for k, s in enumerate(ss.spans):
                path = f"{rpath}.scopeSpans[{j}].spans[{k}]"
                try:
                    spans.append(Span(
                        path, _pb_id(s.trace_id, 16, f"{path}.traceId"),
                        _pb_id(s.span_id, 8, f"{path}.spanId"), s.start_time_unix_nano,
                        s.end_time_unix_nano, _pb_attrs(s.attributes), resource,
                        [(e.name, _pb_attrs(e.attributes)) for e in s.events]))
                except _Bad as exc:
                    bad.append((exc.path, exc.reason))
    return spans, bad


def _pb_id(raw: bytes, size: int, path: str) -> str:
    if len(raw) != size or not any(raw):
        raise _Bad(path, f"expected {size} bytes, not all zero, got {len(raw)}")
    return raw.hex()


def _pb_attrs(kvs: Iterable[Any]) -> dict[str, Any]:
    return {kv.key: _pb_value(kv.value) for kv in kvs}


def _pb_value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_pb_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return _pb_attrs(v.kvlist_value.values)
    return getattr(v, kind)


_HEX = re.compile(r"^[0-9a-fA-F]+$")


def _from_json(body: bytes) -> tuple[list[Span], list[tuple[str, str]]]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise OTLPError(f"The body is not JSON ({exc}).", "body") from None
    if not isinstance(doc, dict):
        raise OTLPError("Expected an ExportTraceServiceRequest object "
                        "{\"resourceSpans\": [...]}.", "body")
    spans: list[Span] = []
    bad: list[tuple[str, str]] = []
    for i, rs in _items(doc, "resourceSpans", "resource_spans", path="resourceSpans"):
        rpath = f"resourceSpans[{i}]"
        if not isinstance(rs, dict):
            raise OTLPError(f"{rpath}: expected a ResourceSpans object.", rpath)
        try:
            res = _field(rs, "resource") or {}
            if not isinstance(res, dict):
                raise _Bad(f"{rpath}.resource", "expected an object")
            resource = _json_attrs(res, f"{rpath}.resource")
        except _Bad as exc:  # every span of this resource: named once per span below
            resource, resource_bad = {}, exc
        else:
            resource_bad = None
        for j, ss in _items(rs, "scopeSpans", "scope_spans", path=f"{rpath}.scopeSpans"):
            for k, s in _items(ss, "spans", path=f"{rpath}.scopeSpans[{j}].spans"):
                path = f"{rpath}.scopeSpans[{j}].spans[{k}]"
                try:
                    if resource_bad is not None:
                        raise resource_bad
                    spans.append(_json_span(s, path, resource))
                except _Bad as exc:
                    bad.append((exc.path, exc.reason))
                except (TypeError, ValueError, AttributeError) as exc:  # unforeseen shape
                    bad.append((path, f"cannot be read: {type(exc).__name__}: {exc}"))
    return spans, bad


def _field(d: dict, camel: str, snake: str | None = None) -> Any:
    """A field by its JSON name, or by its proto name (protobuf's JSON mapping accepts
    both)."""
    v = d.get(camel)
    return d.get(snake) if v is None and snake is not None else v


def _items(d: Any, camel: str, snake: str | None = None, *, path: str
           ) -> Iterator[tuple[int, Any]]:
    if not isinstance(d, dict):
        where = path.rsplit(".", 1)[0]
        raise OTLPError(f"{where}: expected an object.", where)
    v = _field(d, camel, snake)
    if v is None:
        return iter(())
    if not isinstance(v, list):
        raise OTLPError(f"{path}: expected a list, got {type(v).__name__}.", path)
    return enumerate(v)


def _json_span(s: Any, path: str, resource: dict[str, Any]) -> Span:
    if not isinstance(s, dict):
        raise _Bad(path, "expected a span object")
    events = []
    for n, e in enumerate(_field(s, "events") or []):
        where = f"{path}.events[{n}]"
        if not isinstance(e, dict):
            raise _Bad(where, "expected an event object")
        events.append((str(e.get("name") or ""), _json_attrs(e, where)))
    return Span(path, _json_id(_field(s, "traceId", "trace_id"), 16, f"{path}.traceId"),
                _json_id(_field(s, "spanId", "span_id"), 8, f"{path}.spanId"),
                _json_u64(_field(s, "startTimeUnixNano", "start_time_unix_nano"),
                          f"{path}.startTimeUnixNano"),
                _json_u64(_field(s, "endTimeUnixNano", "end_time_unix_nano"),
                          f"{path}.endTimeUnixNano"),
                _json_attrs(s, path), resource, events)


def _json_id(v: Any, size: int, path: str) -> str:
    if not isinstance(v, str) or len(v) != 2 * size or not _HEX.match(v) or not v.strip("0"):
        raise _Bad(path, f"expected {2 * size} hex digits (OTLP JSON ids are hex, not "
                   f"base64), not all zero, got {v!r}")
    return v.lower()


def _json_u64(v: Any, path: str) -> int:
    if v is None:
        return 0
    if isinstance(v, str) and v.isdigit():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**64:
        raise _Bad(path, f"expected an unsigned 64-bit integer (a string or a number), "
                   f"got {v!r}")
    return v


def _json_attrs(holder: dict, path: str) -> dict[str, Any]:
    kvs = holder.get("attributes")
    if kvs is None:
        return {}
    if not isinstance(kvs, list):
        raise _Bad(f"{path}.attributes", "expected a list of {key, value}")
    out = {}
    for n, kv in enumerate(kvs):
        if not isinstance(kv, dict) or not isinstance(kv.get("key"), str):
            raise _Bad(f"{path}.attributes[{n}]", "expected {\"key\": str, \"value\": {...}}")
        out[kv["key"]] = _json_value(kv.get("value"), f"{path}.attributes[{kv['key']}]")
    return out


_DOUBLES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _json_value(v: Any, path: str) -> Any:
    if v is None or v == {}:
        return None
    if not isinstance(v, dict):
        raise _Bad(path, f"expected an AnyValue object, got {type(v).__name__}")
    for kind, x in v.items():
        if kind == "stringValue" and isinstance(x, str):
            return x
        if kind == "boolValue" and isinstance(x, bool):
            return x
        if kind == "intValue":
            if isinstance(x, str) and x.lstrip("-").isdigit():
                x = int(x)
            if isinstance(x, int) and not isinstance(x, bool) and -2**63 <= x < 2**63:
                return x
            raise _Bad(path, f"intValue: expected a 64-bit integer, got {x!r}")
        if kind == "doubleValue":
            if isinstance(x, int | float) and not isinstance(x, bool):
                return float(x)
            if x in _DOUBLES:
                return _DOUBLES[x]
            raise _Bad(path, f"doubleValue: expected a number, got {x!r}")
        if kind == "arrayValue" and isinstance(x, dict):
            vals = x.get("values") or []
            if isinstance(vals, list):
                return [_json_value(y, f"{path}[{n}]") for n, y in enumerate(vals)]
        if kind == "kvlistValue" and isinstance(x, dict):
            return _json_attrs({"attributes": x.get("values") or []}, path)
        if kind == "bytesValue" and isinstance(x, str):
            try:
                return base64.b64decode(x, validate=True)
            except ValueError:
                raise _Bad(path, "bytesValue: expected base64") from None
        raise _Bad(path, f"{kind}: not a valid AnyValue member ({x!r})")
    return None


# ----------------------------------------------------------------------------- mapping

def map_spans(spans: list[Span], *, default_model: str | None = None) -> Mapped:
    """Event rows of the LLM spans; the other spans counted as skipped.

    Examples
    --------
    >>> s = Span("resourceSpans[0].scopeSpans[0].spans[0]", "ab" * 16, "cd" * 8,
    ...          1_000_000_000, 1_250_000_000, {"gen_ai.operation.name": "chat",
    ...          "gen_ai.usage.input_tokens": 3, "gen_ai.output.messages":
    ...          '[{"role": "assistant", "parts": [{"type": "text", "content": "Hi"}]}]'},
    ...          {"service.name": "bot"})
    >>> model, _, row = map_spans([s]).events[0]
    >>> model, row["request_id"], row["output"], row["latency_ms"], row["tokens_in"]
    ('bot', 'cdcdcdcdcdcdcdcd', 'Hi', 250.0, 3)
    """
    out = Mapped()
    context: dict[str, list[str]] = {}
    llm: list[Span] = []
    for s in spans:
        kind = s.attributes.get("openinference.span.kind")
        if kind == "RETRIEVER":
            try:
                docs = _indexed(s.attributes, "retrieval.documents", "document.content", s.path)
            except _Bad as exc:
                out.rejected.append((exc.path, exc.reason))
                continue
            context.setdefault(s.trace_id, []).extend(d for d in docs if d)
            out.skipped += 1
        elif _is_llm(s.attributes, kind):
            llm.append(s)
        else:
            out.skipped += 1
    for s in llm:
        try:
            model, row = _event(s, default_model)
        except _Failed:
            out.failed += 1
            continue
        except _Bad as exc:
            out.rejected.append((exc.path, exc.reason))
            continue
        except (TypeError, ValueError, AttributeError) as exc:  # a shape no check foresaw
            out.rejected.append((s.path, f"cannot be read: {type(exc).__name__}: {exc}"))
            continue
        ctx = context.get(s.trace_id)
        if ctx and "context" not in row:
            row["context"] = ctx[:_MAX_CONTEXT]
        out.events.append((model, s.path, row))
    return out


def _is_llm(a: dict[str, Any], oi_kind: Any) -> bool:
    if oi_kind is not None:
        return oi_kind == "LLM"
    op = a.get("gen_ai.operation.name")
    if op is not None:
        return op in LLM_OPERATIONS
    if a.get("llm.request.type") in ("chat", "completion"):  # OpenLLMetry before op names
        return True
    return ("gen_ai.request.model" in a or "gen_ai.response.model" in a) and \
        ("gen_ai.system" in a or "gen_ai.provider.name" in a)


def _event(s: Span, default_model: str | None) -> tuple[str, dict[str, Any]]:
    a, r, p = s.attributes, s.resource, s.path
    model = (_text(a, "aiwarden.model", p) or _text(r, "aiwarden.model", p, "resource")
             or default_model or _text(r, "service.name", p, "resource"))
    if not model:
        raise _Bad(f"{p}.attributes[aiwarden.model]", "no aiwarden model: set the "
                   "aiwarden.model (or service.name) resource attribute, or ?model= on the "
                   "endpoint")
    if s.end_ns and s.start_ns and s.end_ns < s.start_ns:
        raise _Bad(f"{p}.endTimeUnixNano", "ends before it starts")
    row: dict[str, Any] = {"request_id": _text(a, "aiwarden.request_id", p) or s.span_id}
    if s.end_ns:
        row["timestamp"] = s.end_ns / 1e9
        if s.start_ns:
            row["latency_ms"] = (s.end_ns - s.start_ns) / 1e6
    version = _text(a, "aiwarden.version", p) or _text(r, "aiwarden.version", p, "resource")
    _put(row, "version", version)
    _put(row, "provider", _first_text(a, p, "gen_ai.provider.name", "gen_ai.system",
                                      "llm.provider", "llm.system"))
    _put(row, "model", _first_text(a, p, "gen_ai.response.model", "gen_ai.request.model",
                                   "llm.model_name"))
    _put(row, "tokens_in", _first_int(a, p, "gen_ai.usage.input_tokens",
                                      "gen_ai.usage.prompt_tokens", "llm.token_count.prompt"))
    _put(row, "tokens_out", _first_int(a, p, "gen_ai.usage.output_tokens",
                                       "gen_ai.usage.completion_tokens",
                                       "llm.token_count.completion"))
    _put(row, "session_id", _first_text(a, p, "gen_ai.conversation.id", "session.id"))
    tags = {k[13:]: v for d in (r, a) for k, v in d.items()
            if k.startswith("aiwarden.tag.") and v is not None}
    if tags:
        row["tags"] = tags
    messages = _input_messages(s)
    if messages:
        row["input"] = messages
    output = _output_text(s)
    if output is None and a.get("error.type") is not None:
        raise _Failed  # the call failed: there is no answer to evaluate
    if output is None:
        raise _Bad(f"{p}.attributes[gen_ai.output.messages]", "no output text on this LLM "
                   "span: turn on content capture in the instrumentation (e.g. OTEL_"
                   "INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true)")
    row["output"] = output
    return model, row


def _put(row: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        row[key] = value


def _where(p: str, key: str, holder: str = "attributes") -> str:
    if holder == "attributes":
        return f"{p}.attributes[{key}]"
    return f"{p.split('.scopeSpans[', 1)[0]}.resource.attributes[{key}]"


def _text(a: dict[str, Any], key: str, p: str, holder: str = "attributes") -> str | None:
    v = a.get(key)
    if v is None or isinstance(v, str):
        return v or None
    if isinstance(v, int | float) and not isinstance(v, bool):  # an id given as a number
        return str(v)
    raise _Bad(_where(p, key, holder), f"expected string, got {type(v).__name__}")


def _first_text(a: dict[str, Any], p: str, *keys: str) -> str | None:
    for k in keys:
        v = _text(a, k, p)
        if v is not None:
            return v
    return None


def _first_int(a: dict[str, Any], p: str, *keys: str) -> int | None:
    for k in keys:
        v = a.get(k)
        if v is None:
            continue
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int):
            raise _Bad(_where(p, k), f"expected int, got {v!r}")
        if v < 0:
            raise _Bad(_where(p, k), f"expected int >= 0, got {v}")
        return v
    return None


def _indexed(a: dict[str, Any], prefix: str, leaf: str, p: str) -> list[str]:
    """``prefix.N.leaf`` values in order of N (OpenInference's flattened lists)."""
    found = {}
    for k in a:
        m = _INDEXED.match(k)
        if m and m.group(1) == prefix and m.group(3) == leaf:
            found[int(m.group(2))] = _text(a, k, p)
    return [found[i] or "" for i in sorted(found)]


def _role(v: Any, path: str) -> str:
    role = _ROLE_ALIASES.get(v, v) if isinstance(v, str) else v
    if role is None:
        return "user"
    if role not in _ROLES:
        raise _Bad(path, f"role must be one of {sorted(_ROLES)} (or human, ai, model), "
                   f"got {v!r}")
    return role


def _json_attr(a: dict[str, Any], key: str, p: str) -> Any:
    """A structured attribute: recorded as a JSON string, or as an OTLP array/kvlist."""
    v = a.get(key)
    if isinstance(v, str):
        try:
            return orjson.loads(v)
        except orjson.JSONDecodeError:
            raise _Bad(_where(p, key), "expected JSON (a list of messages)") from None
    return v


def _parts_text(m: dict[str, Any]) -> str:
    """A GenAI message's text: its text parts joined (tool calls and media left out)."""
    parts = m.get("parts")
    if isinstance(parts, list):
        return "".join(str(x.get("content") or "") for x in parts
                       if isinstance(x, dict) and x.get("type", "text") == "text")
    content = m.get("content")
    if isinstance(content, list):  # OpenAI content parts
        return "".join(str(x.get("text") or "") for x in content if isinstance(x, dict))
    return "" if content is None else str(content)


def _genai_messages(a: dict[str, Any], key: str, p: str) -> list[dict[str, Any]] | None:
    v = _json_attr(a, key, p)
    if v is None:
        return None
    if isinstance(v, dict):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(m, dict) for m in v):
        raise _Bad(_where(p, key), "expected a list of message objects")
    return v


def _input_messages(s: Span) -> list[dict[str, str]]:
    a, p = s.attributes, s.path
    out: list[dict[str, str]] = []
    system = _json_attr(a, "gen_ai.system_instructions", p)
    if isinstance(system, list):
        out.append({"role": "system", "content": _parts_text({"parts": system})})
    elif isinstance(system, str):
        out.append({"role": "system", "content": system})
    msgs = _genai_messages(a, "gen_ai.input.messages", p)
    if msgs is not None:
        key = _where(p, "gen_ai.input.messages")
        return out + [{"role": _role(m.get("role"), f"{key}[{n}].role"),
                       "content": _parts_text(m)} for n, m in enumerate(msgs)]
    for prefix in ("llm.input_messages", "gen_ai.prompt"):
        flat = _flat_messages(a, prefix, p)
        if flat:
            return out + flat
    from_events = []
    for n, (name, ea) in enumerate(s.events):
        if name.startswith("gen_ai.") and name.endswith(".message"):
            role = ea.get("role") or name[7:-8]
            content = ea.get("content")
            if isinstance(content, str) and content[:1] in "[{":
                with contextlib.suppress(orjson.JSONDecodeError):
                    content = _parts_text({"content": orjson.loads(content)})
            from_events.append({"role": _role(role, f"{p}.events[{n}].attributes[role]"),
                                "content": "" if content is None else str(content)})
        elif name == "gen_ai.content.prompt":  # the older single-event form
            msgs = _genai_messages(ea, "gen_ai.prompt", f"{p}.events[{n}]")
            from_events += [{"role": _role(m.get("role"), f"{p}.events[{n}]"),
                             "content": _parts_text(m)} for m in msgs or []]
    if from_events:
        return out + from_events
    value = a.get("input.value")
    if isinstance(value, str) and value:
        return [*out, {"role": "user", "content": value}]
    return out


def _flat_messages(a: dict[str, Any], prefix: str, p: str) -> list[dict[str, str]]:
    """``prefix.N.message.role`` / ``.content`` (OpenInference) or ``prefix.N.role`` /
    ``.content`` (OpenLLMetry), with content parts ``message.contents.M...text``."""
    by_index: dict[int, dict[str, str]] = {}
    for k in a:
        m = _INDEXED.match(k)
        if not m or m.group(1) != prefix:
            continue
        leaf = m.group(3).removeprefix("message.")
        msg = by_index.setdefault(int(m.group(2)), {})
        if leaf in ("role", "content"):
            msg[leaf] = _text(a, k, p) or ""
        elif leaf.startswith("contents.") and leaf.endswith("message_content.text"):
            msg.setdefault("_parts", "")
            msg["_parts"] += _text(a, k, p) or ""
    out = []
    for i in sorted(by_index):
        msg = by_index[i]
        key = _where(p, f"{prefix}.{i}.message.role")
        out.append({"role": _role(msg.get("role") or None, key),
                    "content": msg.get("content") or msg.get("_parts", "")})
    return out


def _output_text(s: Span) -> str | None:
    """The first choice's text, or None when the span carries no output content."""
    a, p = s.attributes, s.path
    msgs = _genai_messages(a, "gen_ai.output.messages", p)
    if msgs:
        return _parts_text(msgs[0])
    for prefix in ("llm.output_messages", "gen_ai.completion"):
        flat = _flat_messages(a, prefix, p)
        if flat:
            return flat[0]["content"]
    for n, (name, ea) in enumerate(s.events):
        if name == "gen_ai.choice" and ea.get("index") in (None, 0):
            msg = ea.get("message")
            if isinstance(msg, str):
                try:
                    msg = orjson.loads(msg)
                except orjson.JSONDecodeError:
                    return msg
            if isinstance(msg, dict):
                return _parts_text(msg)
            content = ea.get("content")
            if content is not None:
                return str(content)
        elif name == "gen_ai.content.completion":
            msgs = _genai_messages(ea, "gen_ai.completion", f"{p}.events[{n}]")
            if msgs:
                return _parts_text(msgs[0])
    value = a.get("output.value")
    return value if isinstance(value, str) else None


# ---------------------------------------------------------------------------- response

def export_response(rejected: int, message: str, content_type: str | None) -> bytes:
    """An ``ExportTraceServiceResponse`` in the request's encoding; ``partialSuccess`` only
    when something was rejected or there is a warning to tell."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media == PROTOBUF:
        resp = _pb().ExportTraceServiceResponse()
        if rejected or message:
            resp.partial_success.rejected_spans = rejected
            resp.partial_success.error_message = message
        return bytes(resp.SerializeToString())
    if not (rejected or message):
        return b"{}"
    return orjson.dumps({"partialSuccess": {"rejectedSpans": str(rejected),
                                            "errorMessage": message}})
