"""Auditing a dataset's texts with the LLM evaluators: unsafe, PII, secret and injection rows.

The seed's moral is "sanitize your training data": the same evaluators that judge a live
response audit a fine-tuning or prompt dataset, from the command line (``aiwarden audit
text``) and as a gate of a retraining run (``training.gates.text_audit_gate``). PII and
secret values never leave redacted.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["DEFAULT_EVALUATORS", "audit_texts", "load_evaluators_named"]

#: Evaluators an audit runs unless told otherwise (those that are installed).
DEFAULT_EVALUATORS = ("safety", "pii", "secrets", "injection")
_EXCERPT = 100
_SPACES = re.compile(r"\s+")


def load_evaluators_named(names: list[str]) -> tuple[list[Any], dict[str, str]]:
    """One instance per evaluator name (the one reading outputs, or inputs for injection)."""
    from aiwarden.llm.descriptors import load_evaluators

    found, missing = load_evaluators()
    chosen: dict[str, Any] = {}
    for ev in found:
        if ev.name in names and ev.name not in chosen:
            chosen[ev.name] = ev
    unknown = [n for n in names if n not in chosen and n not in missing]
    if unknown:
        valid = sorted({e.name for e in found} | set(missing))
        raise ValueError(f"unknown evaluator {', '.join(unknown)}; choose from "
                         f"{', '.join(valid)}")
    return [chosen[n] for n in names if n in chosen], {n: missing[n] for n in names
                                                        if n in missing}


def audit_texts(columns: dict[str, list[Any]], evaluators: list[Any]) -> dict[str, Any]:
    """Findings per row and column of ``columns`` (name → values; None/empty skipped; chat
    ``messages`` lists read as ``role: content`` lines).

    Returns the JSON-ready report: ``rows``, ``rows_flagged``, ``counts`` (category →
    findings), ``findings`` (one entry per row and column with its categories, spans and a
    redacted excerpt).
    """
    from aiwarden.llm.redact import redact

    n_rows = len(next(iter(columns.values()))) if columns else 0
    counts: dict[str, int] = {}
    entries: list[dict[str, Any]] = []
    flagged: set[int] = set()
    for col, values in columns.items():
        all_texts = [_as_text(v) for v in values]
        idx = [i for i, t in enumerate(all_texts) if t]
        texts = [all_texts[i] for i in idx]
        per_text: list[list[Any]] = [[] for _ in texts]
        for ev in evaluators:
            for k, fs in enumerate(ev.evaluate(texts)):
                per_text[k].extend(fs)
        for k, fs in enumerate(per_text):
            if not fs:
                continue
            i = idx[k]
            flagged.add(i)
            for f in fs:
                counts[f.category] = counts.get(f.category, 0) + 1
            entries.append({
                "row": i + 1, "column": col,
                "categories": sorted({f"{f.evaluator}:{f.category}" for f in fs}),
                "findings": [{"evaluator": f.evaluator, "category": f.category,
                              "span": [f.start, f.end], "severity": f.severity}
                             for f in fs],
                "excerpt": _excerpt(redact(texts[k], fs), fs),
            })
    entries.sort(key=lambda e: (e["row"], e["column"]))
    return {"rows": n_rows, "rows_flagged": len(flagged),
            "counts": dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
            "findings": entries}


def _as_text(value: Any) -> str:
    """A cell as the text audited: chat ``messages`` lists (the fine-tuning format) as
    ``role: content`` lines, other non-strings as ``str``; None as ''."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(m, dict) and "content" in m
                                                 for m in value):
        return "\n".join(f"{m.get('role') or 'message'}: {m.get('content') or ''}"
                          for m in value)
    return str(value)


def _excerpt(redacted: str, findings: list[Any]) -> str:
    """Up to 100 characters of the redacted text (whitespace collapsed) around the first
    finding. Text before the first span is unchanged by redaction, so its offset holds."""
    first = min((f.start for f in findings if f.start >= 0), default=0)
    before = _SPACES.sub(" ", redacted[:first])
    text = before + _SPACES.sub(" ", redacted[first:])
    if len(text) <= _EXCERPT:
        return text.strip()
    start = max(0, min(len(before) - 30, len(text) - _EXCERPT))
    cut = text[start:start + _EXCERPT].strip()
    return ("…" if start else "") + cut + ("…" if start + _EXCERPT < len(text) else "")
