"""Is the canary worse than the champion, on the same traffic? A one-sided two-proportion test.

During a canary (or an A/B split) both versions answer the same stream of requests, so a
rate that is higher on the challenger by more than chance allows is evidence against it.
The rates compared are proportions of events: failed predictions (``error_rate``) or
wrong answers among labelled ones (``error`` = 1 − accuracy). The test is the pooled
two-proportion z-test (the square of its statistic is the uncorrected 2×2 chi-square),
one-sided, with an optional minimum effect so a trivial difference never rolls back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from scipy import special

from aiwarden.monitoring.windows import parse_duration

__all__ = ["CanaryCompare", "Comparison", "Split", "compare_rates", "compare_versions",
           "live_split"]


class CanaryCompare(BaseModel):
    """How a rollback policy judges a running canary."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    metric: Literal["error_rate", "error"] = "error_rate"
    window: str = "1h"
    alpha: float = Field(0.01, gt=0, lt=0.5)
    min_effect: float = Field(0.0, ge=0, lt=1)  # rates must differ by at least this
    # events (or labels) per version before judging; bounded so it fits the store's
    # integers (a 100-bit value was a 500 on SQLite)
    min_samples: int = Field(100, ge=1, le=10**12)

    @field_validator("min_samples", mode="before")
    @classmethod
    def _integral(cls, v: Any) -> Any:
        """241426.0 is an integer to JSON Schema (and to the OpenAPI document): strict
        mode still refuses "100" and True, but not a float with no fraction."""
        return int(v) if isinstance(v, float) and v.is_integer() else v

    @field_validator("window")
    @classmethod
    def _duration(cls, v: str) -> str:
        parse_duration(v, "window")
        return v


@dataclass(frozen=True)
class Comparison:
    champion: tuple[int, int]  # (bad, total)
    challenger: tuple[int, int]
    z: float
    p_value: float
    worse: bool

    def text(self, metric: str) -> str:
        (b0, n0), (b1, n1) = self.champion, self.challenger
        return (f"canary {metric} {b1 / n1:.3g} ({b1}/{n1}) vs champion {b0 / n0:.3g} "
                f"({b0}/{n0}), one-sided p = {self.p_value:.2g}")


def compare_rates(champion: tuple[int, int], challenger: tuple[int, int], *, alpha: float,
                  min_effect: float = 0.0, min_samples: int = 1) -> Comparison | None:
    """None when either side has fewer than ``min_samples`` events."""
    (b0, n0), (b1, n1) = champion, challenger
    if n0 < min_samples or n1 < min_samples:
        return None
    p0, p1 = b0 / n0, b1 / n1
    pooled = (b0 + b1) / (n0 + n1)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / n1))
    # se is 0 only when both sides are all good or all bad: no evidence either way
    z = (p1 - p0 - min_effect) / se if se else 0.0
    p = float(special.ndtr(-z))
    return Comparison((b0, n0), (b1, n1), z, p, p < alpha and p1 - p0 > min_effect)


@dataclass(frozen=True)
class Split:
    """A running canary or A/B test: who serves by default and who is being tried."""

    mode: str
    champion: str  # version label
    challenger: str  # version label
    target: str  # as the policy names it: a label or "@alias"


def live_split(registry: Any, model: str, served_alias: str = "champion") -> Split | None:
    """The model's canary / A-B split now, with targets resolved to version labels."""
    from aiwarden.gateway.policies import PolicyStore

    store = PolicyStore(registry)
    policy = store.policy(store.model_id(model))
    aliases = registry.aliases(model)
    champion = aliases.get(served_alias)
    if policy.mode not in ("canary", "ab") or champion is None:
        return None
    targets = [policy.challenger] if policy.mode == "canary" else [t for t, _ in
                                                                   policy.weights]
    for target in targets:
        if target is None:
            continue
        version = aliases.get(target[1:]) if target.startswith("@") else target
        if version is not None and version != champion:
            return Split(policy.mode, champion, version, target)
    return None


def _side(monitor: Any, model: str, version: str, start: float, end: float) -> dict[str, Any]:
    from aiwarden.monitoring import metrics

    ref, d = monitor.window(model, start, end, version)
    perf = None if d.profile is None else d.profile.performance
    confusion = getattr(perf, "confusion", None)
    labelled = 0 if confusion is None else int(confusion.sum())
    wrong = 0 if confusion is None else labelled - int(confusion.trace())
    realised = metrics.compute("performance", ref, d)["metrics"]
    estimated = (metrics.compute("estimated_performance", ref, d) or {}).get("metrics")
    return {"version": version, "rows": d.rows, "errors": d.errors, "labelled": labelled,
            "wrong": wrong, "latency": metrics.compute("latency", ref, d),
            "realised": realised, "estimated": estimated}


def compare_versions(monitor: Any, model: str, champion: str, challenger: str, start: float,
                     end: float, alpha: float = 0.01) -> dict[str, Any]:
    """Both versions on the same window: volumes, failures, labelled errors, latency and
    performance, with the one-sided tests a rollback policy would apply."""
    a = _side(monitor, model, champion, start, end)
    b = _side(monitor, model, challenger, start, end)
    tests = {}
    for name, bad, total in (("error_rate", "errors", "rows"), ("error", "wrong", "labelled")):
        c = compare_rates((a[bad], a[total]), (b[bad], b[total]), alpha=alpha)
        tests[name] = None if c is None else {"z": c.z, "p_value": c.p_value,
                                              "worse": c.worse, "summary": c.text(name)}
    return {"model": model, "champion": a, "challenger": b, "tests": tests, "alpha": alpha}
