"""A model's PII policy, applied to a text before anything is written.

``store`` keeps the text as sent; ``redact`` replaces each PII or secret span with its
category (``[EMAIL]``); ``hash`` with its category and a keyed hash (``[EMAIL:3f9a0c1d]``),
so one value can be followed across events without being readable
(:func:`aiwarden.llm.redact.redact` does the replacing; this module keeps the policy per
model and moves the findings' spans into the new text). The key is random per
model and stays in the database. Spans come from the PII and secrets evaluators; without
the PII evaluator a ``redact`` or ``hash`` model's texts are not stored at all (the event
says why), never stored raw.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection

from aiwarden.errors import ParameterError
from aiwarden.llm.findings import Finding
from aiwarden.llm.redact import POLICIES, REDACTED_EVALUATORS, redact
from aiwarden.store import kv

__all__ = ["DEFAULT_POLICY", "POLICIES", "apply", "get_policy", "hash_key", "set_policy"]

DEFAULT_POLICY = "redact"
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


def _groups(findings: Sequence[Finding]) -> list[tuple[int, int, list[Finding]]]:
    """The private spans merged where they overlap (as :func:`redact` merges them), each
    with its findings."""
    spans = sorted((f for f in findings if f.evaluator in REDACTED_EVALUATORS
                    and not f.whole_text and f.end > f.start), key=lambda f: (f.start, f.end))
    groups: list[tuple[int, int, list[Finding]]] = []
    for f in spans:
        if groups and f.start < groups[-1][1]:
            s, e, fs = groups[-1]
            groups[-1] = (s, max(e, f.end), [*fs, f])
        else:
            groups.append((f.start, f.end, [f]))
    return groups


def apply(text: str, findings: Sequence[Finding], field: str, policy: str,
          key: bytes = b"") -> tuple[str, list[Finding]]:
    """``text`` after ``policy`` (:func:`aiwarden.llm.redact.redact`) and the findings of
    ``field`` with spans moved to point into the new text (a span inside a replaced value
    points at its replacement).

    Examples
    --------
    >>> f = Finding("pii", "email", "output", 8, 17, 1.0)
    >>> apply("mail me a@b.co.uk now", [f], "output", "redact")[0]
    'mail me [EMAIL] now'
    """
    mine = [f for f in findings if f.field == field]
    if policy == "store":
        return text, mine
    groups = _groups(mine)
    if not groups:
        return text, mine
    parts, shifts, pos, out_len = [], [], 0, 0  # shifts: (old start, old end, new s, new e)
    for s, e, fs in groups:
        parts.append(text[pos:s])
        out_len += s - pos
        rep = redact(text[s:e], [replace(f, start=f.start - s, end=f.end - s) for f in fs],
                     policy, secret=key or None)
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

    moved = [f if f.whole_text else replace(f, start=move(f.start, False),
                                            end=move(f.end, True)) for f in mine]
    return "".join(parts), moved
