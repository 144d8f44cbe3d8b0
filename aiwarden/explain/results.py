"""Result types of ``aiwarden.explain``: frozen dataclasses with ``to_dict()`` (JSON-safe)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "AttributionDrift", "DriftImpact", "Explanation", "FeatureAttributionShift",
    "FeatureContribution", "FeatureImportance", "GlobalImportance", "RowExplanations",
    "SliceImportance",
]


def _num(x: float) -> float | None:
    """NaN and infinities become None in JSON."""
    return float(x) if x is not None and math.isfinite(float(x)) else None


def jsonable(v: Any) -> Any:
    """A feature value as JSON: numpy scalars unwrapped, NaN as None."""
    if v is None:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, bool | int | float | str):
        return v
    try:
        if v != v:  # pandas NA / NaT
            return None
    except (TypeError, ValueError):
        pass
    return str(v)


@dataclass(frozen=True)
class FeatureContribution:
    """One feature's share of ``output - base_value`` for one row; ``rule`` is LIME's
    interpretable condition (e.g. ``amount <= 10.50``), empty for SHAP."""

    feature: str
    value: Any
    contribution: float
    rule: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = {"feature": self.feature, "value": jsonable(self.value),
               "contribution": _num(self.contribution)}
        if self.rule:
            out["rule"] = self.rule
        return out


@dataclass(frozen=True)
class Explanation:
    """Why one row got its output.

    ``output = base_value + sum(contributions) + residual``. ``output_space`` says what is
    explained: ``probability`` of ``explained_class``, the raw ``margin`` the model sums
    before its link (log-odds for logistic regression and binary boosting), or the
    regression ``prediction``; ``base_value`` is in the same space: the mean output over the
    background (the training mean for path-dependent Tree SHAP, LIME's surrogate intercept).
    Contributions are ordered by absolute size, largest first. LIME only: ``samples`` its
    surrogate was fitted on and ``ties``, adjacent ranks among the first ``lime_top`` + 1
    whose |weight| gap is within LIME's seed noise (``ranks``, ``features``, ``gap_sd``,
    ``reason``): another seed may list them the other way round.
    """

    row: int
    method: str
    output_space: str
    explained_class: Any
    base_value: float
    output: float
    residual: float
    contributions: tuple[FeatureContribution, ...]
    samples: int | None = None
    ties: tuple[dict[str, Any], ...] = ()

    def top(self, k: int = 5) -> tuple[FeatureContribution, ...]:
        return self.contributions[:k]

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "method": self.method, "output_space": self.output_space,
                "explained_class": jsonable(self.explained_class),
                "base_value": _num(self.base_value), "output": _num(self.output),
                "residual": _num(self.residual),
                "contributions": [c.to_dict() for c in self.contributions],
                **({"samples": self.samples, "ties": [dict(t) for t in self.ties]}
                   if self.samples is not None else {})}


@dataclass(frozen=True)
class RowExplanations:
    """Explanations of several rows with one method and background; ``values`` is the
    (rows x features) attribution matrix in ``features`` order (not in ``to_dict``)."""

    method: str
    output_space: str
    features: tuple[str, ...]
    background_size: int
    seed: int
    explanations: Sequence[Explanation]  # built per row on first read (rows.py)
    values: np.ndarray = field(repr=False, compare=False)
    #: how ``output`` was summed when it is not the model's own answer (interventional Tree
    #: SHAP: the trees' float64 sum after the trees' own float32 casting); else empty
    output_precision: str = ""

    @property
    def max_abs_residual(self) -> float:
        residuals = getattr(self.explanations, "residuals", None)
        if residuals is not None:
            return float(np.max(np.abs(residuals), initial=0.0))
        return max((abs(e.residual) for e in self.explanations), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        dicts = getattr(self.explanations, "dicts", None)  # from the arrays (rows.py)
        rows = dicts() if dicts is not None else [e.to_dict() for e in self.explanations]
        return {"method": self.method, "output_space": self.output_space,
                "features": list(self.features), "background_size": self.background_size,
                "seed": self.seed, "max_abs_residual": _num(self.max_abs_residual),
                **({"output_precision": self.output_precision} if self.output_precision
                   else {}),
                "explanations": rows}


@dataclass(frozen=True)
class FeatureImportance:
    """Mean |attribution| of one feature with a bootstrap percentile interval over rows."""

    feature: str
    importance: float
    lower: float
    upper: float
    rank: int

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "importance": _num(self.importance),
                "lower": _num(self.lower), "upper": _num(self.upper), "rank": self.rank}


@dataclass(frozen=True)
class GlobalImportance:
    """Global importance of a set of rows, most important first.

    The interval (``level``, ``n_boot`` resamples of the explained rows) states the error of
    sampling ``n_explained`` of ``n_rows`` rows; it does not cover the sampling noise of the
    Permutation/Kernel estimators themselves. ``values`` keeps the per-row attributions in
    ``feature_order`` for attribution drift.
    """

    method: str
    output_space: str
    n_rows: int
    n_explained: int
    level: float
    n_boot: int
    seed: int
    features: tuple[FeatureImportance, ...]
    feature_order: tuple[str, ...] = field(repr=False, compare=False)
    values: np.ndarray = field(repr=False, compare=False)

    def as_mapping(self) -> dict[str, float]:
        return {f.feature: f.importance for f in self.features}

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "output_space": self.output_space,
                "n_rows": self.n_rows, "n_explained": self.n_explained, "level": self.level,
                "n_boot": self.n_boot, "seed": self.seed,
                "features": [f.to_dict() for f in self.features]}

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame([f.to_dict() for f in self.features])


@dataclass(frozen=True)
class SliceImportance:
    """Importance inside a slice against the rest of the window (same background);
    ``difference`` is inside minus rest per feature, largest absolute first."""

    description: str
    inside: GlobalImportance
    rest: GlobalImportance
    difference: tuple[tuple[str, float], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"description": self.description, "inside": self.inside.to_dict(),
                "rest": self.rest.to_dict(),
                "difference": [{"feature": f, "difference": _num(v)}
                               for f, v in self.difference]}


@dataclass(frozen=True)
class FeatureAttributionShift:
    """One feature's attributions, reference against window: importance and rank on both
    sides, the Wasserstein distance between the two attribution distributions (in output
    units), the two-sample KS statistic and p-value, and whether the p-value is below the
    Bonferroni-corrected level."""

    feature: str
    reference_importance: float
    window_importance: float
    reference_rank: int
    window_rank: int
    wasserstein: float
    ks_statistic: float
    p_value: float
    shifted: bool

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature,
                "reference_importance": _num(self.reference_importance),
                "window_importance": _num(self.window_importance),
                "reference_rank": self.reference_rank, "window_rank": self.window_rank,
                "wasserstein": _num(self.wasserstein), "ks_statistic": _num(self.ks_statistic),
                "p_value": _num(self.p_value), "shifted": self.shifted}


@dataclass(frozen=True)
class AttributionDrift:
    """Did what drives the model change? ``ndcg`` of the window's importance ranking with the
    reference importances as relevance (SageMaker Clarify's definition); ``alarm`` when it
    is below ``threshold``. ``features`` in reference-importance order."""

    ndcg: float
    threshold: float
    alarm: bool
    top_k: int | None
    alpha: float
    features: tuple[FeatureAttributionShift, ...]

    @property
    def shifted_features(self) -> tuple[str, ...]:
        return tuple(f.feature for f in self.features if f.shifted)

    def to_dict(self) -> dict[str, Any]:
        return {"ndcg": _num(self.ndcg), "threshold": self.threshold, "alarm": self.alarm,
                "top_k": self.top_k, "alpha": self.alpha,
                "shifted_features": list(self.shifted_features),
                "features": [f.to_dict() for f in self.features]}


@dataclass(frozen=True)
class DriftImpact:
    """A feature's drift weighed by how much the model leans on it:
    ``impact = drift_score * importance_share`` (share of total importance, summing to 1);
    ``importance_share`` is None when the feature had no importance (then it ranks last)."""

    feature: str
    drift_score: float
    drifted: bool
    importance_share: float | None
    impact: float | None
    rank: int

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "drift_score": _num(self.drift_score),
                "drifted": self.drifted,
                "importance_share": None if self.importance_share is None
                else _num(self.importance_share),
                "impact": None if self.impact is None else _num(self.impact),
                "rank": self.rank}
