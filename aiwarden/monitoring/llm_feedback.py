"""Late user feedback on LLM events, joined by request id exactly like labels.

A feedback row ``{request_id, score, comment}`` is stored as the event's label (the score
as text), so the label join finds it whichever arrives first and feedback for an event not
seen yet is held and counted (``labels_pending``) like an early label. When it joins, the
score is added (count, sum, max) to the event's own time bucket and its segments' as the
``llm_feedback`` gauge, so ``feedback_mean`` is a rule stat. The comment goes to the
``llm_feedback`` table after the model's PII policy.
"""

from __future__ import annotations

import math
import time
from typing import Any

import pyarrow as pa
from sqlalchemy import select

from aiwarden.errors import DataError
from aiwarden.llm.descriptors import FEEDBACK
from aiwarden.monitoring import llm_privacy
from aiwarden.monitoring.bucket import MAX_GAUGE, BucketData
from aiwarden.store.tables import llm_feedback

__all__ = ["MAX_COMMENT", "feedback_partial", "feedback_table", "ingest_llm_feedback"]

MAX_COMMENT = 4000


def feedback_table(label_text: list[str]) -> pa.Table:
    """The feedback scores (stored as label text) as the ``llm_feedback`` column."""
    return pa.table({FEEDBACK: pa.array([float(v) for v in label_text], pa.float64())})


def feedback_partial(table: pa.Table) -> BucketData:
    """Joined feedback as a bucket partial: ``resources["llm_feedback"] = (count, sum,
    max)``, merged across buckets like a gauge, and counted as labels."""
    x = table.column(FEEDBACK).to_numpy()
    return BucketData(labels=len(x), resources={FEEDBACK: (float(len(x)), float(x.sum()),
                                                           float(x.max()))})


def _check(rows: list[Any]) -> tuple[list[tuple[int, str, float, str | None]],
                                      list[dict[str, Any]]]:
    good, errors = [], []
    for i, r in enumerate(rows):
        rid = r.get("request_id") if isinstance(r, dict) else None

        def bad(field: str, reason: str, i: int = i, rid: Any = rid) -> None:
            errors.append({"row": i, "request_id": rid if isinstance(rid, str) else None,
                           "field": field, "reason": reason})

        if not isinstance(r, dict):
            bad("row", "expected an object {request_id, score, comment}")
            continue
        unknown = sorted(set(r) - {"request_id", "score", "comment"})
        score, comment = r.get("score"), r.get("comment")
        if unknown:
            bad(unknown[0], "unknown field; feedback has request_id, score, comment")
        elif not isinstance(rid, str) or not rid or len(rid) > 200:
            bad("request_id", "required: the event's request id (1-200 characters)")
        elif isinstance(score, bool) or not isinstance(score, int | float) \
                or not math.isfinite(score) or abs(score) > MAX_GAUGE:
            bad("score", f"required: a finite number from {-MAX_GAUGE:g} to {MAX_GAUGE:g}, "
                         f"got {score!r}")
        elif comment is not None and not isinstance(comment, str):
            bad("comment", f"expected text, got {type(comment).__name__}")
        elif comment is not None and len(comment) > MAX_COMMENT:
            bad("comment", f"at most {MAX_COMMENT} characters, got {len(comment)}")
        else:
            good.append((i, rid, float(score), comment))
    return good, errors


def ingest_llm_feedback(monitor: Any, model: str, rows: list[Any]) -> dict[str, Any]:
    """Store feedback (first per request id wins) and join it like labels."""
    from aiwarden.monitoring.llm_ingest import _check_task, evaluate_comments

    m = monitor.model(model)
    _check_task(m)
    if not isinstance(rows, list):
        raise DataError("Expected a list of feedback objects.", "rows")
    good, errors = _check(rows)
    if good:  # the ids as the events were stored, after the privacy policy
        with monitor.db.write(m.id) as conn:
            ids = llm_privacy.stored_ids(conn, m.id, [g[1] for g in good])
        good = [(i, rid, s, c) for (i, _, s, c), rid in zip(good, ids, strict=True)]
    seen: set[str] = set()
    good = [g for g in good if not (g[1] in seen or seen.add(g[1]))]
    now = time.time()
    comments, withheld = evaluate_comments(monitor.db, m, [g[3] for g in good])
    with monitor.db.write(m.id) as conn:
        ids = [g[1] for g in good]
        have: set[str] = set()
        for i in range(0, len(ids), 1000):
            have.update(conn.execute(select(llm_feedback.c.request_id).where(
                llm_feedback.c.model_id == m.id,
                llm_feedback.c.request_id.in_(ids[i:i + 1000]))).scalars())
        recs = [{"model_id": m.id, "request_id": g[1], "score": g[2], "comment": c,
                 "received_at": now} for g, c in zip(good, comments, strict=True)
                if g[1] not in have]
        if recs:
            conn.execute(llm_feedback.insert(), recs)
    result = monitor.log_labels(model, [{"prediction_id": g[1], "label": repr(g[2])}
                                        for g in good]) if good else None
    out = {"received": len(rows), "rejected": len(errors),
           "joined": result.joined if result else 0, "pending": result.pending if result else 0,
           "duplicates": (len(rows) - len(errors) - len(good))
           + (result.duplicates if result else 0), "errors": errors[:100]}
    if withheld:
        out["withheld"] = withheld
    return out
