"""Explanations over REST (docs/explain.md): why a logged prediction got its answer, and
which features drive a window compared with the reference.

Explaining is a read (the ``read`` scope): it loads a version's pickle-free artifact and
computes, it changes nothing. The work runs off the event loop and stops when the client
hangs up (``until_disconnect``: asked between chunks of rows and model calls); the ``explain`` extra
(shap, lime) must be installed on the server, else the answer is a 501 naming it.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from aiwarden.errors import DataError
from aiwarden.monitoring.explanations import MAX_ROWS, Explanations
from aiwarden.server.access import monitor, requires
from aiwarden.server.api_models import Open, answers, body_doc, json_int
from aiwarden.server.errors import Forbidden, HttpError
from aiwarden.server.jsonbody import json_body
from aiwarden.server.long_work import until_disconnect
from aiwarden.server.origin import same_origin
from aiwarden.server.spec_models import SPAN_PATTERN, duration_pattern

__all__ = ["explanations_for", "parse_where", "router"]

router = APIRouter(tags=["explain"])
_LOCK = threading.Lock()


class ExplainOptionsBody(BaseModel):
    """How to explain (docs/explain.md); every field optional."""

    model_config = ConfigDict(extra="forbid")
    method: Literal["auto", "tree", "linear", "permutation", "kernel", "lime"] = "auto"
    seed: json_int(ge=0, le=2**31 - 1) = 0
    background_size: json_int(ge=1, le=1000) = 100
    kernel_background: json_int(ge=1, le=200) = 20
    kernel_samples: json_int(ge=1, le=10_000) | None = None
    max_evals: json_int(ge=1, le=10_000) | None = None
    lime_samples: json_int(ge=100, le=20_000) | None = Field(
        None, description="LIME's perturbed samples per row. Left out (or null): starts at "
        "10,000 and doubles up to 80,000 until the |weight| gap between ranks 5 and 6 is 3 "
        "seed standard deviations, else the explanation reports the tie (`samples`, `ties`); "
        "given: exactly that count, lime's own answer (docs/explain.md)")
    tree_perturbation: Literal["interventional", "tree_path_dependent"] = "interventional"
    target_class: str | int | bool | None = None
    task: Literal["auto", "classification", "regression"] = "auto"


_ONE_OF_IDS_OR_ROWS = {"oneOf": [
    {"required": ["prediction_ids"], "not": {"required": ["rows"]}},
    {"required": ["rows"], "not": {"required": ["prediction_ids"]}}]}


class ExplainBody(BaseModel):
    """Logged predictions by id, or rows sent now; never both (the document says so with
    ``oneOf``, and neither may be null, so what it calls valid is what is accepted)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_ONE_OF_IDS_OR_ROWS)
    prediction_ids: list[str] = Field(None, min_length=1,  # type: ignore[assignment]
                                      max_length=MAX_ROWS,
                                      description="each explained by the version that "
                                                  "served it, unless `version`")
    rows: list[dict[str, Any]] = Field(None, min_length=1,  # type: ignore[assignment]
                                       max_length=MAX_ROWS,
                                       description="feature values, flat or under "
                                                   "`features`")
    version: str | None = Field(None, max_length=200, description="default: the serving "
                                                                  "version (rows) or each "
                                                                  "row's own (ids)")
    options: ExplainOptionsBody | None = None


class Contribution(Open):
    feature: str
    value: Any = None
    contribution: float | None
    rule: str | None = Field(None, description="LIME's condition, e.g. amount <= 10.50")


class LoggedOutput(Open):
    value: float | None = Field(description="the logged score of the explained class (or "
                                            "the logged prediction); null: none (reason)")
    model: float | None = Field(None, description="the registered model's on the logged "
                                                  "features, in the same space")
    difference: float | None = Field(None, description="model - value")
    agrees: bool | None = Field(None, description="within 0.01 for a score, 0.1 % for a "
                                                  "prediction; false: the explanation is "
                                                  "not of what was served")
    compared: str | None = None
    reason: str | None = Field(None, description="why nothing was compared")


class RowExplanation(Open):
    row: int
    prediction_id: str | None
    version: str
    method: str
    output_space: str = Field(description="probability, margin or prediction")
    explained_class: Any = None
    base_value: float | None
    output: float | None
    residual: float | None = Field(description="output - base_value - sum(contributions)")
    contributions: list[Contribution] = Field(description="largest |contribution| first")
    logged: LoggedOutput | None = Field(None, description="logged predictions only: the "
                                                          "logged answer beside the model's")


class Explained(Open):
    model: str
    versions: dict[str, Any] = Field(description="per version: method, output space, "
                                                 "features, background size, seed")
    explanations: list[RowExplanation]
    missing: list[str] = Field(description="prediction ids the model never accepted")
    disagree: list[str] | None = Field(None, description="logged predictions whose logged "
                                                         "answer the model does not give")


class Importance(Open):
    model: str
    version: str
    rows: int = Field(description="logged rows of the version in the window")
    sample_size: int = Field(description="rows of the window explained")
    importance: dict[str, Any] = Field(description="mean |attribution| per feature with a "
                                                   "bootstrap interval, of a seeded sample")
    reference: dict[str, Any] = Field(description="the same over the reference sample")
    drift: dict[str, Any] = Field(description="nDCG of the ranking (alarm below the "
                                              "threshold) and each feature's shift")
    slice: dict[str, Any] | None = Field(None, description="inside the slice vs the rest")


def explanations_for(app: Any) -> Explanations:
    """The app's explanation service (and its cache), made on first use."""
    svc = getattr(app.state, "explanations", None)
    if svc is None:
        with _LOCK:
            svc = getattr(app.state, "explanations", None)
            if svc is None:
                from aiwarden.server.registry_routes import registry_for

                svc = app.state.explanations = Explanations(
                    app.state.monitor, lambda: registry_for(app))
    return svc


class ExplainersBusy(HttpError):
    status, kind = 429, "busy"

    def __init__(self, running: int) -> None:
        super().__init__(f"{running} explanations are running, one per core: try again in a "
                         "few seconds.", None)
        self.headers = {"Retry-After": "5"}


@contextlib.contextmanager
def explain_slot(app: Any) -> Iterator[None]:
    """One explanation per core at a time: each holds a core for up to a minute or two, and
    a client sending many at once (or abandoning them) must not take every core from ingest
    and alerting. Beyond it, 429 with Retry-After."""
    slots = getattr(app.state, "explain_slots", None)
    if slots is None:
        with _MAKING:
            slots = getattr(app.state, "explain_slots", None)
            if slots is None:
                slots = app.state.explain_slots = threading.BoundedSemaphore(_CORES)
    if not slots.acquire(blocking=False):
        raise ExplainersBusy(_CORES)
    try:
        yield
    finally:
        slots.release()


_MAKING = threading.Lock()
_CORES = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
             else os.cpu_count() or 1)


def refuse_cross_site(request: Request) -> None:
    """A GET that costs seconds of CPU is refused to other sites' pages as a change would be
    (an ``<img>`` on any page could keep the server busy): only this server's own pages and
    clients that are not browsers may ask."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    if not same_origin(headers, request.app.state.settings.origin_list):
        raise Forbidden("A page from another site may not run explanations here (Origin "
                        f"{headers.get('origin')!r}, Sec-Fetch-Site "
                        f"{headers.get('sec-fetch-site')!r}).", "origin")


def _need_extra(method: str) -> None:
    """A server without the explain extra says so first (501 naming it), whatever else the
    request holds: nothing else can be answered without it."""
    from aiwarden.explain import _deps

    _deps.lime_tabular() if method == "lime" else _deps.shap()


_WHERE = re.compile(r"^\s*([^<>=!\s][^<>=!]*?)\s*(<|>=|==)\s*(.+?)\s*$")
# what parse_where takes, as the document states it: < and >= need a number
WHERE_PATTERN = (r"^\s*[^<>=!\s][^<>=!]*(==.+|(<|>=)\s*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)"
                 r"([eE][+-]?[0-9]+)?\s*)$")


def parse_where(conditions: list[str]) -> list[tuple[str, str, Any]]:
    """``amount<10`` / ``country==BR`` / ``score>=0.5`` as slice conditions; a value that
    reads as a number is one."""
    out = []
    for i, text in enumerate(conditions):
        m = _WHERE.match(text)
        if m is None:
            raise DataError(f"where[{i}] {text!r}: expected FEATURE<VALUE, FEATURE>=VALUE or "
                            "FEATURE==VALUE.", "where")
        feature, op, raw = m.groups()
        try:
            value: Any = float(raw)
        except ValueError:
            value = raw
        if op != "==" and isinstance(value, str):
            raise DataError(f"where[{i}] {text!r}: {op} needs a number.", "where")
        out.append((feature, op, value))
    return out


@router.post("/models/{name}/explain", dependencies=[requires("read")],
             responses=answers(Explained, 404, 409, 501, 503),
             openapi_extra=body_doc(json=ExplainBody))
async def explain(request: Request, name: str) -> dict[str, Any]:
    """Why each row got its output: base value, each feature's contribution with its value,
    the output and the additivity residual (SHAP, or LIME with ``method: lime``)."""
    monitor(request)
    body = await json_body(request, ExplainBody)
    _need_extra(body.options.method if body.options else "auto")
    svc = explanations_for(request.app)
    options = body.options.model_dump(exclude_unset=True) if body.options else None
    with explain_slot(request.app):
        return await until_disconnect(request, lambda stop: svc.explain(
            name, prediction_ids=body.prediction_ids, rows=body.rows, version=body.version,
            options=options, should_stop=stop))


@router.get("/models/{name}/importance", dependencies=[requires("read")],
            responses=answers(Importance, 404, 409, 501, 503))
async def importance(request: Request, name: str, version: str | None = None,
                     start: str | None = None, end: str | None = None,
                     sample_size: int | None = Query(
                         None, ge=10, le=20_000, description="rows of the window explained "
                         "(default 500, fewer when a black-box explainer would exceed the "
                         "budget with them)"),
                     method: Literal["auto", "tree", "linear", "permutation", "kernel",
                                     "lime"] = "auto",
                     seed: int = Query(0, ge=0, le=2**31 - 1),
                     where: Annotated[list[str] | None, Query(
                         max_length=10, description="a slice to compare with the rest, "
                                                    "e.g. amount<10",
                         json_schema_extra={"items": {"type": "string",
                                                      "pattern": WHERE_PATTERN}})] = None
                     ) -> dict[str, Any]:
    """Which features drive the window (mean |SHAP| of a seeded sample, with bootstrap
    intervals), the reference's ranking, their attribution drift, and a slice's own."""
    monitor(request)
    refuse_cross_site(request)
    _need_extra(method)
    svc = explanations_for(request.app)
    conditions = parse_where(where) if where else None
    with explain_slot(request.app):
        return await until_disconnect(request, lambda stop: svc.importance(
            name, version=version, start=start, end=end, sample_size=sample_size,
            where=conditions, options={"method": method, "seed": seed}, should_stop=stop))


class AttributionSettingsBody(BaseModel):
    """A model's scheduled attribution-drift checks; every field optional."""

    model_config = ConfigDict(extra="forbid")
    # the document states the bound AttributionSettings checks (its message names it)
    every: Annotated[str, Field(pattern=SPAN_PATTERN, json_schema_extra={
        "pattern": f"^({duration_pattern(60, 7 * 86400)})$"})] | Annotated[
        float, Field(ge=60, le=7 * 86400)] | None = Field(
        None, description="between two checks: seconds or a duration such as 1h (60 s .. 7 d)")
    sample_size: int | None = Field(None, ge=20, le=20_000)
    method: Literal["auto", "tree", "linear", "permutation", "kernel"] | None = None
    threshold: float | None = Field(None, gt=0, le=1, description="nDCG alarm level")


class AttributionStatus(Open):
    model: str
    settings: dict[str, Any] = Field(description="every (s), sample_size, method, threshold")
    checks: list[dict[str, Any]] = Field(description="newest last: at, version, window, "
                                                     "ndcg, alarm, shifted_count, max_ks, "
                                                     "top features, or the reason none")


def _status(request: Request, name: str) -> dict[str, Any]:
    from aiwarden.store import models_repo as repo

    mon = monitor(request)
    watch = mon.attribution
    with mon.db.read() as conn:
        m = repo.get_model(conn, name)
        return {"model": name, "settings": watch.settings(conn, m.id).to_dict(),
                "checks": watch.checks(conn, m.id)[-50:]}


@router.get("/models/{name}/attribution-drift", dependencies=[requires("read")],
            responses=answers(AttributionStatus, 404))
def attribution_status(request: Request, name: str) -> dict[str, Any]:
    """The model's attribution-drift settings and its latest scheduled checks."""
    return _status(request, name)


@router.put("/models/{name}/attribution-drift", dependencies=[requires("admin")],
            responses=answers(AttributionStatus, 404),
            openapi_extra=body_doc(json=AttributionSettingsBody))
async def put_attribution(request: Request, name: str) -> dict[str, Any]:
    """How often the model's attribution drift is checked, on how many rows, by which
    explainer, and the nDCG below which it alarms."""
    body = (await json_body(request, AttributionSettingsBody)).model_dump(exclude_none=True)
    await run_in_threadpool(monitor(request).attribution.put_settings, name, body)
    return await run_in_threadpool(_status, request, name)


class AttributionCheckBody(BaseModel):
    """Which windows to check now; none given: the model's attribution_drift rules'."""

    model_config = ConfigDict(extra="forbid")
    windows: list[Annotated[str, Field(pattern=SPAN_PATTERN)]] | None = Field(
        None, min_length=1, max_length=10, description="durations ending now, e.g. ['1h']")


@router.post("/models/{name}/attribution-drift/check", dependencies=[requires("operate")],
             responses=answers(AttributionStatus, 404, 409, 501, 503),
             openapi_extra=body_doc(json=AttributionCheckBody, required=False))
async def check_attribution(request: Request, name: str) -> dict[str, Any]:
    """Check now (over the given windows, else those of the model's attribution_drift
    rules, else the last hour) instead of waiting for the schedule."""
    from aiwarden.monitoring.windows import parse_duration

    raw = await request.body()
    body = (await json_body(request, AttributionCheckBody) if raw.strip()
            else AttributionCheckBody())
    windows = ([parse_duration(w, "windows") for w in body.windows] if body.windows
               else None)
    _need_extra("auto")
    await run_in_threadpool(monitor(request).attribution.check_now, name, None, windows)
    return await run_in_threadpool(_status, request, name)
