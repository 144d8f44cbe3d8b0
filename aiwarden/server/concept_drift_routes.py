"""REST and Prometheus for concept drift (docs/concept-drift.md): change points, the
detectors' settings and their progress.

Every answer is read from the stored state, so any server process answers the same
whatever process fed the detectors.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import Field

from aiwarden.monitoring.concept_drift import ConceptDrift, late_labels
from aiwarden.monitoring.service import Monitor
from aiwarden.monitoring.windows import parse_instant, to_iso
from aiwarden.server.access import monitor as _monitor
from aiwarden.server.access import requires
from aiwarden.server.api_models import Open, answers, body_doc
from aiwarden.server.concept_drift_schema import ConceptDriftSettingsBody
from aiwarden.server.jsonbody import json_body
from aiwarden.store import models_repo as repo

__all__ = ["ConceptDriftCollector", "router"]

router = APIRouter()


class ChangePoint(Open):
    version: str
    detector: str
    at: str = Field(description="prediction time of the outcome on which the detector fired")
    prediction_id: str
    position: int = Field(description="0-based index of that outcome in the version's stream")
    detected_at: str = Field(description="when the server found it (the cycle's time)")
    statistic: float = Field(description="the detector's estimate of the stream's mean "
                                         "(error rate or mean absolute error) when it fired")
    mean_before: float = Field(description="mean outcome since the detector's previous "
                                           "change point (or its start)")


class ChangePoints(Open):
    model: str
    change_points: list[ChangePoint]
    dropped: int = Field(description="older change points no longer kept (totals count them)")


class ConceptDriftBody(Open):
    """What the handler parses: loose, so ``ConceptDriftSettings.parse`` names the field
    at fault (the document shows :class:`ConceptDriftSettingsBody`)."""

    enabled: Any = None
    label_delay: Any = None
    detectors: Any = None


class ConceptDriftStatus(Open):
    model: str
    settings: dict[str, Any]
    watermark: str | None = Field(description="outcomes predicted before this were fed")
    versions: dict[str, Any]


def _concept(request: Request) -> tuple[Monitor, ConceptDrift]:
    mon = _monitor(request)
    return mon, ConceptDrift(mon.db, mon.refs)


def _point(p: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in p.items() if k != "version_id"} | {
        "at": to_iso(p["at"]), "detected_at": to_iso(p["detected_at"])}


@router.get("/models/{name}/change-points", dependencies=[requires("read")],
            tags=["monitoring"], responses=answers(ChangePoints, 404))
def change_points(request: Request, name: str, version: str | None = None,
                  detector: Literal["adwin", "ddm", "page_hinkley"] | None = None,
                  start: str | None = None,
                  end: str | None = None, limit: int = Query(500, ge=1, le=5000)
                  ) -> dict[str, Any]:
    """Change points the concept-drift detectors found, oldest first; ``start``/``end``
    filter on the prediction time of the outcome where each fired."""
    mon, concept = _concept(request)
    t0 = None if start in (None, "") else parse_instant(start, "start")
    t1 = None if end in (None, "") else parse_instant(end, "end")
    with mon.db.read() as conn:
        m = repo.get_model(conn, name)
        if version is not None:
            repo.get_version(conn, m, version)  # 404 for an unknown version
        state = concept.state(conn, m.id)
    found = [p for p in state.get("change_points", [])
             if (version is None or p["version"] == version)
             and (detector is None or p["detector"] == detector)
             and (t0 is None or p["at"] >= t0) and (t1 is None or p["at"] < t1)]
    found.sort(key=lambda p: (p["at"], p["detector"]))
    return {"model": name, "change_points": [_point(p) for p in found[-limit:]],
            "dropped": state.get("dropped_change_points", 0)}


@router.get("/models/{name}/concept-drift", dependencies=[requires("read")],
            tags=["monitoring"], responses=answers(ConceptDriftStatus, 404))
def concept_drift_status(request: Request, name: str) -> dict[str, Any]:
    """The detectors' settings (defaults filled in) and, per version, how far they got."""
    mon, concept = _concept(request)
    with mon.db.read() as conn:
        m = repo.get_model(conn, name)
        settings = concept.settings(conn, m).to_dict(concept.task(conn, m))
        state = concept.state(conn, m.id)
    versions = {}
    mark, levels = state.get("watermark"), mon.levels  # levels: outside the read
    with mon.db.read() as conn:
        late = {vid: late_labels(conn, m.id, int(vid), vs, mark, levels)
                for vid, vs in state.get("versions", {}).items()} if mark is not None else {}
    for vid, vs in state.get("versions", {}).items():
        versions[vs["version"]] = {
            "outcomes": vs["fed"], "unscored": vs["unscored"], "late_labels": late.get(vid, 0),
            "last_prediction_at": to_iso(vs["last_prediction_at"])
            if "last_prediction_at" in vs else None,
            "change_points": vs.get("totals", {}), "skipped": vs.get("skipped", {}),
            "detectors": {k: {"n_seen": d["n_seen"], "estimation": d["estimation"],
                              **({"warning": d["warning"]} if k == "ddm" else {})}
                          for k, d in vs["detectors"].items()}}
    return {"model": name, "settings": settings,
            "watermark": None if mark is None else to_iso(mark), "versions": versions}


@router.put("/models/{name}/concept-drift", dependencies=[requires("admin")],
            tags=["monitoring"], responses=answers(ConceptDriftStatus, 404),
            openapi_extra=body_doc(json=ConceptDriftSettingsBody))
async def put_concept_drift(request: Request, name: str) -> dict[str, Any]:
    """Choose the detectors and their parameters; a detector whose parameters change starts
    afresh at the current watermark (its earlier change points stay)."""
    _, concept = _concept(request)
    body = (await json_body(request, ConceptDriftBody)).model_dump(exclude_unset=True)
    await run_in_threadpool(concept.put_settings, name, body)
    return await run_in_threadpool(concept_drift_status, request, name)


class ConceptDriftCollector(Collector):
    """All-time counts from the stored state: counters that survive restarts and agree
    across processes."""

    def __init__(self, monitor: Monitor, models: list[str] | None = None) -> None:
        self.monitor, self.models = monitor, models

    def collect(self) -> Iterator[Any]:
        mon = self.monitor
        concept = ConceptDrift(mon.db, mon.refs)
        points = CounterMetricFamily(
            "aiwarden_concept_drift_change_points", "Change points found by a concept-drift "
            "detector since it was first fed.", labels=["model", "version", "detector"])
        outcomes = CounterMetricFamily(
            "aiwarden_concept_drift_outcomes", "Labelled outcomes fed to the concept-drift "
            "detectors.", labels=["model", "version"])
        mark = GaugeMetricFamily(
            "aiwarden_concept_drift_watermark_timestamp_seconds", "Outcomes predicted before "
            "this time have been fed to the detectors.", labels=["model"])
        with mon.db.read() as conn:
            models = repo.list_models(conn) if self.models is None else [
                repo.get_model(conn, n) for n in dict.fromkeys(self.models)]
            states = [(m.name, concept.state(conn, m.id)) for m in models]
        for model, state in states:
            if state.get("watermark") is not None:
                mark.add_metric([model], state["watermark"])
            for vs in state.get("versions", {}).values():
                outcomes.add_metric([model, vs["version"]], vs["fed"])
                for det in sorted(set(vs.get("totals", {})) | set(vs["detectors"])):
                    points.add_metric([model, vs["version"], det],
                                      vs.get("totals", {}).get(det, 0))
        yield from (points, outcomes, mark)
