"""A model's image gallery: quarantined images with their reasons and, where labels arrived,
misclassified ones, each with the thumbnail kept at ingest (aiwarden.monitoring.image_events).

The thumbnails are served here too (the dashboard signs in with a session, not an API key),
by the same store as ``GET /api/v1/models/{m}/images/{id}/thumbnail``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from aiwarden.engine.schema import Role
from aiwarden.monitoring import quarantine as q
from aiwarden.monitoring.image_events import FIELD
from aiwarden.server.dashboard.render import page
from aiwarden.server.dashboard.web import PageRoute, page_requires, viewer
from aiwarden.server.image_routes import _IMAGE_HEADERS, thumbnails
from aiwarden.store import models_repo as repo

__all__ = ["image_properties", "is_image_model", "router"]

router = APIRouter(route_class=PageRoute, include_in_schema=False)
_SHOWN = 60  # images per section
_WINDOW = 6 * 3600  # misclassified: labelled events of the last hours only (bounded read)


def image_properties(schema: Any) -> list[str]:
    """The schema's feature columns that are image properties (aiwarden.images.NUMERIC
    and the per-channel histogram bins), in schema order."""
    from aiwarden.images import NUMERIC

    if schema is None:
        return []
    return [c.name for c in schema.columns if c.role == Role.FEATURE
            and (c.name in NUMERIC or c.name.startswith(("hist_r_", "hist_g_", "hist_b_")))]


def is_image_model(versions: list[Any], shown: str | None) -> bool:
    """Whether the shown version profiles image properties: its model page links here."""
    v = next((v for v in versions if v.version == shown), None)
    return v is not None and bool(image_properties(getattr(v, "schema", None)))


def _distributions(ref: Any, d: Any, columns: list[str]) -> list[dict[str, Any]]:
    """Reference vs the last hours' shares of each profiled image property, from the stored
    profiles (no event is read): where dark or blurry images moved the mass."""
    from aiwarden.server.dashboard.features import distribution

    if not columns or ref is None:
        return []
    charts = [distribution(ref, d, c) for c in columns]
    return [{**c, "id": f"image-{c['id']}"} for c in charts if c is not None]


def _context(state: Any, name: str, store: Any) -> dict[str, Any]:
    mon = state.monitor
    m = mon.model(name)
    with mon.db.read() as conn:
        bad = q.list_rows(conn, m.id, field=FIELD, limit=_SHOWN)
        try:
            schema = repo.get_version(conn, m).schema
        except Exception:  # no version yet: nothing can be misclassified
            schema = None
    quarantined = [{"prediction_id": r.prediction_id, "reason": r.reason,
                    "thumb": r.prediction_id is not None
                    and store.path(m.id, r.prediction_id).is_file()} for r in bad]
    pred = next((c.name for c in schema.columns if c.role == Role.PREDICTION), None) \
        if schema is not None else None
    wrong: list[dict[str, Any]] = []
    columns = image_properties(schema)
    table = (mon.export_events(name, start=f"-{_WINDOW // 3600}h", end="now")
             if pred is not None or columns else None)
    if pred is not None and table is not None and pred in table.column_names:
        pids = table.column("prediction_id").to_pylist()
        preds = table.column(pred).to_pylist()
        labels = table.column("label").to_pylist()
        for i in np.argsort(table.column("timestamp").to_numpy())[::-1].tolist():
            if labels[i] is None or str(preds[i]) == labels[i]:
                continue
            if store.path(m.id, str(pids[i])).is_file():
                wrong.append({"prediction_id": pids[i], "predicted": preds[i],
                              "label": labels[i]})
            if len(wrong) >= _SHOWN:
                break
    # one read of the window's profiles and the reference serves both sections
    ref, d = mon.window(name, f"-{_WINDOW // 3600}h", "now") if columns else (None, None)
    outliers = _outliers(ref, table, columns, lambda pid: store.path(m.id, pid))
    return {"name": name, "quarantined": quarantined, "misclassified": wrong,
            "outliers": outliers, "hours": _WINDOW // 3600,
            "distributions": _distributions(ref, d, columns)}


def _outliers(ref: Any, table: Any, columns: list[str], thumb: Any
              ) -> list[dict[str, Any]]:
    """The last hours' images with a property in the reference's far bins (the engine's own
    "far below" / "far above" the reference range), the farthest first, in units of the
    reference's standard deviation beyond its range: a frame much darker, blurrier or
    larger than any the model was fitted on. Only images with a thumbnail are shown."""
    if ref is None or table is None or not columns or table.num_rows == 0:
        return []
    pids = table.column("prediction_id").to_pylist()
    best = np.zeros(table.num_rows)
    why: list[str | None] = [None] * table.num_rows
    for col in columns:
        binning = ref.binnings_.get(col)
        edges = getattr(binning, "edges", None)
        if edges is None or col not in table.column_names or len(edges) < 4:
            continue
        values = np.asarray(table.column(col).to_numpy(zero_copy_only=False), dtype=float)
        lo, hi = float(edges[1]), float(edges[-2])  # the reference range
        scale = max(float(binning.std), 1e-12)
        far = (values < edges[0]) | (values >= edges[-1])
        beyond = np.where(values < lo, lo - values, values - hi) / scale
        for i in np.flatnonzero(far & (beyond > best)):
            best[i] = beyond[i]
            side = "below" if values[i] < lo else "above"
            why[i] = (f"{col} {values[i]:.3g}, far {side} the reference's "
                      f"{lo:.3g}..{hi:.3g}")
    out = []
    for i in np.argsort(-best).tolist():
        if best[i] <= 0 or len(out) >= _SHOWN:
            break
        if thumb(str(pids[i])).is_file():
            out.append({"prediction_id": pids[i], "why": why[i],
                        "sd": round(float(best[i]), 1)})
    return out


@router.get("/models/{name}/images", dependencies=[page_requires("read")],
            response_class=HTMLResponse)
async def gallery_page(request: Request, name: str) -> Response:
    viewer(request)
    ctx = await run_in_threadpool(_context, request.app.state, name, thumbnails(request))
    return page(request, "images.html", ctx)


@router.get("/models/{name}/images/{prediction_id:path}/thumbnail",
            dependencies=[page_requires("read")])
def gallery_thumbnail(request: Request, name: str, prediction_id: str) -> Response:
    viewer(request)
    m = request.app.state.monitor.model(name)
    data = thumbnails(request).read(m.id, prediction_id)
    if data is None:
        return Response("No thumbnail kept for this prediction id.", 404,
                        media_type="text/plain", headers={"X-Content-Type-Options": "nosniff"})
    return Response(data, media_type="image/jpeg", headers=_IMAGE_HEADERS)
