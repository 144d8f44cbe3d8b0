"""The shared shape of performance results: realised, estimated (CBPE, DLE), and their gap.

Why one module: a notebook user, the server and the alert rules read realised and
estimated performance side by side, so both are frozen dataclasses with
``to_dict()`` (JSON-safe), ``to_pandas()`` indexed by ``metric`` and an escaped
``_repr_html_`` (see docs/engine-conventions.md), and one function,
:func:`compare_estimates`, says how far a realised value is from its estimate.
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

__all__ = ["MetricEstimate", "RealisedPerformance", "compare_estimates", "report_html"]

_NAN = float("nan")


def report_html(title: str, frame: pd.DataFrame, notes: tuple[str, ...] = ()) -> str:
    """A small HTML table for Jupyter: every value, label and note is escaped."""
    parts = [f"<div class='aiwarden-report'><strong>{html.escape(title)}</strong>"]
    parts += [f"<div>{html.escape(n)}</div>" for n in notes]
    parts.append(frame.to_html(escape=True, na_rep="NaN", float_format=lambda v: f"{v:.4g}"))
    parts.append("</div>")
    return "".join(parts)


@dataclass(frozen=True)
class MetricEstimate:
    """One estimated metric: the point estimate, its sd and the band."""

    estimate: float
    std: float
    lower: float
    upper: float

    def to_dict(self) -> dict[str, float]:
        return {"estimate": self.estimate, "std": self.std, "lower": self.lower,
                "upper": self.upper}


def estimates_frame(metrics: Mapping[str, MetricEstimate]) -> pd.DataFrame:
    """One row per metric (index ``metric``): estimate, std, lower, upper."""
    frame = pd.DataFrame([m.to_dict() for m in metrics.values()],
                         index=pd.Index(list(metrics), name="metric"),
                         columns=["estimate", "std", "lower", "upper"])
    return frame


def compare_estimates(metrics: Mapping[str, MetricEstimate], n: int, confidence: float,
                      realised: Mapping[str, float], n_labels: int) -> dict[str, dict[str, Any]]:
    """Per metric: the estimate against the realised value of the labelled rows.

    The estimate's band covers the label noise of all ``n`` rows of the window;
    the realised value comes from its ``n_labels`` labelled rows, whose noise is
    larger, so the band is widened by ``sqrt(n / n_labels)`` (labels assumed to
    arrive for a random subset of the rows, not chosen by outcome). ``lower`` and
    ``upper`` are that widened band; ``severity`` is ``|realised - estimate|``
    over its half-width (above 1: outside the band); ``within_band`` is None and
    the gap NaN when either value is undefined.
    """
    z = float(norm.ppf(0.5 + confidence / 2.0))
    widen = float(np.sqrt(n / n_labels)) if 0 < n_labels < n else 1.0
    out: dict[str, dict[str, Any]] = {}
    for name, est in metrics.items():
        r = float(realised.get(name, _NAN))
        defined = bool(np.isfinite(r) and np.isfinite(est.estimate))
        half = z * est.std * widen if np.isfinite(est.std) else _NAN
        lower, upper = est.estimate - half, est.estimate + half
        if defined and half > 0:
            severity = abs(r - est.estimate) / half
        elif defined:
            severity = 0.0 if r == est.estimate else float("inf")
        else:
            severity = _NAN
        out[name] = {
            "estimate": est.estimate, "realised": r,
            "difference": est.estimate - r if defined else _NAN,
            "lower": float(lower), "upper": float(upper), "severity": float(severity),
            "within_band": bool(severity <= 1.0) if defined else None,
        }
    return out


@dataclass(frozen=True, eq=False)
class RealisedPerformance(Mapping[str, float]):
    """Metrics measured on labelled rows; reads like a ``{metric: value}`` mapping.

    ``task`` is ``"classification"`` or ``"regression"``; ``n`` counts the labelled
    rows the metrics are computed on; ``error_bounds`` holds the histogram bound of
    the ranking metrics (ROC AUC, PR AUC; see
    :meth:`~aiwarden.engine.performance.ClassificationStats.error_bounds`); other
    metrics are exact. NaN marks an undefined metric.
    """

    task: str
    n: int
    metrics: dict[str, float]
    error_bounds: dict[str, float] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)  # why a metric is NaN, when known

    @classmethod
    def from_stats(cls, stats: Any) -> RealisedPerformance:
        """From :class:`ClassificationStats` or :class:`RegressionStats`."""
        bounds = stats.error_bounds() if hasattr(stats, "error_bounds") else {}
        task = "classification" if hasattr(stats, "classes") else "regression"
        reasons = stats.reasons() if hasattr(stats, "reasons") else {}
        return cls(task, int(stats.n), stats.metrics(), {k: float(v) for k, v in bounds.items()},
                   reasons)

    def __getitem__(self, name: str) -> float:
        return self.metrics[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.metrics)

    def __len__(self) -> int:
        return len(self.metrics)

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "n": self.n, "metrics": dict(self.metrics),
                "error_bounds": dict(self.error_bounds), "reasons": dict(self.reasons)}

    def to_pandas(self) -> pd.DataFrame:
        """One row per metric (index ``metric``): value and error_bound (0 when exact)."""
        names = list(self.metrics)
        return pd.DataFrame({"value": [self.metrics[k] for k in names],
                             "error_bound": [self.error_bounds.get(k, 0.0) for k in names]},
                            index=pd.Index(names, name="metric"))

    def _repr_html_(self) -> str:
        return report_html(f"Realised performance ({self.task}, {self.n:,} labelled rows)",
                           self.to_pandas())
