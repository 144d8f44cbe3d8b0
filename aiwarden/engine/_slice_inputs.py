"""Inputs of the failing-slice search: parameter checks, columns, and the loss of every row.

Why apart: everything that can reject a call happens here, before any candidate is built, so
the search itself only ever sees a float loss per evaluated row.
"""

from __future__ import annotations

import math
from typing import Any, Literal, get_args

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aiwarden.engine._class_encoding import encode_labels
from aiwarden.engine._frame import _combine, numeric_values
from aiwarden.engine._multivariate_encoding import check_range, is_int
from aiwarden.errors import DataError, ParameterError, SchemaError, check_param

__all__ = ["OWNER", "Metric", "check_params", "column", "loss_per_row"]

Metric = Literal["error_rate", "false_positive_rate", "false_negative_rate", "abs_error"]
_METRICS = get_args(Metric)
OWNER = "find_failing_slices"


def check_params(metric: str, top_k: int, max_order: int, min_support: float, alpha: float,
                 correction: str, n_bins: int, max_categories: int, n_pair_parents: int,
                 shortlist: int) -> None:
    """Every parameter checked up front, in the house template."""
    check_param(metric in _METRICS, "metric", OWNER, f"one of {_METRICS}", metric)
    check_param(is_int(top_k) and top_k >= 1, "top_k", OWNER, "an int >= 1", top_k)
    check_param(is_int(max_order) and max_order in (1, 2), "max_order", OWNER, "1 or 2",
                max_order)
    check_param((is_int(min_support) and min_support >= 1) or (
        isinstance(min_support, float) and 0.0 < min_support < 1.0), "min_support", OWNER,
        "an int >= 1 (rows) or a float in (0, 1) (share of rows)", min_support)
    check_param(isinstance(alpha, float | int) and not isinstance(alpha, bool) and 0 < alpha < 1,
                "alpha", OWNER, "a float in (0, 1)", alpha)
    check_param(correction in ("bh", "bonferroni"), "correction", OWNER,
                "'bh' or 'bonferroni'", correction)
    check_range(OWNER, "n_bins", n_bins, 2, 1000, integer=True)
    for name, value, low in (("max_categories", max_categories, 1),
                             ("n_pair_parents", n_pair_parents, 2), ("shortlist", shortlist, 1)):
        check_param(is_int(value) and value >= low, name, OWNER, f"an int >= {low}", value)


def column(table: pa.Table, name: str, owner: str) -> pa.Array:
    """One column as a single plain Arrow array; a missing column is a SchemaError naming it."""
    if name not in table.column_names:
        raise SchemaError(
            f"Column {name!r} requested by {owner} is not in the data "
            f"(columns: {table.column_names[:20]}).", column=name)
    return _combine(table.column(name))


def _vector(value: Any, table: pa.Table, param: str) -> tuple[pa.Array, str]:
    """A label/error argument (column name or array-like) as an Arrow array of the right length."""
    if isinstance(value, str):
        arr, label = column(table, value, OWNER), value
    else:
        label = param
        if hasattr(value, "to_arrow"):  # polars Series
            value = value.to_arrow()
        if not isinstance(value, pa.Array | pa.ChunkedArray):
            try:
                value = pa.array(value, from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
                raise DataError(f"{param!r} cannot be read as one value per row: {exc}",
                                column=param) from exc
        arr = _combine(value)
    if len(arr) != table.num_rows:
        raise DataError(f"{label!r} has {len(arr)} values but the data has {table.num_rows} "
                        "rows.", column=label)
    return arr, label


def _numbers(arr: pa.Array, label: str) -> np.ndarray:
    """Float values (NaN where missing); text or other types are a DataError, not coerced."""
    col = numeric_values(arr)
    if col.invalid or not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)
                           or pa.types.is_boolean(arr.type) or pa.types.is_null(arr.type)):
        raise DataError(f"Column {label!r} must hold numbers for this metric. Got values of type "
                        f"{arr.type}.", column=label)
    return col.raw


def _labels(y_true: pa.Array, y_pred: pa.Array, names: tuple[str, str]
            ) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """Both label columns as codes into their joint classes (-1 where missing)."""
    classes: dict[Any, None] = {}
    for arr in (y_true, y_pred):
        for v in pc.unique(arr).to_pylist():
            if v is not None and not (isinstance(v, float) and math.isnan(v)):
                classes.setdefault(v, None)
    cls = list(classes)
    codes = [encode_labels(a.to_numpy(zero_copy_only=False), tuple(cls), n)
             for a, n in zip((y_true, y_pred), names, strict=True)]
    return codes[0], codes[1], cls


def _class_rate_loss(metric: str, t: pa.Array, p: pa.Array, names: tuple[str, str],
                     pos_label: Any) -> tuple[np.ndarray, np.ndarray]:
    """``error_rate`` on labels, or a false positive / negative rate on the one class it needs."""
    t_label, p_label = names
    tc, pcodes, cls = _labels(t, p, names)
    keep = (tc >= 0) & (pcodes >= 0)
    loss = (tc != pcodes).astype(np.float64)
    if metric == "error_rate":
        return loss, keep
    if len(cls) > 2:
        raise DataError(f"{metric} needs binary labels; {t_label!r} and {p_label!r} "
                        f"hold {len(cls)} classes.", column=t_label)
    pos = next((i for i, c in enumerate(cls) if c == pos_label), -2)
    positive = metric == "false_negative_rate"
    keep &= (tc == pos) if positive else (tc != pos)
    loss = ((pcodes != pos) if positive else (pcodes == pos)).astype(np.float64)
    if not keep.any():
        kind = "positive" if positive else "negative"
        raise DataError(f"No {kind} labels (pos_label={pos_label!r}) in {t_label!r}: "
                        f"{metric} is undefined.", column=t_label)
    return loss, keep


def loss_per_row(metric: str, table: pa.Table, errors: Any, y_true: Any, y_pred: Any,
                 pos_label: Any) -> tuple[np.ndarray, np.ndarray]:
    """(loss per row, rows evaluated by the metric)."""
    if errors is not None:
        if y_true is not None or y_pred is not None:
            raise ParameterError(f"Give {OWNER} either 'errors' or 'y_true' and 'y_pred', "
                                 "not both.")
        check_param(metric in ("error_rate", "abs_error"), "metric", OWNER,
                    "'error_rate' or 'abs_error' when 'errors' is given (rates per class "
                    "need y_true and y_pred)", metric)
        arr, label = _vector(errors, table, "errors")
        loss = _numbers(arr, label)
        keep = ~np.isnan(loss)
        if np.isinf(loss).any():
            raise DataError(f"Column {label!r} holds infinite errors.", column=label)
        if metric == "error_rate" and not np.isin(loss[keep], (0.0, 1.0)).all():
            raise DataError(f"Column {label!r} must hold 0/1 or bool errors for "
                            "metric='error_rate'; use metric='abs_error' for other losses.",
                            column=label)
    else:
        if y_true is None or y_pred is None:
            raise ParameterError(f"{OWNER} needs 'errors' or both 'y_true' and 'y_pred'.")
        (t, label), (p, p_label) = _vector(y_true, table, "y_true"), _vector(y_pred, table,
                                                                              "y_pred")
        if metric == "abs_error":
            loss = np.abs(_numbers(t, label) - _numbers(p, p_label))
            keep = np.isfinite(loss)
        else:
            loss, keep = _class_rate_loss(metric, t, p, (label, p_label), pos_label)
    if not keep.any():
        raise DataError(f"No labels: every row of {label!r} is missing, so no row can be "
                        "evaluated.", column=label)
    return loss, keep
