"""A model's PII policy, applied to a text before anything is written.

``store`` keeps the text as sent; ``redact`` replaces each PII or secret span with its
category (``[email]``); ``hash`` with its category and a keyed hash (``[email:3f9a0c1d2e4b]``),
so one value can be followed across events without being readable. The key is random per
model and stays in the database. Spans come from the PII and secrets evaluators; without
the PII evaluator a ``redact`` or ``hash`` model's texts are not stored at all (the event
says why), never stored raw.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection

from aiwarden.errors import ParameterError
from aiwarden.llm.findings import Finding
from aiwarden.store import kv

__all__ = ["DEFAULT_POLICY", "POLICIES", "apply", "get_policy", "hash_key", "set_policy"]

POLICIES = ("store", "redact", "hash")
DEFAULT_POLICY = "redact"
_PRIVATE = ("pii", "secrets")  # evaluators whose spans are private values
_KEY = "llm.privacy."  # + model id: {"pii": policy}
_HASH_KEY = "llm.hash_key."  # + model id: the random HMAC key of the hash policy


def get_policy(conn: Connection, model_id: int) -> str:
    return (kv.get(conn, f"{_KEY}{model_id}") or {}).get("pii", DEFAULT_POLICY)


def set_policy(conn: Connection, model_id: int, policy: Any) -> str:
    if policy not in POLICIES:
        raise ParameterError(f"pii: expected one of {list(POLICIES)}, got {policy!r}.", "pii")
    kv.put(conn, f"{_KEY}{model_id}", {"pii": policy})
    return str(policy)


def hash_key(conn: Connection, model_id: int) -> bytes:
    """The model's HMAC key (made on first use; the first writer's wins)."""
    return bytes.fromhex(kv.put_if_absent(conn, f"{_HASH_KEY}{model_id}",
                                          secrets.token_hex(32)))


def _private_spans(findings: Sequence[Finding], field: str) -> list[tuple[int, int, str]]:
    spans = sorted((f.start, f.end, f.category) for f in findings
                   if f.evaluator in _PRIVATE and f.field == field and f.start >= 0
                   and f.end > f.start)
    merged: list[tuple[int, int, str]] = []
    for s, e, c in spans:  # overlapping spans become one
        if merged and s < merged[-1][1]:
            ps, pe, pc = merged[-1]
            merged[-1] = (ps, max(pe, e), pc)
        else:
            merged.append((s, e, c))
    return merged


def apply(text: str, findings: Sequence[Finding], field: str, policy: str,
          key: bytes = b"") -> tuple[str, list[Finding]]:
    """``text`` after ``policy`` and the findings of ``field`` with spans moved to point
    into the new text (a span inside a replaced value points at its replacement).

    Examples
    --------
    >>> f = Finding("pii", "email", "output", 8, 17, 1.0)
    >>> apply("mail me a@b.co.uk now", [f], "output", "redact")[0]
    'mail me [email] now'
    """
    mine = [f for f in findings if f.field == field]
    if policy == "store":
        return text, mine
    spans = _private_spans(mine, field)
    if not spans:
        return text, mine
    parts, shifts, pos = [], [], 0  # shifts: (old start, old end, new start, new end)
    out_len = 0
    for s, e, cat in spans:
        parts.append(text[pos:s])
        out_len += s - pos
        if policy == "hash":
            digest = hmac.new(key, text[s:e].encode(), hashlib.sha256).hexdigest()[:12]
            rep = f"[{cat}:{digest}]"
        else:
            rep = f"[{cat}]"
        parts.append(rep)
        shifts.append((s, e, out_len, out_len + len(rep)))
        out_len += len(rep)
        pos = e
    parts.append(text[pos:])

    def move(p: int, is_end: bool) -> int:
        delta = 0
        for s, e, ns, ne in shifts:
            if p >= e:  # after this replacement: shifted by its change of length
                delta = ne - e
            elif p < s or (is_end and p == s):  # before it
                break
            else:  # inside a replaced value: its replacement's edge
                return ne if is_end else ns
        return p + delta

    moved = [f if f.start < 0 else replace(f, start=move(f.start, False), end=move(f.end, True))
             for f in mine]
    return "".join(parts), moved
