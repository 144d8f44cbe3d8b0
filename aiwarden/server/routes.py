"""REST API v1 (docs/api.md). Each route declares its scope (``requires``, checked before
the handler runs); handlers parse and call the Monitor."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from aiwarden.alerting.evaluator import install_defaults
from aiwarden.server.access import monitor as _monitor
from aiwarden.server.access import requires
from aiwarden.server.api_models import (
    ARROW,
    NAME_PATTERN,
    PARQUET,
    Comparison,
    Ingested,
    LabelsIngested,
    Model,
    ModelDetail,
    Reference,
    ReferenceRows,
    ResourcesIngested,
    Rows,
    Samples,
    SchemaSpec,
    Segments,
    Series,
    Version,
    answers,
    body_doc,
)
from aiwarden.server.errors import Malformed
from aiwarden.server.jsonbody import TextBody, json_body, loads, lone_surrogate
from aiwarden.server.long_work import (
    check_decoded,
    check_rows,
    check_width,
    until_disconnect,
    width_of,
)
from aiwarden.store.models_repo import NotFound
from aiwarden.tabular_io import JSON, read_table, write_parquet

__all__ = ["router"]

router = APIRouter()


def _json(body: bytes) -> Any:
    if not body.strip():
        raise Malformed("The body is empty.", "body")
    return loads(body, positioned=True, max_depth=None)  # rows are checked one by one


def _rows(doc: Any) -> list[Any]:
    """A row, a list of rows, or ``{"rows": [...]}``."""
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        if "rows" in doc:
            if not isinstance(doc["rows"], list):
                raise Malformed("'rows' must be a list of row objects.", "rows")
            return doc["rows"]
        return [doc]
    raise Malformed("Expected a row object, a list of rows, or {\"rows\": [...]}.", "body")


async def _payload(request: Request) -> Any:
    body = await request.body()
    media = (request.headers.get("content-type") or JSON).split(";")[0].strip().lower()
    settings = request.app.state.settings
    if media in (JSON, "text/json", ""):
        rows = _rows(_json(body))
        check_rows(len(rows), settings)
        return rows
    check_decoded(body, media, settings)  # from metadata, before decoding (a Parquet bomb)
    return await run_in_threadpool(read_table, body, media)


# what monitoring.segments.check_names accepts: a name with a non-blank character, at
# most 90 characters (segment keys must fit the stored segment), each named once
SegmentName = Annotated[str, Field(min_length=1, max_length=90, pattern=r"[^\s\x1c-\x1f\x85]")]


class NewModel(TextBody):
    name: str = Field(min_length=1, max_length=200, pattern=NAME_PATTERN)
    task: str | None = Field(
        default=None, pattern="^(binary|multiclass|regression|text_generation|none)$")
    description: str | None = None
    # segment columns of every reference uploaded without its own segments= option
    segments: Annotated[list[SegmentName], Field(
        max_length=100, json_schema_extra={"uniqueItems": True})] | None = None


class NewVersion(TextBody):
    version: str = Field(min_length=1, max_length=200, pattern=NAME_PATTERN)
    schema_: SchemaSpec | None = Field(default=None, alias="schema")


async def _new_model(request: Request) -> NewModel:
    """The body through the routes' one JSON parse (json_body: a BOM, NaN or bad JSON is
    refused as on every other route; it was FastAPI's "body.0: JSON decode error"). orjson
    refuses a lone surrogate with a position only; Python's json reads it, so the 422 still
    names the field holding it."""
    try:
        return await json_body(request, NewModel)
    except Malformed as exc:
        if "surrogate" not in exc.message:
            raise
        try:
            doc = json.loads(await request.body(), parse_constant=_no_constant)
        except ValueError:
            raise exc from None
        at = lone_surrogate(doc) if isinstance(doc, dict) else None
        if at is None:
            raise
        raise Malformed(f"{at}: the text holds a lone UTF-16 surrogate, which is not text.",
                        at) from None


def _no_constant(name: str) -> Any:
    raise ValueError(name)


@router.post("/models", dependencies=[requires("admin")],
             status_code=201, tags=["models"], responses=answers(Model, 409, status=201),
             openapi_extra=body_doc(json=NewModel))
async def create_model(request: Request) -> dict[str, Any]:
    """Registers the model with the default alert rules for its task (editable)."""
    body = await _new_model(request)
    monitor = _monitor(request)
    out = await run_in_threadpool(monitor.create_model, body.name, body.task,
                                  body.description, body.segments)
    await run_in_threadpool(install_defaults, monitor, body.name, body.task)
    return out


@router.get("/models", dependencies=[requires("read")],
            tags=["models"], responses=answers(list[Model]))
def list_models(request: Request) -> list[dict[str, Any]]:
    return _monitor(request).list_models()


@router.get("/models/{name}", dependencies=[requires("read")],
            tags=["models"], responses=answers(ModelDetail))
def get_model(request: Request, name: str) -> dict[str, Any]:
    return _monitor(request).describe_model(name)


@router.post("/models/{name}/versions", dependencies=[requires("admin")],
             status_code=201, tags=["models"],
             responses=answers(Version, 409, status=201))
def create_version(request: Request, name: str, body: NewVersion) -> dict[str, Any]:
    if body.schema_ is not None:  # as wide as a reference may be, no wider
        check_width(len(body.schema_.columns), request.app.state.settings.max_columns,
                    "schema.columns", "schema")
    schema = None if body.schema_ is None else body.schema_.model_dump(exclude_none=True)
    return _monitor(request).create_version(name, body.version, schema)


@router.get("/models/{name}/versions/{version}", dependencies=[requires("read")],
            tags=["models"], responses=answers(Version))
def get_version(request: Request, name: str, version: str) -> dict[str, Any]:
    return _monitor(request).version(name, version)


@router.put("/models/{name}/versions/{version}/reference", dependencies=[requires("admin")],
            status_code=201, tags=["models"],
            responses=answers(Reference, 409, status=201),
            openapi_extra=body_doc(PARQUET, ARROW, "text/csv", json=ReferenceRows))
async def upload_reference(
    request: Request, name: str, version: str,
    target: str | None = None, prediction: str | None = None, scores: str | None = None,
    id: str | None = None, timestamp: str | None = None, segments: str | None = None,
    task: str | None = None,
) -> dict[str, Any]:
    monitor = _monitor(request)
    body = await request.body()
    limit, media = request.app.state.settings.max_columns, request.headers.get("content-type")
    if limit:  # from the header before the (slow) full read of a wide body
        check_width(await run_in_threadpool(width_of, body, media) or 0, limit)
    await run_in_threadpool(check_decoded, body, media, request.app.state.settings)
    table = await run_in_threadpool(read_table, body, media)
    check_rows(table.num_rows, request.app.state.settings)  # JSON: known once read
    check_width(table.num_columns, limit)
    hints = {"target": target, "prediction": prediction, "id": id, "timestamp": timestamp,
             "task": task,
             "scores": [s for s in scores.split(",") if s] if scores else None,
             "segments": [s for s in segments.split(",") if s] if segments else None}
    out = await until_disconnect(request, lambda stop: monitor.upload_reference(
        name, version, table, hints, should_stop=stop))
    # The task may only now be known (inferred): add the rules that depend on it.
    await run_in_threadpool(install_defaults, monitor, name, out["schema"].get("task"))
    return out


@router.get("/models/{name}/versions/{version}/sample", dependencies=[requires("read")],
            tags=["models"],
            responses=answers(media=PARQUET))
def reference_sample(request: Request, name: str, version: str) -> Response:
    table = _monitor(request).reference_sample(name, version)
    if table is None:
        # no such resource (404), not a bad request: schemathesis ST202 took 422 as refusing
        # valid data
        raise NotFound(f"Version {version!r} has no reference sample.", "version")
    return Response(write_parquet(table), media_type="application/vnd.apache.parquet")


async def _ingest(request: Request, name: str, kind: str) -> dict[str, Any]:
    monitor = _monitor(request)
    payload = await _payload(request)
    call = monitor.log_predictions if kind == "predictions" else monitor.log_labels
    result = await run_in_threadpool(call, name, payload)
    return result.to_dict()


@router.post("/models/{name}/predictions", dependencies=[requires("ingest")],
             tags=["ingest"], responses=answers(Ingested),
             openapi_extra=body_doc(ARROW, PARQUET, "text/csv", json=Rows))
async def log_predictions(request: Request, name: str) -> dict[str, Any]:
    return await _ingest(request, name, "predictions")


@router.post("/models/{name}/labels", dependencies=[requires("ingest")],
             tags=["ingest"], responses=answers(LabelsIngested),
             openapi_extra=body_doc(ARROW, PARQUET, "text/csv", json=Rows))
async def log_labels(request: Request, name: str) -> dict[str, Any]:
    return await _ingest(request, name, "labels")


@router.post("/models/{name}/resources", dependencies=[requires("ingest")],
             tags=["ingest"], responses=answers(ResourcesIngested),
             openapi_extra=body_doc(json=Samples))
async def log_resources(request: Request, name: str) -> dict[str, Any]:
    """Resource samples (a list, or ``{"samples": [...]}``): CPU, memory, GPU, cost."""
    monitor = _monitor(request)
    body = _json(await request.body())
    samples = body.get("samples") if isinstance(body, dict) else body
    if not isinstance(samples, list):
        raise Malformed("Expected a JSON list of samples, or an object with 'samples'.",
                        "samples")
    result = await run_in_threadpool(monitor.log_resources, name, samples)
    return result.to_dict()


@router.get("/models/{name}/metrics", dependencies=[requires("read")],
            tags=["queries"], responses=answers(Series))
def get_metrics(request: Request, name: str, metric: str = Query(...),
                start: str | None = None, end: str | None = None, step: str | None = None,
                version: str | None = None, method: str | None = None,
                columns: str | None = None, segment: str | None = None) -> dict[str, Any]:
    """``method`` (e.g. psi, ks, wasserstein) decides drift instead of the default;
    ``columns`` (comma list) limits drift to those columns; ``segment`` (``country:BR``)
    reads only that segment's rows (``GET /models/{name}/segments`` lists them)."""
    cols = [c for c in columns.split(",") if c] if columns else None
    return _monitor(request).series(name, metric, start=start, end=end, step=step,
                                            version=version, method=method, columns=cols,
                                            segment=segment)


@router.get("/models/{name}/segments", dependencies=[requires("read")],
            tags=["queries"], responses=answers(Segments))
def get_segments(request: Request, name: str, version: str | None = None) -> dict[str, Any]:
    """The version's segment columns and the values each keeps: its ``top_n`` most frequent
    reference values, then ``__other__`` for every other value."""
    return _monitor(request).segments(name, version)


@router.get("/models/{name}/compare", dependencies=[requires("read")],
            tags=["queries"], responses=answers(Comparison))
def compare(request: Request, name: str, start: str = Query(...), end: str = Query(...),
            baseline_start: str | None = None, baseline_end: str | None = None,
            version: str | None = None) -> dict[str, Any]:
    return _monitor(request).compare(
        name, start=start, end=end, baseline_start=baseline_start, baseline_end=baseline_end,
        version=version)


@router.get("/models/{name}/events", dependencies=[requires("read")],
            tags=["queries"], responses=answers(media=PARQUET))
def export_events(request: Request, name: str, start: str | None = None,
                  end: str | None = None) -> Response:
    table = _monitor(request).export_events(name, start=start, end=end)
    disposition = f'attachment; filename="{name}-events.parquet"'
    return Response(write_parquet(table), media_type="application/vnd.apache.parquet",
                    headers={"Content-Disposition": disposition})
