"""Apply a privacy policy to a text given its PII/secret findings, before anything is written.

Policies (per model):

* ``store``: the text unchanged;
* ``redact``: each span replaced by its category, ``[EMAIL]``, ``[CARD]``, ``[API_KEY]``...;
* ``hash``: each span replaced by ``[EMAIL:ab12cd34]``, the first 8 hex digits of the keyed
  HMAC-SHA256 of the value (separators removed, e-mails lower-cased) under a server secret, so
  equal values stay joinable across events while the value cannot be looked up without the key.

Overlapping spans are merged into one replacement labelled with the category of the most
severe finding among them. Whole-text findings (span -1/-1) and findings of other evaluators
(safety, refusal...) are ignored: only ``pii`` and ``secrets`` spans hold values to hide.

Examples
--------
>>> from aiwarden.llm.findings import Finding
>>> text = "mail bob@example.com now"
>>> f = [Finding("pii", "email", "output", 5, 20, 0.7)]
>>> redact(text, f)
'mail [EMAIL] now'
>>> redact(text, f, policy="hash", secret="k") == redact("mail BOB@example.com now", f,
...                                                      policy="hash", secret="k")
True
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiwarden.errors import ParameterError, check_param
from aiwarden.llm.findings import Finding

__all__ = ["POLICIES", "REDACTED_EVALUATORS", "redact", "redact_tags"]

POLICIES = ("store", "redact", "hash")
#: Evaluators whose spans are values to hide.
REDACTED_EVALUATORS = ("pii", "secrets")
_SEPARATORS = str.maketrans("", "", " -.()/")


def _normal(category: str, value: str) -> str:
    """The form hashed: equal values written differently hash the same."""
    if category == "email":
        return value.strip().lower()
    if category in ("card", "iban", "phone", "ssn"):
        return value.translate(_SEPARATORS).upper()
    return value


def _label(category: str, value: str, policy: str, key: bytes) -> str:
    tag = category.upper()
    if policy == "redact":
        return f"[{tag}]"
    digest = hmac.new(key, _normal(category, value).encode("utf-8"), hashlib.sha256).hexdigest()
    return f"[{tag}:{digest[:8]}]"


def redact(text: str, findings: Iterable[Finding], policy: str = "redact",
           secret: str | bytes | None = None,
           evaluators: tuple[str, ...] = REDACTED_EVALUATORS) -> str:
    """``text`` with the spans of ``findings`` replaced according to ``policy``.

    Parameters
    ----------
    text : str
        The text the findings were computed on (spans index its characters).
    findings : iterable of Finding
        Findings for this text; only those of ``evaluators`` with a span are applied.
    policy : {"store", "redact", "hash"}
    secret : str or bytes, optional
        The HMAC key; required for ``hash`` (keep it on the server, e.g. the session secret).
    evaluators : tuple of str
        Which evaluators' spans to replace (default ``("pii", "secrets")``).
    """
    check_param(policy in POLICIES, "policy", "redact", f"one of {POLICIES}", policy)
    if policy == "store":
        return text
    key = b""
    if policy == "hash":
        check_param(bool(secret), "secret", "redact", "a non-empty key when policy='hash'",
                    secret)
        key = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret or b"")
    spans = []
    for f in findings:
        if f.evaluator not in evaluators or f.whole_text:
            continue
        if not 0 <= f.start < f.end <= len(text):
            raise ParameterError(f"The finding span [{f.start}, {f.end}) of category "
                                 f"{f.category!r} is outside the text of {len(text)} characters.")
        spans.append((f.start, f.end, f.severity, f.category))
    if not spans:
        return text
    spans.sort()
    merged: list[list] = []  # [start, end, severity, category]
    for s, e, sev, cat in spans:
        if merged and s < merged[-1][1]:
            last = merged[-1]
            last[1] = max(last[1], e)
            if sev > last[2]:
                last[2], last[3] = sev, cat
        else:
            merged.append([s, e, sev, cat])
    out, pos = [], 0
    for s, e, _, cat in merged:
        out.append(text[pos:s])
        out.append(_label(cat, text[s:e], policy, key))
        pos = e
    out.append(text[pos:])
    return "".join(out)


def redact_tags(tags: Sequence[Mapping[str, str]], evaluators: Sequence[Any],
                policy: str = "redact", secret: str | bytes | None = None
                ) -> list[dict[str, str]]:
    """Each event's tags with the PII and secret spans of their values replaced per
    ``policy``, as :func:`redact` does for texts.

    Tags are stored with the event and become segment columns (profiles, slices, the
    dashboard's segment filter), so a tag that holds an e-mail or a card number is PII like
    any text. Under ``hash`` equal values keep equal labels, so a segment stays one segment.

    Parameters
    ----------
    tags : sequence of mappings
        One ``{name: value}`` per event.
    evaluators : sequence
        Evaluator instances (``evaluate(texts)``); those named in :data:`REDACTED_EVALUATORS`
        are run on the values, the others ignored.
    policy, secret
        As for :func:`redact`.

    Examples
    --------
    >>> from aiwarden.llm.evaluators.pii import PiiEvaluator
    >>> redact_tags([{"locale": "fr", "user": "bob@example.com"}], [PiiEvaluator()])
    [{'locale': 'fr', 'user': '[EMAIL]'}]
    """
    check_param(policy in POLICIES, "policy", "redact_tags", f"one of {POLICIES}", policy)
    check_param(policy != "hash" or bool(secret), "secret", "redact_tags",
                "a non-empty key when policy='hash'", secret)
    out = [dict(t) for t in tags]
    if policy == "store":
        return out
    where = [(i, k) for i, t in enumerate(out) for k, v in t.items() if v]
    if not where:
        return out
    values = [out[i][k] for i, k in where]
    found: list[list[Finding]] = [[] for _ in values]
    for ev in evaluators:
        if getattr(ev, "name", None) in REDACTED_EVALUATORS:
            for acc, fs in zip(found, ev.evaluate(values), strict=True):
                acc += fs
    for (i, k), v, fs in zip(where, values, found, strict=True):
        if fs:
            out[i][k] = redact(v, fs, policy, secret)
    return out
