"""LLM events in: evaluate, store the conversation per the privacy policy, and feed the
descriptor rows through the ordinary tabular ingest (docs/llm.md).

The descriptor rows are events of the model's version like any other: profiles, drift,
quality, rules, segments (the event's tags), slices and RCA read them unchanged. The
conversation goes to ``llm_events`` (first write wins per request id, so a retried request
stores nothing twice), then the descriptor rows to the tabular ingest, which deduplicates by
the same id: a retry after a crash between the two completes both.
"""

from __future__ import annotations

import functools
import gc
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
from sqlalchemy import select

from aiwarden.engine.schema import Column, ColumnType, Role, Schema, Task
from aiwarden.errors import DataError, ParameterError
from aiwarden.llm import descriptors as desc
from aiwarden.llm.embeddings import EVENT_SOURCE, LocalEmbedder
from aiwarden.llm.events import LLMEvent, input_text, parse_events
from aiwarden.llm.findings import Finding
from aiwarden.monitoring import llm_cost, llm_eval_pool, llm_privacy, rows
from aiwarden.store import models_repo as repo
from aiwarden.store.tables import llm_events

__all__ = ["LLMIngestResult", "evaluate", "evaluate_comments", "fit_llm_reference",
           "ingest_llm_events", "llm_schema"]

_MAX_ERRORS = 100


@dataclass
class LLMIngestResult:
    received: int = 0
    accepted: int = 0  # descriptor rows taken by the tabular ingest
    duplicates: int = 0
    rejected: int = 0  # bad events: named in errors, nothing of them stored
    quarantined: int = 0  # good events whose descriptor row the tabular ingest quarantined
    stored: int = 0  # conversations written to llm_events
    flagged: int = 0
    truncated: int = 0
    labels_joined: int = 0  # feedback that was waiting for these events
    cost: dict[str, Any] = field(default_factory=dict)  # llm_cost.CostSummary.to_dict()
    privacy: str = llm_privacy.DEFAULT_POLICY
    withheld: str | None = None  # why texts were not stored
    errors: list[dict[str, Any]] = field(default_factory=list)
    absent_columns: dict[str, str] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)
    #: the operator's model-based evaluators that gave nothing for this request, and why
    evaluators_skipped: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in (
            "received", "accepted", "duplicates", "rejected", "quarantined", "stored",
            "flagged", "truncated", "labels_joined", "privacy")}
        out["errors"] = self.errors[:_MAX_ERRORS]
        if self.cost:
            out["cost"] = self.cost
        if self.withheld:
            out["withheld"] = self.withheld
        if self.absent_columns:
            out["absent_columns"] = self.absent_columns
        if self.evaluators_skipped:
            out["evaluators_skipped"] = self.evaluators_skipped
        if self.ignored_columns:
            out["ignored_columns"] = self.ignored_columns
        return out


@functools.lru_cache(maxsize=1)
def _evaluators() -> tuple[tuple[Any, ...], tuple[tuple[str, str], ...]]:
    found, missing = desc.load_evaluators()
    # what is loaded by now (the evaluators' tables and models, the server's modules) lives
    # as long as the process: out of the cyclic collector, whose full passes traversed it
    # all over again while an ingest batch allocated (bench/otlp_ingest.py: ~20 % of the
    # CPU of an all-LLM span)
    gc.freeze()
    return tuple(found), tuple(sorted(missing.items()))


def evaluate(events: Sequence[LLMEvent], workers: int | None = None,
             external: Sequence[Any] = ()
             ) -> tuple[list[list[Finding]], dict[str, np.ndarray], dict[str, str],
                        dict[str, str]]:
    """Findings per event, the descriptor columns, ``column → reason`` of those left out
    (their evaluator is missing or failed), and ``evaluator → reason`` of the operator's
    model-based evaluators (``external``, llm.evaluators.external) that gave nothing this
    time. ``workers``: evaluator processes a large batch is shared among (llm_eval_pool;
    None: AIWARDEN_LLM_EVAL_WORKERS, else one per core; 0: this process only). The
    external ones run here, in this thread: they wait on a model, not on the CPU."""
    found, missing = _evaluators()
    findings, ran, failed = llm_eval_pool.shared(workers).run(events, found)
    skipped: dict[str, str] = {}
    if external:
        more, _, skipped = desc.run_evaluators(events, external)
        findings = [[*a, *b] for a, b in zip(findings, more, strict=True)]
    why = dict(missing) | failed
    cols = desc.descriptors(events, findings, ran=ran)
    return findings, cols, desc.absent_columns(ran, why), skipped


def evaluate_comments(db: Any, m: repo.ModelRow, comments: list[str | None]
                      ) -> tuple[list[str | None], str | None]:
    """Feedback comments after the model's PII policy (``None`` kept), and why they were
    withheld when the policy cannot be applied."""
    with db.read() as conn:
        policy = llm_privacy.get_policy(conn, m.id)
    if policy == "store" or not any(comments):
        return comments, None
    private = [e for e in _evaluators()[0] if e.name in ("pii", "secrets")
               and tuple(e.fields) == ("output",)]
    if not any(e.name == "pii" for e in private):
        return [None] * len(comments), (f"comments not stored: this model's PII policy is "
                                        f"{policy!r} and the PII evaluator is not available")
    texts = [c or "" for c in comments]
    found, _, _ = desc.run_evaluators([LLMEvent("", t) for t in texts], private)
    key = b""
    if policy == "hash":
        with db.write(m.id) as conn:
            key = llm_privacy.hash_key(conn, m.id)
    return [None if c is None else llm_privacy.apply(c, fs, "output", policy, key)[0]
            for c, fs in zip(comments, found, strict=True)], None


def llm_schema(tag_columns: Sequence[str] = ()) -> Schema:
    """A text-generation version's schema: every descriptor column (but the feedback,
    which joins later as a gauge), then the tags as segment columns."""
    cols = [*(Column(c, ColumnType.NUMERICAL) for c in desc.NUMERIC_COLUMNS
              if c != desc.FEEDBACK),  # feedback joins later, as a gauge (llm_feedback.py)
            Column(desc.PROVIDER_MODEL, ColumnType.CATEGORICAL),
            *(Column(t, ColumnType.CATEGORICAL, Role.SEGMENT) for t in tag_columns)]
    return Schema(tuple(cols), Task.TEXT_GENERATION)


def _table(events: Sequence[LLMEvent], cols: dict[str, np.ndarray], now: float,
           tags: Sequence[str]) -> pa.Table:
    out: dict[str, pa.Array] = {
        rows.PID: pa.array([e.request_id for e in events], pa.string()),
        rows.TS: pa.array([now if e.timestamp is None else e.timestamp for e in events],
                          pa.float64()),
        rows.VERSION: pa.array([e.version for e in events], pa.string()),
        rows.LATENCY: pa.array([e.latency_ms for e in events], pa.float64()),
    }
    for name, values in cols.items():
        if name == desc.FEEDBACK:
            continue
        if values.dtype == object:
            out[name] = pa.array(list(values), pa.string())
        else:
            out[name] = pa.array(values, pa.float64(), mask=np.isnan(values))
    for t in tags:
        out[t] = pa.array([e.tags.get(t) for e in events], pa.string())
    return pa.table(out)


def _check_task(model: repo.ModelRow) -> None:
    if model.task != Task.TEXT_GENERATION.value:
        raise ParameterError(f"Model {model.name!r} has task {model.task!r}: LLM events go to "
                             "a model created with task text_generation.", "model")


def _tags_of(events: Sequence[LLMEvent]) -> list[str]:
    seen: dict[str, None] = {}
    for e in events:
        seen.update(dict.fromkeys(e.tags))
    return list(seen)


def ingest_llm_events(monitor: Any, model: str, rows_: list[Any], *,
                      now: float | None = None) -> LLMIngestResult:
    """Check, evaluate, store and profile LLM events of ``model`` (a text_generation model).

    ``rows_`` are event objects (docs/llm.md). Stable entry point: the REST route, the SDK
    and the OTLP traces ingest all call this.
    """
    now = time.time() if now is None else now
    m = monitor.model(model)
    _check_task(m)
    if not isinstance(rows_, list):
        raise DataError("Expected a list of LLM event objects.", "rows")
    res = LLMIngestResult(received=len(rows_))
    good, bad = parse_events(rows_)
    res.rejected = len(bad)
    res.errors = [e.to_dict() for e in bad[:_MAX_ERRORS]]
    if not good:
        return res
    positions = [i for i, _ in good]
    events = [e for _, e in good]
    _default_version(monitor.db, m, events)
    res.cost = _fill_cost(monitor.db, events)
    findings, cols, absent, skipped = evaluate(
        events, external=getattr(monitor, "llm_evaluators", ()))
    policy = llm_privacy.protect_events(monitor.db, m.id, events)  # tags, ids, as texts
    res.absent_columns, res.evaluators_skipped = absent, skipped
    res.truncated = sum(e.truncated_input or e.truncated_output for e in events)
    res.stored, res.flagged, res.privacy, res.withheld = _store(
        monitor.db, m, events, findings, absent, now, getattr(monitor, "embedder", None),
        policy)
    table = _table(events, cols, now, _tags_of(events))
    tab = monitor.log_predictions(model, table)
    res.accepted, res.duplicates = tab.accepted, tab.duplicates
    res.quarantined, res.labels_joined = tab.quarantined, tab.labels_joined
    res.ignored_columns = tab.ignored_columns
    for e in tab.errors:  # the tabular ingest numbers the good events: back to request rows
        e = dict(e, row=positions[e["row"]], request_id=e.pop("prediction_id", None))
        if len(res.errors) < _MAX_ERRORS:
            res.errors.append(e)
    return res


def _default_version(db: Any, m: repo.ModelRow, events: Sequence[LLMEvent]) -> None:
    """Events that name no version are the serving version's (as the tabular ingest files
    their descriptor rows), so the stored conversation says so too and the version's
    ``text_drift`` reads it. A model without a version leaves them unnamed: the tabular
    ingest refuses their rows and says why."""
    if all(e.version is not None for e in events):
        return
    with db.read() as conn:
        try:
            serving = repo.get_version(conn, m).version
        except repo.NotFound:
            return
    for e in events:
        if e.version is None:
            e.version = serving


def _fill_cost(db: Any, events: Sequence[LLMEvent]) -> dict[str, Any]:
    """Missing tokens counted and costs priced from the server's price table (llm_cost)."""
    with db.read() as conn:
        table = llm_cost.price_table(conn)
    return llm_cost.fill(events, table).to_dict()


def _store(db: Any, m: repo.ModelRow, events: Sequence[LLMEvent],
           findings: list[list[Finding]], absent: dict[str, str], now: float,
           embedder: LocalEmbedder | None = None, policy: str | None = None
           ) -> tuple[int, int, str, str | None]:
    """Write the conversations not stored yet; ``(stored, flagged, policy, withheld)``.
    ``policy``: the one :func:`llm_privacy.protect_events` read (else read here)."""
    if policy is None:
        with db.read() as conn:
            policy = llm_privacy.get_policy(conn, m.id)
    withheld = None
    if policy != "store" and "llm_pii" in absent:
        withheld = (f"texts not stored: this model's PII policy is {policy!r} and "
                    f"{absent['llm_pii']}, so PII could not be found to {policy} it")
    with db.write(m.id) as conn:
        key = llm_privacy.hash_key(conn, m.id) if policy == "hash" else b""
        ids = [e.request_id for e in events]
        have: set[str] = set()
        for i in range(0, len(ids), 1000):
            have.update(conn.execute(select(llm_events.c.request_id).where(
                llm_events.c.model_id == m.id,
                llm_events.c.request_id.in_(ids[i:i + 1000]))).scalars())
        records, flagged = [], 0
        for e, fs in zip(events, findings, strict=True):
            if e.request_id in have:
                continue
            have.add(e.request_id)
            rec = _record(m.id, e, fs, policy, key, withheld, now)
            flagged += rec["flagged"]
            records.append(rec)
        if embedder is not None:
            _embed_records(records, embedder)
        if records:
            conn.execute(llm_events.insert(), records)
    return len(records), flagged, policy, withheld


def _embed_records(records: list[dict[str, Any]], embedder: LocalEmbedder) -> None:
    """Embed, in one batch, the stored prompts of the records that came without an
    embedding: the text as stored, after the privacy policy (as the reference prompts are),
    and none when the texts were withheld."""
    todo, texts = [], []
    for i, rec in enumerate(records):
        detail = orjson.loads(rec["detail"])
        if detail.get("embedding") is None and rec["input"]:
            text = input_text(orjson.loads(rec["input"]))
            if text:
                todo.append((i, detail))
                texts.append(text)
    for (i, detail), vec in zip(todo, embedder.embed(texts), strict=True):
        if vec is not None:
            detail.update(embedding=vec, embedding_source=embedder.source)
            records[i]["detail"] = orjson.dumps(detail).decode()


def _record(model_id: int, e: LLMEvent, fs: list[Finding], policy: str, key: bytes,
            withheld: str | None, now: float) -> dict[str, Any]:
    stored: list[Finding] = []
    texts: dict[str, Any] = {"input": None, "output": None, "context": None}
    if withheld is None:
        out, moved = llm_privacy.apply(e.output, fs, "output", policy, key)
        stored += moved
        texts["output"] = out
        msgs, in_text = [], e.input
        if e.messages:
            # spans of the input field point into input_text(messages): redact that text,
            # and each message's content alike
            red, moved = llm_privacy.apply(in_text, fs, "input", policy, key)
            stored += moved
            msgs = _messages_after(e, fs, policy, key) if red != in_text else e.messages
        texts["input"] = orjson.dumps(msgs).decode()
        _, moved = llm_privacy.apply("\n\n".join(e.context), fs, "context", policy, key)
        stored += moved  # spans into the passages joined by blank lines, as evaluated
        texts["context"] = orjson.dumps(_passages_after(e, fs, policy, key)).decode()
    else:  # nothing of the texts, not even spans into them beyond categories
        stored = list(fs)
    cats = sorted({f.category for f in fs})
    return {"model_id": model_id, "request_id": e.request_id, "version": e.version,
            "ts": now if e.timestamp is None else e.timestamp, "received_at": now,
            "session_id": e.session_id, "privacy": policy, **texts, "withheld": withheld,
            "findings": orjson.dumps([f.to_dict() for f in stored]).decode(),
            "categories": "," + ",".join(cats) + "," if cats else ",",
            "flagged": bool(fs),
            "tags": orjson.dumps(e.tags).decode(),
            "detail": orjson.dumps({
                "provider": e.provider, "model": e.model, "tokens_in": e.tokens_in,
                "tokens_out": e.tokens_out, "latency_ms": e.latency_ms, "cost": e.cost,
                "tokens_estimated": e.tokens_estimated, "cost_source": e.cost_source,
                "cost_reason": e.cost_reason, "finish_reason": e.finish_reason,
                "truncated_input": e.truncated_input, "truncated_output": e.truncated_output,
                "input_chars": e.input_chars, "output_chars": e.output_chars,
                "embedding": e.embedding,
                "embedding_source": None if e.embedding is None else EVENT_SOURCE}).decode()}


def _pieces_after(pieces: list[tuple[int, str]], fs: list[Finding], field: str,
                  policy: str, key: bytes) -> list[str]:
    """Each piece (its offset in the joined text the findings index, its text) with the
    private spans that touch it replaced; a span crossing pieces is cut at their edges, so
    each piece loses its part of the value."""
    out = []
    for start, text in pieces:
        end = start + len(text)
        local = [replace(f, start=max(f.start, start) - start, end=min(f.end, end) - start)
                 for f in fs if f.field == field and not f.whole_text
                 and f.start < end and f.end > start]
        out.append(llm_privacy.apply(text, local, field, policy, key)[0])
    return out


def _messages_after(e: LLMEvent, fs: list[Finding], policy: str,
                    key: bytes) -> list[dict[str, str]]:
    """Each message's content after the policy (the input spans index
    :func:`~aiwarden.llm.events.input_text`: one ``role: content`` line per message)."""
    single = len(e.messages) == 1 and e.messages[0]["role"] == "user"
    pieces, offset = [], 0
    for msg in e.messages:
        start = offset + (0 if single else len(msg["role"]) + 2)
        pieces.append((start, msg["content"]))
        offset = start + len(msg["content"]) + 1
    texts = _pieces_after(pieces, fs, "input", policy, key)
    return [{"role": m["role"], "content": t} for m, t in zip(e.messages, texts, strict=True)]


def _passages_after(e: LLMEvent, fs: list[Finding], policy: str, key: bytes) -> list[str]:
    """Each retrieved passage after the policy (the context spans index the passages
    joined by blank lines)."""
    pieces, offset = [], 0
    for p in e.context:
        pieces.append((offset, p))
        offset += len(p) + 2
    return _pieces_after(pieces, fs, "context", policy, key)


def fit_llm_reference(monitor: Any, model: str, version: str, rows_: list[Any],
                      tags: Sequence[str] | None = None) -> dict[str, Any]:
    """Register ``version`` with the LLM schema and fit its reference on these events'
    descriptors. ``tags``: the tag columns kept as segments (default: the model's declared
    segment columns, else every tag the events carry)."""
    m = monitor.model(model)
    _check_task(m)
    good, bad = parse_events(rows_ if isinstance(rows_, list) else [])
    if bad:
        e = bad[0]
        raise DataError(f"Reference event row {e.row}: {e.field}: {e.reason}.", e.field)
    if not good:
        raise DataError("The reference needs at least one LLM event.", "rows")
    events = [e for _, e in good]
    _fill_cost(monitor.db, events)
    findings, cols, absent, skipped = evaluate(
        events, external=getattr(monitor, "llm_evaluators", ()))
    llm_privacy.protect_events(monitor.db, m.id, events)  # segment values as events' are
    if tags is None:
        tags = monitor.describe_model(model).get("segments") or _tags_of(events)
    now = time.time()
    table = _table(events, cols, now, tags).drop_columns(
        [rows.PID, rows.TS, rows.VERSION, rows.LATENCY])
    absent = dict(absent)
    for c in llm_schema(tags).columns:  # a column never seen has no distribution to keep
        if c.name in table.column_names and table.column(c.name).null_count == len(table):
            absent[c.name] = "no reference event has a value of it"
    schema = llm_schema(tags)
    schema = Schema(tuple(c for c in schema.columns if c.name not in absent), schema.task)
    table = table.select([c.name for c in schema.columns])
    with monitor.db.read() as conn:
        try:
            repo.get_version(conn, m, version)
            exists = True
        except repo.NotFound:
            exists = False
    if not exists:
        monitor.create_version(model, version, schema.to_dict())
    out = monitor.upload_reference(model, version, table)
    out["text_reference"] = _store_prompts(monitor.db, m, version, events, findings, absent,
                                           getattr(monitor, "embedder", None))
    if absent:
        out["absent_columns"] = absent
    if skipped:
        out["evaluators_skipped"] = skipped
    return out


def _store_prompts(db: Any, m: repo.ModelRow, version: str, events: Sequence[LLMEvent],
                   findings: list[list[Finding]], absent: dict[str, str],
                   embedder: LocalEmbedder | None = None) -> dict[str, Any]:
    """The reference prompts (after the model's privacy policy, as stored events' are) and
    embeddings the ``text_drift`` metric compares windows with (text_drift_window): the
    events' own, else the local model's of the prompt as kept (as at ingest)."""
    from aiwarden.monitoring import text_drift_window

    with db.write(m.id) as conn:
        v = repo.get_version(conn, m, version)
        policy = llm_privacy.get_policy(conn, m.id)
        kept: dict[int, str] = {}
        if policy == "store" or "llm_pii" not in absent:  # else PII cannot be found: none
            key = llm_privacy.hash_key(conn, m.id) if policy == "hash" else b""
            kept = {i: llm_privacy.apply(e.input, fs, "input", policy, key)[0]
                    for i, (e, fs) in enumerate(zip(events, findings, strict=True))
                    if e.messages}
        embs: list[list[float] | None] = [e.embedding for e in events]
        sources = [EVENT_SOURCE] * len(events)
        todo = [i for i in kept if embs[i] is None and kept[i]]
        if embedder is not None and todo:
            for i, vec in zip(todo, embedder.embed([kept[i] for i in todo]), strict=True):
                embs[i], sources[i] = vec, embedder.source
        return text_drift_window.store_reference(conn, v.id, list(kept.values()), embs,
                                                 sources=sources)
