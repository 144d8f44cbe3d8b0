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

import contextlib
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from aiwarden.llm._otlp_decode import (
    DECIDING,
    INSTALL_HINT,
    JSON,
    PROTOBUF,
    OTLPError,
    OTLPUnavailable,
    Span,
    _Bad,
    _pb,
    decode,
    decode_relevant,
)

__all__ = ["DECIDING", "INSTALL_HINT", "JSON", "LLM_OPERATIONS", "PROTOBUF", "Mapped", "OTLPError",
           "OTLPUnavailable", "Span", "decode", "export_response", "map_spans", "read"]

#: ``gen_ai.operation.name`` values that are one model call producing text.
LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "completion"})
_MAX_CONTEXT = 50  # passages kept per event (aiwarden.llm.events.MAX_CONTEXT_ITEMS)
_ROLE_ALIASES = {"human": "user", "ai": "assistant", "model": "assistant", "bot": "assistant"}
_ROLES = frozenset({"system", "user", "assistant", "tool", "function", "developer"})
_INDEXED = re.compile(r"^(llm\.input_messages|llm\.output_messages|gen_ai\.prompt|"
                      r"gen_ai\.completion|retrieval\.documents)\.(\d+)\.(.+)$")


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


# ----------------------------------------------------------------------------- mapping

def read(body: bytes, content_type: str | None, content_encoding: str | None = None, *,
         max_bytes: int = 64 * 2**20, default_model: str | None = None
         ) -> tuple[int, list[tuple[str, str]], Mapped]:
    """Decode and map a request as the route does: ``(spans in it, rejected, mapped)``.

    Protobuf spans that cannot be LLM calls nor retrievers are counted as skipped without
    being read into :class:`Span` objects (:func:`decode_relevant`); the answer is the same
    as :func:`decode` then :func:`map_spans`.
    """
    spans, bad, skipped = decode_relevant(body, content_type, content_encoding,
                                          max_bytes=max_bytes)
    mapped = map_spans(spans, default_model=default_model)
    mapped.skipped += skipped
    return len(spans) + len(bad) + skipped, bad + mapped.rejected, mapped


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
    read: dict[str, Any] = {}  # gen_ai.output.messages parsed once (finish reason, output)
    _put(row, "finish_reason", _finish_reason(a, p, read))
    tags = {k[13:]: v for d in (r, a) for k, v in d.items()
            if k.startswith("aiwarden.tag.") and v is not None}
    if tags:
        row["tags"] = tags
    messages = _input_messages(s)
    if messages:
        row["input"] = messages
    output = _output_text(s, read)
    if output is None and a.get("error.type") is not None:
        raise _Failed  # the call failed: there is no answer to evaluate
    if output is None:
        raise _Bad(f"{p}.attributes[gen_ai.output.messages]", "no output text on this LLM "
                   "span: turn on content capture in the instrumentation (e.g. OTEL_"
                   "INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true)")
    row["output"] = output
    return model, row


def _finish_reason(a: dict[str, Any], p: str, read: dict[str, Any]) -> str | None:
    """The first choice's finish reason: ``gen_ai.response.finish_reasons`` (a string
    array, one per choice), else the first output message's ``finish_reason``."""
    key = "gen_ai.response.finish_reasons"
    v = a.get(key)
    if isinstance(v, list | tuple):
        v = v[0] if v else None
    if v is not None:
        if not isinstance(v, str):
            raise _Bad(_where(p, key), f"expected a string array, got {type(v).__name__}")
        return v or None
    msgs = _output_messages(a, p, read)
    reason = msgs[0].get("finish_reason") if msgs else None
    return reason if isinstance(reason, str) and reason else None


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


def _output_messages(a: dict[str, Any], p: str, read: dict[str, Any]
                     ) -> list[dict[str, Any]] | None:
    """``gen_ai.output.messages``, parsed at most once per span (``read`` keeps it)."""
    if "output" not in read:
        read["output"] = _genai_messages(a, "gen_ai.output.messages", p)
    return read["output"]


def _output_text(s: Span, read: dict[str, Any]) -> str | None:
    """The first choice's text, or None when the span carries no output content."""
    a, p = s.attributes, s.path
    msgs = _output_messages(a, p, read)
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
