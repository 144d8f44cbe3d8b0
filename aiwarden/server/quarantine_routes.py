"""REST API for quarantined rows: list, show, replay (corrected or not), release, drop
(docs/api.md, Quarantine). The work is in :mod:`aiwarden.monitoring.quarantine`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ConfigDict, Field

from aiwarden.monitoring import quarantine as q
from aiwarden.server.access import monitor as _monitor
from aiwarden.server.access import requires
from aiwarden.server.api_models import Open, Quarantined, answers, body_doc, json_int
from aiwarden.server.jsonbody import json_body

__all__ = ["router"]

router = APIRouter()

_MAX_ID = 2**63 - 1  # the id column is a 64-bit integer


RowId = json_int(ge=1, le=_MAX_ID)
Ids = Annotated[list[RowId], Field(min_length=1, max_length=q.MAX_IDS,
                                   description=f"quarantined row ids, at most {q.MAX_IDS}")]


class QuarantinedRow(Quarantined):
    id: int
    row: Any = Field(description="the row as sent, parsed (payload is the stored text)")


class Correction(Open):
    model_config = ConfigDict(extra="forbid")
    id: RowId
    row: dict[str, Any] = Field(description="the corrected row, replacing the stored one")


class ReplayBody(Open):
    """Which rows, and optionally what to correct first."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
        "ids": [41, 42], "set": {"features.amount": 12.5}, "rows": [
            {"id": 43, "row": {"prediction_id": "tx-43", "features": {"amount": 12.5}}}]}})
    ids: Ids
    rows: list[Correction] = Field(default=[], max_length=q.MAX_IDS, description="rows "
                                   "replaced by a corrected one; replayed too (with ids)")
    set: dict[str, Any] | None = Field(default=None, description="field path -> value set "
                                       "in every row first, e.g. features.amount (replay only)")


class IdsBody(Open):
    model_config = ConfigDict(extra="forbid")
    ids: Ids


class Replayed(Open):
    requested: int
    accepted: int
    duplicates: int
    replayed: list[int]
    still_quarantined: list[dict[str, Any]]
    gone: list[int]
    refused: list[dict[str, Any]]


class Dropped(Open):
    dropped: list[int]
    gone: list[int]


@router.get("/models/{name}/quarantine", dependencies=[requires("read")],
            tags=["queries"], responses=answers(list[Quarantined], 404))
def list_quarantine(request: Request, name: str, limit: int = Query(100, ge=1, le=10_000),
                    field: str | None = None, prediction_id: str | None = None,
                    before: int | None = Query(None, ge=1, le=_MAX_ID, description="ids below this "
                                               "(the next page)")) -> list[dict[str, Any]]:
    """Quarantined rows, newest first, with the field and the reason."""
    mon = _monitor(request)
    m = mon.model(name)
    with mon.db.read() as conn:
        return [r.to_dict() for r in q.list_rows(conn, m.id, field=field, limit=limit,
                                                 prediction_id=prediction_id, before=before)]


@router.get("/models/{name}/quarantine/rows/{row_id}", dependencies=[requires("read")],
            tags=["queries"], responses=answers(QuarantinedRow, 404))
def show_quarantined(request: Request, name: str,
                     row_id: int = Path(ge=1, le=_MAX_ID)) -> dict[str, Any]:
    mon = _monitor(request)
    m = mon.model(name)
    with mon.db.read() as conn:
        return q.get_row(conn, m.id, row_id).to_dict(parsed=True)


@router.post("/models/{name}/quarantine/replay", dependencies=[requires("operate")],
             tags=["ingest"], responses=answers(Replayed, 404),
             openapi_extra=body_doc(json=ReplayBody))
async def replay(request: Request, name: str) -> dict[str, Any]:
    """Send rows through ingest again, corrected (``rows``, ``set``) or as stored: valid ones
    leave quarantine and enter the profiles once; still bad ones stay, with the new reason."""
    body = await json_body(request, ReplayBody)
    rows = {c.id: c.row for c in body.rows}
    ids = list(dict.fromkeys([*body.ids, *rows]))  # more than MAX_IDS: refused, named
    out = await run_in_threadpool(q.replay, _monitor(request), name, ids, rows=rows,
                                  sets=body.set)
    return out.to_dict()


@router.post("/models/{name}/quarantine/release", dependencies=[requires("operate")],
             tags=["ingest"], responses=answers(Replayed, 404),
             openapi_extra=body_doc(json=IdsBody))
async def release(request: Request, name: str) -> dict[str, Any]:
    """Accept rows as they are, their bad values read as missing (not rows without a usable
    prediction id or of an unknown version: correct and replay those)."""
    body = await json_body(request, IdsBody)
    out = await run_in_threadpool(q.replay, _monitor(request), name, body.ids, release=True)
    return out.to_dict()


@router.post("/models/{name}/quarantine/drop", dependencies=[requires("operate")],
             tags=["ingest"], responses=answers(Dropped, 404),
             openapi_extra=body_doc(json=IdsBody))
async def drop(request: Request, name: str) -> dict[str, Any]:
    """Delete rows for good; the quarantine counts of their buckets stay (they arrived)."""
    body = await json_body(request, IdsBody)
    return await run_in_threadpool(q.drop, _monitor(request), name, body.ids)
