"""One logged prediction's page (the row as accepted, its label, and why the model answered
it: a waterfall of SHAP or LIME contributions), and the model page's lazily loaded window
feature-importance panel (docs/dashboard.md, docs/explain.md).

Both read the REST API's explanation service (``explain_routes.explanations_for``: the same
answers and the same cache as ``POST /models/{name}/explain`` and
``GET /models/{name}/importance``). An explanation that cannot be computed (no registered
model for the version, a pickle artifact, no reference sample, shap or lime missing) is a
message on the page beside the row, never an error page: the row is still worth reading.
The work stops when the tab is closed or the server shuts down (``until_disconnect``, as
the API does), so an abandoned page frees its explanation slot within a model call.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from aiwarden.engine.schema import Role
from aiwarden.errors import AiwardenError, ParameterError
from aiwarden.monitoring import rows as row_format
from aiwarden.server.dashboard.ranges import span
from aiwarden.server.dashboard.render import page
from aiwarden.server.dashboard.specs import rounded
from aiwarden.server.dashboard.web import PageRoute, page_requires, viewer
from aiwarden.server.explain_routes import (
    ExplainersBusy,
    explain_slot,
    explanations_for,
    parse_where,
)
from aiwarden.server.long_work import until_disconnect
from aiwarden.server.origin import same_origin
from aiwarden.store import models_repo as repo
from aiwarden.store.models_repo import NotFound

__all__ = ["METHODS", "TOP", "importance_chart", "router", "waterfall"]

router = APIRouter(route_class=PageRoute, include_in_schema=False)

#: the page's method switch: SHAP with the explainer chosen for the model, or LIME
METHODS = {"auto": "SHAP", "lime": "LIME"}
TOP = 10  # contributions drawn one by one; the rest are one "other features" step
_SPACE = {"probability": "probability", "margin": "margin (raw score before the link)",
          "prediction": "prediction"}  # margin: log-odds for two classes, a logit for more


def _method(request: Request) -> str:
    method = request.query_params.get("method") or "auto"
    if method not in METHODS:
        raise ParameterError(f"method: expected one of {list(METHODS)}; got {method!r}.",
                             "method")
    return method


def waterfall(e: dict[str, Any], top: int = TOP) -> dict[str, Any]:
    """The chart of one explanation: base value, then each contribution (largest first, at
    most ``top``), the rest as one step, the additivity residual when it is not nil (LIME's
    surrogate misses), and the output."""
    contribs = [c for c in e["contributions"] if c.get("contribution") is not None]
    base, out = e.get("base_value"), e.get("output")
    steps: list[dict[str, Any]] = []
    at = base or 0.0
    steps.append({"name": "base value", "from": 0.0, "to": at, "kind": "total"})
    for c in contribs[:top]:
        steps.append({"name": c["feature"], "from": at, "to": at + c["contribution"],
                      "kind": "up" if c["contribution"] >= 0 else "down",
                      "value": c.get("value")})
        at += c["contribution"]
    rest = contribs[top:]
    if rest:
        delta = sum(c["contribution"] for c in rest)
        steps.append({"name": f"other {len(rest)} features", "from": at, "to": at + delta,
                      "kind": "up" if delta >= 0 else "down"})
        at += delta
    residual = e.get("residual") or 0.0
    scale = max([abs(base or 0.0), abs(out or 0.0)] + [abs(c["contribution"])
                                                        for c in contribs] + [1e-12])
    if out is not None and abs(residual) > 1e-6 * scale:
        steps.append({"name": "not explained (residual)", "from": at, "to": at + residual,
                      "kind": "up" if residual >= 0 else "down"})
        at += residual
    steps.append({"name": "output", "from": 0.0, "to": out if out is not None else at,
                  "kind": "total"})
    for s in steps:
        s["from"], s["to"] = rounded(s["from"], 6), rounded(s["to"], 6)
    space = _SPACE.get(e.get("output_space"), e.get("output_space") or "output")
    cls = e.get("explained_class")
    title = f"Why this output: {space}" + (f" of class {cls}" if cls is not None else "")
    return {"id": "waterfall", "kind": "waterfall", "title": title, "unit": "",
            "categories": [s["name"] for s in steps], "steps": steps,
            "note": f"{_method_name(e.get('method'))}, largest first"}


def _method_name(method: str | None) -> str:
    """"SHAP (tree)", "SHAP (permutation)", "LIME": the family, then SHAP's explainer."""
    return "LIME" if method == "lime" else f"SHAP ({method})"


def _logged(state: Any, name: str, pid: str) -> dict[str, Any]:
    """The accepted row of ``pid``: features, prediction, scores and the rest by the serving
    version's schema, its label (when joined), version and time."""
    mon = state.monitor
    found = mon.events_by_id(name, [pid])
    if found["missing"] or found["table"].num_rows == 0:
        raise NotFound(f"Prediction {pid!r} was never accepted for {name!r} (unknown, "
                       "quarantined, or aged out of retention).")
    row = found["table"].to_pylist()[0]
    version = found["versions"][0]
    ts = row.get(row_format.TS)
    ts = ts.timestamp() if hasattr(ts, "timestamp") else ts
    with mon.db.read() as conn:
        m = repo.get_model(conn, name)
        ref = mon.refs.get(conn, repo.get_version(conn, m, version).id)
        versions = [v.version for v in repo.list_versions(conn, m)]
    schema = ref.schema_ if ref is not None else None
    feats = list(schema.features) if schema else []
    pred = schema.column_for(Role.PREDICTION) if schema else None
    scores = [c.name for c in schema.with_role(Role.SCORE)] if schema else []
    shown = {row_format.PID, row_format.TS, row_format.VERSION, "label", *feats, *scores}
    if pred:
        shown.add(pred)
    return {"prediction_id": pid, "version": version, "versions": versions,
            "timestamp": ts, "label": row.get("label"),
            "prediction": (pred, row.get(pred)) if pred else None,
            "scores": [(s, row.get(s)) for s in scores if s in row],
            "features": [(f, row.get(f)) for f in feats if f in row],
            "other": [(k, v) for k, v in row.items() if k not in shown and v is not None]}


async def _explained(request: Request, name: str, pid: str, version: str | None,
                     method: str) -> dict[str, Any]:
    """The row and its explanation; an explanation the service refuses is its message.
    The explaining stops when the client leaves (then nobody reads the page)."""
    app = request.app
    row = await run_in_threadpool(_logged, app.state, name, pid)
    svc = explanations_for(app)
    try:
        with explain_slot(app):
            answer = await until_disconnect(request, lambda stop: svc.explain(
                name, prediction_ids=[pid], version=version, options={"method": method},
                should_stop=stop))
    except (AiwardenError, ExplainersBusy) as exc:  # a model's own refusal, every core busy
        return {"row": row, "explanation": None, "error": str(exc)}
    e = answer["explanations"][0]
    info = answer["versions"].get(e["version"], {})
    spec = waterfall(e)
    return {"row": row, "explanation": e, "info": info, "spec": spec, "error": None,
            "residual": any(s["name"].startswith("not explained") for s in spec["steps"]),
            "space": _SPACE.get(e.get("output_space"), e.get("output_space"))}


@router.get("/models/{name}/predictions", dependencies=[page_requires("read")],
            response_class=HTMLResponse)
async def find_prediction(request: Request, name: str, id: str = "") -> Response:
    """The model page's "explain a prediction" form: to the prediction's page."""
    viewer(request)
    pid = id.strip()
    if not pid:
        raise ParameterError("id: enter a prediction id.", "id")
    return RedirectResponse(f"/models/{quote(name, safe='')}/predictions/"
                            f"{quote(pid, safe='')}", status_code=303)


@router.get("/models/{name}/predictions/{prediction_id:path}",  # an id may hold "/"
            dependencies=[page_requires("read")], response_class=HTMLResponse)
async def prediction_page(request: Request, name: str, prediction_id: str) -> Response:
    viewer(request)
    method = _method(request)
    version = request.query_params.get("version") or None
    headers = {k.lower(): v for k, v in request.headers.items()}
    if same_origin(headers, request.app.state.settings.origin_list):
        data = await _explained(request, name, prediction_id, version, method)
    else:  # a link in an alert may open the page; an <img> on any site must not cost CPU
        row = await run_in_threadpool(_logged, request.app.state, name, prediction_id)
        data = {"row": row, "explanation": None, "error": None, "deferred": True}
    return page(request, "prediction.html", {
        "name": name, "pid": prediction_id, "method": method, "methods": METHODS,
        "asked_version": version, "top": TOP, **data})


def importance_chart(answer: dict[str, Any]) -> dict[str, Any]:
    """Mean |attribution| of the window per feature with its bootstrap interval (whiskers)
    beside the reference's (diamonds); categories name the reference rank."""
    ref = {f["feature"]: f for f in answer["reference"]["features"]}
    feats = answer["importance"]["features"]
    cats = [f"{f['feature']} (ref #{ref[f['feature']]['rank']})" if f["feature"] in ref
            else f["feature"] for f in feats]
    level = answer["importance"].get("level")
    return {"id": "importance", "kind": "hbars", "title": "Mean |attribution| per feature",
            "unit": "", "categories": cats, "series": [
                {"name": "this window", "data": [rounded(f["importance"]) for f in feats],
                 "lower": [rounded(f["lower"]) for f in feats],
                 "upper": [rounded(f["upper"]) for f in feats], "color": "#0072B2"},
                {"name": "reference", "type": "marker", "color": "#000000",
                 "data": [rounded((ref.get(f["feature"]) or {}).get("importance"))
                          for f in feats]}],
            "note": f"whiskers: {round(100 * level) if level else 95} % bootstrap interval"}


async def _importance(request: Request, name: str, version: str | None, start: float,
                      end: float, where: list[tuple[str, str, Any]] | None
                      ) -> dict[str, Any]:
    """The panel's data, or the service's refusal as its message; the work stops when the
    client leaves or the server shuts down (nobody reads the panel then)."""
    app = request.app
    svc = explanations_for(app)
    try:
        with explain_slot(app):
            answer = await until_disconnect(request, lambda stop: svc.importance(
                name, version=version, start=start, end=end, where=where,
                should_stop=stop))
    except (AiwardenError, ExplainersBusy) as exc:
        return {"error": str(exc)}
    return {"error": None, "answer": answer, "spec": importance_chart(answer),
            "reference": {f["feature"]: f for f in answer["reference"]["features"]},
            "space": _SPACE.get(answer["importance"].get("output_space"),
                                answer["importance"].get("output_space"))}


@router.get("/models/{name}/explain/importance", dependencies=[page_requires("read")],
            response_class=HTMLResponse)
async def importance_panel(request: Request, name: str) -> Response:
    """The model page's feature-importance panel for its range and version (htmx);
    ``where=amount<10`` (repeatable) adds a slice compared with the rest, as the CLI's
    ``importance --where`` and the API's ``where`` do."""
    from aiwarden.server.explain_routes import refuse_cross_site

    viewer(request)
    refuse_cross_site(request)  # seconds of CPU: only this server's own pages may ask
    q = request.query_params
    conditions = [c for c in q.getlist("where") if c.strip()]
    if len(conditions) > 10:
        raise ParameterError(f"where: at most 10 conditions; got {len(conditions)}.", "where")
    where = parse_where(conditions) if conditions else None  # bad syntax: a 422 naming it
    sp = span(q.get("range"), q.get("end"),
              bucket=request.app.state.monitor.settings.bucket_seconds)
    data = await _importance(request, name, q.get("version") or None, sp.start, sp.end,
                             where)
    return page(request, "_panel_importance.html", {"name": name, "span": sp,
                                                    "where": conditions, **data})
