"""Evidence that needs more than rollups: failing slices (raw labelled events, capped)
and the registry's versions, aliases and their history."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyarrow as pa

from aiwarden.engine.schema import Role, Task
from aiwarden.store import models_repo

__all__ = ["SLICE_HOURS", "failing_slices", "registry_view"]

log = logging.getLogger("aiwarden.dashboard")
SLICE_HOURS = 24  # the slice finder reads raw events: at most the last day of the range
_MAX_ROWS = 20_000


def failing_slices(monitor: Any, name: str, start: float, end: float,
                   version: str | None) -> dict[str, Any]:
    """The engine's slice finder on the labelled events of ``[start, end)`` (sampled to
    20,000 rows, as the RCA does), with each slice's error beside the rest's."""
    from aiwarden.engine.slices import find_failing_slices

    start = max(start, end - SLICE_HOURS * 3600)
    with monitor.db.read() as conn:
        m = models_repo.get_model(conn, name)
        ref = monitor.refs.get(conn, models_repo.get_version(conn, m, version).id)
    out: dict[str, Any] = {"start": start, "end": end, "labelled": 0, "slices": [],
                           "chart": None}
    if ref is None:
        return out
    schema = ref.schema_
    pred = schema.column_for(Role.PREDICTION)
    rows = monitor.export_events(name, start=start, end=end)
    if "label" not in rows.column_names or pred is None or pred not in rows.column_names:
        return out
    rows = rows.filter(rows.column("label").is_valid())
    if rows.num_rows > _MAX_ROWS:
        idx = np.sort(np.random.default_rng(0).choice(rows.num_rows, _MAX_ROWS, replace=False))
        rows = rows.take(pa.array(idx))
    out["labelled"] = rows.num_rows
    if rows.num_rows < 50:
        return out
    feats = [c for c in schema.features if c in rows.column_names]
    data = rows.select(feats).to_pandas()
    y_pred = rows.column(pred).to_pandas().astype(str)
    y_true = rows.column("label").to_pandas().astype(str)
    if schema.task == Task.REGRESSION:
        errors = np.abs(y_true.astype(float).to_numpy() - y_pred.astype(float).to_numpy())
        report = find_failing_slices(data, errors=errors, features=feats, metric="abs_error",
                                     top_k=5)
    else:
        errors = (y_true.to_numpy() != y_pred.to_numpy()).astype(int)
        report = find_failing_slices(data, errors=errors, features=feats, top_k=5)
    out["slices"] = [s.to_dict() for s in report.slices]
    out["metric"] = "mean absolute error" if schema.task == Task.REGRESSION else "error rate"
    if out["slices"]:
        scale = 1.0 if schema.task == Task.REGRESSION else 100.0
        out["chart"] = {"id": "slices", "kind": "hbars", "title": f"Failing slices: "
                        f"{out['metric']}", "unit": "" if scale == 1 else "%",
                        "categories": [s["description"] for s in out["slices"]],
                        "series": [
                            {"name": "in the slice", "color": "#D55E00",
                             "data": [round(s["metric_value"] * scale, 3)
                                      for s in out["slices"]]},
                            {"name": "elsewhere", "color": "#9aa4b1",
                             "data": [round(s["rest_value"] * scale, 3)
                                      for s in out["slices"]]}]}
    return out


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
            prev = registry.previous(name, alias)
            if prev is not None and prev.version != out["aliases"][alias]:
                out["previous"][alias] = prev.version
    except Exception as exc:  # a store that cannot be opened must not break the page
        log.warning("registry view of %s: %s", name, exc)
        out["error"] = f"The registry could not be read: {exc}"
    return out
