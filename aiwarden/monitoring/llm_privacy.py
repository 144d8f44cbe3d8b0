"""A model's PII policy, applied to a text before anything is written.

``store`` keeps the text as sent; ``redact`` replaces each PII or secret span with its
category (``[EMAIL]``); ``hash`` with its category and a keyed hash (``[EMAIL:3f9a0c1d]``),
so one value can be followed across events without being readable
(:func:`aiwarden.llm.redact.redact` does the replacing; this module keeps the policy per
model and moves the findings' spans into the new text). The key is random per
model and stays in the database. Spans come from the PII and secrets evaluators; without
the PII evaluator a ``redact`` or ``hash`` model's texts are not stored at all (the event
says why), never stored raw.

The policy covers an event's other free values too (:func:`protect_events`): tag values
(stored, and segment columns) are redacted or hashed like texts. ``request_id`` and
``session_id`` are identifiers: a request id is the join key of late feedback and a session
id groups a conversation, so under both ``redact`` and ``hash`` the PII in them becomes the
keyed hash label (``[EMAIL:3f9a0c1d]``): the same id sent again (feedback, a lookup, a
duplicate) maps to the same stored id, and distinct ids stay distinct (:func:`private_ids`).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, select

from aiwarden.errors import ParameterError
from aiwarden.llm.findings import Finding
from aiwarden.llm.redact import POLICIES, REDACTED_EVALUATORS, redact, redact_tags
from aiwarden.store import kv
from aiwarden.store.tables import llm_events

__all__ = ["DEFAULT_POLICY", "POLICIES", "apply", "get_policy", "hash_key", "lookup_ids",
           "private_ids", "private_tags", "protect_events", "set_policy", "stored_ids"]

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


def policy_and_key(db: Any, model_id: int) -> tuple[str, bytes]:
    """The model's policy and, unless it is ``store``, its :func:`hash_key`, in one read
    transaction; a write only the first time (every ingest call needs both: a write
    transaction each call cost a commit)."""
    with db.read() as conn:
        policy = get_policy(conn, model_id)
        if policy == "store":
            return policy, b""
        have = kv.get(conn, f"{_HASH_KEY}{model_id}")
    if have is not None:
        return policy, bytes.fromhex(have)
    with db.write(model_id) as conn:
        return policy, hash_key(conn, model_id)


_MAX_ID = 200  # the id columns' width


@functools.lru_cache(maxsize=1)
def _private_evaluators() -> tuple[Any, ...]:
    """The PII and secrets evaluators, one instance each (their output-field one)."""
    from aiwarden.llm.descriptors import load_evaluators

    found, _ = load_evaluators()
    return tuple(e for e in found if e.name in REDACTED_EVALUATORS
                 and tuple(getattr(e, "fields", ("output",))) == ("output",))


def _can_find_pii() -> bool:
    return any(e.name == "pii" for e in _private_evaluators())


def _whole(value: str, key: bytes) -> str:
    """A whole id as one keyed hash: when its PII cannot be looked for, or its labelled
    form would not fit the column."""
    return f"[ID:{hmac.new(key, value.encode('utf-8'), hashlib.sha256).hexdigest()[:32]}]"


def _private_values(values: Sequence[str], policy: str, key: bytes) -> dict[str, str]:
    """Each distinct value after ``policy`` (ids and tag values repeat: each is looked at
    once), by :func:`aiwarden.llm.redact.redact_tags`."""
    distinct = list(dict.fromkeys(v for v in values if v))
    out = redact_tags([{"v": v} for v in distinct], _private_evaluators(), policy, key or None)
    return {v: o["v"] for v, o in zip(distinct, out, strict=True)}


def private_tags(tags: Sequence[Mapping[str, str]], policy: str, key: bytes = b""
                 ) -> list[dict[str, str]]:
    """Each event's tags with the PII in their values redacted or hashed per ``policy``;
    without the PII evaluator a ``redact`` or ``hash`` model keeps no tags (never raw)."""
    if policy == "store":
        return [dict(t) for t in tags]
    if not _can_find_pii():
        return [{} for _ in tags]
    done = _private_values([v for t in tags for v in t.values()], policy, key)
    return [{k: done.get(v, v) for k, v in t.items()} for t in tags]


def private_ids(ids: Sequence[str | None], policy: str, key: bytes) -> list[str | None]:
    """Identifiers (request or session ids) as stored under ``policy``: as sent under
    ``store``; else the PII in them replaced by its keyed hash label under both ``redact``
    and ``hash`` (a bare ``[EMAIL]`` would merge distinct ids), so one id always maps to one
    stored id of this model. ``key``: the model's :func:`hash_key`."""
    if policy == "store" or not any(ids):
        return list(ids)
    if not _can_find_pii():
        return [i if not i else _whole(i, key) for i in ids]
    done = _private_values([i for i in ids if i], "hash", key)
    out: list[str | None] = []
    for i in ids:
        v = done.get(i, i) if i else i
        out.append(_whole(i, key) if v and i and len(v) > _MAX_ID else v)
    return out


def protect_events(db: Any, model_id: int, events: Sequence[Any]) -> str:
    """Apply the model's policy to the events' tags, ``session_id`` and ``request_id`` in
    place (after evaluation, before anything is stored or profiled); the policy."""
    policy, key = policy_and_key(db, model_id)
    if policy == "store":
        return policy
    tags = private_tags([e.tags for e in events], policy, key)
    rids = private_ids([e.request_id for e in events], policy, key)
    sids = private_ids([e.session_id for e in events], policy, key)
    for e, t, r, s in zip(events, tags, rids, sids, strict=True):
        e.tags, e.request_id, e.session_id = t, r, s
    return policy


def stored_ids(conn: Connection, model_id: int, ids: Sequence[str]) -> list[str]:
    """The request ids late feedback joins with: each id's private form under the current
    policy, or the id itself when an event was stored with it (before a policy change)."""
    policy = get_policy(conn, model_id)
    if policy == "store" or not ids:
        return list(ids)
    private = private_ids(list(ids), policy, hash_key(conn, model_id))
    changed = [i for i, p in zip(ids, private, strict=True) if i != p]
    raw: set[str] = set()
    for n in range(0, len(changed), 1000):
        raw.update(conn.execute(select(llm_events.c.request_id).where(
            llm_events.c.model_id == model_id,
            llm_events.c.request_id.in_(changed[n:n + 1000]))).scalars())
    return [i if i in raw else str(p) for i, p in zip(ids, private, strict=True)]


def lookup_ids(conn: Connection, model_id: int, ids: Sequence[str]) -> list[str]:
    """The stored forms an id sent by a client may have: itself (stored under ``store``,
    or before a policy change) and its private form under the current policy."""
    policy = get_policy(conn, model_id)
    out = list(dict.fromkeys(ids))
    if policy != "store":
        raw = kv.get(conn, f"{_HASH_KEY}{model_id}")
        if raw:
            out += [p for p in private_ids(list(ids), policy, bytes.fromhex(raw))
                    if p and p not in out]
    return out


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
