"""LLM events over REST (docs/llm.md): ingest, reference, feedback, privacy, flagged events."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, RootModel
from sqlalchemy import select

from aiwarden.errors import DataError
from aiwarden.monitoring import llm_cost, llm_privacy
from aiwarden.monitoring.llm_feedback import ingest_llm_feedback
from aiwarden.monitoring.llm_ingest import fit_llm_reference, ingest_llm_events
from aiwarden.server.access import monitor as _monitor
from aiwarden.server.access import requires
from aiwarden.server.api_models import Open, Reference, answers, body_doc
from aiwarden.server.errors import Malformed
from aiwarden.server.jsonbody import TextBody, json_rows, loads, require_json
from aiwarden.server.spec_models import PRICE_TABLE
from aiwarden.store import models_repo as repo
from aiwarden.store.tables import llm_events, llm_feedback

__all__ = ["router"]

router = APIRouter()


class LLMIngested(Open):
    received: int
    accepted: int
    duplicates: int
    rejected: int = Field(description="bad events, named in errors; nothing of them stored")
    quarantined: int
    stored: int = Field(description="conversations written (after the privacy policy)")
    flagged: int
    truncated: int = Field(description="events with a text cut at the size limit")
    labels_joined: int
    privacy: str
    errors: list[dict[str, Any]]
    withheld: str | None = None
    absent_columns: dict[str, str] = Field(default_factory=dict)
    ignored_columns: list[str] = Field(default_factory=list)
    evaluators_skipped: dict[str, str] = Field(default_factory=dict, description=(
        "the operator's model-based evaluators (setting llm_evaluators) that gave nothing "
        "for this request, and why: a timeout, an error, an open circuit breaker"))
    cost: dict[str, Any] = Field(default_factory=dict, description=(
        "priced (costs from the price table), tokens_estimated, cost_unknown: reason -> "
        "events left without a cost"))


class LLMReference(Reference):
    absent_columns: dict[str, str] = Field(
        default_factory=dict, description="descriptor columns left out of the schema, "
        "with why (an evaluator not available, no reference value)")
    evaluators_skipped: dict[str, str] = Field(default_factory=dict, description=(
        "the operator's model-based evaluators that gave nothing for the reference, and why"))
    text_reference: dict[str, int | str] = Field(
        default_factory=dict, description="reference prompts and embeddings kept for the "
        "text_drift metric (a seeded sample, after the privacy policy), and the embeddings' "
        "embedding_source ('event', or the server's local model)")


class LLMFeedbackIngested(Open):
    received: int
    rejected: int
    joined: int
    pending: int
    duplicates: int
    errors: list[dict[str, Any]]
    withheld: str | None = None


class LLMEventOut(Open):
    request_id: str
    version: str | None
    timestamp: float
    session_id: str | None
    privacy: str
    input: list[dict[str, Any]] | None
    output: str | None
    context: list[str] | None
    withheld: str | None
    findings: list[dict[str, Any]]
    flagged: bool
    tags: dict[str, str]
    detail: dict[str, Any]
    feedback: dict[str, Any] | None = None


class LLMEventList(Open):
    model: str
    events: list[LLMEventOut]


class Privacy(TextBody):
    pii: str = Field(pattern="^(store|redact|hash)$",
                     description="store: as sent; redact: [email]; hash: [email:<keyed hash>]")


class LLMEvents(RootModel[list[Any] | dict[str, Any]]):
    """An event object, a list of them, or ``{"rows": [...]}``: each event ``{request_id,
    output, timestamp?, version?, input?, provider?, model?, tokens_in?, tokens_out?,
    latency_ms?, cost?, session_id?, tags?, context?, embedding?}`` (docs/llm.md); the numbers
    tokens_in, tokens_out, latency_ms and cost are from 0 to 1e18 (a row outside is refused)."""


class LLMFeedbackRows(RootModel[list[Any] | dict[str, Any]]):
    """A feedback object ``{request_id, score, comment?}``, a list, or ``{"rows": [...]}``."""


async def _rows(request: Request) -> list[Any]:
    return await json_rows(request, "an event")


def _all_bad(out: dict[str, Any]) -> None:
    """A request none of whose rows could be taken is refused, naming the first error."""
    if out["received"] and out["rejected"] == out["received"]:
        e = out["errors"][0]
        raise DataError(f"No event accepted: row {e['row']}: {e['field']}: {e['reason']} "
                        f"({out['rejected']} rows rejected).", e["field"])


@router.post("/models/{name}/llm-events", dependencies=[requires("ingest")],
             tags=["llm"], responses=answers(LLMIngested),
             openapi_extra=body_doc(json=LLMEvents))
async def log_llm_events(request: Request, name: str) -> dict[str, Any]:
    """LLM events (docs/llm.md): evaluated, stored per the model's privacy policy and
    monitored as the version's ``llm_*`` columns."""
    rows = await _rows(request)
    res = await run_in_threadpool(ingest_llm_events, _monitor(request), name, rows)
    out = res.to_dict()
    _all_bad(out)
    return out


@router.put("/models/{name}/versions/{version}/llm-reference", dependencies=[requires("admin")],
            status_code=201, tags=["llm"], responses=answers(LLMReference, 409, status=201),
            openapi_extra=body_doc(json=LLMEvents))
async def upload_llm_reference(request: Request, name: str, version: str,
                               tags: str | None = None) -> dict[str, Any]:
    """Register ``version`` with the LLM schema and fit its reference on these events;
    ``tags`` (comma list): the tag columns kept as segments (default: the model's)."""
    rows = await _rows(request)
    cols = [t for t in tags.split(",") if t] if tags else None
    return await run_in_threadpool(fit_llm_reference, _monitor(request), name, version, rows,
                                   cols)


@router.post("/models/{name}/llm-feedback", dependencies=[requires("ingest")],
             tags=["llm"], responses=answers(LLMFeedbackIngested),
             openapi_extra=body_doc(json=LLMFeedbackRows))
async def log_llm_feedback(request: Request, name: str) -> dict[str, Any]:
    """User feedback ``{request_id, score, comment}``, joined to its event like a label
    (held until the event arrives)."""
    rows = await _rows(request)
    out = await run_in_threadpool(ingest_llm_feedback, _monitor(request), name, rows)
    _all_bad(out)
    return out


@router.get("/models/{name}/llm-privacy", dependencies=[requires("read")], tags=["llm"],
            responses=answers(Privacy))
def get_privacy(request: Request, name: str) -> dict[str, str]:
    monitor = _monitor(request)
    with monitor.db.read() as conn:
        m = repo.get_model(conn, name)
        return {"pii": llm_privacy.get_policy(conn, m.id)}


@router.put("/models/{name}/llm-privacy", dependencies=[requires("admin")], tags=["llm"],
            responses=answers(Privacy))
def set_privacy(request: Request, name: str, body: Privacy) -> dict[str, str]:
    """What happens to PII before an event's texts are written; applies to events stored
    from now on (stored texts are not rewritten)."""
    monitor = _monitor(request)
    with monitor.db.write() as conn:
        m = repo.get_model(conn, name)
        return {"pii": llm_privacy.set_policy(conn, m.id, body.pii)}


class LLMPrices(Open):
    prices: dict[str, dict[str, float]] = Field(
        description="provider/model -> {input, output} in USD per 1,000 tokens (effective)")
    overrides: list[str] = Field(description="entries set on this server")
    defaults_as_of: str
    unit: str
    token_counter: str = Field(description="tiktoken:<encoding>, or estimate")
    token_counter_reason: str | None = None


class LLMPriceOverrides(BaseModel):
    """``{"prices": {"provider/model": {"input": usd_per_1k, "output": usd_per_1k}}}``."""

    model_config = ConfigDict(extra="forbid")
    prices: PRICE_TABLE


@router.get("/llm/prices", dependencies=[requires("read")], tags=["llm"],
            responses=answers(LLMPrices))
def get_prices(request: Request) -> dict[str, Any]:
    """The price table costs are computed with: shipped defaults (prices change: check
    them) with this server's overrides on top (docs/llm.md, "Cost and tokens")."""
    with _monitor(request).db.read() as conn:
        return llm_cost.describe(conn)


@router.put("/llm/prices", dependencies=[requires("admin")], tags=["llm"],
            responses=answers(LLMPrices), openapi_extra=body_doc(json=LLMPriceOverrides))
async def set_prices(request: Request) -> dict[str, Any]:
    """Replace this server's price overrides; events ingested from now on are priced with
    them (stored costs are not rewritten)."""
    require_json(request)
    body = await request.body()
    doc = loads(body) if body.strip() else None
    if not isinstance(doc, dict) or set(doc) != {"prices"}:
        raise Malformed("Expected {\"prices\": {\"provider/model\": {\"input\": ..., "
                        "\"output\": ...}}}.", "prices")
    with _monitor(request).db.write() as conn:
        llm_cost.set_overrides(conn, doc["prices"], "prices")
        return llm_cost.describe(conn)


def _event(row: Any, fb: Any = None) -> dict[str, Any]:
    def js(v: Any) -> Any:
        return None if v is None else orjson.loads(v)

    out = {"request_id": row.request_id, "version": row.version, "timestamp": row.ts,
           "session_id": row.session_id, "privacy": row.privacy, "input": js(row.input),
           "output": row.output, "context": js(row.context), "withheld": row.withheld,
           "findings": js(row.findings), "flagged": bool(row.flagged), "tags": js(row.tags),
           "detail": js(row.detail)}
    if fb is not None:
        out["feedback"] = {"score": fb.score, "comment": fb.comment}
    return out


@router.get("/models/{name}/llm-events", dependencies=[requires("read")], tags=["llm"],
            responses=answers(LLMEventList))
def list_llm_events(request: Request, name: str, flagged: bool | None = None,
                    category: str | None = Query(None, max_length=100),
                    version: str | None = None, session_id: str | None = None,
                    limit: int = Query(50, ge=1, le=1000)) -> dict[str, Any]:
    """Newest first; ``flagged=true`` those with any finding, ``category=self_harm`` those
    with a finding of that category. Spans in ``findings`` point into the stored texts."""
    return query_llm_events(_monitor(request), name, flagged, category, version, session_id,
                            limit)


def query_llm_events(monitor: Any, name: str, flagged: bool | None = None,
                     category: str | None = None, version: str | None = None,
                     session_id: str | None = None, limit: int = 50,
                     start: float | None = None, end: float | None = None) -> dict[str, Any]:
    """The stored events as ``GET /models/{name}/llm-events`` answers them (the dashboard's
    LLM page reads them here too, of its range: ``start <= timestamp < end``)."""
    with monitor.db.read() as conn:
        m = repo.get_model(conn, name)
        q = select(llm_events).where(llm_events.c.model_id == m.id)
        if flagged is not None:
            q = q.where(llm_events.c.flagged.is_(flagged))
        if category:
            q = q.where(llm_events.c.categories.contains(f",{category},", autoescape=True))
        if version:
            q = q.where(llm_events.c.version == version)
        if session_id:
            q = q.where(llm_events.c.session_id.in_(  # as sent, or as the policy stored it
                llm_privacy.lookup_ids(conn, m.id, [session_id])))
        if start is not None:
            q = q.where(llm_events.c.ts >= start)
        if end is not None:
            q = q.where(llm_events.c.ts < end)
        found = conn.execute(q.order_by(llm_events.c.ts.desc(), llm_events.c.id.desc())
                             .limit(limit)).fetchall()
        fbs = {r.request_id: r for r in conn.execute(select(llm_feedback).where(
            llm_feedback.c.model_id == m.id,
            llm_feedback.c.request_id.in_([r.request_id for r in found])))} if found else {}
    return {"model": name, "events": [_event(r, fbs.get(r.request_id)) for r in found]}


# {request_id:path}: an id may hold "/" (ingest takes it), so the rest of the path is the id
@router.get("/models/{name}/llm-events/{request_id:path}", dependencies=[requires("read")],
            tags=["llm"], responses=answers(LLMEventOut, 404))
def get_llm_event(request: Request, name: str, request_id: str) -> dict[str, Any]:
    return read_llm_event(_monitor(request), name, request_id)


def read_llm_event(monitor: Any, name: str, request_id: str) -> dict[str, Any]:
    """One stored event as ``GET /models/{name}/llm-events/{request_id}`` answers it."""
    with monitor.db.read() as conn:
        m = repo.get_model(conn, name)
        forms = llm_privacy.lookup_ids(conn, m.id, [request_id])  # as sent, or as stored
        row = conn.execute(select(llm_events).where(
            llm_events.c.model_id == m.id, llm_events.c.request_id.in_(forms))).first()
        if row is None:
            raise repo.NotFound(f"Model {name!r} has no LLM event {request_id!r}.",
                                "request_id")
        fb = conn.execute(select(llm_feedback).where(
            llm_feedback.c.model_id == m.id,
            llm_feedback.c.request_id == row.request_id)).first()
    return _event(row, fb)
