"""Rollback API: policies per model, a rollback by hand, and pending verifications.

Automatic rollbacks happen in the alert pipeline (``aiwarden/incidents/rollback.py``);
these routes set what may trigger them and let a person roll back at once.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from aiwarden.incidents.canary import compare_versions
from aiwarden.incidents.rollback import PENDING, Rollbacks, parse_policy
from aiwarden.monitoring.windows import parse_instant
from aiwarden.server.access import actor, monitor, requires
from aiwarden.server.api_models import (
    PendingRollback,
    RollbackPolicy,
    RollbackPolicySpec,
    Rolled,
    Status,
    VersionComparison,
    answers,
    body_doc,
)
from aiwarden.server.jsonbody import TextBody, json_body
from aiwarden.store import kv
from aiwarden.store.models_repo import NotFound

__all__ = ["router"]

router = APIRouter(tags=["rollback"])


def _rollbacks(request: Request) -> Rollbacks:
    return request.app.state.rollbacks


@router.get("/models/{name}/rollback-policy", dependencies=[requires("read")],
            responses=answers(RollbackPolicy))
def get_policy(request: Request, name: str) -> dict[str, Any]:
    monitor(request)
    policy = _rollbacks(request).policies().get(name)
    if policy is None:
        raise NotFound(f"Model {name!r} has no rollback policy.", "model")
    return policy.model_dump()


@router.put("/models/{name}/rollback-policy", dependencies=[requires("admin")],
            responses=answers(RollbackPolicy),
            openapi_extra=body_doc(json=RollbackPolicySpec))
async def put_policy(request: Request, name: str) -> dict[str, Any]:
    """Which alerts may roll the model's alias back (validated; the model must exist)."""
    body = (await json_body(request, RollbackPolicySpec)).model_dump()

    def store() -> dict[str, Any]:
        monitor(request).model(name)
        policy = parse_policy({**body, "model": name})
        _rollbacks(request).set_policy(policy)
        return policy.model_dump()

    return await run_in_threadpool(store)


@router.delete("/models/{name}/rollback-policy", dependencies=[requires("admin")],
               responses=answers(Status))
def delete_policy(request: Request, name: str) -> dict[str, str]:
    monitor(request)
    if not _rollbacks(request).delete_policy(name):
        raise NotFound(f"Model {name!r} has no rollback policy.", "model")
    return {"status": "deleted"}


class RollbackRequest(TextBody):
    alias: str = "champion"
    to: str | None = None
    reason: str = Field(min_length=1, max_length=2000)


@router.post("/models/{name}/rollback", dependencies=[requires("operate")],
             responses=answers(Rolled, 409))
async def rollback(request: Request, name: str, body: RollbackRequest) -> dict[str, Any]:
    """Move the alias back now (to its previous version, or ``to``); the open incident of
    the model, if any, records it, and the result is verified like an automatic one."""
    who = actor(request)
    pipeline = request.app.state.pipeline
    rolled = await run_in_threadpool(
        pipeline.rollback_by_hand, name, body.alias, body.to, body.reason, who)
    return rolled.to_dict()


@router.get("/models/{name}/compare-versions", dependencies=[requires("read")],
            responses=answers(VersionComparison))
def compare(request: Request, name: str, champion: str, challenger: str,
            start: str | None = "-1h", end: str | None = None,
            alpha: float = Query(0.01, gt=0, lt=0.5)) -> dict[str, Any]:
    """Two versions on the same window (a canary beside its champion): volumes, failures,
    wrong answers among labels, latency, performance, and one-sided rate tests."""
    mon = monitor(request)
    t1 = parse_instant(end, "end") if end else time.time()
    t0 = parse_instant(start, "start") if start else t1 - 3600
    for v in (champion, challenger):
        mon.version(name, v)  # 404 naming the missing version
    return compare_versions(mon, name, champion, challenger, t0, t1, alpha)


@router.get("/rollbacks/pending", dependencies=[requires("read")],
            responses=answers(list[PendingRollback]))
def pending(request: Request) -> list[dict[str, Any]]:
    """Rollbacks waiting for their verification."""
    mon = monitor(request)
    with mon.db.read() as conn:
        return kv.get(conn, PENDING, [])
