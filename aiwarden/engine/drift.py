"""Drift decisions from two profiles: effect size first, noise and reference variability second.

On large samples a p-value flags any difference, however small (the trap
Evidently #50 and Alibi Detect #646 describe). aiwarden decides by effect size:
a column drifts when its distance exceeds

    threshold = max(floor, sqrt(noise(n_ref, n_cur)**2 + instability**2))

* ``floor``: the smallest change worth an alert, per method (e.g. 0.1 standard
  deviations of Wasserstein-1), overridable per method or per column;
* ``noise``: the ``1 - alpha/m`` quantile of the distance between two samples of
  these sizes drawn from the reference itself, so small windows do not flag
  sampling noise and the ``m`` columns tested at once are Bonferroni-corrected.
  It is fitted with the reference and stored with it (``_drift_null``: analytic
  for Wasserstein, whose deciding distance in a small window leaves out the
  reference's outer ``5 / n`` of mass so one tail value cannot decide; Monte
  Carlo for the other methods);
* ``instability``: how much the reference varies from chunk to chunk in time
  order beyond its own sampling noise (only when the schema has a timestamp; row
  order alone is no clock), capped at twice the floor, so a feature that
  naturally wanders needs a larger change to alert, but never an absurd one.

``severity`` is ``value / threshold``: above 1 the column drifted, above 2 the
level is critical. See ``docs/drift.md`` for the measured false-alarm and
detection rates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aiwarden.engine.drift_metrics import chi2_pvalue, get_metric, ks_pvalue
from aiwarden.errors import ParameterError, check_param

__all__ = ["DEFAULT_FLOORS", "ColumnDrift", "DriftReport", "DriftSettings"]

DEFAULT_FLOORS: dict[str, float] = {
    "wasserstein": 0.1,
    "ks": 0.05,
    "jensenshannon": 0.05,
    "hellinger": 0.05,
    "psi": 0.1,
    "total_variation": 0.05,
}
# Distances behave like sqrt(chi-square): their square is what a gamma fits well.
_POWER = {"psi": 1.0}


def _positive(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and v > 0


@dataclass(frozen=True)
class DriftSettings:
    """How drift is decided; every number is a parameter, none is hidden."""

    numerical_method: str = "wasserstein"
    categorical_method: str = "jensenshannon"
    methods: Mapping[str, str] = field(default_factory=dict)
    floors: Mapping[str, float] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    alpha: float = 0.01
    n_simulations: int = 200
    calibration: str = "chunks"
    min_reference: int = 30

    def __post_init__(self) -> None:
        owner = "DriftSettings"
        for name in [self.numerical_method, self.categorical_method, *self.methods.values()]:
            get_metric(name)
        for name, value in self.floors.items():
            get_metric(name)
            check_param(_positive(value), f"floors[{name!r}]", owner, "a positive number", value)
        check_param(isinstance(self.alpha, float | int) and 0.0 < self.alpha < 1.0, "alpha",
                    owner, "a float in (0, 1)", self.alpha)
        check_param(isinstance(self.n_simulations, int) and 50 <= self.n_simulations <= 100_000,
                    "n_simulations", owner, "an int in [50, 100000]", self.n_simulations)
        check_param(self.calibration in ("chunks", "none"), "calibration", owner,
                    "one of 'chunks', 'none'", self.calibration)
        check_param(isinstance(self.min_reference, int) and self.min_reference >= 1,
                    "min_reference", owner, "an int >= 1", self.min_reference)
        for col, t in self.thresholds.items():
            check_param(_positive(t), f"thresholds[{col!r}]", owner, "a positive number", t)

    def method_for(self, column: str, numerical: bool) -> str:
        if column in self.methods:
            name = self.methods[column]
            if get_metric(name)[1] and not numerical:
                raise ParameterError(
                    f"Drift method {name!r} needs ordered numerical bins; column {column!r} "
                    "is categorical."
                )
            return name
        return self.numerical_method if numerical else self.categorical_method

    def floor_for(self, column: str, method: str) -> float:
        if column in self.thresholds:
            return float(self.thresholds[column])
        return float(self.floors.get(method, DEFAULT_FLOORS[method]))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> DriftSettings:
        d = dict(d or {})
        valid = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - valid)
        if unknown:
            raise ParameterError(f"Unknown drift setting(s) {unknown}; valid settings: "
                                 f"{', '.join(sorted(valid))}.")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return {
            "numerical_method": self.numerical_method,
            "categorical_method": self.categorical_method,
            "methods": dict(self.methods), "floors": dict(self.floors),
            "thresholds": dict(self.thresholds), "alpha": self.alpha,
            "n_simulations": self.n_simulations, "calibration": self.calibration,
            "min_reference": self.min_reference,
        }


@dataclass(frozen=True)
class ColumnDrift:
    """One column's drift: the deciding distance, its threshold and every other distance."""

    column: str
    role: str
    kind: str
    method: str
    value: float
    threshold: float
    drifted: bool
    severity: float
    n_reference: int
    n_current: int
    p_value: float
    floor: float
    noise: float
    instability: float
    metrics: dict[str, float]
    reason: str | None = None  # why there is no verdict ("no data"), None when measured

    @property
    def measured(self) -> bool:
        """False when either side had no usable values: no verdict, not 'no drift'."""
        return bool(np.isfinite(self.value))

    @property
    def level(self) -> str:
        if not self.measured:
            return "no data"
        if not self.drifted:
            return "none"
        return "critical" if self.severity >= 2.0 else "warning"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: an unmeasured value is ``None``, not NaN."""
        return {
            "column": self.column, "role": self.role, "kind": self.kind, "method": self.method,
            "value": _num(self.value), "threshold": self.threshold, "drifted": self.drifted,
            "severity": _num(self.severity), "level": self.level,
            "n_reference": self.n_reference, "n_current": self.n_current,
            "p_value": _num(self.p_value), "floor": self.floor, "noise": self.noise,
            "instability": self.instability,
            "metrics": {k: _num(v) for k, v in self.metrics.items()},
            "reason": self.reason if not self.measured else None,
        }


@dataclass(frozen=True)
class DriftReport:
    """Per-column drift of one window against the reference."""

    columns: tuple[ColumnDrift, ...]
    n_reference: int
    n_current: int
    alpha: float

    def __getitem__(self, column: str) -> ColumnDrift:
        for c in self.columns:
            if c.column == column:
                return c
        names = ", ".join(c.column for c in self.columns)
        raise KeyError(f"No drift result for column {column!r}; columns: {names}.")

    @property
    def features(self) -> tuple[ColumnDrift, ...]:
        return tuple(c for c in self.columns if c.role == "feature")

    @property
    def drifted_features(self) -> tuple[str, ...]:
        """Drifted feature columns, most severe first."""
        hits = [c for c in self.features if c.drifted]
        return tuple(c.column for c in sorted(hits, key=lambda c: -c.severity))

    @property
    def drifted_columns(self) -> tuple[str, ...]:
        hits = [c for c in self.columns if c.drifted]
        return tuple(c.column for c in sorted(hits, key=lambda c: -c.severity))

    @property
    def prediction_drift(self) -> tuple[ColumnDrift, ...]:
        return tuple(c for c in self.columns if c.role in ("prediction", "score"))

    @property
    def target_drift(self) -> ColumnDrift | None:
        return next((c for c in self.columns if c.role == "target"), None)

    @property
    def share_drifted(self) -> float:
        """Share of measured features that drifted."""
        feats = [c for c in self.features if c.measured]
        return sum(c.drifted for c in feats) / len(feats) if feats else 0.0

    def dataset_drifted(self, share: float = 0.5) -> bool:
        """Dataset-level verdict: at least ``share`` of the measured features drifted."""
        check_param(0.0 < share <= 1.0, "share", "DriftReport.dataset_drifted",
                    "a float in (0, 1]", share)
        return self.share_drifted >= share

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_reference": self.n_reference, "n_current": self.n_current, "alpha": self.alpha,
            "drifted_features": list(self.drifted_features),
            "share_drifted": self.share_drifted,
            "columns": [c.to_dict() for c in self.columns],
        }

    def to_pandas(self) -> Any:
        import pandas as pd

        rows = [{k: v for k, v in c.to_dict().items() if k != "metrics"} | c.metrics
                for c in self.columns]
        return pd.DataFrame(rows).set_index("column") if rows else pd.DataFrame()

    def _repr_html_(self) -> str:
        """Jupyter view: the deciding numbers per column (values escaped)."""
        from aiwarden.engine._results import report_html

        frame = self.to_pandas()
        keep = [c for c in ("role", "method", "value", "threshold", "severity", "level",
                            "n_current") if c in frame.columns]
        drifted = ", ".join(self.drifted_features) or "none"
        return report_html(f"Drift report ({self.n_current:,} rows against "
                           f"{self.n_reference:,})", frame[keep],
                           (f"Drifted features: {drifted}",))


def _num(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def null_moments(
    p_ref: np.ndarray, n_ref: int, n_cur: int, fns: Mapping[str, Any], n_sim: int,
    rng: np.random.Generator, p_cur: np.ndarray | None = None,
) -> dict[str, tuple[float, float]]:
    """Mean and variance of each distance (to its power) between two same-distribution samples.

    ``p_cur`` (default ``p_ref``) lets the current side reach values the reference
    sample happened not to contain, as a new sample from the same source does.
    """
    p = p_ref / p_ref.sum()
    q = p if p_cur is None else p_cur / p_cur.sum()
    ref = _multinomial(max(n_ref, 1), p, n_sim, rng)
    cur = _multinomial(max(n_cur, 1), q, n_sim, rng)
    out = {}
    for name, fn in fns.items():
        s = fn(ref, cur) ** _POWER.get(name, 2.0)
        out[name] = (float(s.mean()), float(s.var()))
    return out


def unseen_aware(counts: np.ndarray) -> np.ndarray:
    """Category shares with the Good–Turing mass of never-seen values in the last (unseen) bin.

    A sample from the same source as a sparse reference lands on values the reference
    never saw about ``singletons / n`` of the time; without this, the simulated noise
    of high-cardinality columns is too small and they raise false alarms.
    """
    c = np.asarray(counts, dtype=np.float64)
    n = c.sum()
    if n == 0:
        return c
    unseen = np.count_nonzero(c[:-1] == 1) / n
    q = c / n * (1.0 - unseen)
    q[-1] += unseen
    return q


def _multinomial(n: int, p: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Multinomial draws, or a cheaper limit where it is accurate.

    Every bin expecting 50+ counts: the Gaussian limit. Many bins (20+): independent
    Poisson counts, whose missing negative correlation between bins is negligible there.
    """
    used = p > 0
    if n * p[used].min(initial=np.inf) < 50:
        if len(p) >= 20:
            return rng.poisson(n * p, size=(size, len(p))).astype(np.float64)
        return rng.multinomial(n, p, size=size).astype(np.float64)
    root = np.sqrt(p)
    g = rng.standard_normal((size, len(p)))
    z = root * g - p * (g @ root)[:, None]  # covariance diag(p) - p p^T, rows sum to 0
    return n * p + np.sqrt(n) * z


def decide(
    *, column: str, role: str, kind: str, method: str, metrics: dict[str, float],
    floor: float, noise: float, instability: float, n_ref: int, n_cur: int, p_value: float,
    min_reference: int = 1, value: float | None = None,
) -> ColumnDrift:
    """The verdict; a reference too small to describe a distribution never flags.

    ``value`` is the deciding distance when it differs from ``metrics[method]`` (the
    trimmed Wasserstein of a small window, see ``_drift_null``).
    """
    if n_cur == 0 or n_ref < min_reference:
        metrics = {k: float("nan") for k in metrics}
        value = float("nan")
    value = metrics[method] if value is None else value
    # A wandering reference may at most double the effect needed to alert.
    threshold = max(floor, float(np.hypot(noise, min(instability, 2.0 * floor))))
    drifted = bool(n_cur > 0 and n_ref >= min_reference and value > threshold)
    return ColumnDrift(
        column=column, role=role, kind=kind, method=method, value=value, threshold=threshold,
        drifted=drifted, severity=value / threshold if threshold > 0 else float("nan"),
        n_reference=n_ref, n_current=n_cur, p_value=p_value, floor=floor, noise=noise,
        instability=instability, metrics=metrics,
        reason=_why_unmeasured(n_ref, n_cur, min_reference),
    )


def _why_unmeasured(n_ref: int, n_cur: int, min_reference: int) -> str:
    """What a 'no data' verdict means (read only when the value is not finite)."""
    if n_cur == 0:
        return "no value of this column in the window"
    if n_ref < min_reference:
        return (f"the reference holds {n_ref} value(s) of this column, fewer than "
                f"min_reference ({min_reference}): too few to describe a distribution, so "
                "this column is never judged (upload a larger reference)")
    return ("the distance is not finite: the window's values overflow float64 arithmetic "
            "against the reference")


def p_value_for(kind: str, metrics: Mapping[str, float], ref: np.ndarray, cur: np.ndarray) -> float:
    """An informational p-value: KS for numerical, chi-square for categorical."""
    n_ref, n_cur = int(ref.sum()), int(cur.sum())
    if kind == "numerical":
        return ks_pvalue(metrics["ks"], n_ref, n_cur)
    return chi2_pvalue(ref, cur)


def power_of(method: str) -> float:
    return _POWER.get(method, 2.0)
