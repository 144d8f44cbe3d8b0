"""Attribution drift (did what drives the model change?) and drift that matters.

nDCG follows SageMaker Clarify's feature attribution drift: with ``F(x)`` the reference
(baseline) importance of feature ``x``, ``x_i`` the features ranked by the window's importance
and ``x'_i`` ranked by the reference's,
``nDCG = sum_i F(x_i) / log2(i + 1)  /  sum_i F(x'_i) / log2(i + 1)``, i = 1..n (or the top k);
1 means the same order, and Clarify alarms below 0.9.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from aiwarden.errors import DataError, ParameterError, check_param
from aiwarden.explain.results import (
    AttributionDrift,
    DriftImpact,
    FeatureAttributionShift,
    GlobalImportance,
)

__all__ = ["attribution_drift", "ndcg", "weigh_drift"]


def _ranked(importance: Mapping[str, float]) -> list[str]:
    """Most important first; ties broken by name so the ranking is deterministic."""
    return sorted(importance, key=lambda f: (-float(importance[f]), f))


def ndcg(reference: Mapping[str, float], window: Mapping[str, float],
         top_k: int | None = None) -> float:
    """nDCG of the window's ranking with reference importances as relevance (see module).

    Features only one side knows have relevance 0 / rank last. All-zero reference importance
    (a constant model) has no ranking to lose: 1.0.

    >>> ndcg({"a": 3, "b": 2, "c": 1}, {"a": 0.9, "b": 0.5, "c": 0.1})
    1.0
    >>> round(ndcg({"a": 3, "b": 2, "c": 1}, {"a": 0.1, "b": 0.5, "c": 0.9}), 4)
    0.79
    """
    check_param(top_k is None or (isinstance(top_k, int) and top_k >= 1), "top_k", "ndcg",
                "None or an int >= 1", top_k)
    if not reference:
        raise DataError("The reference importance is empty.")
    if any(not np.isfinite(float(v)) or float(v) < 0 for v in reference.values()):
        raise DataError("Reference importances must be finite and >= 0.")
    feats = list(dict.fromkeys([*reference, *window]))
    live = _ranked({f: float(window.get(f, -np.inf)) for f in feats})
    ideal = _ranked({f: float(reference.get(f, 0.0)) for f in feats})
    k = len(feats) if top_k is None else min(top_k, len(feats))
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    rel = np.array([float(reference.get(f, 0.0)) for f in live[:k]])
    best = np.array([float(reference.get(f, 0.0)) for f in ideal[:k]])
    idcg = float(best @ disc)
    return 1.0 if idcg == 0 else float(rel @ disc) / idcg


def attribution_drift(reference: GlobalImportance, window: GlobalImportance, *,
                      threshold: float = 0.9, top_k: int | None = None,
                      alpha: float = 0.05) -> AttributionDrift:
    """Ranking change (nDCG, ``alarm`` below ``threshold``) and, per feature, the shift of
    the attribution distribution: Wasserstein distance and a two-sample KS test, ``shifted``
    when its p-value is below ``alpha`` divided by the number of features (Bonferroni).

    Both sides must come from the same method and output space (a margin and a probability
    are not comparable).
    """
    check_param(isinstance(threshold, float | int) and 0 <= threshold <= 1, "threshold",
                "attribution_drift", "a float in [0, 1]", threshold)
    check_param(isinstance(alpha, float | int) and 0 < alpha < 1, "alpha",
                "attribution_drift", "a float in (0, 1)", alpha)
    if (reference.method, reference.output_space) != (window.method, window.output_space):
        raise ParameterError(
            f"Cannot compare {reference.method} attributions of the {reference.output_space} "
            f"with {window.method} attributions of the {window.output_space}: explain both "
            "with the same method.", "method")
    if set(reference.feature_order) != set(window.feature_order):
        raise DataError("The reference and the window explain different features: "
                        f"{sorted(set(reference.feature_order) ^ set(window.feature_order))}.")
    ref_imp, win_imp = reference.as_mapping(), window.as_mapping()
    score = ndcg(ref_imp, win_imp, top_k)
    ref_rank = {f.feature: f.rank for f in reference.features}
    win_rank = {f.feature: f.rank for f in window.features}
    rcol = {f: i for i, f in enumerate(reference.feature_order)}
    wcol = {f: i for i, f in enumerate(window.feature_order)}
    cut = alpha / len(rcol)
    shifts = []
    for f in (x.feature for x in reference.features):
        a, b = reference.values[:, rcol[f]], window.values[:, wcol[f]]
        w = float(stats.wasserstein_distance(a, b))
        if np.ptp(a) == 0 and np.ptp(b) == 0 and a[0] == b[0]:
            ks, p = 0.0, 1.0  # both constant and equal (an ignored feature): nothing moved
        else:
            res = stats.ks_2samp(a, b)
            ks, p = float(res.statistic), float(res.pvalue)
        shifts.append(FeatureAttributionShift(f, ref_imp[f], win_imp[f], ref_rank[f],
                                              win_rank[f], w, ks, p, p < cut))
    return AttributionDrift(score, float(threshold), score < threshold, top_k, float(alpha),
                            tuple(shifts))


def _drift_scores(drift: Any) -> tuple[dict[str, float], set[str]]:
    """``{feature: score}`` and the drifted set from a ``DriftReport`` (severity: distance
    over its threshold, comparable across tests) or a plain mapping (all counted drifted
    unless a ``drifted`` set is given)."""
    if hasattr(drift, "features") and hasattr(drift, "drifted_features"):
        scores = {c.column: float(c.severity) for c in drift.features}
        return scores, set(drift.drifted_features)
    if isinstance(drift, Mapping):
        return {str(k): float(v) for k, v in drift.items()}, {str(k) for k in drift}
    raise DataError(f"drift must be a DriftReport or a mapping of feature to score; got a "
                    f"{type(drift).__name__}.")


def weigh_drift(drift: Any, importance: GlobalImportance | Mapping[str, float], *,
                drifted: Sequence[str] | None = None,
                only_drifted: bool = False) -> tuple[DriftImpact, ...]:
    """Rank features by ``drift score x share of importance``: "amount drifted and the model
    leans on it" above "a feature the model ignores drifted".

    ``importance`` is normalised to shares summing to 1, so impacts of different windows are
    on one scale. A feature without an importance is listed last with ``impact=None``.
    """
    scores, hit = _drift_scores(drift)
    if drifted is not None:
        hit = set(drifted)
    imp = importance.as_mapping() if isinstance(importance, GlobalImportance) else {
        str(k): float(v) for k, v in importance.items()}
    if any(not np.isfinite(v) or v < 0 for v in imp.values()):
        raise DataError("Importances must be finite and >= 0.")
    total = sum(imp.values())
    rows = []
    for f, s in scores.items():
        if only_drifted and f not in hit:
            continue
        share = (imp[f] / total if total > 0 else 0.0) if f in imp else None
        impact = None if share is None or not np.isfinite(s) else s * share
        rows.append((f, s, f in hit, share, impact))
    rows.sort(key=lambda r: (r[4] is None, -(r[4] or 0.0), -(r[1] if np.isfinite(r[1])
                                                              else -np.inf), r[0]))
    return tuple(DriftImpact(f, s, d, sh, im, i + 1)
                 for i, (f, s, d, sh, im) in enumerate(rows))
