"""Reading OTLP/HTTP ``ExportTraceServiceRequest`` bodies: protobuf (the ``otel`` extra) or
the OTLP JSON encoding (hex ids, 64-bit integers as strings, ``AnyValue`` oneofs), gzip or
not, into :class:`Span` objects (see :mod:`aiwarden.llm.otlp`)."""

from __future__ import annotations

import base64
import math
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from aiwarden.errors import AiwardenError

__all__ = ["DECIDING", "INSTALL_HINT", "JSON", "PROTOBUF", "OTLPError", "OTLPUnavailable", "Span",
           "decode", "decode_relevant"]

INSTALL_HINT = "pip install 'aiwarden[otel]'"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"


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


class _Bad(Exception):
    """A span (or part of one) that cannot be read: its path and why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def decode(body: bytes, content_type: str | None, content_encoding: str | None = None, *,
           max_bytes: int = 64 * 2**20) -> tuple[list[Span], list[tuple[str, str]]]:
    """The spans of an export request and ``(path, reason)`` of those that cannot be read.

    ``max_bytes`` bounds the body after gzip (a small bomb must not fill the memory).
    """
    spans, bad, _ = decode_relevant(body, content_type, content_encoding,
                                    max_bytes=max_bytes, lean=False)
    return spans, bad


#: Span attributes that can make a span an LLM call or a retriever (``otlp._is_llm`` and
#: ``map_spans`` read no other to decide): a protobuf span with none of them is skipped
#: before its attributes and ids are read into Python objects.
DECIDING = frozenset({"openinference.span.kind", "gen_ai.operation.name", "llm.request.type",
                      "gen_ai.request.model", "gen_ai.response.model"})


def decode_relevant(body: bytes, content_type: str | None,
                    content_encoding: str | None = None, *, max_bytes: int = 64 * 2**20,
                    lean: bool = True) -> tuple[list[Span], list[tuple[str, str]], int]:
    """As :func:`decode`, plus the number of spans left out as surely not LLM calls nor
    retrievers (``lean``, protobuf only: no :data:`DECIDING` attribute; their ids are still
    checked, so what is rejected is the same). Why: in real traces four spans in five are
    HTTP, database or tool spans, and building their attribute dicts cost more than the
    check."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "gzip":
        body = _gunzip(body, max_bytes)
    elif encoding not in ("identity", ""):
        raise OTLPError(f"Content-Encoding {encoding!r} is not supported: send gzip or none.",
                        "content-encoding")
    media = (content_type or "").split(";")[0].strip().lower()
    if media == PROTOBUF:
        return _from_protobuf(body, lean)
    if media == JSON:  # every value is checked (a bad one rejects its span): no lean path
        return (*_from_json(body), 0)
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


def _from_protobuf(body: bytes, lean: bool = False
                   ) -> tuple[list[Span], list[tuple[str, str]], int]:
    req = _pb().ExportTraceServiceRequest()
    try:
        req.ParseFromString(body)
    except Exception as exc:  # protobuf's DecodeError (its module is not ours to import)
        raise OTLPError(f"The body is not an ExportTraceServiceRequest in protobuf ({exc}).",
                        "body") from None
    spans, bad, skipped = [], [], 0
    deciding = DECIDING.isdisjoint
    for i, rs in enumerate(req.resource_spans):
        rpath = f"resourceSpans[{i}]"
        resource = _pb_attrs(rs.resource.attributes)
        for j, ss in enumerate(rs.scope_spans):
            for k, s in enumerate(ss.spans):
                if (lean and deciding([kv.key for kv in s.attributes])
                        and len(s.trace_id) == 16 and len(s.span_id) == 8
                        and s.trace_id.strip(b"\0") and s.span_id.strip(b"\0")):
                    skipped += 1  # not an LLM call nor a retriever, valid ids
                    continue
                path = f"{rpath}.scopeSpans[{j}].spans[{k}]"
                try:
                    spans.append(Span(
                        path, _pb_id(s.trace_id, 16, f"{path}.traceId"),
                        _pb_id(s.span_id, 8, f"{path}.spanId"), s.start_time_unix_nano,
                        s.end_time_unix_nano, _pb_attrs(s.attributes), resource,
                        [(e.name, _pb_attrs(e.attributes)) for e in s.events]))
                except _Bad as exc:
                    bad.append((exc.path, exc.reason))
    return spans, bad, skipped


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
    if not body.strip():  # OTLP: an empty request is a success, as in protobuf
        return [], []
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
