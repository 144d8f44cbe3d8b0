"""Glue between a batch's label/prediction/score columns and the performance accumulators.

Pulls the arrays the schema names out of an Arrow table (labels as text, so
``1``, ``"1"`` and ``True`` compare as the schema's classes) and feeds
:mod:`aiwarden.engine.performance` and :mod:`aiwarden.engine.cbpe`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from aiwarden.engine._frame import as_text, numeric_values
from aiwarden.engine.schema import ColumnType, Role, Schema, Task

__all__ = [
    "estimate_batch",
    "estimated_from_dict",
    "fit_performance",
    "model_from_dict",
    "model_to_dict",
    "performance_from_dict",
    "realised_batch",
    "residual_edges",
    "row_errors",
]

_CLASSIFICATION = (Task.BINARY, Task.MULTICLASS)
#: Fewest labelled reference rows a regression reference fits DLE on (below: no estimate).
DLE_MIN_ROWS = 100
#: The reference's DLE: 3 folds on at most 20,000 rows fits in ~1.3 s (5 folds on 50,000:
#: ~5.7 s) with estimates within 1 % of each other (bench/dle.py measures both).
DLE_FOLDS, DLE_MAX_ROWS = 3, 20_000


def _labels(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(as_text(table.column(name)).to_numpy(zero_copy_only=False), dtype=object)


def _scores(table: pa.Table, schema: Schema) -> np.ndarray | None:
    cols = [c for c in schema.score_columns if c.name in table.column_names]
    if not cols:
        return None
    if schema.task == Task.BINARY:
        # Accumulators read a binary score as P(classes[-1]); a score labelled with the
        # other class is turned around rather than silently misread.
        positive = schema.classes[-1] if schema.classes else None
        chosen = next((c for c in cols if c.label == positive), cols[0])
        raw = numeric_values(table.column(chosen.name)).raw
        flip = chosen.label is not None and chosen.label != positive
        return 1.0 - raw if flip else raw
    by_label = {c.label: c.name for c in cols}
    if any(k not in by_label for k in schema.classes):
        return None
    return np.column_stack([numeric_values(table.column(by_label[k])).raw
                            for k in schema.classes])


def _arrays(schema: Schema, table: pa.Table) -> dict[str, Any] | None:
    target = schema.column_for(Role.TARGET)
    pred = schema.column_for(Role.PREDICTION)
    if schema.task == Task.NONE:
        return None
    out: dict[str, Any] = {}
    if schema.task == Task.REGRESSION:
        if target and target in table.column_names:
            out["y_true"] = numeric_values(table.column(target)).raw
        if pred and pred in table.column_names:
            out["y_pred"] = numeric_values(table.column(pred)).raw
        return out
    if target and target in table.column_names:
        out["y_true"] = _labels(table, target)
    if pred and pred in table.column_names:
        out["y_pred"] = _labels(table, pred)
    scores = _scores(table, schema)
    if scores is not None:
        out["scores"] = scores
    return out


def _present(v: np.ndarray) -> np.ndarray:
    return ~pd.isna(v) if v.dtype == object else np.isfinite(v)


def _labelled(a: dict[str, Any]) -> dict[str, Any] | None:
    """Keep rows whose label (and prediction, when given) is present."""
    y = a.get("y_true")
    if y is None:
        return None
    keep = _present(y)
    if "y_pred" in a:
        keep &= _present(a["y_pred"])
    if not keep.any():
        return None
    return {k: v[keep] for k, v in a.items()}


def residual_edges(schema: Schema, table: pa.Table, bins: int = 50) -> np.ndarray | None:
    """Regression residual bins at the reference residuals' quantiles (fixed for merges)."""
    if schema.task != Task.REGRESSION:
        return None
    a = _arrays(schema, table)
    a = _labelled(a) if a else None
    if a is None or "y_pred" not in a:
        return None
    e = a["y_pred"] - a["y_true"]
    if len(e) < 2:
        return None
    edges = np.unique(np.quantile(e, np.linspace(0.0, 1.0, bins + 1)))
    return edges if len(edges) >= 2 else None


def realised_batch(schema: Schema, table: pa.Table, edges: np.ndarray | None = None) -> Any:
    """Realised-performance accumulator for rows that carry a label, else None."""
    a = _arrays(schema, table)
    if not a:
        return None
    a = _labelled(a)
    if a is None:
        return None
    from aiwarden.engine import performance as perf

    if schema.task == Task.REGRESSION:
        if "y_pred" not in a:
            return None
        return perf.RegressionStats.from_arrays(a["y_true"], a["y_pred"], residual_edges=edges)
    if "y_pred" not in a and "scores" not in a:
        return None
    return perf.ClassificationStats.from_arrays(
        a["y_true"], a.get("y_pred"), a.get("scores"), classes=list(schema.classes)
    )


def row_errors(schema: Schema, table: pa.Table) -> np.ndarray:
    """Each row's outcome, in row order: 1.0/0.0 (wrong/right class) for a classifier, the
    absolute error for a regressor; NaN where the row has no usable label or prediction.

    The concept-drift detectors read this stream; a row counts exactly when it counts in
    the realised accuracy (or MAE) of :func:`realised_batch`, so the stream's mean is
    ``1 - accuracy`` (or the MAE) of the same rows.
    """
    n = table.num_rows
    out = np.full(n, np.nan)
    a = _arrays(schema, table)
    if not a or "y_true" not in a:
        return out
    if schema.task == Task.REGRESSION:
        if "y_pred" in a:
            err = np.abs(a["y_pred"] - a["y_true"])
            out = np.where(np.isfinite(err), err, np.nan)
        return out
    from aiwarden.engine._class_encoding import encode_labels, predict_codes, valid_score_rows

    classes = tuple(schema.classes)
    true = encode_labels(a["y_true"], classes, "y_true")
    if "y_pred" in a:
        pred = encode_labels(a["y_pred"], classes, "y_pred")
    elif "scores" in a:
        s = a["scores"]
        pred = np.where(valid_score_rows(s), predict_codes(s, 0.5), -1)
    else:
        return out
    scored = (true >= 0) & (pred >= 0)
    out[scored] = (true[scored] != pred[scored]).astype(np.float64)
    return out


def _dle_features(schema: Schema) -> list[str]:
    """Feature columns DLE can learn from: numbers, categories and booleans."""
    kinds = (ColumnType.NUMERICAL, ColumnType.CATEGORICAL, ColumnType.BOOLEAN)
    return [c.name for c in schema.columns if c.role == Role.FEATURE and c.dtype in kinds]


def _feature_frame(schema: Schema, table: pa.Table, names: list[str]) -> pd.DataFrame:
    """The DLE features of a batch; an absent column is all missing (quality reports it)."""
    present = [n for n in names if n in table.column_names]
    frame = table.select(present).to_pandas() if present else pd.DataFrame(
        index=range(table.num_rows))
    for n in names:
        if n not in frame.columns:
            frame[n] = np.nan
    return frame[names]


def fit_performance(schema: Schema, table: pa.Table) -> tuple[Any, Any]:
    """Reference performance and a performance estimator: CBPE for scored classifiers,
    DLE for regression models with features, all fitted on the labelled rows."""
    realised = realised_batch(schema, table, residual_edges(schema, table))
    if schema.task == Task.REGRESSION:
        return realised, _fit_dle(schema, table)
    if schema.task not in _CLASSIFICATION:
        return realised, None
    a = _arrays(schema, table)
    a = _labelled(a) if a else None
    if a is None or "scores" not in a or len(schema.classes) < 2:
        return realised, None
    if len(pd.unique(a["y_true"])) < 2:
        return realised, None  # CBPE needs both outcomes in the labelled reference
    from aiwarden.engine.cbpe import CBPE

    model = CBPE().fit(a["y_true"], a["scores"], classes=list(schema.classes),
                       y_pred=a.get("y_pred"))
    return realised, model


def _fit_dle(schema: Schema, table: pa.Table) -> Any:
    """DLE on the labelled reference rows; None without features or with too few rows."""
    names = _dle_features(schema)
    a = _arrays(schema, table)
    if not names or not a or "y_true" not in a or "y_pred" not in a:
        return None
    ok = np.isfinite(a["y_true"]) & np.isfinite(a["y_pred"])
    from aiwarden.engine.dle import DLE

    dle = DLE(n_folds=DLE_FOLDS, max_rows=DLE_MAX_ROWS)
    if ok.sum() < max(2 * dle.n_folds, DLE_MIN_ROWS):
        return None
    frame = _feature_frame(schema, table, names)
    return dle.fit(frame[ok].reset_index(drop=True), a["y_true"][ok], a["y_pred"][ok])


def estimate_batch(model: Any, schema: Schema, table: pa.Table) -> Any:
    """The estimator's accumulator for a batch (labels not needed): CBPE's expected
    confusion counts from scores, DLE's expected losses from features and prediction."""
    a = _arrays(schema, table)
    if schema.task == Task.REGRESSION:
        if not a or "y_pred" not in a:
            return None
        return model.accumulate(_feature_frame(schema, table, list(model.features_)),
                                a["y_pred"])
    if not a or "scores" not in a:
        return None
    return model.accumulate(a["scores"], y_pred=a.get("y_pred"))


def performance_from_dict(d: Mapping[str, Any] | None) -> Any:
    if d is None:
        return None
    from aiwarden.engine import performance as perf

    body = {k: v for k, v in d.items() if k != "kind"}
    cls = {"ClassificationStats": perf.ClassificationStats,
           "RegressionStats": perf.RegressionStats}[d["kind"]]
    return cls.from_dict(body)


def estimated_from_dict(d: Mapping[str, Any] | None) -> Any:
    if d is None:
        return None
    if d.get("kind") == "ExpectedRegressionStats":
        from aiwarden.engine.dle import ExpectedRegressionStats

        return ExpectedRegressionStats.from_dict(d)
    from aiwarden.engine.cbpe import ExpectedClassificationStats

    return ExpectedClassificationStats.from_dict(d)


def model_to_dict(model: Any) -> dict[str, Any] | None:
    return None if model is None else model.to_dict()


def model_from_dict(d: Mapping[str, Any] | None) -> Any:
    if d is None:
        return None
    if d.get("kind") == "DLE":
        from aiwarden.engine.dle import DLE

        return DLE.from_dict(d)
    from aiwarden.engine.cbpe import CBPE  # stored CBPEs carry no kind

    return CBPE.from_dict(d)
