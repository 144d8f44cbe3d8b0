"""REST API for incidents: list, read with the timeline, act on them, postmortems."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import Field, StrictBool

from aiwarden.incidents import IncidentService
from aiwarden.monitoring.windows import parse_instant
from aiwarden.server.access import actor, requires
from aiwarden.server.api_models import Incident as IncidentOut
from aiwarden.server.api_models import IncidentDetail, Postmortem, ResponseTimes, answers
from aiwarden.server.jsonbody import TextBody

__all__ = ["router"]

router = APIRouter()

_ACTIONS = ("acknowledge", "mitigate", "resolve", "decline")
# ids are 32-bit on PostgreSQL: a larger one is invalid (422), not a database error (500)
IncidentId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _service(request: Request) -> tuple[IncidentService, str]:
    return request.app.state.incidents, actor(request)


# Text an incident stores holds no NUL (PostgreSQL's text cannot, so both stores refuse it
# the same way, naming the field); stored notes are not blank (IncidentService refuses text
# that str.strip() empties, hence \x1c-\x1f and \x85, which ECMA's \s does not cover).
_NO_NUL = r"^[^\x00]*$"
_SOME_TEXT = r"^[^\x00]*[^\s\x00\x1c-\x1f\x85][^\x00]*$"


class Act(TextBody):
    note: str | None = Field(default=None, max_length=10_000, pattern=_NO_NUL)


class CommentBody(TextBody):
    text: str = Field(min_length=1, max_length=10_000, pattern=_SOME_TEXT)


class AssignBody(TextBody):
    assignee: str | None = Field(default=None, max_length=200, pattern=_NO_NUL)


class HoldBody(TextBody):
    held: StrictBool  # 0 or "yes" is a mistake, not a hold


class PostmortemBody(TextBody):
    # blank text is refused (IncidentService.edit_postmortem): the schema says so too
    text: str = Field(min_length=1, max_length=200_000, pattern=_SOME_TEXT)


def _full(svc: IncidentService, incident_id: int) -> dict[str, Any]:
    inc = svc.get(incident_id)
    return inc.to_dict() | {"timeline": [e.to_dict() for e in svc.timeline(incident_id)]}


@router.get("/incidents", dependencies=[requires("read")],
            tags=["incidents"], responses=answers(list[IncidentOut]))
def list_incidents(request: Request, model: str | None = None,
                   status: str | None = None) -> list[dict[str, Any]]:
    svc, _ = _service(request)
    out = [i.to_dict() for i in svc.list_incidents(model=model)]
    return [i for i in out if status is None or i["status"] == status]


@router.get("/incidents/{incident_id}", dependencies=[requires("read")],
            tags=["incidents"], responses=answers(IncidentDetail))
def get_incident(request: Request, incident_id: IncidentId) -> dict[str, Any]:
    svc, _ = _service(request)
    return _full(svc, incident_id)


@router.post("/incidents/{incident_id}/comments", dependencies=[requires("operate")],
             tags=["incidents"], status_code=201,
             responses=answers(IncidentDetail, status=201))
def comment(request: Request, incident_id: IncidentId, body: CommentBody) -> dict[str, Any]:
    svc, actor = _service(request)
    svc.comment(incident_id, body.text, actor)
    return _full(svc, incident_id)


@router.put("/incidents/{incident_id}/assignee", dependencies=[requires("operate")],
            tags=["incidents"],
            responses=answers(IncidentDetail))
def assign(request: Request, incident_id: IncidentId, body: AssignBody) -> dict[str, Any]:
    svc, actor = _service(request)
    svc.assign(incident_id, body.assignee, actor)
    return _full(svc, incident_id)


@router.put("/incidents/{incident_id}/hold", dependencies=[requires("operate")],
            tags=["incidents"], responses=answers(IncidentDetail))
def hold(request: Request, incident_id: IncidentId, body: HoldBody) -> dict[str, Any]:
    svc, actor = _service(request)
    svc.hold_open(incident_id, body.held, actor)
    return _full(svc, incident_id)


@router.get("/incidents/{incident_id}/postmortem", dependencies=[requires("read")],
            tags=["incidents"],
            responses=answers(Postmortem))
def get_postmortem(request: Request, incident_id: IncidentId) -> dict[str, Any]:
    svc, _ = _service(request)
    return svc.postmortem(incident_id).to_dict()


@router.put("/incidents/{incident_id}/postmortem", dependencies=[requires("operate")],
            tags=["incidents"],
            responses=answers(Postmortem))
def edit_postmortem(request: Request, incident_id: IncidentId, body: PostmortemBody
                    ) -> dict[str, Any]:
    svc, actor = _service(request)
    svc.edit_postmortem(incident_id, body.text, actor)
    return svc.postmortem(incident_id).to_dict()


@router.get("/models/{name}/response-times", dependencies=[requires("read")],
            tags=["incidents"], responses=answers(ResponseTimes))
def response_times(request: Request, name: str, start: str = "-30d",
                   end: str = "now") -> dict[str, Any]:
    """MTTA and MTTR of the model's incidents opened in the window."""
    svc, _ = _service(request)
    times = svc.response_times(parse_instant(start, "start"), parse_instant(end, "end"),
                               model=name)
    return times[name].to_dict()


@router.post("/incidents/{incident_id}/{action}", dependencies=[requires("operate")],
             tags=["incidents"],
             responses=answers(IncidentDetail))
def act(request: Request, incident_id: IncidentId, action: str, body: Act | None = None
        ) -> dict[str, Any]:
    """acknowledge | mitigate | resolve | decline (checked against the lifecycle)."""
    svc, actor = _service(request)
    if action not in _ACTIONS:
        from aiwarden.store.models_repo import NotFound

        raise NotFound(f"Unknown incident action {action!r}; use one of {list(_ACTIONS)}.",
                       "action")
    getattr(svc, action)(incident_id, actor)
    if body is not None and body.note:
        svc.comment(incident_id, body.note, actor)
    return _full(svc, incident_id)
