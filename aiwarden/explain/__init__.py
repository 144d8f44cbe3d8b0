"""Explanations of a model's predictions, per row and per window, and their drift.

Built on shap and lime (``pip install 'aiwarden[explain]'``), imported on first use only.
Pure engine code: it never imports the server, the store or the registry; a model is any
object with ``predict`` (and ``predict_proba``), such as what the registry loads.

    explain_rows(model, rows, reference, options)        -> RowExplanations
    global_importance(model, window, reference, options) -> GlobalImportance
    slice_importance(model, window, reference, where)    -> SliceImportance
    attribution_drift(reference_importance, window_importance) -> AttributionDrift
    weigh_drift(drift_report, importance)                -> tuple[DriftImpact, ...]

Errors: bad options are ``ParameterError``, unusable data ``DataError``/``SchemaError``, a
missing shap or lime ``MissingExtraError`` (all ``AiwardenError``). See docs/explain.md.
"""

from aiwarden.explain._deps import INSTALL_HINT, MissingExtraError
from aiwarden.explain.drift import attribution_drift, ndcg, weigh_drift
from aiwarden.explain.importance import (
    global_importance,
    importance_from_values,
    slice_importance,
)
from aiwarden.explain.options import METHODS, ExplainOptions
from aiwarden.explain.results import (
    AttributionDrift,
    DriftImpact,
    Explanation,
    FeatureAttributionShift,
    FeatureContribution,
    FeatureImportance,
    GlobalImportance,
    RowExplanations,
    SliceImportance,
)
from aiwarden.explain.rows import explain_rows

__all__ = [
    "INSTALL_HINT", "METHODS", "AttributionDrift", "DriftImpact", "ExplainOptions",
    "Explanation", "FeatureAttributionShift", "FeatureContribution", "FeatureImportance",
    "GlobalImportance", "MissingExtraError", "RowExplanations", "SliceImportance",
    "attribution_drift", "explain_rows", "global_importance", "importance_from_values",
    "ndcg", "slice_importance", "weigh_drift",
]
