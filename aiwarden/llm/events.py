"""LLM events as sent (REST rows, SDK, OTLP spans mapped): checked field by field.

An event is one JSON object (docs/llm.md)::

    {"request_id": "r1", "timestamp": 1733400000.0 | "2026-12-05T18:00:00Z",
     "version": "v2", "input": [{"role": "user", "content": "..."}] | "...",
     "output": "...", "provider": "openai", "model": "gpt-4o-mini",
     "tokens_in": 12, "tokens_out": 80, "latency_ms": 420.0, "cost": 0.0004,
     "session_id": "s1", "tags": {"locale": "fr"}, "context": ["..."],
     "embedding": [0.1, ...], "finish_reason": "stop"}

Only ``request_id`` and ``output`` are required. A bad field rejects its row with an error
naming the row and the field; a text longer than :data:`MAX_TEXT_CHARS` is cut there and the
event says so (``truncated_input`` / ``truncated_output``), never refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiwarden._plausible import MAX_MAGNITUDE

__all__ = ["MAX_CONTEXT_ITEMS", "MAX_EMBEDDING", "MAX_TAGS", "MAX_TEXT_CHARS", "EventError",
           "LLMEvent", "input_text", "parse_events"]

#: Characters kept of each text (the input messages together, the output, each context
#: passage); the rest is cut and the event flagged. 32 k characters is ~8 k tokens.
MAX_TEXT_CHARS = 32_768
MAX_CONTEXT_ITEMS = 50
MAX_TAGS = 50
MAX_EMBEDDING = 4096
_MAX_ID = 200
_MAX_TAG_VALUE = 200
_MAX_FINISH_REASON = 40
_RESERVED_TAGS = ("prediction_id", "timestamp", "version", "latency_ms", "error")
_ROLES = ("system", "user", "assistant", "tool", "function", "developer")


@dataclass
class LLMEvent:
    """One checked event; texts already cut to :data:`MAX_TEXT_CHARS`."""

    request_id: str
    output: str
    messages: list[dict[str, str]] = field(default_factory=list)
    timestamp: float | None = None
    version: str | None = None
    provider: str | None = None
    model: str | None = None
    tokens_in: float | None = None
    tokens_out: float | None = None
    latency_ms: float | None = None
    cost: float | None = None
    session_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    context: list[str] = field(default_factory=list)
    embedding: list[float] | None = None
    truncated_input: bool = False
    truncated_output: bool = False
    input_chars: int = 0  # before cutting
    output_chars: int = 0
    tokens_estimated: bool = False  # counted on ingest (aiwarden.llm.tokens), not sent
    cost_source: str | None = None  # "sent" | "price_table" (aiwarden.llm.prices)
    cost_reason: str | None = None  # why no cost could be computed
    finish_reason: str | None = None  # the provider's, e.g. "stop", "length"
    _input_cache: tuple[int, list[dict[str, str]], str] | None = field(
        default=None, init=False, repr=False, compare=False)

    @property
    def input(self) -> str:
        """:func:`input_text` of the messages, built once per messages list (evaluators
        and the privacy policy read it several times per event)."""
        c = self._input_cache
        if c is not None and c[1] is self.messages and c[0] == len(self.messages):
            return c[2]
        text = input_text(self.messages)
        self._input_cache = (len(self.messages), self.messages, text)
        return text

    @property
    def provider_model(self) -> str | None:
        if self.model and self.provider:
            return f"{self.provider}/{self.model}"
        return self.model or self.provider


@dataclass(frozen=True)
class EventError:
    row: int
    field: str
    reason: str
    request_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "request_id": self.request_id, "field": self.field,
                "reason": self.reason}


class _Bad(Exception):
    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field_name, reason


def input_text(messages: Sequence[Mapping[str, str]]) -> str:
    """The messages as one text the input evaluators read: ``role: content`` lines."""
    if len(messages) == 1 and messages[0].get("role") == "user":
        return messages[0]["content"]
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages)


def parse_events(rows: Sequence[Any], *, max_chars: int = MAX_TEXT_CHARS
                 ) -> tuple[list[tuple[int, LLMEvent]], list[EventError]]:
    """``(row position, event)`` of the good rows and one error per bad row.

    Examples
    --------
    >>> ok, bad = parse_events([{"request_id": "a", "output": "hi", "tokens_out": -1}])
    >>> ok, bad[0].field, bad[0].reason
    ([], 'tokens_out', 'expected a number from 0 to 1e+18, got -1')
    """
    good, errors = [], []
    for i, row in enumerate(rows):
        rid = row.get("request_id") if isinstance(row, dict) else None
        try:
            good.append((i, _event(row, max_chars)))
        except _Bad as exc:
            errors.append(EventError(i, exc.field, exc.reason,
                                     rid if isinstance(rid, str) else None))
    return good, errors


def _event(row: Any, max_chars: int) -> LLMEvent:
    if not isinstance(row, dict):
        raise _Bad("row", f"expected an event object, got {type(row).__name__}")
    unknown = sorted(set(row) - _FIELDS)
    if unknown:
        raise _Bad(unknown[0], f"unknown field; an event has {sorted(_FIELDS)}")
    rid = _text(row, "request_id", required=True, limit=_MAX_ID)
    if row.get("output") is None:
        raise _Bad("output", "required: the response text (\"\" for an empty one)")
    output = _text(row, "output", required=True)
    messages = _messages(row.get("input"))
    ev = LLMEvent(request_id=rid, output=output, messages=messages,
                  timestamp=_time(row.get("timestamp")),
                  version=_text(row, "version", limit=_MAX_ID),
                  provider=_text(row, "provider", limit=_MAX_ID),
                  model=_text(row, "model", limit=_MAX_ID),
                  tokens_in=_number(row, "tokens_in"), tokens_out=_number(row, "tokens_out"),
                  latency_ms=_number(row, "latency_ms"), cost=_number(row, "cost"),
                  session_id=_text(row, "session_id", limit=_MAX_ID),
                  tags=_tags(row.get("tags")), context=_context(row.get("context")),
                  embedding=_embedding(row.get("embedding")),
                  finish_reason=_finish_reason(row.get("finish_reason")))
    ev.output_chars = len(output)
    if len(output) > max_chars:
        ev.output, ev.truncated_output = output[:max_chars], True
    ev.input_chars = len(ev.input)
    if ev.input_chars > max_chars:
        ev.messages, ev.truncated_input = _cut(messages, max_chars), True
    cut = [c[:max_chars] for c in ev.context]
    ev.truncated_input |= cut != ev.context
    ev.context = cut
    return ev


_FIELDS = {"request_id", "timestamp", "version", "input", "output", "provider", "model",
           "tokens_in", "tokens_out", "latency_ms", "cost", "session_id", "tags", "context",
           "embedding", "finish_reason"}


def _text(row: dict, name: str, *, required: bool = False, limit: int | None = None
          ) -> Any:
    v = row.get(name)
    if v is None:
        if required:
            raise _Bad(name, "required")
        return None
    if not isinstance(v, str):
        raise _Bad(name, f"expected text, got {type(v).__name__}")
    if required and name == "request_id" and not v:
        raise _Bad(name, "required: a non-empty request id")
    if limit is not None and len(v) > limit:
        raise _Bad(name, f"at most {limit} characters, got {len(v)}")
    return v


def _finish_reason(v: Any) -> str | None:
    """The provider's finish reason: a short word ("stop", "length", "content_filter")."""
    if v is None:
        return None
    if not isinstance(v, str) or not v.strip() or len(v) > _MAX_FINISH_REASON:
        raise _Bad("finish_reason", f"expected a short text (1 to {_MAX_FINISH_REASON} "
                   f"characters) such as 'stop' or 'length', got {_shown(v)}")
    return v.strip()


def _number(row: dict, name: str) -> float | None:
    v = row.get(name)
    if v is None:
        return None
    # summed into the window: bounded as gauges are (NaN, inf and huge ints fail the range)
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= MAX_MAGNITUDE:
        raise _Bad(name, f"expected a number from 0 to {MAX_MAGNITUDE:g}, got {_shown(v)}")
    return float(v)


def _shown(v: Any) -> str:
    """A bad value as an error shows it: numbers and short words as they are, anything
    longer only by its type (an error must not echo text that may hold PII)."""
    if isinstance(v, int | float | bool) or v is None:
        return repr(v)
    if isinstance(v, str) and len(v) <= 40 and "@" not in v:
        return repr(v)
    return f"a {type(v).__name__} of {len(v) if hasattr(v, '__len__') else '?'} items" \
        if not isinstance(v, str) else f"a text of {len(v)} characters"


def _time(v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    if isinstance(v, str):
        try:
            dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if dt.tzinfo is None:
                raise _Bad("timestamp", f"a time zone is needed (e.g. add Z), got {_shown(v)}")
            return dt.timestamp()
    raise _Bad("timestamp", f"expected epoch seconds or an ISO 8601 time, got {_shown(v)}")


def _messages(v: Any) -> list[dict[str, str]]:
    if v is None:
        return []
    if isinstance(v, str):
        return [{"role": "user", "content": v}]
    if not isinstance(v, list):
        raise _Bad("input", f"expected text or a list of messages, got {type(v).__name__}")
    out = []
    for j, m in enumerate(v):
        where = f"input[{j}]"
        if not isinstance(m, dict):
            raise _Bad(where, "expected a message object {\"role\", \"content\"}")
        role, content = m.get("role", "user"), m.get("content")
        if role not in _ROLES:
            raise _Bad(f"{where}.role", f"expected one of {list(_ROLES)}, got {_shown(role)}")
        if isinstance(content, list):  # OpenAI content parts: keep the text parts
            content = "".join(p.get("text", "") for p in content
                              if isinstance(p, dict) and isinstance(p.get("text"), str))
        if content is None:
            content = ""
        if not isinstance(content, str):
            raise _Bad(f"{where}.content", f"expected text, got {type(content).__name__}")
        out.append({"role": role, "content": content})
    return out


def _cut(messages: list[dict[str, str]], max_chars: int) -> list[dict[str, str]]:
    """The messages, the last ones kept whole first (the turn that produced the output),
    the earliest cut, until their text fits ``max_chars``."""
    out: list[dict[str, str]] = []
    room = max_chars
    for m in reversed(messages):
        if room <= 0:
            break
        content = m["content"] if len(m["content"]) <= room else m["content"][-room:]
        out.append({"role": m["role"], "content": content})
        room -= len(content) + len(m["role"]) + 3
    out.reverse()
    while out and len(input_text(out)) > max_chars:  # the role prefixes pushed it over
        first = out[0]
        excess = len(input_text(out)) - max_chars
        if len(first["content"]) > excess:
            out[0] = {"role": first["role"], "content": first["content"][excess:]}
        else:
            out.pop(0)
    return out


def _tags(v: Any) -> dict[str, str]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise _Bad("tags", f"expected an object of name: value, got {type(v).__name__}")
    if len(v) > MAX_TAGS:
        raise _Bad("tags", f"at most {MAX_TAGS} tags, got {len(v)}")
    out = {}
    for k, x in v.items():
        if k in _RESERVED_TAGS or str(k).startswith("llm_"):
            raise _Bad(f"tags.{k}", "this name is reserved for the event's own columns; "
                       "rename the tag")
        if isinstance(x, bool):
            x = "true" if x else "false"
        elif isinstance(x, int | float) and math.isfinite(x):
            x = str(int(x)) if float(x).is_integer() else str(x)
        if x is None:
            continue
        if not isinstance(x, str):
            raise _Bad(f"tags.{k}", f"expected text, a number or a boolean, got "
                       f"{type(x).__name__}")
        if len(x) > _MAX_TAG_VALUE:
            raise _Bad(f"tags.{k}", f"at most {_MAX_TAG_VALUE} characters, got {len(x)}")
        out[str(k)] = x
    return out


def _context(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list):
        raise _Bad("context", f"expected a list of passages, got {type(v).__name__}")
    if len(v) > MAX_CONTEXT_ITEMS:
        raise _Bad("context", f"at most {MAX_CONTEXT_ITEMS} passages, got {len(v)}")
    for j, x in enumerate(v):
        if not isinstance(x, str):
            raise _Bad(f"context[{j}]", f"expected text, got {type(x).__name__}")
    return list(v)


def _embedding(v: Any) -> list[float] | None:
    if v is None:
        return None
    if not isinstance(v, list) or not v:
        raise _Bad("embedding", "expected a non-empty list of numbers")
    if len(v) > MAX_EMBEDDING:
        raise _Bad("embedding", f"at most {MAX_EMBEDDING} numbers, got {len(v)}")
    if not all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
               for x in v):
        raise _Bad("embedding", "expected finite numbers only")
    return [float(x) for x in v]
