"""Load two data files, run the engine once on each, and shape the result as plain JSON.

Everything here is column-level: the data is read into Arrow once, the engine bins it,
and the charts are drawn from the reference bins and the current profile's counts, so
the report's size and build time never depend on row counts beyond the engine's own pass.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from aiwarden import __version__
from aiwarden.engine import CategoricalProfile, NumericalProfile, Reference
from aiwarden.engine._binning import CategoricalBinning, NumericalBinning
from aiwarden.errors import AiwardenError
from aiwarden.tabular_io import SUFFIXES, read_file

__all__ = ["FORMATS", "REPORT_FORMAT", "build_report", "load_table", "report_files",
           "write_report"]

REPORT_FORMAT = 1
FORMATS = SUFFIXES
load_table = read_file
DISPLAY_BINS = 30
MAX_CATEGORIES_SHOWN = 20


# ------------------------------------------------------------------------------ building
def report_files(reference: str | Path, current: str | Path,
                 on_step: Callable[[str], Any] | None = None,
                 **schema_hints: Any) -> dict[str, Any]:
    """Load both files and build the report; timings say where the seconds went.
    ``on_step(what)`` is told as each step starts (a progress display)."""
    step = on_step or (lambda _what: None)
    t0 = time.perf_counter()
    step(f"reading {Path(reference).name}")
    ref_table = load_table(reference)
    t1 = time.perf_counter()
    step(f"reading {Path(current).name}")
    cur_table = load_table(current)
    t2 = time.perf_counter()
    step("comparing")
    out = build_report(ref_table, cur_table, names=(str(reference), str(current)),
                       **schema_hints)
    out["timings"] = {"load_reference": t1 - t0, "load_current": t2 - t1, **out["timings"]}
    return out


def build_report(reference: Any, current: Any, *,
                 names: tuple[str, str] = ("reference", "current"),
                 **schema_hints: Any) -> dict[str, Any]:
    """Fit the reference, profile the current data once, and gather every result.

    ``schema_hints`` go to :meth:`Reference.fit` (target=, prediction=, scores=, id=,
    timestamp=, segments=, task=). The returned dict holds only JSON types (no NaN).
    """
    hints = {k: v for k, v in schema_hints.items() if v not in (None, [], ())}
    t0 = time.perf_counter()
    try:
        ref = Reference.fit(reference, **hints)
    except AiwardenError as exc:
        raise _naming(exc, f"Cannot fit the reference {names[0]!r}") from exc
    t1 = time.perf_counter()
    try:
        prof = ref.profile(current)
    except AiwardenError as exc:
        raise _naming(exc, f"Cannot profile the current data {names[1]!r}") from exc
    t2 = time.perf_counter()
    drift = ref.compare(prof)
    quality = ref.check_quality(prof)
    t3 = time.perf_counter()
    realised = ref.realised_performance(prof)
    estimated = ref.estimated_performance(prof)
    performance = {
        "task": ref.schema_.task.value,
        "reference": _plain(ref.realised_performance(ref.profile_)),
        "realised": _plain(realised),
        "estimated": None if estimated is None else estimated.to_dict(),
    }
    t4 = time.perf_counter()
    histograms = {c.column: _histogram(ref, prof, c.column) for c in drift.columns}
    drift_dict = drift.to_dict()
    quality_dict = quality.to_dict()
    report = {
        "format": REPORT_FORMAT,
        "aiwarden_version": __version__,
        "generated_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "verdict": _verdict(drift, quality),
        "datasets": {
            "reference": {"name": names[0], "rows": ref.profile_.n_rows,
                          "columns": len(ref.schema_.columns)},
            "current": {"name": names[1], "rows": prof.n_rows,
                        "columns": len(prof.columns) - _absent_columns(prof)
                        + len(prof.extra_columns)},
        },
        "schema": ref.schema_.to_dict(),
        "columns": {name: _column_summary(ref.profile_.columns[name], prof.columns[name])
                    for name in ref.schema_.names},
        "drift": drift_dict,
        "histograms": histograms,
        "quality": quality_dict,
        "performance": performance,
        "timings": {"fit": t1 - t0, "profile": t2 - t1, "compare_and_quality": t3 - t2,
                    "performance": t4 - t3, "histograms": time.perf_counter() - t4},
    }
    return _clean(report)


def _plain(realised: Mapping[str, float] | None) -> dict[str, float] | None:
    """Realised metrics as the report's flat ``{metric: value}`` dict."""
    return None if realised is None else dict(realised)


def _naming(exc: AiwardenError, prefix: str) -> AiwardenError:
    """The same error with the file named: the user passed two, and must know which."""
    new = type(exc)(f"{prefix}: {exc}")
    if hasattr(exc, "column"):
        new.column = exc.column  # type: ignore[attr-defined]
    return new


def _absent_columns(prof: Any) -> int:
    return sum(1 for p in prof.columns.values() if p.n and p.absent == p.n)


def _verdict(drift: Any, quality: Any) -> dict[str, Any]:
    """One dataset-level status: critical on broken data or dataset drift, else warning."""
    measured = [c for c in drift.features if c.measured]
    drifted = [c.column for c in measured if c.drifted]
    other = [c for c in drift.columns if c.role != "feature" and c.drifted]
    errors = [f for f in quality.findings if f.severity == "error"]
    warnings = [f for f in quality.findings if f.severity == "warning"]
    dataset_drift = drift.dataset_drifted(0.5) if measured else False
    reasons = []
    if measured:
        reasons.append(f"{len(drifted)} of {len(measured)} features drifted "
                       f"({drift.share_drifted:.0%})" + (": dataset drift" if dataset_drift
                                                         else ""))
    for c in other:
        reasons.append(f"{c.role} column {c.column!r} drifted")
    if errors or warnings:
        reasons.append(f"{len(errors)} data-quality error(s), {len(warnings)} warning(s)")
    if errors or dataset_drift:
        status = "critical"
    elif drifted or other or warnings:
        status = "warning"
    else:
        status = "ok"
    return {"status": status, "dataset_drift": dataset_drift,
            "share_drifted": drift.share_drifted, "drifted_features": list(
                drift.drifted_features), "drifted_columns": list(drift.drifted_columns),
            "quality_errors": len(errors), "quality_warnings": len(warnings),
            "reasons": reasons}


def _column_summary(ref_p: Any, cur_p: Any) -> dict[str, Any]:
    """Missing share and, for numbers, mean and spread: read off the profiles."""
    out: dict[str, Any] = {
        "kind": ref_p.kind,
        "missing_reference": ref_p.missing / ref_p.n if ref_p.n else None,
        "missing_current": ((cur_p.missing - cur_p.absent) / (cur_p.n - cur_p.absent)
                            if cur_p.n - cur_p.absent else None),
        "absent": bool(cur_p.n and cur_p.absent == cur_p.n),
    }
    if isinstance(ref_p, NumericalProfile):
        for side, p in (("reference", ref_p), ("current", cur_p)):
            has = p.count > 0
            out[f"mean_{side}"] = p.mean if has else None
            out[f"std_{side}"] = math.sqrt(p.variance) if has and p.variance >= 0 else None
            out[f"min_{side}"] = p.min if has else None
            out[f"max_{side}"] = p.max if has else None
    return out


# ---------------------------------------------------------------------------- histograms
def _histogram(ref: Reference, prof: Any, name: str) -> dict[str, Any] | None:
    """Display bins for the chart, re-binned from the reference grid (no data rescan)."""
    binning = ref.binnings_.get(name)
    ref_p, cur_p = ref.profile_.columns[name], prof.columns.get(name)
    if cur_p is None:
        return None
    of = "length" if ref.schema_[name].dtype.value == "text" else "value"
    if isinstance(binning, NumericalBinning) and isinstance(ref_p, NumericalProfile):
        if binning.empty:
            return None
        return {"of": of, **_numerical_bins(binning, ref_p.counts, cur_p.counts)}
    if isinstance(binning, CategoricalBinning) and isinstance(ref_p, CategoricalProfile):
        return {"of": of, **_categorical_bins(binning, ref_p.counts, cur_p.counts)}
    return None


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else np.zeros_like(counts, dtype=np.float64)


def _numerical_bins(binning: NumericalBinning, ref_c: np.ndarray,
                    cur_c: np.ndarray) -> dict[str, Any]:
    ref_s, cur_s = _shares(ref_c.astype(np.float64)), _shares(cur_c.astype(np.float64))
    edges = binning.interior
    weights, display = _display_weights(binning, ref_s[2:-2])
    out: dict[str, Any] = {
        "kind": "numerical",
        "edges": display["edges"], "labels": display["labels"],
        "reference": (ref_s[2:-2] @ weights).tolist(),
        "current": (cur_s[2:-2] @ weights).tolist(),
        "below": {"reference": float(ref_s[:2].sum()), "current": float(cur_s[:2].sum()),
                  "edge": float(edges[0])},
        "above": {"reference": float(ref_s[-2:].sum()), "current": float(cur_s[-2:].sum()),
                  "edge": float(edges[-1])},
        "n_reference": int(ref_c.sum()), "n_current": int(cur_c.sum()),
    }
    return out


def _display_weights(binning: NumericalBinning,
                     ref_s: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Matrix spreading the reference's fine bins onto at most 30 readable display bins.

    Continuous bins spread their mass evenly over their width; a discrete column's mass
    sits on its values. The display range is the reference's 0.5–99.5 % quantile range
    (so one extreme reference value does not squash the chart); mass beyond it is drawn
    in the end bars.
    """
    edges = binning.interior
    if binning.discrete and binning.atoms is not None and len(binning.atoms) <= DISPLAY_BINS:
        atoms = binning.atoms
        labels = [_fmt(a) for a in atoms]
        return np.eye(len(atoms)), {"edges": None, "labels": labels}
    cum = np.concatenate([[0.0], np.cumsum(ref_s)])
    total = cum[-1] or 1.0
    lo, hi = np.interp([0.005 * total, 0.995 * total], cum, edges)
    if not hi > lo:
        lo, hi = float(edges[0]), float(edges[-1])
    d = np.linspace(lo, hi, DISPLAY_BINS + 1)
    if binning.discrete and binning.atoms is not None:
        idx = np.clip(np.searchsorted(d, binning.atoms, side="right") - 1, 0, DISPLAY_BINS - 1)
        w = np.zeros((len(binning.atoms), DISPLAY_BINS))
        w[np.arange(len(binning.atoms)), idx] = 1.0
    else:
        a, b = edges[:-1, None], edges[1:, None]
        width = b - a
        inner_lo = np.maximum(a, d[None, :-1])
        inner_hi = np.minimum(b, d[None, 1:])
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            w = np.clip(inner_hi - inner_lo, 0.0, None) / width
            w[:, 0] += np.clip(np.minimum(b[:, 0], d[0]) - a[:, 0], 0.0, None) / width[:, 0]
            w[:, -1] += np.clip(b[:, 0] - np.maximum(a[:, 0], d[-1]), 0.0, None) / width[:, 0]
        w = np.nan_to_num(w)
    labels = [f"{_fmt(d[j])} – {_fmt(d[j + 1])}" for j in range(DISPLAY_BINS)]
    return w, {"edges": d.tolist(), "labels": labels}


def _categorical_bins(binning: CategoricalBinning, ref_c: np.ndarray,
                      cur_c: np.ndarray) -> dict[str, Any]:
    """The categories that matter most on either side; the rest summed as '(other)'."""
    ref_s, cur_s = _shares(ref_c.astype(np.float64)), _shares(cur_c.astype(np.float64))
    k = len(binning.categories)
    order = np.argsort(-np.maximum(ref_s[:k], cur_s[:k]), kind="stable")
    shown = np.sort(order[:MAX_CATEGORIES_SHOWN])  # keep the reference's frequency order
    rest = np.setdiff1d(np.arange(k), shown)
    labels = [binning.categories[i] for i in shown]
    ref_v, cur_v = ref_s[shown].tolist(), cur_s[shown].tolist()
    if len(rest):
        labels.append(f"(other {len(rest)})")
        ref_v.append(float(ref_s[rest].sum()))
        cur_v.append(float(cur_s[rest].sum()))
    if cur_s[-1] > 0 or ref_s[-1] > 0:
        labels.append("(unseen)")
        ref_v.append(float(ref_s[-1]))
        cur_v.append(float(cur_s[-1]))
    return {"kind": "categorical", "labels": labels, "reference": ref_v, "current": cur_v,
            "n_categories": k, "n_reference": int(ref_c.sum()), "n_current": int(cur_c.sum())}


def _fmt(v: float) -> str:
    return f"{float(v):.4g}"


# -------------------------------------------------------------------------------- output
def _clean(obj: Any) -> Any:
    """Strict JSON: NaN and infinities become None, numpy scalars plain Python."""
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    return obj


def write_report(report: Mapping[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.json`` and the single-file ``report.html``; return both paths."""
    from aiwarden.report.html import render_html

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    page = render_html(report)
    final = dict(report)
    final["timings"] = {**report.get("timings", {}), "render": time.perf_counter() - t0}
    json_path, html_path = out / "report.json", out / "report.html"
    json_path.write_text(json.dumps(final, indent=1, allow_nan=False, ensure_ascii=False) + "\n",
                         encoding="utf-8")
    html_path.write_text(page, encoding="utf-8")
    return json_path, html_path
