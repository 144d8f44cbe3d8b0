"""The RCA's evidence for an LLM: the conversations behind each unsafe slice.

:func:`aiwarden.rca.analysis.failing_slices` searches a text-generation window's
descriptor rows with the engine's slice finder (``llm_unsafe`` as the error flag, the
version, tags and provider model as candidates), so a pair such as ``prompt_version = v7
and locale = de`` is named when it is significantly worse than each of its halves. This
module adds a few of each slice's unsafe conversations from ``llm_events``: their request
ids and an excerpt around the flagged phrase, with PII and secrets redacted whatever the
model's storage policy (an incident report travels further than the store).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
from sqlalchemy import select

from aiwarden.engine._slice_candidates import condition_mask
from aiwarden.engine.slices import Condition
from aiwarden.llm.findings import Finding
from aiwarden.monitoring import llm_privacy
from aiwarden.monitoring import rows as raw
from aiwarden.store import models_repo
from aiwarden.store.tables import llm_events

__all__ = ["excerpt", "with_examples"]

_UNSAFE = "llm_unsafe"
_CONTEXT = 60  # characters kept on each side of the flagged phrase


def excerpt(text: str | None, findings: list[dict[str, Any]], width: int = _CONTEXT) -> str:
    """``text`` around its first safety finding in the output, PII and secrets redacted.

    Examples
    --------
    >>> fs = [{"evaluator": "pii", "category": "email", "field": "output", "start": 9,
    ...        "end": 18, "severity": 1.0}, {"evaluator": "safety", "category": "self_harm",
    ...        "field": "output", "start": 23, "end": 36, "severity": 0.9}]
    >>> excerpt("write to a@b.co.uk and kill yourself now", fs)
    'write to [EMAIL] and kill yourself now'
    """
    if not text:
        return ""
    fs = [Finding(**{k: f[k] for k in ("evaluator", "category", "field", "start", "end",
                                       "severity")}) for f in findings]
    red, moved = llm_privacy.apply(text, fs, "output", "redact")
    spans = [f for f in moved if f.evaluator == "safety" and not f.whole_text]
    start, end = (spans[0].start, spans[0].end) if spans else (0, 0)
    a, b = max(0, start - width), min(len(red), end + width)
    return ("…" if a else "") + red[a:b] + ("…" if b < len(red) else "")


def _mask(rows: pa.Table, conditions: list[list[Any]]) -> np.ndarray:
    """Rows satisfying a slice's ``[feature, op, value]`` conditions (as the engine's
    ``Slice.mask`` computes them)."""
    out = np.ones(rows.num_rows, dtype=bool)
    for feature, op, value in conditions:
        cond = Condition(feature, op, tuple(value) if isinstance(value, list) else value)
        out &= condition_mask(rows.column(feature).combine_chunks(), cond)
    return out


def with_examples(monitor: Any, model: str, rows: pa.Table, suspects: list[Any],
                  examples: int = 3) -> list[Any]:
    """The slice suspects of an LLM's window (the slice finder on ``llm_unsafe``,
    :func:`aiwarden.rca.analysis.failing_slices`) with their unsafe conversations as
    evidence: ``prediction_ids`` (request ids, at most 20) and ``examples`` (request id and a
    redacted excerpt), the first ids named in the summary."""
    if _UNSAFE not in rows.column_names or not suspects:
        return suspects
    unsafe = np.asarray(rows.column(_UNSAFE).to_numpy(zero_copy_only=False), float) == 1
    ids = np.asarray(rows.column(raw.PID).to_pylist(), object)
    found = [[str(i) for i in ids[_mask(rows, x.evidence["conditions"]) & unsafe]]
             for x in suspects]
    texts = _conversations(monitor, model, [i for pids in found for i in pids[:examples]])
    out = []
    for x, pids in zip(suspects, found, strict=True):
        shown = [{"request_id": i, "excerpt": excerpt(*texts[i]) if i in texts else None}
                 for i in pids[:examples]]
        x.evidence.update(prediction_ids=pids[:20], unsafe_count=len(pids), examples=shown)
        named = f" (e.g. {', '.join(e['request_id'] for e in shown)})" if shown else ""
        out.append(replace(x, summary=f"unsafe answers concentrate in {x.summary}{named}"))
    return out


def _conversations(monitor: Any, model: str, ids: list[str]
                   ) -> dict[str, tuple[str | None, list[dict[str, Any]]]]:
    """request id -> (stored output, stored findings) of these events."""
    if not ids:
        return {}
    with monitor.db.read() as conn:
        m = models_repo.get_model(conn, model)
        found = conn.execute(select(llm_events.c.request_id, llm_events.c.output,
                                    llm_events.c.findings).where(
            llm_events.c.model_id == m.id, llm_events.c.request_id.in_(ids))).all()
    return {r.request_id: (r.output, orjson.loads(r.findings or "[]")) for r in found}
