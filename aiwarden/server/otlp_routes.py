"""``POST /v1/traces``: OTLP/HTTP trace exports in, LLM spans ingested as LLM events.

OTLP's default path at the server root, so an exporter needs only the server's address
(``OTEL_EXPORTER_OTLP_ENDPOINT=http://host:8000``) and, when keys exist, its key
(``OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer <key>``). Scope ``ingest``. The spans
are mapped by :mod:`aiwarden.llm.otlp` and go through the same
:func:`~aiwarden.monitoring.llm_ingest.ingest_llm_events` as the REST route.

Answers per OTLP/HTTP: 200 with an ``ExportTraceServiceResponse`` in the request's encoding,
whose ``partialSuccess`` counts the spans rejected (each named by its path in
``errorMessage``) or, with none rejected, warns about skipped spans; 400 when the body cannot
be read or no span could be taken (not retryable); 415 for another content type, or a
protobuf body without the ``otel`` extra.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from aiwarden.errors import AiwardenError
from aiwarden.llm import otlp
from aiwarden.monitoring.llm_ingest import ingest_llm_events
from aiwarden.server.access import monitor as _monitor
from aiwarden.server.access import requires
from aiwarden.server.api_models import Open, answers, body_doc
from aiwarden.server.errors import HttpError, UnsupportedMediaType

__all__ = ["router"]

router = APIRouter()
_MAX_NAMED = 20  # rejected spans named in errorMessage; the count covers all


class ExportTraceServiceRequest(Open):
    """OTLP JSON encoding (or the same message in protobuf); null is the empty list, as
    protobuf's JSON mapping says of every field."""

    resourceSpans: list[dict[str, Any]] | None = None


class PartialSuccess(Open):
    rejectedSpans: str = Field("0", description="int64 as a string (OTLP JSON)")
    errorMessage: str = ""


class ExportTraceServiceResponse(Open):
    partialSuccess: PartialSuccess | None = None


@router.post("/v1/traces", dependencies=[requires("ingest")], tags=["llm"],
             responses=answers(ExportTraceServiceResponse, 400, 415),
             openapi_extra=body_doc(otlp.PROTOBUF, json=ExportTraceServiceRequest))
async def export_traces(request: Request, model: str | None = Query(
        None, max_length=200, description="aiwarden model of spans that name none "
        "(aiwarden.model attribute); else the resource's service.name")) -> Response:
    """OTLP/HTTP traces (protobuf or JSON, gzip or not): spans that are LLM calls
    (OpenTelemetry GenAI or OpenInference attributes) become LLM events (docs/llm.md)."""
    media = request.headers.get("content-type")
    body = await request.body()
    limit = int(request.app.state.settings.max_body_mb * 2**20)
    try:
        total, rejected, mapped = await run_in_threadpool(
            _read, body, media, request.headers.get("content-encoding"), limit, model)
    except otlp.OTLPUnavailable as exc:
        raise UnsupportedMediaType(str(exc), "content-type") from None
    except otlp.OTLPError as exc:
        if exc.field == "content-type":
            raise UnsupportedMediaType(str(exc), "content-type") from None
        raise HttpError(str(exc), exc.field) from None
    notes: list[str] = []
    taken = await run_in_threadpool(_ingest, _monitor(request), mapped, rejected, notes)
    if total and not taken and len(rejected) == total:
        path, reason = rejected[0]
        raise HttpError(f"No span accepted: {path}: {reason} ({len(rejected)} of {total} "
                        "spans rejected).", path)
    named = [f"{p}: {r}" for p, r in rejected[:_MAX_NAMED]]
    if len(rejected) > _MAX_NAMED:
        named.append(f"... and {len(rejected) - _MAX_NAMED} more")
    if mapped.skipped:
        notes.append(f"{mapped.skipped} spans are not LLM calls and were skipped")
    if mapped.failed:
        notes.append(f"{mapped.failed} LLM calls failed (error.type set, no output) and "
                     "were skipped")
    binary = (media or "").split(";")[0].strip().lower() == otlp.PROTOBUF
    return Response(otlp.export_response(len(rejected), "; ".join(named + notes), media), 200,
                    media_type=otlp.PROTOBUF if binary else otlp.JSON)


def _read(body: bytes, media: str | None, encoding: str | None, limit: int,
          model: str | None) -> tuple[int, list[tuple[str, str]], otlp.Mapped]:
    """Decode and map off the event loop: (spans in the request, rejected, mapped)."""
    return otlp.read(body, media, encoding, max_bytes=limit, default_model=model)


def _ingest(monitor: Any, mapped: otlp.Mapped, rejected: list[tuple[str, str]],
            notes: list[str]) -> int:
    """Ingest each model's events: the spans refused are added to ``rejected``, events
    taken but quarantined to ``notes``; the number of events taken."""
    by_model: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for name, path, row in mapped.events:
        by_model.setdefault(name, []).append((path, row))
    taken = 0
    for name, items in by_model.items():
        paths = [p for p, _ in items]
        try:
            res = ingest_llm_events(monitor, name, [r for _, r in items])
        except AiwardenError as exc:  # unknown model, not a text_generation model, ...
            rejected += [(p, f"model {name!r}: {exc}") for p in paths]
            continue
        taken += res.accepted + res.duplicates + res.quarantined
        refused = res.errors[:res.rejected]  # the event checks come first, then the table's
        rejected += [(paths[e["row"]], f"{e['field']}: {e['reason']}") for e in refused]
        rejected += [(f"model {name!r}", "event rejected (not named: too many errors)")
                     ] * (res.rejected - len(refused))
        if res.quarantined:
            notes.append(f"model {name!r}: {res.quarantined} events quarantined ("
                         + "; ".join(f"{paths[e['row']]}: {e['field']}: {e['reason']}"
                                     for e in res.errors[res.rejected:][:_MAX_NAMED]) + ")")
    return taken
