"""References and batch profiles computed elsewhere (``aiwarden profile``, a Spark or Dask
job): sent as JSON, checked by the engine, stored as if the server had counted them
(:mod:`aiwarden.monitoring.imported`; docs/cli.md, "Profiling a large dataset").

* ``GET .../reference``: the version's reference, which such a job profiles on;
* ``PUT .../reference-profile``: a reference fitted elsewhere becomes the version's;
* ``POST .../profiles``: a batch profile counted on that reference joins the windows.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from aiwarden.alerting.evaluator import install_defaults
from aiwarden.monitoring.imported import add_batch_profile, store_reference, stored_reference
from aiwarden.server.access import monitor as _monitor
from aiwarden.server.access import requires
from aiwarden.server.api_models import INSTANT_PATTERN, Open, Reference, answers, body_doc
from aiwarden.server.errors import Malformed
from aiwarden.server.jsonbody import loads, require_json

__all__ = ["router"]

router = APIRouter()


class ReferenceDocument(Open):
    """``Reference.to_dict()``, as ``aiwarden profile --fit`` writes it."""

    format: Literal[1]
    schema_: dict[str, Any] = Field(alias="schema")
    binnings: dict[str, Any]
    profile: dict[str, Any] = Field(description="the reference's own profile on its bins")
    instability: dict[str, Any]
    settings: dict[str, Any]
    random_state: int
    duplicate_rate: float | None = None
    performance_model: dict[str, Any] | None = Field(
        None, description="CBPE/DLE fitted on the reference (plain arrays, never pickled)")
    residual_edges: list[float] | None = None
    null: dict[str, Any] | None = Field(None, description="each column's noise floor")
    sample: dict[str, list[Any]] | None = Field(
        None, description="a sample of the reference's rows as columns ({name: [values]}, "
                          "the schema's feature columns at least): multivariate drift, "
                          "explanations and root-cause analysis need one; down-sampled to "
                          "the server's sample size")


class ImportedReference(Reference):
    source: str = Field(description="'profile': fitted elsewhere, sent as a profile")
    sample: int | None = Field(description="rows of the sample kept; null: none came with "
                                           "it (multivariate drift then says so)")


_AT = INSTANT_PATTERN.replace("^(|now", "^(now", 1)  # required: no empty default


class ProfileBatch(BaseModel):
    batch: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,63}$",
                       description="a name for the batch (e.g. '2026-12-06'): a batch is "
                                   "counted once, the same name again is a 409")
    at: Annotated[str, Field(pattern=_AT)] | Annotated[float, Field(ge=0)] = Field(
        description="the instant it is counted at (ISO 8601, epoch seconds or now-1h): a "
                    "window counts the batch if it holds it")
    profile: dict[str, Any] = Field(description="Profile.to_dict(), counted on this "
                                                "version's reference")


class ProfileTaken(Open):
    model: str
    version: str
    batch: str
    rows: int
    at: str
    bucket: str = Field(description="the first-level bucket it was added to")


async def _object(request: Request, where: str) -> dict[str, Any]:
    require_json(request)
    doc = loads(await request.body())
    if not isinstance(doc, dict):
        raise Malformed(f"{where}: expected a JSON object; got "
                        f"{'null' if doc is None else type(doc).__name__}.", where)
    return doc


@router.get("/models/{name}/versions/{version}/reference", dependencies=[requires("read")],
            tags=["models"], responses=answers(ReferenceDocument))
def get_reference(request: Request, name: str, version: str) -> dict[str, Any]:
    """The version's reference (schema, bins, its profile): profile a large dataset on it
    with ``aiwarden profile --reference`` and send the result to ``.../profiles``."""
    return stored_reference(_monitor(request), name, version)


@router.put("/models/{name}/versions/{version}/reference-profile",
            dependencies=[requires("admin")], status_code=201, tags=["models"],
            responses=answers(ImportedReference, 409, status=201),
            openapi_extra=body_doc(json=ReferenceDocument))
async def put_reference_profile(request: Request, name: str, version: str) -> dict[str, Any]:
    """A reference fitted elsewhere (``aiwarden profile --fit``): checked (fingerprint
    recomputed, counts against bins) and stored as the version's; immutable like any."""
    doc = await _object(request, "body")
    monitor = _monitor(request)
    out = await run_in_threadpool(store_reference, monitor, name, version, doc)
    await run_in_threadpool(install_defaults, monitor, name, out["schema"].get("task"))
    return out


@router.post("/models/{name}/versions/{version}/profiles", dependencies=[requires("ingest")],
             status_code=201, tags=["ingest"], responses=answers(ProfileTaken, 409, status=201),
             openapi_extra=body_doc(json=ProfileBatch))
async def post_profile(request: Request, name: str, version: str) -> dict[str, Any]:
    """A batch profile counted elsewhere on this version's reference, added to the windows
    at ``at``; its ``batch`` name is counted once."""
    doc = await _object(request, "body")
    for key in ("batch", "at", "profile"):
        if key not in doc:
            raise Malformed(f"{key}: required (a body is {{batch, at, profile}}).", key)
    return await run_in_threadpool(add_batch_profile, _monitor(request), name, version,
                                   doc["profile"], batch=doc["batch"], at=doc["at"])
