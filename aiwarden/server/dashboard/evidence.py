"""Evidence that needs more than rollups: failing slices (raw labelled events, capped)
and the registry's versions, aliases and their history."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aiwarden.engine.schema import Role, Task
from aiwarden.monitoring import segments
from aiwarden.monitoring.rows import PID
from aiwarden.store import models_repo

__all__ = ["SLICE_HOURS", "failing_slices", "registry_view"]

log = logging.getLogger("aiwarden.dashboard")
SLICE_HOURS = 24  # the slice finder reads raw events: at most the last day of the range
_MAX_ROWS = 20_000


def failing_slices(monitor: Any, name: str, start: float, end: float,
                   version: str | None, segment: Any = None) -> dict[str, Any]:
    """The RCA's slice finder (``aiwarden.rca.failing_slices``, the engine's slice search)
    on the labelled events of ``[start, end)``, sampled to 20,000 rows as the RCA does,
    with each slice's error beside the rest's."""
    from aiwarden.rca import failing_slices as find

    start = max(start, end - SLICE_HOURS * 3600)
    with monitor.db.read() as conn:
        m = models_repo.get_model(conn, name)
        v = models_repo.get_version(conn, m, version)
        ref = monitor.refs.get(conn, v.id)
    out: dict[str, Any] = {"start": start, "end": end, "labelled": 0, "slices": [],
                           "chart": None}
    if ref is None:
        return out
    rows = monitor.export_events(name, start=start, end=end)
    if "version" in rows.column_names:  # this version's answers, not a canary's beside it
        rows = rows.filter(pc.equal(rows.column("version"), v.version))
    if "label" in rows.column_names:
        rows = rows.filter(rows.column("label").is_valid())
    if segment is not None:  # the chosen segment's rows, by the storage's top-N policy
        rows = rows.filter(pa.array(segments.rows_of(ref, rows, segment,
                                                     monitor.settings.segment_top_n)))
    if rows.num_rows > _MAX_ROWS:
        idx = np.sort(np.random.default_rng(0).choice(rows.num_rows, _MAX_ROWS, replace=False))
        rows = rows.take(pa.array(idx))
    out["labelled"], out["slices"] = find(ref.schema_, rows)
    regression = ref.schema_.task == Task.REGRESSION
    _example_rows(ref.schema_, rows, out["slices"], regression)
    out["metric"] = "mean absolute error" if regression else "error rate"
    if out["slices"]:
        scale = 1.0 if regression else 100.0
        out["chart"] = {"id": "slices", "kind": "hbars", "title": f"Failing slices: "
                        f"{out['metric']}", "unit": "" if regression else "%",
                        "categories": [s["description"] for s in out["slices"]],
                        "series": [
                            {"name": "in the slice", "color": "#D55E00",
                             "data": [round(s["metric_value"] * scale, 3)
                                      for s in out["slices"]]},
                            {"name": "elsewhere", "color": "#9aa4b1",
                             "data": [round(s["rest_value"] * scale, 3)
                                      for s in out["slices"]]}]}
    return out


def _example_rows(schema: Any, rows: pa.Table, slices: list[dict[str, Any]],
                  regression: bool) -> None:
    """Each slice's example predictions as the panel lists them (``example_rows``): the id
    (a link to its explained page), the values of the slice's features, the prediction and
    the label, and whether it was wrong; one lookup for every slice's ids."""
    wanted = [i for s in slices for i in s.get("example_ids", [])]
    pred = schema.column_for(Role.PREDICTION)
    if not wanted or PID not in rows.column_names:
        return
    found = rows.filter(pc.is_in(rows.column(PID), pa.array(wanted, rows.column(PID).type)))
    by_id = {r[PID]: r for r in found.to_pylist()}
    for s in slices:
        feats = list(dict.fromkeys(c[0] for c in s["conditions"]))
        s["example_rows"] = []
        for pid in s.get("example_ids", []):
            r = by_id.get(pid, {})
            p, y = r.get(pred) if pred else None, r.get("label")
            wrong = (None if p is None or y is None else
                     abs(float(y) - float(p)) > s["rest_value"] if regression else
                     str(p) != str(y))
            s["example_rows"].append({"id": pid, "values": [(f, r.get(f)) for f in feats],
                                      "prediction": p, "label": y, "wrong": wrong})


def registry_view(registry: Any, monitor: Any, name: str) -> dict[str, Any]:
    """Registered versions, where each alias points, the alias history and each alias's
    rollback target; monitoring-only versions (no artifact) are listed too."""
    described = monitor.describe_model(name)
    out: dict[str, Any] = {"monitoring": described["versions"], "registered": [],
                           "aliases": {}, "history": [], "previous": {}, "error": None}
    if registry is None:
        out["error"] = "The registry is not available on this server."
        return out
    try:
        out["registered"] = [v.to_dict() for v in registry.versions(name)]
        out["aliases"] = registry.aliases(name)
        out["history"] = [e.to_dict() for e in registry.history(name, None, 50)]
        for alias in out["aliases"]:
            prev = registry.rollback_target(name, alias)[0]  # never back to a rolled-back one
            if prev is not None and prev.version != out["aliases"][alias]:
                out["previous"][alias] = prev.version
    except Exception as exc:  # a store that cannot be opened must not break the page
        log.warning("registry view of %s: %s", name, exc)
        out["error"] = f"The registry could not be read: {exc}"
    return out
